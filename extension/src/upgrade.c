/*-------------------------------------------------------------------------
 *
 * upgrade.c
 *	  Package upgrades: the jobs of a database whose SQL objects are older
 *	  than the library wait, saying why, and go on right after ALTER
 *	  EXTENSION pg_mig UPDATE.
 *
 * Between a package upgrade (the new library, loaded by a restart) and
 * ALTER EXTENSION pg_mig UPDATE, a database's pg_mig tables are of the old
 * version.  The library neither reads nor writes them then
 * (MigRequireSchemaVersion): its SQL functions fail with a hint to run the
 * update, and the scan starts no worker there.  The scan instead writes
 * why each queued or running job waits into its throttled column, the one
 * column it writes there (MigNoteJobsAwaitUpdate; every mig_jobs since 0.1
 * shows it), and into the note table in shared memory; the checkpoints are
 * left as they are: nothing is lost, nothing fails.  After the update the
 * scan clears that reason (MigClearUpdateNotes).  When
 * ALTER EXTENSION pg_mig UPDATE commits, the object access hook below has
 * asked the launcher to scan that database at once, so the jobs go on from
 * their checkpoints without a restart (and the launcher's periodic scan,
 * every pg_mig.naptime, would find them too).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/objectaccess.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"

#include "pg_mig.h"

static object_access_hook_type prev_object_access_hook = NULL;

static void UpgradeObjectAccess(ObjectAccessType access, Oid classId, Oid objectId,
								int subId, void *arg);

/*
 * MigInstallUpgradeHook installs the object access hook.  Called from
 * _PG_init in every process that loads the library.
 */
void
MigInstallUpgradeHook(void)
{
	prev_object_access_hook = object_access_hook;
	object_access_hook = UpgradeObjectAccess;
}

/*
 * UpgradeObjectAccess: ALTER EXTENSION pg_mig UPDATE (an alter of the
 * extension's pg_extension row) asks for a scan of this database when the
 * transaction commits.
 */
static void
UpgradeObjectAccess(ObjectAccessType access, Oid classId, Oid objectId,
					int subId, void *arg)
{
	if (prev_object_access_hook)
		prev_object_access_hook(access, classId, objectId, subId, arg);
	if (access == OAT_POST_ALTER && classId == ExtensionRelationId &&
		MigShared != NULL &&
		objectId == get_extension_oid(PG_MIG_EXTENSION_NAME, true))
		MigRequestAtCommit(MyDatabaseId, 0, InvalidOid);
}

/* the start of every reason MigNoteJobsAwaitUpdate writes */
#define AWAIT_UPDATE_PREFIX "waiting for ALTER EXTENSION pg_mig UPDATE"

/*
 * MigNoteJobsAwaitUpdate says, for every queued or running job of this
 * database, that it waits for ALTER EXTENSION pg_mig UPDATE: in the job
 * row's throttled, which mig_jobs of every version shows first (a reason
 * left there by the worker before the restart, e.g. a standby stopped for
 * the upgrade, is stale and would hide the note of mig_worker_status()),
 * and in the note table.  installed is the version of the SQL objects here.
 * It touches only columns that every version of mig_job has (job_id,
 * state, throttled).  Caller is in a transaction, with a snapshot, runs as
 * a superuser (the guard trigger of 0.3 lets it write), search_path pinned.
 */
void
MigNoteJobsAwaitUpdate(const char *installed)
{
	char	   *note;
	char	   *sql;
	Oid			types[1] = {TEXTOID};
	Datum		values[1];

	note = psprintf(AWAIT_UPDATE_PREFIX " (the library is %s, the extension %s)",
					PG_MIG_VERSION, installed);
	values[0] = CStringGetTextDatum(note);
	sql = psprintf("UPDATE %s SET throttled = $1"
				   " WHERE state OPERATOR(pg_catalog.=) ANY ('{queued,running}'::pg_catalog.text[])"
				   " AND throttled IS DISTINCT FROM $1"
				   " RETURNING job_id",
				   MigQualifiedTable(MIG_JOB_TABLE));
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args(sql, 1, types, values, NULL, false, 0) != SPI_OK_UPDATE_RETURNING)
		elog(ERROR, "could not mark the pg_mig jobs that wait for the update");
	SPI_finish();
	MigNoteUnfinishedJobs(note);
}

/*
 * MigClearUpdateNotes: once the extension is of the library's version, the
 * reasons MigNoteJobsAwaitUpdate wrote are gone from the job rows (the
 * worker clears throttled only after a throttle of its own).  Called by the
 * scan before it posts the jobs.  Caller as for MigNoteJobsAwaitUpdate.
 */
void
MigClearUpdateNotes(void)
{
	char	   *sql;
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(AWAIT_UPDATE_PREFIX)};

	sql = psprintf("UPDATE %s SET throttled = NULL"
				   " WHERE pg_catalog.starts_with(throttled, $1)",
				   MigQualifiedTable(MIG_JOB_TABLE));
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args(sql, 1, types, values, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not clear the pg_mig jobs' wait for the update");
	SPI_finish();
}
