/*-------------------------------------------------------------------------
 *
 * sql_undo.c
 *	  The SQL-callable functions of undo: mig_revert and mig_forget.
 *
 * A backfill started with keep_old_values can be reverted once it is over:
 * succeeded, or cancelled (the chunks it committed are reverted; a failed
 * backfill may still be resumed, so it must be cancelled first).  The
 * revert is a new job of kind revert, owned by the backfill's owner (it
 * writes back what that role's job wrote, with that role's rights), which
 * whoever may control the backfill may start.  A revert that was cancelled
 * leaves the job revertible again; rows it had written back count as
 * written back by the next one.  mig_forget drops the kept values once the
 * backfill is over and no revert of it is unfinished.
 *
 * Since 0.4 mig_forget works on every finished job (succeeded, failed or
 * cancelled): a forgotten job releases its job_key (job_key.c), and a
 * forgotten failed job no longer blocks its table.  It stays in mig_jobs
 * as it ended, with job_key NULL and the events 'forgotten' and 'key
 * released'; it cannot be resumed.  A succeeded revert releases the key of
 * the backfill it reverted.
 *
 * Since 0.4 mig_revert also swaps a type change back (mig_change_type
 * after its swap, while the old column is there): the revert is a new job
 * of kind change_type, built by MigChangeTypeRevert (kind_change_type.c,
 * "Revert" in its header); the job records reverted_by as a backfill
 * does, and the succeeded revert releases its job_key.
 *
 * A revert checks at start (MigJobRunProblem) that the table's name still
 * names the backfill's table; its chunks check the kept table's identity
 * (chunk.c), not the table's: a rename and a new table of the old name
 * while a revert's worker runs would be written by that worker as the
 * owner (who may write that table anyway).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xlog.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "pg_mig.h"
#include "steps.h"

PG_FUNCTION_INFO_V1(mig_revert);
PG_FUNCTION_INFO_V1(mig_forget);

/*
 * LoadBackfill locks and loads the job, with its kind, and checks what
 * both functions need: the job exists, the caller may control it, it kept
 * its old values, they were not forgotten, and it is over.
 */
static MigJob *
LoadBackfill(int64 job_id, const char *action, MigControl control)
{
	MigJob	   *job;
	const char *forgotten;

	MigRequireShared();
	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("%s", _(MigActionFormat(action, MIG_MSG_RECOVERY))),
				 errhint("Connect to the primary server.")));
	job = MigLoadJob(job_id, true);
	if (job == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("job " INT64_FORMAT " does not exist", job_id),
				 errhint("See the jobs of this database in mig_jobs.")));
	MigCheckJobControl(job, action, control);
	MigLoadJobKind(job);
	/* a type change: its own checks (MigChangeTypeRevert) */
	if (job->kind == MIG_KIND_CHANGE_TYPE && strcmp(action, "revert") == 0)
		return job;
	if (job->kind != MIG_KIND_BACKFILL || !MigJobKeepsValues(job))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg(MigActionFormat(action, MIG_MSG_NO_KEPT_VALUES), job_id),
				 job->kind == MIG_KIND_BACKFILL ?
				 errdetail("Job " INT64_FORMAT " is a backfill started without keep_old_values.", job_id) :
				 errdetail("Job " INT64_FORMAT " is %s.", job_id, MigKindWithArticle(job->kind)),
				 errhint("Only a backfill started with keep_old_values => true keeps old values to revert or forget.")));
	forgotten = MigKindArg(job, "forgotten");
	if (forgotten != NULL || !OidIsValid(MigKeptTableOid(job)))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg(MigActionFormat(action, MIG_MSG_FORGOTTEN), job_id),
				 forgotten ?
				 errdetail("mig_forget dropped them %s.", forgotten) :
				 errdetail("mig_forget dropped them."),
				 errhint("A forgotten backfill can no longer be reverted.")));
	if (job->state != MIG_STATE_SUCCEEDED && job->state != MIG_STATE_CANCELLED)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg(MigActionFormat(action, MIG_MSG_NOT_FINISHED), job_id),
				 errdetail("Job " INT64_FORMAT " is %s; a backfill's kept values are complete once it has succeeded or was cancelled.",
						   job_id, MigStateName(job->state)),
				 job->state == MIG_STATE_FAILED ?
				 (strcmp(action, "revert") == 0 ?
				  errhint("Resume it with mig_resume(" INT64_FORMAT "), or cancel it with mig_cancel(" INT64_FORMAT ") to revert the chunks it committed.",
						  job_id, job_id) :
				  errhint("Resume it with mig_resume(" INT64_FORMAT "), or cancel it with mig_cancel(" INT64_FORMAT ") first.",
						  job_id, job_id)) :
				 errhint("Wait for it with mig_wait(" INT64_FORMAT "), or cancel it with mig_cancel(" INT64_FORMAT ").",
						 job_id, job_id)));
	return job;
}

/*
 * UnfinishedRevert returns the id of the revert of job that is not over
 * (not succeeded nor cancelled), or 0; *done_by is set to the id of a
 * revert of it that succeeded, or 0 (a revert of a type change that was
 * cancelled after its swap counts as done: the column has its old type).
 */
static int64
UnfinishedRevert(const MigJob *job, int64 *done_by)
{
	const char *by = MigKindArg(job, "reverted_by");
	MigJob	   *revert;
	int64		revert_id;

	*done_by = 0;
	if (by == NULL)
		return 0;
	revert_id = strtoi64(by, NULL, 10);
	revert = MigLoadJob(revert_id, false);
	if (revert == NULL)
		return 0;
	if (job->kind == MIG_KIND_CHANGE_TYPE)
		MigLoadJobKind(revert);
	if (revert->state == MIG_STATE_SUCCEEDED ||
		(revert->state == MIG_STATE_CANCELLED && job->kind == MIG_KIND_CHANGE_TYPE &&
		 MigStepWasDone(revert, "swap")))
	{
		*done_by = revert_id;
		return 0;
	}
	if (revert->state == MIG_STATE_CANCELLED)
		return 0;
	return revert_id;
}

/*
 * WaitForWorkerToLeave: a finished job's worker may still be on its way
 * out (a cancelled job is cancelled as soon as mig_cancel commits; its
 * worker stops within a moment, ending the statement it ran, e.g. a CREATE
 * INDEX CONCURRENTLY of the column a forget drops, or the write of its
 * job's row): mig_forget waits for it, before it locks the job's row, at
 * most FORGET_WORKER_WAIT_MS, and then refuses, nothing done.
 */
#define FORGET_WORKER_WAIT_MS	10000

static void
WaitForWorkerToLeave(const MigJob *job)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													   FORGET_WORKER_WAIT_MS);

	for (;;)
	{
		pid_t		pid = MigLiveWorkerPid(MyDatabaseId, job->job_id);

		if (pid == 0)
			return;
		if (GetCurrentTimestamp() >= deadline)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_IN_USE),
					 errmsg("cannot forget job " INT64_FORMAT " because its worker (PID %d) has not stopped yet",
							job->job_id, (int) pid),
					 errhint("Call mig_forget(" INT64_FORMAT ") again once the job's worker_pid in mig_jobs is empty.",
							 job->job_id)));
		CHECK_FOR_INTERRUPTS();
		pg_usleep(10000L);
	}
}

/*
 * NotBeingReverted refuses mig_forget of job while a revert of it is
 * unfinished; returns the id of the revert of it that is done, or 0.
 */
static int64
NotBeingReverted(const MigJob *job)
{
	int64		done_by;
	int64		busy = UnfinishedRevert(job, &done_by);

	if (busy != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_IN_USE),
				 errmsg("cannot forget job " INT64_FORMAT " because job " INT64_FORMAT " is reverting it",
						job->job_id, busy),
				 errhint("Wait for job " INT64_FORMAT " with mig_wait(" INT64_FORMAT "), or cancel it with mig_cancel(" INT64_FORMAT ").",
						 busy, busy, busy)));
	return done_by;
}

/* WithArg: kind_args without name's items, plus name=value */
static List *
WithArg(List *kind_args, const char *name, const char *value)
{
	List	   *result = NIL;
	ListCell   *lc;
	size_t		len = strlen(name);

	foreach(lc, kind_args)
	{
		const char *item = lfirst(lc);

		if (!(strncmp(item, name, len) == 0 && item[len] == '='))
			result = lappend(result, pstrdup(item));
	}
	return lappend(result, psprintf("%s=%s", name, value));
}

/*
 * Reverting records on job that revert_id (queued, owned by owner) reverts
 * it (reverted_by, and an event saying what the revert does), and wakes
 * the launcher for it at commit.  Returns revert_id.
 */
static int64
Reverting(const MigJob *job, int64 revert_id, Oid owner, const char *what)
{
	MigSetJobKind(job->job_id, job->kind,
				  WithArg(job->kind_args, "reverted_by", psprintf(INT64_FORMAT, revert_id)));
	MigRecordEvent(job->job_id, "reverting",
				   psprintf("job " INT64_FORMAT " %s, by %s",
							revert_id, what, GetUserNameFromId(GetUserId(), false)));
	MigNotify(revert_id, "queued");
	MigRequestAtCommit(MyDatabaseId, revert_id, owner);
	return revert_id;
}

/*
 * mig_revert(job_id, <knobs of mig_start_backfill>) starts a job of kind
 * revert that writes the kept old values of backfill job_id back (see
 * kind_revert.c).  Returns the new job's id.
 */
Datum
mig_revert(PG_FUNCTION_ARGS)
{
	int64		job_id;
	MigJob	   *job;
	MigJob		revert;
	MigTarget  *target;
	MigTarget  *first;
	List	   *targets;
	List	   *relids;
	List	   *kind_args;
	ListCell   *lc;
	int64		busy;
	int64		done_by;
	int64		rows;
	int64		revert_id;

	MigRequireSchemaVersion();
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("job_id must not be NULL")));
	job_id = PG_GETARG_INT64(0);

	/* starting again (job_key.c): the revert that holds the key, if any */
	memset(&revert, 0, sizeof(revert));
	job = MigLoadJob(job_id, false);
	if (job != NULL)
	{
		static const char *const identity[] = {"job_id"};
		int64		again;

		/* a type change's revert is a change_type job (MigChangeTypeRevert) */
		MigLoadJobKind(job);
		revert.kind = job->kind == MIG_KIND_CHANGE_TYPE ? MIG_KIND_CHANGE_TYPE : MIG_KIND_REVERT;
		revert.relid = job->relid;
		revert.relation_name = job->relation_name;
		MigReadJobKey(fcinfo, identity, lengthof(identity), &revert);
		again = MigStartAgain(&revert);
		if (again != 0)
			PG_RETURN_INT64(again);
	}
	job = LoadBackfill(job_id, "revert", MIG_CONTROL_RUN);

	busy = UnfinishedRevert(job, &done_by);
	if (busy != 0)
	{
		/* a failed revert of it: starting it again resumes that one */
		MigJob	   *failed = MigLoadJob(busy, true);

		if (failed != NULL && failed->state == MIG_STATE_FAILED &&
			MigCanControlJob(failed->owner, failed->relid, MIG_CONTROL_RUN))
		{
			MigLoadJobKind(failed);
			if (revert.job_key)
				MigSetJobKey(busy, revert.job_key, NIL);
			MigResumeJob(failed, "retried",
						 psprintf("by %s, mig_revert(" INT64_FORMAT ") again",
								  GetUserNameFromId(GetUserId(), false), job_id));
			PG_RETURN_INT64(busy);
		}
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_IN_USE),
				 errmsg("job " INT64_FORMAT " is already being reverted by job " INT64_FORMAT,
						job_id, busy),
				 errhint("Wait for job " INT64_FORMAT " with mig_wait(" INT64_FORMAT "), or cancel it with mig_cancel(" INT64_FORMAT ").",
						 busy, busy, busy)));
	}
	if (done_by != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("job " INT64_FORMAT " was already reverted by job " INT64_FORMAT,
						job_id, done_by),
				 job->kind == MIG_KIND_CHANGE_TYPE ?
				 errdetail("A type change is reverted once.") :
				 errdetail("A backfill is reverted once."),
				 job->kind == MIG_KIND_CHANGE_TYPE ?
				 errhint("To change the type again, start a new job with mig_change_type().") :
				 errhint("Drop its kept values with mig_forget(" INT64_FORMAT ").", job_id)));

	MigReadKnobArgs(fcinfo, &revert);
	revert.owner = job->owner;
	MigCheckOwnerCanLogin(revert.owner);
	revert.owner_name = GetUserNameFromId(revert.owner, false);
	revert.relid = job->relid;
	{
		char	   *problem = MigJobIdentityProblem(job);

		if (problem)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("cannot revert job " INT64_FORMAT ": %s", job_id, problem),
					 errdetail("A revert runs as the role that started the backfill, on its table.")));
	}
	revert.relation_name = job->relation_name;
	revert.search_path = pstrdup(MIG_SAFE_SEARCH_PATH);
	revert.settings = MigKeySettings();

	if (job->kind == MIG_KIND_CHANGE_TYPE)
	{
		/* a type change swapped back: the same steps the other way */
		revert_id = MigChangeTypeRevert(job, &revert);
		PG_RETURN_INT64(Reverting(job, revert_id, revert.owner, "swaps the columns back"));
	}

	/* one target: the kept table, walked by the table's key */
	targets = MigLoadTargets(job_id);
	if (targets == NIL)
		elog(ERROR, "pg_mig job " INT64_FORMAT " has no targets", job_id);
	first = linitial(targets);
	relids = list_make1_oid(job->relid);
	foreach(lc, targets)
		relids = lappend_oid(relids, ((MigTarget *) lfirst(lc))->relid);
	(void) MigLockTreeForStart(job->relid);
	busy = MigFindActiveJobOn(relids);
	if (busy != 0)
		MigRefuseBusyTable(get_rel_name(job->relid) ? get_rel_name(job->relid) : job->relation_name,
						   busy);

	target = palloc0(sizeof(MigTarget));
	target->ord = 0;
	target->relid = MigKeptTableOid(job);
	target->relation_name = MigKeptTableName(job);
	target->nkeys = first->nkeys;
	target->key_columns = first->key_columns;
	target->upper_key = MigKeptUpperKey(job, first->nkeys, first->key_columns, &rows);
	target->keys_estimate = rows;
	target->set_clause = psprintf("the kept old values of job " INT64_FORMAT, job_id);
	target->where_clause = NULL;
	revert.rows_total = rows;
	revert.keys_total = rows;

	revert_id = MigInsertJob(&revert, list_make1(target));
	MigKeepJobKey(revert_id, &revert);
	kind_args = list_make1(psprintf("of_job=" INT64_FORMAT, job_id));
	foreach(lc, job->kind_args)
		if (strncmp((char *) lfirst(lc), "kept_column=", 12) == 0)
			kind_args = lappend(kind_args, pstrdup(lfirst(lc)));
	MigSetJobKind(revert_id, MIG_KIND_REVERT, kind_args);
	MigRecordEvent(revert_id, "queued",
				   psprintf("revert of job " INT64_FORMAT ": " INT64_FORMAT " kept rows, batch_size %d",
							job_id, rows, revert.batch_size));
	PG_RETURN_INT64(Reverting(job, revert_id, revert.owner, "writes the kept old values back"));
}

/*
 * mig_forget(job_id) forgets a finished job (see the file header): drops
 * the kept values of a backfill that has some (the space is back at
 * commit), releases its job_key, and a failed job no longer blocks its
 * table.
 */
Datum
mig_forget(PG_FUNCTION_ARGS)
{
	int64		job_id;
	MigJob	   *job;
	char	   *actor;

	MigRequireSchemaVersion();
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("job_id must not be NULL")));
	job_id = PG_GETARG_INT64(0);
	MigRequireShared();
	/* before the job's row is locked: the worker on its way out writes it */
	job = MigLoadJob(job_id, false);
	if (job != NULL && (job->state == MIG_STATE_SUCCEEDED || job->state == MIG_STATE_FAILED ||
						job->state == MIG_STATE_CANCELLED))
		WaitForWorkerToLeave(job);
	job = MigLoadJob(job_id, true);
	if (job == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("job " INT64_FORMAT " does not exist", job_id),
				 errhint("See the jobs of this database in mig_jobs.")));
	MigCheckJobControl(job, "forget", MIG_CONTROL_STOP);
	MigLoadJobKind(job);
	actor = psprintf("by %s", GetUserNameFromId(GetUserId(), false));

	if (MigJobKeepsValues(job))
	{
		Oid			kept;
		int64		bytes;

		/*
		 * 0.3's rules for kept values: a failed backfill may still be
		 * resumed and then reverted, so it is cancelled before its kept
		 * values are forgotten.
		 */
		job = LoadBackfill(job_id, "forget", MIG_CONTROL_STOP);
		(void) NotBeingReverted(job);
		kept = MigKeptTableOid(job);
		bytes = DatumGetInt64(DirectFunctionCall1(pg_total_relation_size, ObjectIdGetDatum(kept)));
		MigDropKeptTable(job);
		MigSetJobKind(job_id, MIG_KIND_BACKFILL, WithArg(job->kind_args, "forgotten", actor));
		MigReleaseJobKey(job_id, "forgotten");
		MigRecordEvent(job_id, "forgotten",
					   psprintf("kept values dropped (" INT64_FORMAT " bytes) %s", bytes, actor));
		PG_RETURN_VOID();
	}

	if (job->state != MIG_STATE_SUCCEEDED && job->state != MIG_STATE_FAILED &&
		job->state != MIG_STATE_CANCELLED)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot forget job " INT64_FORMAT " because it has not finished", job_id),
				 errdetail("Job " INT64_FORMAT " is %s; a job is forgotten once it has succeeded, failed or was cancelled.",
						   job_id, MigStateName(job->state)),
				 job->state == MIG_STATE_PAUSED ?
				 errhint("Cancel it with mig_cancel(" INT64_FORMAT "), then forget it.", job_id) :
				 errhint("Wait for it with mig_wait(" INT64_FORMAT "), or cancel it with mig_cancel(" INT64_FORMAT ").",
						 job_id, job_id)));
	if (MigKindArg(job, "forgotten") != NULL)
	{
		ereport(NOTICE,
				(errmsg("job " INT64_FORMAT " is already forgotten", job_id)));
		PG_RETURN_VOID();
	}
	if (job->kind == MIG_KIND_CHANGE_TYPE)
	{
		char	   *dropped = NULL;
		const char *event = NULL;

		/* what the job left (its old column, or before its swap its new one), unless reverted */
		if (NotBeingReverted(job) == 0)
			dropped = MigChangeTypeForget(job, &event);
		if (dropped != NULL)
			MigRecordEvent(job_id, event, psprintf("%s %s", dropped, actor));
	}
	MigSetJobKind(job_id, job->kind, WithArg(job->kind_args, "forgotten", actor));
	MigReleaseJobKey(job_id, "forgotten");
	MigRecordEvent(job_id, "forgotten", psprintf("%s job forgotten %s",
												 MigStateName(job->state), actor));
	PG_RETURN_VOID();
}
