/*-------------------------------------------------------------------------
 *
 * guard.c
 *	  Who may do what: the guard on pg_mig's own tables, the rule of who may
 *	  control a job, the checks that a job's owner may still run it, and the
 *	  pinned search_path of pg_mig's processes.
 *
 * The job tables (mig_job, mig_job_target, mig_job_event) tell the
 * launcher which role to start a worker as and what it runs, so they must
 * be written by pg_mig's own code only.  Privileges are revoked from
 * PUBLIC and row-level security is enabled with no policy, but a role with
 * pg_write_all_data, or one that was granted a privilege on the tables,
 * passes the first and is stopped only by the second; the trigger
 * mig_guard is the wall that holds whatever the privileges: it refuses
 * every INSERT, UPDATE, DELETE and TRUNCATE unless job_store.c opened the
 * guard (MigGuardOpen) for its own statement in this backend, or the
 * current user is a superuser (who could disable the trigger anyway; this
 * is what pg_restore needs).  The worker trusts nothing it reads all the
 * same: at start it checks again that the owner exists, may log in and
 * holds UPDATE on the table, and that the stored names still match the
 * stored OIDs (a restored dump of the tables carries OIDs of another
 * cluster).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"

#include "pg_mig.h"
#include "version_compat.h"

PG_FUNCTION_INFO_V1(mig_guard);

/* how many job_store.c statements of this backend hold the guard open */
static int	guard_depth = 0;
static bool guard_callbacks_registered = false;

static void GuardXactCallback(XactEvent event, void *arg);
static void GuardSubXactCallback(SubXactEvent event, SubTransactionId mySubid,
								 SubTransactionId parentSubid, void *arg);

/*
 * MigGuardOpen lets the statements that follow, in this backend, write the
 * job tables; MigGuardClose ends that.  Only job_store.c calls them, around
 * its own statements, which run as the bootstrap superuser with a pinned
 * search_path.  An error in between closes the guard at (sub)transaction
 * abort, so no user statement of an exception handler runs with it open.
 */
void
MigGuardOpen(void)
{
	if (!guard_callbacks_registered)
	{
		RegisterXactCallback(GuardXactCallback, NULL);
		RegisterSubXactCallback(GuardSubXactCallback, NULL);
		guard_callbacks_registered = true;
	}
	guard_depth++;
}

void
MigGuardClose(void)
{
	if (guard_depth > 0)
		guard_depth--;
}

static void
GuardXactCallback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
		guard_depth = 0;
}

static void
GuardSubXactCallback(SubXactEvent event, SubTransactionId mySubid,
					 SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
		guard_depth = 0;
}

/*
 * mig_guard is the statement-level trigger on the job tables: see the file
 * header.
 */
Datum
mig_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("mig_guard() must be called as a trigger")));
	if (guard_depth == 0 && !superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to change table \"%s\"",
						RelationGetRelationName(trigdata->tg_relation)),
				 errdetail("Only pg_mig's own functions write pg_mig's job tables."),
				 errhint("Use mig_start_backfill, mig_pause, mig_resume, mig_cancel and mig_set.")));
	return PointerGetDatum(NULL);
}

/*
 * MigPinSession pins, for the rest of the process (a background worker),
 * over the database's and role's settings: search_path to "pg_catalog,
 * pg_temp" (every statement pg_mig's processes run names non-catalog
 * objects with their schema, so nothing a user creates can take part), and
 * the transactions to READ COMMITTED.  A chunk's UPDATE or DELETE is
 * written for READ COMMITTED: a row changed by another transaction after
 * the chunk's snapshot is changed again in its newest version.  Under a
 * default_transaction_isolation of REPEATABLE READ or SERIALIZABLE (an
 * application that wants it for its own transactions) that row fails the
 * chunk with a serialization failure, and under a steady write load every
 * chunk does.  And session_replication_role to origin: under replica (set
 * for a role or database that replication tools use) no trigger of the
 * default kind fires, the foreign keys' ones included, and a delete left
 * the rows its ON DELETE CASCADE should have deleted.  And role to none:
 * the process runs as the role it connected as (a job's owner), not as a
 * group role that the owner's settings take on (ALTER ROLE deployer SET
 * role = app_owner, so that what its sessions create belongs to the
 * group), which is not the job's owner.  And, from PostgreSQL 17,
 * transaction_timeout to none: a role's (a guard against forgotten
 * transactions) ends a background worker's transaction with FATAL too, an
 * index build that waits for an old snapshot or a chunk's wait for a held
 * row among them; the job's lock_timeout and statement_timeout bound its
 * statements, job control its waits.
 */
void
MigPinSession(void)
{
	(void) set_config_option("search_path", MIG_SAFE_SEARCH_PATH,
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SET, true, 0, false);
	(void) set_config_option("default_transaction_isolation", "read committed",
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SET, true, 0, false);
	(void) set_config_option("session_replication_role", "origin",
							 PGC_SUSET, PGC_S_SESSION,
							 GUC_ACTION_SET, true, 0, false);
	(void) set_config_option("role", "none", PGC_SUSET, PGC_S_SESSION,
							 GUC_ACTION_SET, true, 0, false);
#if PG_VERSION_NUM >= 170000
	(void) set_config_option("transaction_timeout", "0", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SET, true, 0, false);
#endif
}

/*
 * MigCanControlJob: the current user may control a job of owner on
 * relation relid in the way control says.  A superuser, the owner and a
 * role that can SET ROLE to the owner may do everything.  The owner of the
 * job's table (or a member that has her privileges) may only hold or end
 * the job (MIG_CONTROL_STOP: pause, cancel, forget): nothing that makes the
 * worker run something, or run again, as the job's owner (MIG_CONTROL_RUN:
 * resume, set, revert, getting the job back by key).
 */
bool
MigCanControlJob(Oid owner, Oid relid, MigControl control)
{
	Oid			userid = GetUserId();
	HeapTuple	tuple;

	if (superuser() || userid == owner)
		return true;
	if (MigCanSetRole(userid, owner))
		return true;
	if (control != MIG_CONTROL_STOP)
		return false;
	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (HeapTupleIsValid(tuple))
	{
		Oid			relowner = ((Form_pg_class) GETSTRUCT(tuple))->relowner;

		ReleaseSysCache(tuple);
		if (has_privs_of_role(userid, relowner))
			return true;
	}
	return false;
}

/*
 * The formats of the messages of job control, per action (see pg_mig.h);
 * NULL where an action has no such message.  errmsg() and errhint()
 * translate them; gettext_noop marks them for the catalog.
 */
static const struct
{
	const char *action;
	const char *formats[MIG_MSG_COUNT];
}			action_messages[] = {
	{"pause", {
			gettext_noop("permission denied to pause job " INT64_FORMAT),
			gettext_noop("Only the role that started the job, a role that can SET ROLE to it, or a superuser may pause it; the owner of the job's table may only pause, cancel or forget it (mig_pause, mig_cancel, mig_forget)."),
			gettext_noop("Only the role that started a job, a role that can SET ROLE to it, the owner of the job's table, or a superuser may pause it."),
			gettext_noop("cannot pause job " INT64_FORMAT " because it is already %s"),
	}},
	{"resume", {
			gettext_noop("permission denied to resume job " INT64_FORMAT),
			gettext_noop("Only the role that started the job, a role that can SET ROLE to it, or a superuser may resume it; the owner of the job's table may only pause, cancel or forget it (mig_pause, mig_cancel, mig_forget)."),
			gettext_noop("Only the role that started a job, a role that can SET ROLE to it, the owner of the job's table, or a superuser may resume it."),
			gettext_noop("cannot resume job " INT64_FORMAT " because it is already %s"),
	}},
	{"cancel", {
			gettext_noop("permission denied to cancel job " INT64_FORMAT),
			gettext_noop("Only the role that started the job, a role that can SET ROLE to it, or a superuser may cancel it; the owner of the job's table may only pause, cancel or forget it (mig_pause, mig_cancel, mig_forget)."),
			gettext_noop("Only the role that started a job, a role that can SET ROLE to it, the owner of the job's table, or a superuser may cancel it."),
			gettext_noop("cannot cancel job " INT64_FORMAT " because it is already %s"),
	}},
	{"change", {
			gettext_noop("permission denied to change job " INT64_FORMAT),
			gettext_noop("Only the role that started the job, a role that can SET ROLE to it, or a superuser may change it; the owner of the job's table may only pause, cancel or forget it (mig_pause, mig_cancel, mig_forget)."),
			gettext_noop("Only the role that started a job, a role that can SET ROLE to it, the owner of the job's table, or a superuser may change it."),
			gettext_noop("cannot change job " INT64_FORMAT " because it is already %s"),
	}},
	{"revert", {
			gettext_noop("permission denied to revert job " INT64_FORMAT),
			gettext_noop("Only the role that started the job, a role that can SET ROLE to it, or a superuser may revert it; the owner of the job's table may only pause, cancel or forget it (mig_pause, mig_cancel, mig_forget)."),
			gettext_noop("Only the role that started a job, a role that can SET ROLE to it, the owner of the job's table, or a superuser may revert it."),
			NULL,
			gettext_noop("cannot revert a job during recovery"),
			gettext_noop("cannot revert job " INT64_FORMAT " because it kept no old values"),
			gettext_noop("cannot revert job " INT64_FORMAT " because its kept values were forgotten"),
			gettext_noop("cannot revert job " INT64_FORMAT " because it has not finished"),
	}},
	{"forget", {
			gettext_noop("permission denied to forget job " INT64_FORMAT),
			gettext_noop("Only the role that started the job, a role that can SET ROLE to it, or a superuser may forget it; the owner of the job's table may only pause, cancel or forget it (mig_pause, mig_cancel, mig_forget)."),
			gettext_noop("Only the role that started a job, a role that can SET ROLE to it, the owner of the job's table, or a superuser may forget it."),
			NULL,
			gettext_noop("cannot forget a job during recovery"),
			gettext_noop("cannot forget job " INT64_FORMAT " because it kept no old values"),
			gettext_noop("cannot forget job " INT64_FORMAT " because its kept values were forgotten"),
			gettext_noop("cannot forget job " INT64_FORMAT " because it has not finished"),
	}},
};

/* MigActionFormat: the format of message which of action (see pg_mig.h) */
const char *
MigActionFormat(const char *action, MigActionMessage which)
{
	for (int i = 0; i < lengthof(action_messages); i++)
		if (strcmp(action_messages[i].action, action) == 0 &&
			action_messages[i].formats[which] != NULL)
			return action_messages[i].formats[which];
	elog(ERROR, "pg_mig has no message %d for action \"%s\"", (int) which, action);
	return NULL;				/* keep compiler quiet */
}

/*
 * MigCheckJobControl raises an error unless the current user may control
 * the job (MigCanControlJob).  action is a verb: "pause", "cancel", ...
 */
void
MigCheckJobControl(const MigJob *job, const char *action, MigControl control)
{
	const char *owner_name;

	if (MigCanControlJob(job->owner, job->relid, control))
		return;
	owner_name = GetUserNameFromId(job->owner, true);
	if (control == MIG_CONTROL_RUN)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg(MigActionFormat(action, MIG_MSG_DENIED), job->job_id),
				 errdetail("Job " INT64_FORMAT " belongs to role \"%s\", and its worker runs as that role.",
						   job->job_id, owner_name ? owner_name : "?"),
				 errhint("%s", _(MigActionFormat(action, MIG_MSG_DENIED_OWNER_HINT)))));
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg(MigActionFormat(action, MIG_MSG_DENIED), job->job_id),
			 errdetail("Job " INT64_FORMAT " belongs to role \"%s\".", job->job_id,
					   owner_name ? owner_name : "?"),
			 errhint("%s", _(MigActionFormat(action, MIG_MSG_DENIED_HINT)))));
}

/*
 * MigOwnerProblem says why a worker may not run a job as owner now, or
 * returns NULL if it may: the role is gone, is not the role the job was
 * started by (owner_name, as stored; NULL skips that check), cannot log in,
 * or its password has expired.  The LOGIN rule holds on every version,
 * although PostgreSQL 17 lets a background worker connect as a NOLOGIN
 * role: a role that may not log in may not run jobs.
 */
char *
MigOwnerProblem(Oid owner, const char *owner_name)
{
	HeapTuple	tuple;
	Form_pg_authid role;
	char	   *problem = NULL;
	bool		isnull;
	Datum		validuntil;

	tuple = SearchSysCache1(AUTHOID, ObjectIdGetDatum(owner));
	if (!HeapTupleIsValid(tuple))
		return owner_name ?
			psprintf("the job's owner, role \"%s\" (OID %u), no longer exists",
					 owner_name, owner) :
			psprintf("the job's owner, the role with OID %u, no longer exists", owner);
	role = (Form_pg_authid) GETSTRUCT(tuple);
	validuntil = SysCacheGetAttr(AUTHOID, tuple, Anum_pg_authid_rolvaliduntil, &isnull);
	if (owner_name && strcmp(NameStr(role->rolname), owner_name) != 0)
		problem = psprintf("the job's owner was role \"%s\", but its OID %u now belongs to role \"%s\"",
						   owner_name, owner, NameStr(role->rolname));
	else if (!role->rolcanlogin)
		problem = psprintf("role \"%s\" cannot log in, so it cannot run jobs",
						   NameStr(role->rolname));
	else if (!isnull && DatumGetTimestampTz(validuntil) < GetCurrentTimestamp())
		problem = psprintf("the password of role \"%s\" has expired (VALID UNTIL), so it cannot run jobs",
						   NameStr(role->rolname));
	ReleaseSysCache(tuple);
	return problem;
}

static char *RoleReadOnly(Oid role, bool in_database);

/*
 * MigReadOnlyProblem says why this session's transactions are read-only by
 * default (default_transaction_read_only is on for the database, the role
 * or the server: a usual way to freeze a database), or returns NULL if
 * they are not.  pg_mig writes nothing there: the scan starts no worker,
 * a worker leaves, and the jobs wait with the reason as a note until the
 * setting is off.  everyone: NULL also when the setting is the session
 * role's own (the scan's role is not the jobs' owners).  Caller is in a
 * transaction.
 */
char *
MigReadOnlyProblem(bool everyone)
{
	char		source[NAMEDATALEN] = "";
	char	   *where;

	if (!DefaultXactReadOnly)
		return NULL;
	/* where it comes from, as pg_settings says */
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute("SELECT source FROM pg_catalog.pg_settings"
					" WHERE name OPERATOR(pg_catalog.=) 'default_transaction_read_only'",
					true, 1) == SPI_OK_SELECT && SPI_processed == 1)
	{
		char	   *value = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

		if (value)
			strlcpy(source, value, sizeof(source));
	}
	SPI_finish();
	if (strcmp(source, "user") == 0 || strcmp(source, "database user") == 0)
		return everyone ? NULL : RoleReadOnly(GetUserId(), strcmp(source, "database user") == 0);
	if (strcmp(source, "database") == 0)
		where = psprintf("for database \"%s\"", get_database_name(MyDatabaseId));
	else
		where = "in the server's configuration";
	return psprintf("default_transaction_read_only is on %s", where);
}

/* RoleReadOnly: MigReadOnlyProblem's words for role's own setting */
static char *
RoleReadOnly(Oid role, bool in_database)
{
	if (in_database)
		return psprintf("default_transaction_read_only is on for role \"%s\" in database \"%s\"",
						GetUserNameFromId(role, false), get_database_name(MyDatabaseId));
	return psprintf("default_transaction_read_only is on for role \"%s\"",
					GetUserNameFromId(role, false));
}

/*
 * MigOwnerReadOnlyProblem is MigReadOnlyProblem for a job's owner, from the
 * scan, which runs as another role: NULL unless default_transaction_read_only
 * is on for the role in this database, or for the role (ALTER ROLE ... SET),
 * as the owner's worker would find it.  Caller is in a transaction.
 */
char *
MigOwnerReadOnlyProblem(Oid owner)
{
	Oid			types[2] = {OIDOID, OIDOID};
	Datum		values[2] = {ObjectIdGetDatum(owner), ObjectIdGetDatum(MyDatabaseId)};
	bool		read_only = false;
	bool		in_database = false;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	/* the role's setting in this database wins over the role's own */
	if (SPI_execute_with_args("SELECT s.setdatabase OPERATOR(pg_catalog.<>) 0::pg_catalog.oid,"
							  "       pg_catalog.substr(c, 31)"
							  "  FROM pg_catalog.pg_db_role_setting s,"
							  "       pg_catalog.unnest(s.setconfig) c"
							  " WHERE s.setrole OPERATOR(pg_catalog.=) $1"
							  "   AND s.setdatabase OPERATOR(pg_catalog.=) ANY (ARRAY[0, $2]::pg_catalog.oid[])"
							  "   AND pg_catalog.starts_with(c, 'default_transaction_read_only=')"
							  " ORDER BY 1 DESC LIMIT 1",
							  2, types, values, NULL, true, 1) == SPI_OK_SELECT &&
		SPI_processed == 1)
	{
		bool		isnull;
		char	   *value = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);

		in_database = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
												 &isnull));
		if (value == NULL || !parse_bool(value, &read_only))
			read_only = false;
	}
	SPI_finish();
	return read_only ? RoleReadOnly(owner, in_database) : NULL;
}

/*
 * MigJobIdentityProblem says why the job's stored OIDs no longer mean what
 * they meant at start, or returns NULL: the owner checks of
 * MigOwnerProblem, and the stored table name no longer names the stored
 * table (OIDs that came with a dump from another cluster, a table dropped
 * or renamed).  Caller is in a transaction.
 */
char *
MigJobIdentityProblem(const MigJob *job)
{
	char	   *problem = MigOwnerProblem(job->owner, job->owner_name);
	List	   *names;
	Oid			now_relid;

	if (problem)
		return problem;
	names = textToQualifiedNameList(cstring_to_text(job->relation_name));
	now_relid = RangeVarGetRelid(makeRangeVarFromNameList(names), NoLock, true);
	if (now_relid != job->relid)
		return psprintf("table %s is not the table the job was started on (OID %u)",
						job->relation_name, job->relid);
	return NULL;
}

/*
 * MigJobRunProblem says why the current user (in a worker: the role it
 * connected as) may not run the job now, or returns NULL: the checks of
 * MigJobIdentityProblem, it is not the job's owner, or the owner no longer
 * has UPDATE privilege on the table.  Caller is in a transaction, and has
 * loaded the job's kind (MigLoadJobKind).
 */
char *
MigJobRunProblem(const MigJob *job)
{
	char	   *problem = MigJobIdentityProblem(job);

	if (problem)
		return problem;
	if (job->owner != GetUserId())
		return psprintf("the worker runs as role with OID %u, not as the job's owner (OID %u)",
						GetUserId(), job->owner);
	/* what the kind needs (kinds.h): DELETE, the table, or UPDATE (below) */
	switch (MigKindDefOf(job->kind)->right)
	{
		case MIG_RIGHT_DELETE:
			return pg_class_aclcheck(job->relid, job->owner, ACL_DELETE) == ACLCHECK_OK ? NULL :
				psprintf("role \"%s\" no longer has DELETE privilege on table %s",
						 GetUserNameFromId(job->owner, false), job->relation_name);
		case MIG_RIGHT_OWNER:
			return MigOwnsTable(job->relid, job->owner) ? NULL :
				psprintf("role \"%s\" no longer owns table %s",
						 GetUserNameFromId(job->owner, false), job->relation_name);
		case MIG_RIGHT_UPDATE:
			break;
	}
	if (pg_class_aclcheck(job->relid, job->owner, ACL_UPDATE) != ACLCHECK_OK &&
		pg_attribute_aclcheck_all(job->relid, job->owner, ACL_UPDATE,
								  ACLMASK_ANY) != ACLCHECK_OK)
		return psprintf("role \"%s\" no longer has UPDATE privilege on table %s",
						GetUserNameFromId(job->owner, false), job->relation_name);
	return NULL;
}
