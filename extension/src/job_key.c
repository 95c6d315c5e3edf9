/*-------------------------------------------------------------------------
 *
 * job_key.c
 *	  Starting again is safe: job keys, and the retry of a failed job by
 *	  starting it again (contract 0.4).
 *
 * A *job key* is the caller's name for "this step of this migration" (the
 * last argument, job_key, of every start function).  A start whose key a
 * job of this database holds starts nothing: it returns that job's id,
 * after checking that the kind, the table and the *start arguments* (the
 * arguments that change what runs, e.g. the set and where clauses of a
 * backfill, the column of a not_null job) are the same; a failed or
 * paused job is resumed, a queued or running one followed, a finished one
 * returned as it is.  Only a role that may control the job as its owner
 * (MIG_CONTROL_RUN) gets it back.  A job holds its key until it is
 * forgotten (mig_forget) or reverted (a revert of it succeeded).
 *
 * Without a key, a start that a failed job of the same kind and start
 * arguments on the table would refuse resumes that job instead (its
 * *failed twin*), for a caller who may control it as its owner.
 *
 * Starts with the same key are serialised by an advisory lock on the key,
 * held to the end of the transaction, and the look for the key reads the
 * latest committed state: the second start waits for the first to commit
 * and then finds its job.  The unique index on mig_job.job_key is the
 * wall behind that.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/partition.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "pg_mig.h"

/* field4 of the advisory lock tag of a key (3: a table tree's start lock) */
#define MIG_KEY_LOCK_FIELD4		4

/* ArgText: argument argno as text (a regclass or oid as its number), NULL if NULL */
static char *
ArgText(FunctionCallInfo fcinfo, int argno, Oid type)
{
	Oid			output;
	bool		isvarlena;

	if (PG_ARGISNULL(argno))
		return NULL;
	if (type == REGCLASSOID || type == OIDOID)
		return psprintf("%u", DatumGetObjectId(PG_GETARG_DATUM(argno)));
	getTypeOutputInfo(type, &output, &isvarlena);
	return OidOutputFunctionCall(output, PG_GETARG_DATUM(argno));
}

/*
 * MigReadJobKey reads the job_key argument (absent under the SQL of 0.3)
 * into job->job_key, taking the key's lock, and the start arguments (the
 * arguments named identity, as "name=value", a bare "name" for NULL) into
 * job->start_args.  job->kind and job->relid must be set.  Under the SQL
 * of 0.3 both stay NULL: no key, and no failed twin to resume.
 */
void
MigReadJobKey(FunctionCallInfo fcinfo, const char *const *identity, int nidentity,
			  MigJob *job)
{
	int			key_argno = MigArgNo(fcinfo, "job_key");

	job->job_key = NULL;
	job->start_args = NIL;
	if (key_argno < 0)
		return;

	if (!PG_ARGISNULL(key_argno))
	{
		char	   *key = TextDatumGetCString(PG_GETARG_DATUM(key_argno));
		LOCKTAG		tag;
		uint64		hash;

		if (key[strspn(key, " \t\r\n\f")] == '\0')
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("job_key must not be empty"),
					 errhint("Pass NULL for a job without a key.")));
		if (strlen(key) > MIG_MAX_JOB_KEY)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("job_key is too long"),
					 errdetail("It has %zu bytes; at most %d are allowed.",
							   strlen(key), MIG_MAX_JOB_KEY)));
		job->job_key = key;
		hash = hash_bytes_extended((const unsigned char *) key, strlen(key), 0);
		SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, (uint32) (hash >> 32),
							 (uint32) hash, MIG_KEY_LOCK_FIELD4);
		(void) LockAcquire(&tag, ExclusiveLock, false, false);
	}

	for (int i = 0; i < nidentity; i++)
	{
		int			argno = MigArgNo(fcinfo, identity[i]);
		char	   *value;

		if (argno < 0)
			continue;
		value = ArgText(fcinfo, argno, MigArgType(fcinfo, argno));
		job->start_args = lappend(job->start_args,
								  value ? psprintf("%s=%s", identity[i], value) :
								  pstrdup(identity[i]));
	}
}

/* DescribeStart: "a backfill of table t with set_clause => '...', ..." */
static char *
DescribeStart(MigJobKind kind, Oid relid, const char *relation_name, List *start_args)
{
	StringInfoData buf;
	ListCell   *lc;
	char	   *relname = get_rel_name(relid);

	initStringInfo(&buf);
	appendStringInfo(&buf, "%s of table \"%s\"",
					 MigKindWithArticle(kind),
					 relname ? relname : relation_name ? relation_name : "?");
	foreach(lc, start_args)
	{
		const char *item = lfirst(lc);
		const char *eq = strchr(item, '=');

		appendStringInfoString(&buf, foreach_current_index(lc) ? ", " : " with ");
		if (eq)
			appendStringInfo(&buf, "%.*s => %s", (int) (eq - item), item,
							 quote_literal_cstr(eq + 1));
		else
			appendStringInfo(&buf, "%s => NULL", item);
	}
	return buf.data;
}

/* SameStartArgs: the two lists hold the same items in the same order */
static bool
SameStartArgs(List *a, List *b)
{
	ListCell   *la;
	ListCell   *lb;

	if (list_length(a) != list_length(b))
		return false;
	forboth(la, a, lb, b)
		if (strcmp(lfirst(la), lfirst(lb)) != 0)
		return false;
	return true;
}

/*
 * MigStartAgain: if a job holds the caller's key (job->job_key), returns
 * its id after the checks and actions of the file header; else 0, and the
 * caller starts a new job.  job is the job the caller would start (kind,
 * relid, relation_name, job_key, start_args).
 */
int64
MigStartAgain(const MigJob *job)
{
	int64		held_by;
	MigJob	   *held;
	char	   *actor;

	if (job->job_key == NULL)
		return 0;
	held_by = MigFindJobByKey(job->job_key);
	if (held_by == 0)
		return 0;
	held = MigLoadJob(held_by, true);
	if (held == NULL)
		elog(ERROR, "pg_mig job " INT64_FORMAT " vanished", held_by);
	MigLoadJobKind(held);
	MigLoadJobKey(held);

	if (held->kind != job->kind || held->relid != job->relid ||
		!SameStartArgs(held->start_args, job->start_args))
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("job_key \"%s\" is held by job " INT64_FORMAT ", which was started with other arguments",
						job->job_key, held_by),
				 errdetail("Job " INT64_FORMAT " is %s; this call asks for %s.", held_by,
						   DescribeStart(held->kind, held->relid, held->relation_name, held->start_args),
						   DescribeStart(job->kind, job->relid, job->relation_name, job->start_args)),
				 errhint("Pass another job_key, or forget job " INT64_FORMAT " with mig_forget(" INT64_FORMAT ") once it is finished to release its key.",
						 held_by, held_by)));

	if (!MigCanControlJob(held->owner, held->relid, MIG_CONTROL_RUN))
	{
		const char *owner_name = GetUserNameFromId(held->owner, true);

		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to take over job " INT64_FORMAT " by its job_key", held_by),
				 errdetail("job_key \"%s\" is held by job " INT64_FORMAT ", which belongs to role \"%s\".",
						   job->job_key, held_by, owner_name ? owner_name : "?"),
				 errhint("Only the role that started the job, a role that can SET ROLE to it, or a superuser may get it back by its job_key; pass another job_key.")));
	}

	actor = psprintf("by %s, through job_key \"%s\"",
					 GetUserNameFromId(GetUserId(), false), job->job_key);
	switch (held->state)
	{
		case MIG_STATE_FAILED:
			ereport(NOTICE,
					(errmsg("job " INT64_FORMAT " with job_key \"%s\" had failed and is resumed",
							held_by, job->job_key)));
			MigResumeJob(held, "retried", actor);
			break;
		case MIG_STATE_PAUSED:
			ereport(NOTICE,
					(errmsg("job " INT64_FORMAT " with job_key \"%s\" was paused and is resumed",
							held_by, job->job_key)));
			MigResumeJob(held, "resumed", actor);
			break;
		default:
			ereport(NOTICE,
					(errmsg("job " INT64_FORMAT " with job_key \"%s\" is there (%s); nothing started",
							held_by, job->job_key, MigStateName(held->state))));
			break;
	}
	return held_by;
}

/*
 * MigRetryFailedTwin: if a failed job of the same kind, table and start
 * arguments holds no key, resumes it (event 'retried') and returns its id
 * (giving it the caller's key, if any); a caller who may not control it as
 * its owner gets an error.  0 if there is no such job.  Caller holds the
 * table tree's start lock.
 */
int64
MigRetryFailedTwin(const MigJob *job)
{
	int64		twin_id;
	MigJob	   *twin;

	if (job->start_args == NIL)
		return 0;				/* the SQL of 0.3: nothing to compare */
	twin_id = MigFindFailedTwin(job->kind, job->relid, job->start_args);
	if (twin_id == 0)
		return 0;
	twin = MigLoadJob(twin_id, true);
	if (twin == NULL || twin->state != MIG_STATE_FAILED)
		return 0;
	if (!MigCanControlJob(twin->owner, twin->relid, MIG_CONTROL_RUN))
	{
		const char *owner_name = GetUserNameFromId(twin->owner, true);

		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_IN_USE),
				 errmsg("table \"%s\" has a failed job " INT64_FORMAT " of the same step",
						get_rel_name(job->relid) ? get_rel_name(job->relid) : job->relation_name,
						twin_id),
				 errdetail("Job " INT64_FORMAT " belongs to role \"%s\"; starting the same step again resumes it, which only its owner may.",
						   twin_id, owner_name ? owner_name : "?"),
				 errhint("Ask role \"%s\" to start it again or to resume it with mig_resume(" INT64_FORMAT "), or cancel it with mig_cancel(" INT64_FORMAT ") and start it again.",
						 owner_name ? owner_name : "?", twin_id, twin_id)));
	}
	MigLoadJobKind(twin);
	ereport(NOTICE,
			(errmsg("job " INT64_FORMAT " had failed with the same arguments and is resumed",
					twin_id)));
	if (job->job_key)
		MigSetJobKey(twin_id, job->job_key, NIL);
	MigResumeJob(twin, "retried",
				 psprintf("by %s, started again with the same arguments",
						  GetUserNameFromId(GetUserId(), false)));
	return twin_id;
}

/* MigKeepJobKey records the key and start arguments of a job just made */
void
MigKeepJobKey(int64 job_id, const MigJob *job)
{
	if (job->start_args == NIL && job->job_key == NULL)
		return;
	MigSetJobKey(job_id, job->job_key, job->start_args);
}

/*
 * MigReleaseJobKey: the job no longer holds its key (forgotten, or
 * reverted); records the event 'key released' with why.  Caller is in a
 * transaction.
 */
void
MigReleaseJobKey(int64 job_id, const char *why)
{
	MigJob		job;

	memset(&job, 0, sizeof(job));
	job.job_id = job_id;
	MigLoadJobKey(&job);
	if (job.job_key == NULL)
		return;
	MigSetJobKey(job_id, NULL, NIL);
	MigRecordEvent(job_id, "key released",
				   psprintf("job_key \"%s\" released: %s", job.job_key, why));
}

/*
 * MigRefuseBusyTable raises the error of a start refused by job busy on
 * the table, with a hint that fits the busy job's state.
 */
void
MigRefuseBusyTable(const char *relation, int64 busy)
{
	MigJob	   *job = MigLoadJob(busy, false);
	MigJobState state = job ? job->state : MIG_STATE_RUNNING;

	if (job)
		MigLoadJobKind(job);
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_IN_USE),
			 errmsg("table \"%s\" already has an unfinished job " INT64_FORMAT,
					relation, busy),
			 errdetail("pg_mig runs one job at a time on a table; job " INT64_FORMAT " is %s and is %s.",
					   busy, job ? MigKindWithArticle(job->kind) : "a job",
					   MigStateName(state)),
			 state == MIG_STATE_FAILED ?
			 errhint("Resume job " INT64_FORMAT " with mig_resume(" INT64_FORMAT ") once the cause of its failure is fixed, or cancel it with mig_cancel(" INT64_FORMAT ").",
					 busy, busy, busy) :
			 state == MIG_STATE_PAUSED ?
			 errhint("Resume job " INT64_FORMAT " with mig_resume(" INT64_FORMAT "), or cancel it with mig_cancel(" INT64_FORMAT ").",
					 busy, busy, busy) :
			 errhint("Wait for job " INT64_FORMAT " with mig_wait(" INT64_FORMAT "), or cancel it with mig_cancel(" INT64_FORMAT ").",
					 busy, busy, busy)));
}

/* field4 of pg_mig's advisory lock tag; SQL's advisory locks use 1 and 2 */
#define MIG_START_LOCK_FIELD4	3

/*
 * MigLockTreeForStart serialises the starts of jobs on one table tree (a
 * table, or a partitioned table with all its partitions): it takes an
 * exclusive advisory lock, held to the end of the transaction, on the
 * tree's root.  A start on a parent and one on its leaf thus never both
 * miss each other's uncommitted job; the second waits for the first to
 * commit and then finds its job (MigFindActiveJobOn reads the latest
 * committed state).  Returns the root.
 */
Oid
MigLockTreeForStart(Oid relid)
{
	List	   *ancestors = get_rel_relispartition(relid) ?
		get_partition_ancestors(relid) : NIL;
	Oid			root = ancestors != NIL ? llast_oid(ancestors) : relid;
	LOCKTAG		tag;

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, 0, root, MIG_START_LOCK_FIELD4);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);
	return root;
}

/*
 * MigResumeJob queues a paused or failed job again (job locked FOR
 * UPDATE, the caller's right to it checked): its retries start from 0,
 * event (resumed, retried) is recorded with detail, and its workers are
 * asked for at commit.  It goes on from its checkpoint.
 */
void
MigResumeJob(MigJob *job, const char *event, const char *detail)
{
	int64		job_id = job->job_id;
	char	   *problem = MigJobIdentityProblem(job);

	if (problem)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot resume job " INT64_FORMAT ": %s", job_id, problem),
				 errdetail("A job runs as the role that started it, on the table it was started on."),
				 errhint("Cancel it with mig_cancel(" INT64_FORMAT "), then start it again with %s().",
						 job_id, MigKindStartFunction(job->kind))));

	/*
	 * A failed job that blocked nothing (a schema step that left nothing
	 * behind, perhaps paused since) may have another job on its table by
	 * now: one at a time.
	 */
	{
		List	   *relids = list_make1_oid(job->relid);
		ListCell   *lc;
		int64		busy;

		foreach(lc, MigLoadTargets(job_id))
			relids = lappend_oid(relids, ((MigTarget *) lfirst(lc))->relid);
		(void) MigLockTreeForStart(job->relid);
		busy = MigFindOtherActiveJobOn(relids, job_id);
		if (busy != 0)
			MigRefuseBusyTable(get_rel_name(job->relid) ? get_rel_name(job->relid) : job->relation_name,
							   busy);
	}
	{
		const char *cols[1] = {"retries"};
		Oid			types[1] = {INT4OID};
		Datum		values[1] = {Int32GetDatum(0)};
		bool		nulls[1] = {false};

		MigSetJobColumns(job_id, 1, cols, types, values, nulls);
		if (job->parallel > 1)
			MigResetLaneRetries(job_id);
	}
	MigSetState(job_id, MIG_STATE_QUEUED, NULL);
	MigRecordEvent(job_id, event, detail);
	MigRequestJobWorkers(job, job_id);
	MigWakeWorkerAtCommit(MyDatabaseId, job_id);
}
