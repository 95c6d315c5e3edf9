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
 * update, and the scan starts no worker there.  The scan instead notes, in
 * shared memory, why each queued or running job waits
 * (MigNoteJobsAwaitUpdate); mig_jobs, of the old SQL as of the new, shows
 * the note as the job's throttle reason, since it reads the note table
 * through mig_worker_status(), whose shape has not changed since 0.1.  The
 * job rows are left as they are: nothing is lost, nothing fails.  When
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

/*
 * MigNoteJobsAwaitUpdate notes, for every queued or running job of this
 * database, that it waits for ALTER EXTENSION pg_mig UPDATE.  installed is
 * the version of the SQL objects here.  It reads only columns that every
 * version of mig_job has.  Caller is in a transaction, with a snapshot, and
 * search_path pinned.
 */
void
MigNoteJobsAwaitUpdate(const char *installed)
{
	char	   *note;
	char	   *sql;

	note = psprintf("waiting for ALTER EXTENSION pg_mig UPDATE (the library is %s, the extension %s)",
					PG_MIG_VERSION, installed);
	sql = psprintf("SELECT job_id FROM %s"
				   " WHERE state OPERATOR(pg_catalog.=) ANY ('{queued,running}'::pg_catalog.text[])"
				   " ORDER BY job_id",
				   MigQualifiedTable(MIG_JOB_TABLE));
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute(sql, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not list pg_mig jobs");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		int64		job_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i],
														 SPI_tuptable->tupdesc, 1, &isnull));

		MigSetNote(MyDatabaseId, job_id, note);
	}
	SPI_finish();
}
