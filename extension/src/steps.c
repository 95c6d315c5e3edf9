/*-------------------------------------------------------------------------
 *
 * steps.c
 *	  The runner of schema steps: the worker of a not_null, validate or
 *	  index job runs its kind's steps here, one after the other.
 *
 * For each step (see steps.h) not yet in steps_done:
 *
 *	  check the job (still running?) and record the step in mig_jobs.step
 *	  -> wait while replicas lag, if the step asks for it
 *	  -> one transaction: SET LOCAL lock_timeout, the statement unless its
 *		 effect is there already, the step recorded in steps_done; commit
 *	  -> a lock timeout or deadlock: roll back, event 'retried' with the
 *		 error, sleep with jittered exponential backoff, try again
 *	  -> any other error, or max_retries used up: the kind's undo step
 *		 (with the same retries), then the job fails
 *
 * A waiting DDL lock therefore blocks the application no longer than
 * lock_timeout: the queue that forms behind a waiting ACCESS EXCLUSIVE
 * request goes away with the rolled-back attempt.  A step and its record
 * commit together, so after a crash, a kill of the worker or a restart the
 * job goes on at the first step not done; a top-level step (CREATE INDEX
 * CONCURRENTLY) cannot share a transaction with its record, so its done()
 * test tells a finished one from a half-done one.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_constraint.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "parser/analyze.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "tcop/pquery.h"
#include "tcop/tcopprot.h"
#include "tcop/utility.h"
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/portal.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timeout.h"
#include "common/pg_prng.h"

#include "pg_mig.h"
#include "steps.h"
#include "version_compat.h"

#define RETRY_BASE_MS			200
#define RETRY_MAX_MS			30000
#define LAG_WAIT_MS				1000

typedef enum StepResult
{
	STEP_RESULT_DONE,
	STEP_RESULT_FAILED,			/* *failure says why */
	STEP_RESULT_STOPPED			/* paused, cancelled or gone */
} StepResult;

static const MigKindDef *const step_kinds[] = {
	&mig_kind_not_null,
	&mig_kind_validate,
	&mig_kind_index,
	&mig_kind_foreign_key,
	&mig_kind_repack,
};

static int64 steps_job_id;
static Oid	steps_owner;
static volatile MigWorkerSlot *my_slot;	/* this worker's, for the watch */
static TimeoutId watch_timeout = MAX_TIMEOUTS;
static bool any_state;			/* CheckJob: run the undo of a cancelled job */
static MemoryContext steps_context;
static MemoryContext toplevel_context;

/*
 * The lock bound of a top-level statement (MigRunTopLevel): while it runs,
 * the watch measures how long the worker waits for a lock that others
 * queue behind (any heavyweight lock but a transaction's or a virtual
 * transaction's, which CREATE INDEX CONCURRENTLY waits on for older
 * snapshots and writers) and cancels the statement once that wait passes
 * lock_timeout.
 */
static int64 toplevel_bound_ms;	/* 0: no top-level statement runs */
static volatile TimestampTz toplevel_wait_since;	/* 0: not waiting */
static volatile sig_atomic_t toplevel_bound_hit;
static volatile uint32 toplevel_hit_locktype;
static volatile sig_atomic_t watch_locks_only;	/* a watch of MigRunTopLevel's own */

static MigJob *CheckJob(bool set_running);
static StepResult RunStep(const MigKindDef *def, const MigStepDef *step,
						  bool record, char **failure);
static StepResult WaitForLag(void);
static void FailJob(const MigKindDef *def, const MigStepDef *step, char *message);
static void CleanUpCancelled(const MigKindDef *def);
static bool SleepOrStop(long ms);
static void ForgetSteps(void);
static void WatchJobControl(void);
static void StartWatch(void);
static void StopWatch(void);
static void StartWatchTick(int tick_ms);
static const MigKindDef *KindDef(MigJobKind kind);
static void BeginStepTransaction(void);
static void EndStepTransaction(bool commit);

const char *
MigKindName(MigJobKind kind)
{
	switch (kind)
	{
		case MIG_KIND_BACKFILL:
			return "backfill";
		case MIG_KIND_DELETE:
			return "delete";
		case MIG_KIND_NOT_NULL:
			return "not_null";
		case MIG_KIND_FOREIGN_KEY:
			return "foreign_key";
		case MIG_KIND_VALIDATE:
			return "validate";
		case MIG_KIND_INDEX:
			return "index";
		case MIG_KIND_REVERT:
			return "revert";
		case MIG_KIND_REPACK:
			return "repack";
	}
	return "?";
}

MigJobKind
MigKindFromName(const char *name)
{
	for (int k = MIG_KIND_BACKFILL; k <= MIG_KIND_REPACK; k++)
		if (name && strcmp(name, MigKindName((MigJobKind) k)) == 0)
			return (MigJobKind) k;
	elog(ERROR, "unknown pg_mig job kind \"%s\"", name ? name : "(null)");
	return MIG_KIND_BACKFILL;	/* keep compiler quiet */
}

/*
 * MigKindArg returns the value of the job's kind argument name, or NULL.
 */
const char *
MigKindArg(const MigJob *job, const char *name)
{
	ListCell   *lc;
	size_t		len = strlen(name);

	foreach(lc, job->kind_args)
	{
		const char *item = lfirst(lc);

		if (strncmp(item, name, len) == 0 && item[len] == '=')
			return item + len + 1;
	}
	return NULL;
}

/*
 * MigStepWasDone: the step's name is in the job's steps_done.
 */
bool
MigStepWasDone(const MigJob *job, const char *name)
{
	ListCell   *lc;

	foreach(lc, job->steps_done)
		if (strcmp(lfirst(lc), name) == 0)
			return true;
	return false;
}

/*
 * MigJobRelationName returns the quoted, qualified name the job's table has
 * now (the statements name it by its OID's current name, so a rename does
 * not redirect them), or raises an error if it was dropped.
 */
char *
MigJobRelationName(const MigJob *job)
{
	char	   *relname = get_rel_name(job->relid);

	if (relname == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("table %s was dropped while the job ran", job->relation_name)));
	return quote_qualified_identifier(get_namespace_name(get_rel_namespace(job->relid)),
									  relname);
}

/*
 * MigJobConstraint returns the name of the constraint a job works on, its
 * kind argument "constraint".
 */
const char *
MigJobConstraint(const MigJob *job)
{
	return MigKindArg(job, "constraint");
}

/*
 * MigJobConstraintState tells whether the job's constraint is on its table
 * now, and whether it is valid.  Caller is in a transaction.
 */
MigConstraintState
MigJobConstraintState(const MigJob *job)
{
	Oid			conoid = get_relation_constraint_oid(job->relid, MigJobConstraint(job), true);
	HeapTuple	tuple;
	MigConstraintState result;

	if (!OidIsValid(conoid))
		return MIG_CONSTRAINT_ABSENT;
	tuple = SearchSysCache1(CONSTROID, ObjectIdGetDatum(conoid));
	if (!HeapTupleIsValid(tuple))
		return MIG_CONSTRAINT_ABSENT;
	result = ((Form_pg_constraint) GETSTRUCT(tuple))->convalidated ?
		MIG_CONSTRAINT_VALID : MIG_CONSTRAINT_NOT_VALID;
	ReleaseSysCache(tuple);
	return result;
}

/*
 * MigDescribeValidateConstraint and MigRunValidateConstraint are the
 * describe and run of a step "ALTER TABLE t VALIDATE CONSTRAINT c" of the
 * job's constraint; its done() is the kind's own.
 */
char *
MigDescribeValidateConstraint(const MigJob *job)
{
	return psprintf("validating constraint %s", MigJobConstraint(job));
}

void
MigRunValidateConstraint(const MigJob *job)
{
	MigExecDDL(psprintf("ALTER TABLE %s VALIDATE CONSTRAINT %s",
						MigJobRelationName(job), quote_identifier(MigJobConstraint(job))));
}

/*
 * MigDescribeDropConstraint and MigRunDropConstraint are the describe and
 * run of a step "ALTER TABLE t DROP CONSTRAINT IF EXISTS c" of the job's
 * constraint; its done() is the kind's own.
 */
char *
MigDescribeDropConstraint(const MigJob *job)
{
	return psprintf("dropping constraint %s", MigJobConstraint(job));
}

void
MigRunDropConstraint(const MigJob *job)
{
	MigExecDDL(psprintf("ALTER TABLE %s DROP CONSTRAINT IF EXISTS %s",
						MigJobRelationName(job), quote_identifier(MigJobConstraint(job))));
}

/*
 * MigExecDDL runs one utility statement through SPI, in the caller's
 * transaction, as the current user.
 */
void
MigExecDDL(const char *sql)
{
	int			ret;
	MemoryContext ctx = CurrentMemoryContext;

	pgstat_report_activity(STATE_RUNNING, sql);
	ret = SPI_execute(sql, false, 0);
	if (ret != SPI_OK_UTILITY)
		elog(ERROR, "pg_mig schema step failed: %s", SPI_result_code_string(ret));
	MemoryContextSwitchTo(ctx); /* SPI calls return in SPI's own context */
}

/*
 * MigRunTopLevel runs one utility statement the way a client's simple
 * query runs it: in a transaction started for it, through a portal with
 * isTopLevel = true, so that a statement that refuses to run inside a
 * transaction block (CREATE INDEX CONCURRENTLY, DROP INDEX CONCURRENTLY,
 * REPACK (CONCURRENTLY), VACUUM) runs, and may commit and start
 * transactions of its own.  Caller is between transactions.
 *
 * lock_timeout would bound every lock wait of the statement, the waits of
 * CREATE INDEX CONCURRENTLY for older snapshots and for writers included,
 * which block nobody: a long transaction anywhere would fail every build.
 * So the statement runs with lock_timeout off, and the watch (see
 * WatchJobControl) bounds only the waits for locks that others queue
 * behind (the table's SHARE UPDATE EXCLUSIVE lock, ...) by
 * lock_timeout_ms; such a wait ends the statement with a lock timeout,
 * which the step retries.  A caller outside the step runner (the VACUUM
 * behind a walk) has no watch running: the statement then runs one of its
 * own, so its lock waits are bounded the same way.
 */
void
MigRunTopLevel(const char *sql, int64 lock_timeout_ms)
{
	MemoryContext parse_context;
	MemoryContext old;
	List	   *raw;
	RawStmt    *parsetree;
	List	   *queries;
	List	   *plans;
	Portal		portal;
	DestReceiver *receiver;
	QueryCompletion qc;
	bool		own_watch = watch_timeout == MAX_TIMEOUTS || !get_timeout_active(watch_timeout);

	if (own_watch)
	{
		/* the caller's loop takes job control's wakeups itself */
		watch_locks_only = true;
		StartWatch();
	}
	SetConfigOption("lock_timeout", "0", PGC_USERSET, PGC_S_SESSION);
	toplevel_wait_since = 0;
	toplevel_bound_hit = false;
	toplevel_bound_ms = Max(lock_timeout_ms, 1);
	StartWatchTick((int) Min(Max(toplevel_bound_ms / 4, 50), 1000));

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	pgstat_report_activity(STATE_RUNNING, sql);

	/*
	 * The parse and plan trees must survive the statement's own commits;
	 * the context is kept and reset, so a failed statement leaks nothing.
	 */
	if (toplevel_context == NULL)
		toplevel_context = AllocSetContextCreate(TopMemoryContext,
												 "pg_mig top-level statement",
												 ALLOCSET_DEFAULT_SIZES);
	MemoryContextReset(toplevel_context);
	parse_context = toplevel_context;
	old = MemoryContextSwitchTo(parse_context);
	raw = pg_parse_query(sql);
	if (list_length(raw) != 1)
		elog(ERROR, "pg_mig top-level step is not one statement");
	parsetree = linitial_node(RawStmt, raw);
	queries = MigAnalyzeAndRewrite(parsetree, sql);
	plans = pg_plan_queries(queries, sql, CURSOR_OPT_PARALLEL_OK, NULL);

	portal = CreatePortal("", true, true);
	portal->visible = false;
	PortalDefineQuery(portal, NULL, sql, CreateCommandTag(parsetree->stmt), plans, NULL);
	PortalStart(portal, NULL, 0, InvalidSnapshot);
	receiver = CreateDestReceiver(DestNone);
	MemoryContextSwitchTo(old);

	PG_TRY();
	{
		(void) MigPortalRun(portal, receiver, &qc);
	}
	PG_CATCH();
	{
		bool		bounded = toplevel_bound_hit;

		toplevel_bound_ms = 0;
		if (own_watch)
			StopWatch();
		if (bounded)
		{
			ErrorData  *edata;

			/* the watch cancelled a wait others queue behind: a lock timeout */
			MemoryContextSwitchTo(steps_context ? steps_context : TopMemoryContext);
			edata = CopyErrorData();
			FlushErrorState();
			edata->sqlerrcode = ERRCODE_LOCK_NOT_AVAILABLE;
			edata->message = psprintf("canceling statement due to lock timeout");
			edata->detail = psprintf("It waited longer than lock_timeout (" INT64_FORMAT " ms) for a %s lock that other sessions would queue behind.",
									 lock_timeout_ms,
									 GetLockNameFromTagType((uint16) toplevel_hit_locktype));
			edata->hint = NULL;
			ReThrowError(edata);
		}
		PG_RE_THROW();
	}
	PG_END_TRY();
	toplevel_bound_ms = 0;
	if (own_watch)
		StopWatch();
	else
		StartWatchTick(1000);

	receiver->rDestroy(receiver);
	PortalDrop(portal, false);
	CommitTransactionCommand();
	MemoryContextReset(parse_context);
	SetConfigOption("lock_timeout", "0", PGC_USERSET, PGC_S_SESSION);
	MemoryContextSwitchTo(steps_context ? steps_context : TopMemoryContext);
	pgstat_report_activity(STATE_IDLE, NULL);
}

/*
 * MigRunSchemaSteps runs the job's steps if its kind is made of schema
 * steps, and returns true when the worker is done with it; it returns
 * false at once for a kind that walks rows (backfill, delete).  Caller is
 * the job's worker, between transactions, with the job's settings applied.
 */
bool
MigRunSchemaSteps(int64 job_id, Oid owner)
{
	MigJob	   *job;
	const MigKindDef *def = NULL;

	steps_job_id = job_id;
	steps_owner = owner;
	if (steps_context == NULL)
		steps_context = AllocSetContextCreate(TopMemoryContext, "pg_mig steps",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(steps_context);

	BeginStepTransaction();
	job = CheckJob(false);
	if (job != NULL)
		def = KindDef(job->kind);
	EndStepTransaction(true);
	if (job == NULL)
		return true;
	if (def == NULL)
		return false;			/* a walk: backfill_worker.c goes on */

	for (int i = 0; i < def->nsteps; i++)
	{
		const MigStepDef *step = &def->steps[i];
		char	   *failure = NULL;
		StepResult result;

		MemoryContextSwitchTo(steps_context);
		if (def->has_walk && i == def->walk_at)
		{
			bool		walked;

			/* the walk is backfill_worker.c's; it calls us again when done */
			BeginStepTransaction();
			job = CheckJob(false);
			walked = job != NULL && MigStepWasDone(job, "walk");
			EndStepTransaction(true);
			if (job == NULL)
				return true;
			if (!walked)
				return false;
		}
		result = RunStep(def, step, true, &failure);
		if (result == STEP_RESULT_STOPPED)
		{
			CleanUpCancelled(def);
			return true;
		}
		if (result == STEP_RESULT_FAILED)
		{
			FailJob(def, step, failure);
			return true;
		}
	}

	BeginStepTransaction();
	job = CheckJob(false);
	if (job != NULL)
	{
		MigSetStep(job_id, NULL);
		MigSetState(job_id, MIG_STATE_SUCCEEDED, NULL);
		MigRecordEvent(job_id, "succeeded",
					   psprintf("%d step%s done", def->nsteps, def->nsteps == 1 ? "" : "s"));
	}
	EndStepTransaction(true);
	MigBroadcastJobChange();
	return true;
}

static void
BeginStepTransaction(void)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
	MemoryContextSwitchTo(steps_context);
}

static void
EndStepTransaction(bool commit)
{
	SPI_finish();
	PopActiveSnapshot();
	if (commit)
		CommitTransactionCommand();
	else
		AbortCurrentTransaction();
	MemoryContextSwitchTo(steps_context);
	pgstat_report_activity(STATE_IDLE, NULL);
}

/*
 * CheckJob reads the job with its kind, in the caller's transaction, and
 * returns it if it is still this worker's to run (queued or running, same
 * owner); set_running moves a queued job (resumed while this worker lived)
 * to running.  Returns NULL otherwise.
 */
static MigJob *
CheckJob(bool set_running)
{
	MigJob	   *job = MigLoadJob(steps_job_id, false);

	if (job == NULL || job->owner != steps_owner)
		return NULL;
	if (job->state != MIG_STATE_RUNNING && job->state != MIG_STATE_QUEUED &&
		!(any_state && job->state == MIG_STATE_CANCELLED))
		return NULL;
	if (set_running && job->state == MIG_STATE_QUEUED)
		MigSetState(steps_job_id, MIG_STATE_RUNNING, NULL);
	MigLoadJobKind(job);
	return job;
}

/*
 * RunStep runs one step to its end (see the file header); with record, the
 * step is skipped if recorded and recorded when done.  On failure
 * *failure is the message for last_error.
 */
static StepResult
RunStep(const MigKindDef *def, const MigStepDef *step, bool record, char **failure)
{
	for (;;)
	{
		MigJob	   *job;
		ErrorData  *volatile edata = NULL;
		volatile bool skipped = false;
		int			retries;
		int			max_retries;

		/* before each attempt of a step that writes much WAL: lag first */
		if (step->wait_for_lag && WaitForLag() == STEP_RESULT_STOPPED)
			return STEP_RESULT_STOPPED;

		/* still ours to run?  what does it do now? (a wakeup is seen here) */
		(void) MigTakeWakeup();
		BeginStepTransaction();
		job = CheckJob(true);
		if (job == NULL)
		{
			EndStepTransaction(true);
			return STEP_RESULT_STOPPED;
		}
		if (record && MigStepWasDone(job, step->name))
		{
			EndStepTransaction(true);
			return STEP_RESULT_DONE;
		}
		if (step->describe)
		{
			char	   *text = step->describe(job);

			if (job->step == NULL || strcmp(job->step, text) != 0)
				MigSetStep(steps_job_id, text);
		}
		retries = job->retries;
		max_retries = job->max_retries;
		EndStepTransaction(true);
		MigBroadcastJobChange();

		/* one attempt; job control may interrupt it (see StartWatch) */
		PG_TRY();
		{
			StartWatch();
			if (step->top_level)
			{
				bool		done;

				BeginStepTransaction();
				done = step->done && step->done(job);
				EndStepTransaction(true);
				if (!done)
					step->run(job);
				else
					skipped = true;
				if (record || step == def->undo)
				{
					BeginStepTransaction();
					if (record)
						MigMarkStepDone(steps_job_id, step->name);
					else
						ForgetSteps();
					EndStepTransaction(true);
				}
			}
			else
			{
				char		buf[32];

				BeginStepTransaction();
				snprintf(buf, sizeof(buf), INT64_FORMAT "ms", Max(job->lock_timeout_ms, 1));
				(void) set_config_option("lock_timeout", buf, PGC_USERSET, PGC_S_SESSION,
										 GUC_ACTION_LOCAL, true, 0, false);
				if (step->done && step->done(job))
					skipped = true;
				else
					step->run(job);
				if (record)
					MigMarkStepDone(steps_job_id, step->name);
				else if (step == def->undo)
					ForgetSteps();	/* with the undo: resumed, it starts over */
				EndStepTransaction(true);
			}
			StopWatch();
		}
		PG_CATCH();
		{
			StopWatch();
			MemoryContextSwitchTo(steps_context);
			edata = CopyErrorData();
			FlushErrorState();
			AbortCurrentTransaction();
			disable_timeout(STATEMENT_TIMEOUT, false);
			SetConfigOption("lock_timeout", "0", PGC_USERSET, PGC_S_SESSION);
			QueryCancelPending = false;
			MemoryContextSwitchTo(steps_context);
		}
		PG_END_TRY();

		if (edata == NULL)
		{
			if (skipped)
			{
				BeginStepTransaction();
				MigRecordEvent(steps_job_id, "step",
							   psprintf("%s: already done", step->name));
				EndStepTransaction(true);
			}
			else
			{
				BeginStepTransaction();
				MigRecordEvent(steps_job_id, "step", psprintf("%s: done", step->name));
				EndStepTransaction(true);
			}
			return STEP_RESULT_DONE;
		}

		/* the attempt failed and is rolled back */
		{
			char	   *message = psprintf("%s%s%s (SQLSTATE %s)", edata->message,
										   edata->detail ? ": " : "",
										   edata->detail ? edata->detail : "",
										   unpack_sql_state(edata->sqlerrcode));

			ereport(LOG,
					(errmsg("pg_mig job " INT64_FORMAT ": step %s failed: %s",
							steps_job_id, step->name, message)));
			/* interrupted by job control: look at the job before anything else */
			if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED && MigTakeWakeup())
			{
				bool		ours;

				BeginStepTransaction();
				ours = (CheckJob(false) != NULL);
				EndStepTransaction(true);
				if (!ours)
					return STEP_RESULT_STOPPED;
			}
			if (MigErrorIsTransient(edata->sqlerrcode) && retries < max_retries)
			{
				double		backoff = Min((double) RETRY_BASE_MS * pow(2.0, retries),
										  (double) RETRY_MAX_MS);

				backoff *= 0.5 + pg_prng_double(&pg_global_prng_state);
				BeginStepTransaction();
				if (CheckJob(false) == NULL)
				{
					EndStepTransaction(true);
					return STEP_RESULT_STOPPED;
				}
				MigSetRetries(steps_job_id, retries + 1, message);
				MigRecordEvent(steps_job_id, "retried",
							   psprintf("step %s, attempt %d of %d in %.1f s: %s", step->name,
										retries + 1, max_retries, backoff / 1000.0, message));
				EndStepTransaction(true);
				MigBroadcastJobChange();
				if (!SleepOrStop((long) backoff))
					return STEP_RESULT_STOPPED;
				continue;
			}

			/* a failure for good: say why, in the kind's words if it has them */
			*failure = message;
			if (def->explain_failure && record)
			{
				char	   *volatile explained = NULL;

				PG_TRY();
				{
					BeginStepTransaction();
					explained = def->explain_failure(job, step, edata);
					EndStepTransaction(true);
				}
				PG_CATCH();
				{
					MemoryContextSwitchTo(steps_context);
					FlushErrorState();
					AbortCurrentTransaction();
					MemoryContextSwitchTo(steps_context);
				}
				PG_END_TRY();
				if (explained)
					*failure = explained;
			}
			return STEP_RESULT_FAILED;
		}
	}
}

/*
 * CleanUpCancelled runs the kind's undo step for a job that was cancelled
 * while a step ran or waited (a NOT VALID constraint, an INVALID index
 * left by the interrupted build); a paused job keeps what it has.
 */
static void
CleanUpCancelled(const MigKindDef *def)
{
	MigJob	   *job;
	char	   *failure = NULL;

	if (def->undo == NULL)
		return;
	BeginStepTransaction();
	job = MigLoadJob(steps_job_id, false);
	EndStepTransaction(true);
	if (job == NULL || job->state != MIG_STATE_CANCELLED)
		return;
	any_state = true;
	(void) RunStep(def, def->undo, false, &failure);
	any_state = false;
}

/*
 * FailJob takes back what the done steps did (the kind's undo step, with
 * the same retries) and marks the job failed with message.
 */
static void
FailJob(const MigKindDef *def, const MigStepDef *step, char *message)
{
	if (def->undo)
	{
		char	   *undo_failure = NULL;

		if (RunStep(def, def->undo, false, &undo_failure) == STEP_RESULT_FAILED)
			message = psprintf("%s; undoing it failed too: %s", message, undo_failure);
	}
	BeginStepTransaction();
	if (MigLoadJob(steps_job_id, true) != NULL)
	{
		MigSetStep(steps_job_id, NULL);
		MigSetState(steps_job_id, MIG_STATE_FAILED, message);
		MigRecordEvent(steps_job_id, "failed", psprintf("step %s: %s", step->name, message));
	}
	EndStepTransaction(true);
	MigBroadcastJobChange();
}

/*
 * ForgetSteps empties the job's steps_done and its walk's checkpoint, in
 * the transaction of the undo step: a failed job that is resumed starts
 * from its first step.
 */
static void
ForgetSteps(void)
{
	const char *cols[6] = {"steps_done", "target_ord", "last_key", "rows_done",
	"keys_done", "chunks_done"};
	Oid			types[6] = {TEXTARRAYOID, INT4OID, TEXTARRAYOID, INT8OID, INT8OID, INT8OID};
	Datum		values[6] = {0, Int32GetDatum(0), 0, Int64GetDatum(0), Int64GetDatum(0),
	Int64GetDatum(0)};
	bool		nulls[6] = {false, false, true, false, false, false};

	values[0] = PointerGetDatum(construct_empty_array(TEXTOID));
	MigSetJobColumns(steps_job_id, 6, cols, types, values, nulls);
}

/* KindDef: the steps of a kind, or NULL for a kind that only walks */
static const MigKindDef *
KindDef(MigJobKind kind)
{
	for (int i = 0; i < lengthof(step_kinds); i++)
		if (step_kinds[i]->kind == kind)
			return step_kinds[i];
	return NULL;
}

/*
 * MigWalkCountsOnly: the job's chunks count rows and change none (the
 * orphan walk of a foreign_key job with orphans => 'fail').  Caller is in
 * a transaction.
 */
bool
MigWalkCountsOnly(MigJob *job)
{
	const char *orphans;

	MigLoadJobKind(job);
	orphans = MigKindArg(job, "orphans");
	return job->kind == MIG_KIND_FOREIGN_KEY && orphans && strcmp(orphans, "fail") == 0;
}

/*
 * MigFinishWalk ends the walk of a job, in the transaction of its last
 * chunk: a backfill or a delete has succeeded; a kind that goes on after
 * its walk records the walk as done.
 */
void
MigFinishWalk(int64 job_id, int64 rows_done, int64 chunks_done)
{
	MigJob	   *job = MigLoadJob(job_id, false);
	const MigKindDef *def;

	if (job == NULL)
		return;
	MigLoadJobKind(job);
	if (MigRevertFinishWalk(job, rows_done, chunks_done))
		return;					/* undo: kind_revert.c */
	def = KindDef(job->kind);
	if (def != NULL && def->has_walk)
	{
		MigMarkStepDone(job_id, "walk");
		MigRecordEvent(job_id, "step",
					   psprintf("walk: done, " INT64_FORMAT " rows in " INT64_FORMAT " chunks",
								rows_done, chunks_done));
		return;
	}
	MigSetState(job_id, MIG_STATE_SUCCEEDED, NULL);
	MigRecordEvent(job_id, "succeeded",
				   psprintf(INT64_FORMAT " rows %s in " INT64_FORMAT " chunks", rows_done,
							job->kind == MIG_KIND_DELETE ? "deleted" : "changed", chunks_done));
}

/*
 * WaitForLag waits while a health signal of the job says wait (replica
 * lag first of all: an index build writes a burst of WAL), recording why
 * in mig_jobs.throttled.
 */
static StepResult
WaitForLag(void)
{
	bool		throttled = false;

	for (;;)
	{
		MigJob	   *job;
		char	   *reason = NULL;
		bool		wait;

		BeginStepTransaction();
		job = CheckJob(true);
		if (job == NULL)
		{
			EndStepTransaction(true);
			return STEP_RESULT_STOPPED;
		}
		wait = MigThrottleCheck(job, throttled, &reason);
		if (wait && !throttled)
			MigRecordEvent(steps_job_id, "throttled", reason);
		if (!wait && throttled)
			MigRecordEvent(steps_job_id, "unthrottled", NULL);
		MigSetThrottled(steps_job_id, wait ? reason : NULL);
		EndStepTransaction(true);
		throttled = wait;
		if (!wait)
			return STEP_RESULT_DONE;
		if (!SleepOrStop(LAG_WAIT_MS))
			return STEP_RESULT_STOPPED;
	}
}


/*
 * SleepOrStop waits ms milliseconds on the latch; job control (pause,
 * cancel) ends the wait early.  Returns false if the job is no longer this
 * worker's to run.
 */
static bool
SleepOrStop(long ms)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), ms);
	bool		running;

	for (;;)
	{
		long		left = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);

		if (left <= 0)
			break;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 left, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		QueryCancelPending = false;
		CHECK_FOR_INTERRUPTS();
		if (MigTakeWakeup())
			break;
	}
	BeginStepTransaction();
	running = (CheckJob(false) != NULL);
	EndStepTransaction(true);
	return running;
}

/*
 * The watch: while a step's statement runs (a VALIDATE or an index build
 * may take hours), a timeout fires every second and, if job control asked
 * the worker to look (mig_pause, mig_cancel, mig_set set the wakeup flag
 * of its slot), cancels the statement like a statement timeout does.  The
 * step's error handling then looks at the job: paused or cancelled, the
 * worker stops (a cancelled job's undo step cleans up); otherwise the step
 * is retried.  The handler only reads a flag and sets the interrupt flags,
 * which is all a signal handler may do.
 */
static void
WatchJobControl(void)
{
	if (my_slot != NULL && my_slot->wakeup && !watch_locks_only)
	{
		QueryCancelPending = true;
		InterruptPending = true;
	}
	if (toplevel_bound_ms > 0 && !toplevel_bound_hit && MyProc != NULL)
	{
		/* what the worker waits for now: class and, for a lock, its type */
		uint32		wait = MyProc->wait_event_info;
		uint32		locktype = wait & 0xFFFF;

		if ((wait & 0xFF000000) == PG_WAIT_LOCK &&
			locktype != LOCKTAG_VIRTUALTRANSACTION && locktype != LOCKTAG_TRANSACTION)
		{
			TimestampTz now = GetCurrentTimestamp();

			if (toplevel_wait_since == 0)
				toplevel_wait_since = now;
			else if (TimestampDifferenceExceeds(toplevel_wait_since, now,
												(int) toplevel_bound_ms))
			{
				toplevel_bound_hit = true;
				toplevel_hit_locktype = locktype;
				QueryCancelPending = true;
				InterruptPending = true;
			}
		}
		else
			toplevel_wait_since = 0;
	}
	SetLatch(MyLatch);
}

static void
StartWatch(void)
{
	if (watch_timeout == MAX_TIMEOUTS)
		watch_timeout = RegisterTimeout(USER_TIMEOUT, WatchJobControl);
	if (my_slot == NULL && MigShared != NULL)
	{
		LWLockAcquire(MigShared->lock, LW_SHARED);
		for (int i = 0; i < MigShared->nslots; i++)
			if (MigShared->slots[i].in_use && MigShared->slots[i].pid == MyProcPid)
				my_slot = &MigShared->slots[i];
		LWLockRelease(MigShared->lock);
	}
	enable_timeout_every(watch_timeout,
						 TimestampTzPlusMilliseconds(GetCurrentTimestamp(), 1000), 1000);
}

/* StartWatchTick: a running watch fires every tick_ms from now on */
static void
StartWatchTick(int tick_ms)
{
	if (watch_timeout != MAX_TIMEOUTS && get_timeout_active(watch_timeout))
		enable_timeout_every(watch_timeout,
							 TimestampTzPlusMilliseconds(GetCurrentTimestamp(), tick_ms),
							 tick_ms);
}

static void
StopWatch(void)
{
	toplevel_bound_ms = 0;
	watch_locks_only = false;
	if (watch_timeout != MAX_TIMEOUTS)
		disable_timeout(watch_timeout, false);
}
