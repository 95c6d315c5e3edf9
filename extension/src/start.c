/*-------------------------------------------------------------------------
 *
 * start.c
 *	  What the start functions of every kind share (start.h): the first
 *	  checks and the job's identity, the table of a kind of schema steps,
 *	  starting again by job_key, recording the job and asking for its
 *	  worker.
 *
 * The start functions themselves are in the kinds' files (kind_*.c).
 * Each checks everything in the caller's transaction, with the caller's
 * rights, before a job is made: a bad argument, a missing table, column or
 * constraint, or a caller who could not run the job's statements is an
 * ERROR and no job is made.  A kind of schema steps needs the caller to
 * own the table (ALTER TABLE and CREATE INDEX do); its worker runs as the
 * caller.  This file names no kind.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "pg_mig.h"
#include "start.h"
#include "version_compat.h"

/* MigRequireArg: argument argno must not be NULL */
void
MigRequireArg(FunctionCallInfo fcinfo, int argno, const char *name)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be NULL", name)));
}

/*
 * MigTextArgument: a text argument that must be neither NULL nor blank,
 * nor longer than a clause may be (MigCheckTextLength); hint, if not NULL,
 * is the hint of a blank one
 */
char *
MigTextArgument(FunctionCallInfo fcinfo, int argno, const char *name, const char *hint)
{
	char	   *s;

	MigRequireArg(fcinfo, argno, name);
	s = TextDatumGetCString(PG_GETARG_DATUM(argno));
	if (s[strspn(s, " \t\r\n\f")] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be empty", name),
				 hint ? errhint("%s", hint) : 0));
	MigCheckTextLength(name, s);
	return s;
}

/*
 * MigBeginStart: the checks every start function makes first (the
 * extension's SQL is the library's version, this is the primary); opens
 * the table (AccessShareLock, kept until commit) and fills in the new job
 * (zeroed first) with its identity, owner and settings.  text: the kind's
 * refusals.
 */
Relation
MigBeginStart(FunctionCallInfo fcinfo, MigJob *job, const MigStartText *text)
{
	Oid			relid;
	Relation	rel;

	MigRequireSchemaVersion();
	memset(job, 0, sizeof(*job));
	MigRequireShared();
	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("%s", _(text->recovery)),
				 errhint("Connect to the primary server.")));
	MigRequireArg(fcinfo, 0, "relation");
	relid = PG_GETARG_OID(0);
	rel = try_relation_open(relid, AccessShareLock);
	if (rel == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));

	job->owner = GetUserId();
	MigCheckOwnerCanLogin(job->owner);
	job->owner_name = GetUserNameFromId(job->owner, false);
	job->relid = relid;
	job->relation_name =
		quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
								   RelationGetRelationName(rel));
	job->search_path = pstrdup(namespace_search_path);
	job->settings = MigKeySettings();
	return rel;
}

/*
 * MigCheckDDLTable: a kind of schema steps runs ALTER TABLE or CREATE
 * INDEX on a table, which only its owner (or a member of the owning role)
 * may.  text: the kind's refusals, naming what it does.
 */
void
MigCheckDDLTable(Relation rel, const MigStartText *text)
{
	char		relkind = rel->rd_rel->relkind;

	if (relkind != RELKIND_RELATION && relkind != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a table", RelationGetRelationName(rel))));
	if (rel->rd_rel->relpersistence == RELPERSISTENCE_TEMP)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg(text->temp_table, RelationGetRelationName(rel)),
				 errdetail("The background worker runs in a session of its own and cannot see this session's temporary tables.")));
	if (!MigOwnsTable(RelationGetRelid(rel), GetUserId()))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg(text->not_owner, RelationGetRelationName(rel)),
				 errdetail("The job runs ALTER TABLE or CREATE INDEX as the role that starts it, and only the table's owner may run them."),
				 errhint("Start the job as the owner of the table, or as a member of the owning role.")));
}

/*
 * MigStepJobDefaults: the knobs of a job of schema steps are the defaults,
 * then its lock_timeout and max_retries arguments.
 */
void
MigStepJobDefaults(FunctionCallInfo fcinfo, MigJob *job)
{
	MigDefaultKnobs(job);
	MigReadKnobArg(fcinfo, "lock_timeout", job);
	MigReadKnobArg(fcinfo, "max_retries", job);
	job->rows_total = -1;
	job->keys_total = -1;
}

/*
 * MigStartAgainFrom reads the job_key and the start arguments named by
 * identity (job_key.c) and returns the id of the job that holds the key
 * (closing rel), or 0.  See MIG_START_AGAIN.
 */
int64
MigStartAgainFrom(FunctionCallInfo fcinfo, Relation rel, MigJob *job, MigJobKind kind,
				  const char *const *identity, int nidentity)
{
	int64		job_id;

	job->kind = kind;
	MigReadJobKey(fcinfo, identity, nidentity, job);
	job_id = MigStartAgain(job);
	if (job_id != 0)
		relation_close(rel, NoLock);
	return job_id;
}

/*
 * MigFinishStart records the job (with its targets, if it walks rows) and
 * asks the launcher, at commit, to start its worker; returns its id (or
 * the id of the failed job it retries: MigRetryFailedTwin).  after_insert,
 * if not NULL, runs once the job is inserted (job->job_id set), before
 * its lanes and its 'queued' event with queued_detail.
 */
int64
MigFinishStart(Relation rel, MigJob *job, List *targets, const char *queued_detail,
			   MigAfterInsert after_insert, void *arg)
{
	List	   *relids = list_make1_oid(job->relid);
	ListCell   *lc;
	int64		active;
	int64		job_id;

	foreach(lc, targets)
		relids = lappend_oid(relids, ((MigTarget *) lfirst(lc))->relid);
	(void) MigLockTreeForStart(job->relid);
	job_id = MigRetryFailedTwin(job);
	if (job_id != 0)
	{
		relation_close(rel, NoLock);
		return job_id;
	}
	active = MigFindActiveJobOn(relids);
	if (active != 0)
		MigRefuseBusyTable(RelationGetRelationName(rel), active);

	job_id = MigInsertJob(job, targets);
	MigSetJobKind(job_id, job->kind, job->kind_args);
	MigKeepJobKey(job_id, job);
	if (after_insert)
	{
		job->job_id = job_id;
		after_insert(job, rel, targets, arg);
	}
	if (job->parallel > 1)
		MigCreateLanes(job_id, linitial(targets), job->parallel);
	MigRecordEvent(job_id, "queued", queued_detail);
	MigNotify(job_id, "queued");
	MigRequestJobWorkers(job, job_id);
	relation_close(rel, NoLock);
	return job_id;
}
