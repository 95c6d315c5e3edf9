/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  The worker: runs one job, step after step, as the job's owner.  The
 *	  one runtime of every kind: the worker's loop, the transaction of each
 *	  step, the recording of an error, the backoff and the sleeps.
 *
 * The launcher starts a worker with the job id and the owner's role; the
 * worker connects as that role, so everything the job does (the chunk
 * statements, the DDL, the throttle query) runs with the owner's rights
 * and nothing more.  Only the bookkeeping on pg_mig's own tables runs as
 * the table owner, in job_store.c.
 *
 * A job is its kind's steps (kinds.h): schema steps, and at most one walk
 * among them (walk.c), in order:
 *
 *	  start: mark the job running, record 'started', load its targets
 *	  -> each schema step not yet in steps_done (RunStep):
 *		 check the job (still running?) and record the step in mig_jobs.step
 *		 -> wait while replicas lag, if the step asks for it
 *		 -> one transaction: SET LOCAL lock_timeout, the statement unless its
 *			effect is there already, the step recorded in steps_done; commit
 *		 -> a lock timeout or deadlock: roll back, event 'retried' with the
 *			error, sleep with jittered exponential backoff; after a lock
 *			timeout wait, queueing behind nobody, for the transactions that
 *			held a lock on the job's table, or on another table the attempt
 *			locks (MigNoteStepLock), to end (WaitForTableLockers); try again
 *		 -> any other error, or max_retries used up: the kind's undo step
 *			(with the same retries), then the job fails
 *	  -> the walk, at its place (RunWalk): one transaction per chunk, until
 *		 the walk is done (recorded as the step "walk", or the job ends); a
 *		 chunk whose lock timed out is retried after the backoff and a wait
 *		 for the transactions that held rows of the table (WaitForRowLockers)
 *	  -> the job succeeded
 *
 * A waiting DDL lock therefore blocks the application no longer than
 * lock_timeout: the queue that forms behind a waiting ACCESS EXCLUSIVE
 * request goes away with the rolled-back attempt.  A step and its record
 * commit together, so after a crash, a kill of the worker or a restart the
 * job goes on at the first step not done; a top-level step (CREATE INDEX
 * CONCURRENTLY) cannot share a transaction with its record, so its done()
 * test tells a finished one from a half-done one.  Every error of a step
 * (the job's start included) ends in a recorded retry or a failed job,
 * never in an exit of the worker.
 *
 * After every step the worker reports its table statistics, so that
 * autovacuum sees a running job's dead rows.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/genam.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/lmgr.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"
#include "common/pg_prng.h"

#include "pg_mig.h"
#include "steps.h"
#include "worker.h"
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

/* the worker's job, for the whole life of the process */
static int64 job_id;
static MigWorkerArgs worker_args;
static MemoryContext runner_context;	/* the job's steps: as long as the worker */
static MemoryContext chunk_context; /* one step of the walk: reset before each */
static MemoryContext step_context;	/* the one of the two a step works in */
static bool any_state;			/* CheckJob: run the undo of a cancelled job */
static Oid	job_extension = InvalidOid; /* the job's extension (CheckExtension) */

/* the tables other than the job's that the step's attempt locks (MigNoteStepLock) */
#define MAX_STEP_LOCKS 64
typedef struct StepLock
{
	Oid			relid;
	LOCKMODE	lockmode;
} StepLock;
static StepLock step_locks[MAX_STEP_LOCKS];
static int	n_step_locks;

static bool BeginJob(void);
static void RunJob(void);
static bool RunWalk(const MigKindDef *def);
static MigStepOutcome RecordStepError(ErrorData *edata, long *delay_ms);
static void FinishLaneJob(void);
static void PromoteQueuedJob(void);
static MigJob *CheckJob(bool set_running);
static StepResult RunStep(const MigKindDef *def, const MigStepDef *step,
						  bool record, char **failure);
static StepResult WaitForLag(void);
static void FailJob(const MigKindDef *def, const MigStepDef *step, char *message);
static void CleanUpCancelled(const MigKindDef *def);
static void ForgetSteps(void);
static void StartStep(void);
static void CheckExtension(void);
static void HoldIfReadOnly(void);
static void FinishStep(void);
static ErrorData *AbortStep(void);
static void DisarmTimeouts(void);
static void ProcessInterruptsBetweenSteps(void);
static double RetryBackoffMs(int retries);
static bool WorkerSleep(long ms, MigWait wait);
static bool SleepOrStop(long ms, MigWait wait, bool *woken);
static bool JobStillOurs(void);
static void DescribeStep(const MigStepDef *step, const MigJob *job);
static bool WaitForTableLockers(const MigStepDef *step, Oid relid);
static bool WaitForRowLockers(void);
static void NoteForeignKeyTables(Oid relid);
static void WaitOutLockers(Oid relid, LOCKMODE lockmode);

/*
 * mig_worker_main is the entry point of a worker.  bgw_main_arg is the job
 * id, bgw_extra a MigWorkerArgs.
 */
void
mig_worker_main(Datum main_arg)
{
	job_id = DatumGetInt64(main_arg);
	memcpy(&worker_args, MyBgworkerEntry->bgw_extra, sizeof(MigWorkerArgs));

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	BackgroundWorkerInitializeConnectionByOid(worker_args.dboid, worker_args.owner,
											  MIG_BGWORKER_CONNECT_FLAGS);
	MigPinSession();
	/*
	 * no lock_timeout of the owner's role or database (ALTER ROLE app SET
	 * lock_timeout = '2s', a common guard): each step and chunk sets the
	 * job's for its own statements, and a wait for the transactions that
	 * hold what it needs (WaitOutLockers) blocks nobody and must outlast it
	 */
	SetConfigOption("lock_timeout", "0", PGC_USERSET, PGC_S_SESSION);

	/* a job (a lane of a job) never has two workers */
	if (!MigClaimWorkerSlot(worker_args.dboid, job_id, worker_args.lane))
	{
		elog(DEBUG1, "pg_mig job " INT64_FORMAT " lane %d already has a worker, or no slot is free",
			 job_id, worker_args.lane);
		MigNoteCleanExit();
		proc_exit(0);
	}
	/* the launcher forgets the note of a parallel job when every lane runs */
	if (worker_args.lane == 0)
		MigSetNote(worker_args.dboid, job_id, NULL);

	runner_context = AllocSetContextCreate(TopMemoryContext, "pg_mig steps",
										   ALLOCSET_DEFAULT_SIZES);
	chunk_context = AllocSetContextCreate(TopMemoryContext, "pg_mig step",
										  ALLOCSET_DEFAULT_SIZES);
	MigWalkInit(job_id, &worker_args);

	if (BeginJob())
		RunJob();

	/* the last lane of a parallel job to end finishes it */
	if (MigWalkLaneFinished())
		FinishLaneJob();
	MigBroadcastJobChange();
	MigNoteCleanExit();
	proc_exit(0);
}

/*
 * ProcessInterruptsBetweenSteps: what may end or change the worker between
 * two steps (SIGTERM, a configuration reload).
 */
static void
ProcessInterruptsBetweenSteps(void)
{
	QueryCancelPending = false;
	CHECK_FOR_INTERRUPTS();
	if (ConfigReloadPending)
	{
		ConfigReloadPending = false;
		ProcessConfigFile(PGC_SIGHUP);
	}
}

/*
 * BeginJob runs the job's start (MigWalkStartJob) as the first step of the
 * worker, until it is done or the job is not to run.  An error in it (a
 * stored setting that no longer applies, ...) is recorded like an error of
 * any other step: a counted retry or a failed job, never an exit that
 * leaves the job running with no error.
 */
static bool
BeginJob(void)
{
	step_context = chunk_context;
	for (;;)
	{
		long		delay_ms = 0;
		volatile bool begun = false;
		volatile MigStepOutcome outcome = MIG_STEP_STOP;

		MemoryContextSwitchTo(step_context);
		MemoryContextReset(step_context);
		ProcessInterruptsBetweenSteps();
		PG_TRY();
		{
			StartStep();
			begun = MigWalkStartJob();
			FinishStep();
		}
		PG_CATCH();
		{
			ErrorData  *edata = AbortStep();

			outcome = RecordStepError(edata, &delay_ms);
		}
		PG_END_TRY();
		MigBroadcastJobChange();
		if (MigWalkPromotePending())
			PromoteQueuedJob();
		if (begun)
			return true;
		if (outcome == MIG_STEP_STOP)
			return false;
		if (delay_ms > 0)
			(void) WorkerSleep(delay_ms, MIG_WAIT_BACKOFF);
	}
}

/*
 * RunJob runs the job's steps in order, its walk at its place, and marks
 * the job succeeded after the last.  Caller is between transactions, with
 * the job's settings applied.
 */
static void
RunJob(void)
{
	MigJob	   *job;
	const MigKindDef *def = NULL;

	step_context = runner_context;
	MemoryContextSwitchTo(step_context);
	StartStep();
	job = CheckJob(false);
	if (job != NULL)
		def = MigKindDefOf(job->kind);
	FinishStep();
	if (job == NULL)
		return;

	for (int i = 0; i <= def->nsteps; i++)
	{
		const MigStepDef *step;
		char	   *failure = NULL;
		StepResult	result;

		MemoryContextSwitchTo(step_context);
		if (def->walks && i == def->walk_at)
		{
			/* a cancelled job's undo cleans up; a walk that ends the job ended it */
			if (!RunWalk(def) || i == def->nsteps || worker_args.lane > 0)
			{
				CleanUpCancelled(def);
				return;
			}
		}
		if (i == def->nsteps)
			break;
		step = &def->steps[i];
		result = RunStep(def, step, true, &failure);
		if (result == STEP_RESULT_STOPPED)
		{
			CleanUpCancelled(def);
			return;
		}
		if (result == STEP_RESULT_FAILED)
		{
			FailJob(def, step, failure);
			return;
		}
	}

	StartStep();
	job = CheckJob(false);
	if (job != NULL)
	{
		MigSetStep(job_id, NULL);
		MigSetState(job_id, MIG_STATE_SUCCEEDED, NULL);
		MigRecordEvent(job_id, "succeeded",
					   psprintf(ngettext("%d step done", "%d steps done", def->nsteps),
								def->nsteps));
	}
	FinishStep();
	MigBroadcastJobChange();
}

/*
 * RunWalk runs the walk of the job, one step (a chunk, or a wait for a
 * health signal) per transaction, with the pause each asks for between
 * them.  Returns true if the walk is done (a walk before a step of its
 * kind: recorded as the step "walk"; one at the end: it ended the job),
 * false if the job stopped before.
 */
static bool
RunWalk(const MigKindDef *def)
{
	MigJob	   *job;
	bool		walked = false;
	MigStepOutcome outcome = MIG_STEP_STOP;

	if (def->walk_at < def->nsteps)
	{
		StartStep();
		job = CheckJob(false);
		walked = job != NULL && MigStepWasDone(job, "walk");
		/* the step before the walk no longer names what the job does */
		if (job != NULL && !walked && job->step != NULL)
			MigSetStep(job_id, NULL);
		FinishStep();
		if (job == NULL || walked)
			return walked;
	}

	step_context = chunk_context;
	for (;;)
	{
		long		delay_ms = 0;
		bool		changed = false;
		volatile bool lock_timed_out = false;

		/* nothing of one step survives into the next: memory stays flat */
		MemoryContextSwitchTo(step_context);
		MemoryContextReset(step_context);
		ProcessInterruptsBetweenSteps();

		PG_TRY();
		{
			StartStep();
			outcome = MigWalkStep(&delay_ms, &changed);
			FinishStep();
		}
		PG_CATCH();
		{
			ErrorData  *edata = AbortStep();

			lock_timed_out = edata->sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE;
			outcome = RecordStepError(edata, &delay_ms);
			changed = true;
		}
		PG_END_TRY();
		MigWalkAfterStep(outcome, &delay_ms);
		if (changed)
			MigBroadcastJobChange();
		if (MigWalkPromotePending())
			PromoteQueuedJob();
		if (outcome == MIG_STEP_STOP)
			break;
		if (outcome == MIG_STEP_RETRY && lock_timed_out)
		{
			/* after the backoff, unless mig_set asks for the next attempt at once */
			if (!WorkerSleep(delay_ms, MIG_WAIT_BACKOFF) && !WaitForRowLockers())
				break;
			continue;
		}
		if (delay_ms > 0)
			(void) WorkerSleep(delay_ms,
							   outcome == MIG_STEP_THROTTLED ? MIG_WAIT_THROTTLED :
							   outcome == MIG_STEP_RETRY ? MIG_WAIT_BACKOFF : MIG_WAIT_PACE);
	}
	step_context = runner_context;
	MemoryContextSwitchTo(step_context);
	/* the VACUUMs behind a walk that stopped, not recorded yet */
	MigVacuumReport(job_id, worker_args.lane);

	if (def->walk_at == def->nsteps)
		return true;
	StartStep();
	job = CheckJob(false);
	walked = job != NULL && MigStepWasDone(job, "walk");
	FinishStep();
	return walked;
}

/*
 * RecordStepError records a failed step of the walk in a fresh
 * transaction (MigWalkRecordError): a retry while retries last for a
 * transient error, else the job fails.  The failed step's transaction is
 * already rolled back.  Recording must not fail in turn (an error here
 * would end the worker and leave the job running with no error): an error
 * while recording is logged, and the recording is tried again after a
 * backoff; if it keeps failing, the job is failed with both errors.
 */
static MigStepOutcome
RecordStepError(ErrorData *step_error, long *delay_ms)
{
	ErrorData  *volatile edata = step_error;

	ereport(LOG,
			(errmsg("pg_mig job " INT64_FORMAT " could not complete a step: %s",
					job_id, edata->message),
			 errdetail("The error's SQLSTATE is %s.", unpack_sql_state(edata->sqlerrcode))));

	for (int attempt = 1;; attempt++)
	{
		volatile MigStepOutcome outcome = MIG_STEP_STOP;
		ErrorData  *volatile record_error = NULL;

		PG_TRY();
		{
			StartStep();
			outcome = MigWalkRecordError(edata, delay_ms, RetryBackoffMs);
			FinishStep();
		}
		PG_CATCH();
		{
			record_error = AbortStep();
		}
		PG_END_TRY();
		if (record_error == NULL)
			return outcome;

		ereport(LOG,
				(errmsg("pg_mig job " INT64_FORMAT " could not record the error of a step: %s",
						job_id, record_error->message),
				 errdetail("The error's SQLSTATE is %s.",
						   unpack_sql_state(record_error->sqlerrcode))));
		if (attempt == 3)
		{
			/* fail the job, naming both errors; the next rounds record that */
			ErrorData  *both = palloc0(sizeof(ErrorData));

			both->sqlerrcode = ERRCODE_INTERNAL_ERROR;
			both->message = psprintf("%s (SQLSTATE %s); recording it failed: %s",
									 edata->message, unpack_sql_state(edata->sqlerrcode),
									 record_error->message);
			edata = both;
		}
		if (attempt >= 6)
			ereport(ERROR,
					(errcode(record_error->sqlerrcode),
					 errmsg("pg_mig job " INT64_FORMAT " could not record the error of a step: %s",
							job_id, record_error->message)));
		(void) WorkerSleep(Min((long) RETRY_BASE_MS << attempt, (long) RETRY_MAX_MS),
						   MIG_WAIT_BACKOFF);
	}
}

/*
 * FinishLaneJob: a lane is done; if every lane of the job is, the job is
 * finished (MigWalkFinishLanes), in a transaction of its own.  An error
 * here is only logged (see there).
 */
static void
FinishLaneJob(void)
{
	step_context = chunk_context;
	PG_TRY();
	{
		StartStep();
		MigWalkFinishLanes();
		FinishStep();
	}
	PG_CATCH();
	{
		ErrorData  *edata = AbortStep();

		ereport(LOG,
				(errmsg("pg_mig job " INT64_FORMAT " lane %d could not finish the job: %s",
						job_id, worker_args.lane, edata->message)));
	}
	PG_END_TRY();
}

/*
 * PromoteQueuedJob: a lane found its job queued; it sets it running in a
 * transaction of its own (MigWalkPromote).
 */
static void
PromoteQueuedJob(void)
{
	PG_TRY();
	{
		StartStep();
		MigWalkPromote();
		FinishStep();
	}
	PG_CATCH();
	{
		(void) AbortStep();
	}
	PG_END_TRY();
	MigBroadcastJobChange();
}

/*
 * StartStep opens a step's transaction with SPI connected and a snapshot,
 * and stays in the step's memory context.  FinishStep commits it.
 */
static void
StartStep(void)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	MemoryContextSwitchTo(step_context);
	PushActiveSnapshot(GetTransactionSnapshot());
	CheckExtension();
	HoldIfReadOnly();
}

/*
 * HoldIfReadOnly: where the worker's transactions are read-only by default
 * (MigReadOnlyProblem: the database's, the owner's or the server's
 * default_transaction_read_only, or the server's turned on by a reload
 * while the job ran) the worker writes nothing, not even an error: it
 * leaves a note that mig_jobs shows and ends before its step does
 * anything.  It does not end cleanly, so the launcher starts it again with
 * the backoff of a worker that dies young; meanwhile the scan starts no
 * worker for a job whose database, owner or server is read-only by
 * default, and gives it the same note (launcher.c).
 */
static void
HoldIfReadOnly(void)
{
	char	   *problem = MigReadOnlyProblem(false);

	if (problem == NULL)
		return;
	MigSetNote(worker_args.dboid, job_id, psprintf(MIG_READ_ONLY_NOTE, problem));
	ereport(LOG,
			(errmsg("pg_mig job " INT64_FORMAT " waits: %s", job_id, problem)));
	proc_exit(1);
}

/*
 * CheckExtension: the job's extension is still the one the worker's first
 * step found.  After DROP EXTENSION pg_mig the job is gone, and after
 * CREATE EXTENSION again another job has its id (they start at 1 again):
 * the worker stops at once, before it reads or writes anything, rather
 * than take that job for its own with what it knows of the old one (it
 * walked the old job's table under the new job's row).
 */
static void
CheckExtension(void)
{
	Oid			extoid = get_extension_oid(PG_MIG_EXTENSION_NAME, true);

	if (!OidIsValid(job_extension))
		job_extension = extoid;
	if (extoid == job_extension)
		return;
	ereport(LOG,
			(errmsg("pg_mig job " INT64_FORMAT ": extension pg_mig was dropped since its worker started; the worker stops",
					job_id)));
	MigNoteCleanExit();
	proc_exit(0);
}

static void
FinishStep(void)
{
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	/* CommitTransactionCommand leaves us in TopMemoryContext */
	MemoryContextSwitchTo(step_context);
	DisarmTimeouts();
	pgstat_report_activity(STATE_IDLE, NULL);
	/* at most once a second unforced (PGSTAT_MIN_INTERVAL): autovacuum sees dead rows */
	MigAppLatencyStatsReported(pgstat_report_stat(false));
}

/*
 * AbortStep ends a step that raised an error: the error is copied (into
 * the step's memory context) and returned, and the step's transaction
 * rolled back.  Called in PG_CATCH.
 */
static ErrorData *
AbortStep(void)
{
	ErrorData  *edata;

	MemoryContextSwitchTo(step_context);
	edata = CopyErrorData();
	FlushErrorState();
	AbortCurrentTransaction();
	DisarmTimeouts();
	MemoryContextSwitchTo(step_context);
	return edata;
}

/*
 * DisarmTimeouts stops the statement timeout between steps, and forgets a
 * cancel that arrived after the step ended (a timeout firing at commit, or
 * pg_cancel_backend while the worker sleeps): between steps there is no
 * statement to cancel, and an ERROR there would end the worker.
 */
static void
DisarmTimeouts(void)
{
	disable_timeout(STATEMENT_TIMEOUT, false);
	QueryCancelPending = false;
}

/*
 * RetryBackoffMs: the wait before retry number retries (1, 2, ...) of a
 * step, exponential from RETRY_BASE_MS up to RETRY_MAX_MS, jittered by
 * +-50% so that workers that failed together do not retry together.
 */
static double
RetryBackoffMs(int retries)
{
	double		backoff = Min((double) RETRY_BASE_MS * pow(2.0, Max(retries - 1, 0)),
							  (double) RETRY_MAX_MS);

	return backoff * (0.5 + pg_prng_double(&pg_global_prng_state));
}

/*
 * WorkerSleep waits ms milliseconds on the latch.  It ends early only when
 * job control (mig_pause, mig_cancel, mig_set, mig_resume) asked the worker
 * to look (it then returns true), on SIGTERM, or on a configuration reload
 * (which it applies); other latch wake-ups (timer signals, ...) do not cut
 * a pacing pause short.  A sleep of a second or more reports the table
 * statistics first.  pg_stat_activity shows the wait as wait (17 and
 * later; see wait_events.c).
 */
static bool
WorkerSleep(long ms, MigWait wait)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), ms);

	if (ms >= 1000)
		MigAppLatencyStatsReported(pgstat_report_stat(true));
	for (;;)
	{
		long		left = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);

		if (left <= 0)
			return false;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 left, MigWaitEvent(wait));
		ResetLatch(MyLatch);
		QueryCancelPending = false;
		CHECK_FOR_INTERRUPTS();
		if (MigTakeWakeup())
			return true;
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			return false;
		}
	}
}

/*
 * SleepOrStop waits ms milliseconds (WorkerSleep); job control (pause,
 * cancel, set) ends the wait early, and then *woken (if not NULL) is set.
 * Returns false if the job is no longer this worker's to run.
 */
static bool
SleepOrStop(long ms, MigWait wait, bool *woken)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), ms);

	if (woken)
		*woken = false;
	for (;;)
	{
		long		left = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);

		if (left <= 0)
			break;
		if (WorkerSleep(left, wait))
		{
			if (woken)
				*woken = true;
			break;
		}
	}
	return JobStillOurs();
}

/* JobStillOurs: whether the job is still this worker's to run (CheckJob) */
static bool
JobStillOurs(void)
{
	bool		ours;

	StartStep();
	ours = (CheckJob(false) != NULL);
	FinishStep();
	return ours;
}

/* DescribeStep: mig_jobs.step says what the step does now, in words */
static void
DescribeStep(const MigStepDef *step, const MigJob *job)
{
	char	   *text;

	if (step->describe == NULL)
		return;
	text = step->describe(job);
	if (job->step == NULL || strcmp(job->step, text) != 0)
		MigSetStep(job_id, text);
}

/*
 * MigNoteStepLock: the running step's attempt locks relid, a table other
 * than the job's, in lockmode (a type change's swap: the tables whose
 * foreign keys it re-points; a foreign key's first step: the referenced
 * table; a walk's chunk: the tables linked to its own by foreign keys,
 * NoteForeignKeyTables).  After a lock timeout, WaitForTableLockers (a
 * chunk's: WaitForRowLockers) waits for the transactions that hold
 * conflicting locks there too.  The notes are forgotten before each
 * attempt; a note beyond MAX_STEP_LOCKS tables is not kept (those tables'
 * lock timeouts are retried as before).
 */
void
MigNoteStepLock(Oid relid, LOCKMODE lockmode)
{
	for (int i = 0; i < n_step_locks; i++)
		if (step_locks[i].relid == relid)
		{
			/* the stronger of two (the modes used here are ordered) */
			step_locks[i].lockmode = Max(step_locks[i].lockmode, lockmode);
			return;
		}
	if (n_step_locks < MAX_STEP_LOCKS)
	{
		step_locks[n_step_locks].relid = relid;
		step_locks[n_step_locks].lockmode = lockmode;
		n_step_locks++;
	}
}

/*
 * WaitForTableLockers: after a step's attempt timed out waiting for a lock,
 * wait until the transactions that hold a lock on the job's table now (or
 * a lock that conflicts with the attempt's on a table it noted,
 * MigNoteStepLock) have ended.  A lock wait that lasts lock_timeout is one
 * on a transaction that holds the table for long: a pg_dump's ACCESS SHARE
 * lasts as long as the dump, a report's as long as the report.  Every
 * attempt would time out on it again and use up the step's retries;
 * instead the worker waits for them (WaitOutLockers).  mig_jobs.step says
 * the next attempt's words first.  Returns false if the job is no longer
 * this worker's to run.
 */
static bool
WaitForTableLockers(const MigStepDef *step, Oid relid)
{
	MigJob	   *job;

	if (!OidIsValid(relid))
		return true;
	StartStep();
	job = CheckJob(false);
	if (job != NULL)
		DescribeStep(step, job);
	FinishStep();
	if (job == NULL)
		return false;
	MigBroadcastJobChange();
	/* every lock conflicts with ACCESS EXCLUSIVE: every holder */
	WaitOutLockers(relid, AccessExclusiveLock);
	return JobStillOurs();
}

/*
 * WaitForRowLockers: after a chunk timed out waiting for a lock, wait until
 * the transactions that hold rows of the table it writes (the job's table,
 * or the partition the walk is in), or of a table linked to it by a
 * foreign key (NoteForeignKeyTables), now have ended: those whose table
 * lock conflicts with EXCLUSIVE, the writers (ROW EXCLUSIVE) and the
 * lockers (ROW SHARE: SELECT ... FOR UPDATE), and any stronger lock.  The
 * one that held the chunk's row for lock_timeout is among them: a session
 * idle in transaction after an UPDATE holds its rows until it ends, and
 * every attempt would time out on it again, at half the batch down to one
 * row, until the retries ran out and the job failed.  The others are the
 * application's short transactions of the moment.
 * mig_jobs.step says so meanwhile (the view adds the pid waited for).
 * Returns false if the job is no longer this worker's to run.
 */
static bool
WaitForRowLockers(void)
{
	MigJob	   *job;
	Oid			relid = InvalidOid;
	bool		ours;

	StartStep();
	job = CheckJob(false);
	if (job != NULL)
	{
		relid = OidIsValid(MigWalkChunkTable()) ? MigWalkChunkTable() : job->relid;
		n_step_locks = 0;
		NoteForeignKeyTables(relid);
		MigSetStep(job_id, MigLaneText("waiting for the transactions that held rows of the table "
										"when a chunk's lock timed out"));
	}
	FinishStep();
	if (job == NULL)
		return false;
	MigBroadcastJobChange();
	WaitOutLockers(relid, ExclusiveLock);
	StartStep();
	ours = (CheckJob(false) != NULL);
	if (ours)
		MigSetStep(job_id, NULL);
	FinishStep();
	MigBroadcastJobChange();
	return ours;
}

/*
 * NoteForeignKeyTables notes (MigNoteStepLock, EXCLUSIVE: every writer and
 * row locker) the tables whose rows a chunk of relid may lock besides its
 * own: those whose foreign keys reference relid (a delete deletes their
 * rows through ON DELETE CASCADE, sets them through SET NULL, and checks
 * them) and those relid's foreign keys reference (a change of a key
 * column locks the referenced row FOR KEY SHARE).  One level of foreign
 * keys: a cascade's own cascades are not followed.  Caller is in a
 * transaction.
 */
static void
NoteForeignKeyTables(Oid relid)
{
	Relation	conrel = table_open(ConstraintRelationId, AccessShareLock);
	SysScanDesc scan = systable_beginscan(conrel, InvalidOid, false, NULL, 0, NULL);
	HeapTuple	tuple;

	while ((tuple = systable_getnext(scan)) != NULL)
	{
		Form_pg_constraint con = (Form_pg_constraint) GETSTRUCT(tuple);

		if (con->contype != CONSTRAINT_FOREIGN || con->conrelid == con->confrelid)
			continue;
		if (con->confrelid == relid)
			MigNoteStepLock(con->conrelid, ExclusiveLock);
		else if (con->conrelid == relid)
			MigNoteStepLock(con->confrelid, ExclusiveLock);
	}
	systable_endscan(scan);
	table_close(conrel, AccessShareLock);
}

/*
 * WaitOutLockers waits for the virtual transaction ids of the transactions
 * that hold a lock on relid that conflicts with lockmode now, or one that
 * conflicts with a note on another table (MigNoteStepLock), as CREATE INDEX
 * CONCURRENTLY waits for older snapshots: the wait queues behind nobody
 * and blocks nobody (no lock on the table is requested, no snapshot held),
 * mig_jobs.step names the pid it waits for (the view, from pg_locks), and
 * job control (mig_pause, mig_cancel, mig_set: the next attempt then runs
 * at once, under the job's knobs) and shutdown end it.  One long
 * transaction thus costs one attempt.
 */
static void
WaitOutLockers(Oid relid, LOCKMODE lockmode)
{
	MemoryContext caller_context = CurrentMemoryContext;

	PG_TRY();
	{
		LOCKTAG		tag;

		MigStartWatch();
		StartTransactionCommand();
		SET_LOCKTAG_RELATION(tag, MyDatabaseId, relid);
		WaitForLockers(tag, lockmode, false);
		for (int i = 0; i < n_step_locks; i++)
		{
			SET_LOCKTAG_RELATION(tag, MyDatabaseId, step_locks[i].relid);
			WaitForLockers(tag, step_locks[i].lockmode, false);
		}
		CommitTransactionCommand();
		MigStopWatch();
	}
	PG_CATCH();
	{
		/* job control cancelled the wait (see MigStartWatch) */
		MigStopWatch();
		MemoryContextSwitchTo(caller_context);
		FlushErrorState();
		AbortCurrentTransaction();
		QueryCancelPending = false;
		MemoryContextSwitchTo(caller_context);
	}
	PG_END_TRY();
	(void) MigTakeWakeup();
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
	MigJob	   *job = MigLoadJob(job_id, false);

	if (job == NULL || job->owner != worker_args.owner)
		return NULL;
	if (job->state != MIG_STATE_RUNNING && job->state != MIG_STATE_QUEUED &&
		!(any_state && job->state == MIG_STATE_CANCELLED))
		return NULL;
	if (set_running && job->state == MIG_STATE_QUEUED)
		MigSetState(job_id, MIG_STATE_RUNNING, NULL);
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
		StartStep();
		job = CheckJob(true);
		if (job == NULL)
		{
			FinishStep();
			return STEP_RESULT_STOPPED;
		}
		if (record && MigStepWasDone(job, step->name))
		{
			FinishStep();
			return STEP_RESULT_DONE;
		}
		DescribeStep(step, job);
		retries = job->retries;
		max_retries = job->max_retries;
		FinishStep();
		MigBroadcastJobChange();

		/* one attempt; job control may interrupt it (see MigStartWatch) */
		n_step_locks = 0;
		PG_TRY();
		{
			MigStartWatch();
			if (step->top_level)
			{
				bool		done;

				StartStep();
				done = step->done && step->done(job);
				FinishStep();
				if (!done)
					step->run(job);
				else
					skipped = true;
				if (record || step == def->undo)
				{
					StartStep();
					if (record)
						MigMarkStepDone(job_id, step->name);
					else
						ForgetSteps();
					FinishStep();
				}
			}
			else
			{
				StartStep();
				MigSetLockTimeout(job->lock_timeout_ms, GUC_ACTION_LOCAL);
				if (step->done && step->done(job))
					skipped = true;
				else
					step->run(job);
				if (record)
					MigMarkStepDone(job_id, step->name);
				else if (step == def->undo)
					ForgetSteps();	/* with the undo: resumed, it starts over */
				FinishStep();
			}
			MigStopWatch();
		}
		PG_CATCH();
		{
			MigStopWatch();
			MemoryContextSwitchTo(step_context);
			edata = CopyErrorData();
			FlushErrorState();
			AbortCurrentTransaction();
			disable_timeout(STATEMENT_TIMEOUT, false);
			SetConfigOption("lock_timeout", "0", PGC_USERSET, PGC_S_SESSION);
			QueryCancelPending = false;
			MemoryContextSwitchTo(step_context);
		}
		PG_END_TRY();

		if (edata == NULL)
		{
			if (skipped)
			{
				StartStep();
				MigRecordEvent(job_id, "step",
							   psprintf("%s: already done", step->name));
				FinishStep();
			}
			else
			{
				StartStep();
				MigRecordEvent(job_id, "step", psprintf("%s: done", step->name));
				FinishStep();
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
							job_id, step->name, message)));
			/* interrupted by job control: look at the job before anything else */
			if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED && MigTakeWakeup() &&
				!JobStillOurs())
				return STEP_RESULT_STOPPED;
			if (MigErrorIsTransient(edata->sqlerrcode) && retries < max_retries)
			{
				double		backoff = RetryBackoffMs(retries + 1);
				bool		woken;

				StartStep();
				if (CheckJob(false) == NULL)
				{
					FinishStep();
					return STEP_RESULT_STOPPED;
				}
				MigSetRetries(job_id, retries + 1, message);
				MigRecordEvent(job_id, "retried",
							   psprintf("step %s, attempt %d of %d in %.1f s: %s", step->name,
										retries + 1, max_retries, backoff / 1000.0, message));
				FinishStep();
				MigBroadcastJobChange();
				if (!SleepOrStop((long) backoff, MIG_WAIT_BACKOFF, &woken))
					return STEP_RESULT_STOPPED;
				/* changed by mig_set meanwhile: the next attempt at once, under its knobs */
				if (edata->sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE && !woken &&
					!WaitForTableLockers(step, job->relid))
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
					StartStep();
					explained = def->explain_failure(job, step, edata);
					FinishStep();
				}
				PG_CATCH();
				{
					MemoryContextSwitchTo(step_context);
					FlushErrorState();
					AbortCurrentTransaction();
					MemoryContextSwitchTo(step_context);
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
	StartStep();
	job = MigLoadJob(job_id, false);
	FinishStep();
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
	StartStep();
	if (MigLoadJob(job_id, true) != NULL)
	{
		MigSetStep(job_id, NULL);
		MigSetState(job_id, MIG_STATE_FAILED, message);
		MigRecordEvent(job_id, "failed", psprintf("step %s: %s", step->name, message));
	}
	FinishStep();
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
	MigSetJobColumns(job_id, 6, cols, types, values, nulls);
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

		StartStep();
		job = CheckJob(true);
		if (job == NULL)
		{
			FinishStep();
			return STEP_RESULT_STOPPED;
		}
		wait = MigThrottleCheck(job, throttled, &reason);
		if (wait && !throttled)
			MigRecordEvent(job_id, "throttled", reason);
		if (!wait && throttled)
			MigRecordEvent(job_id, "unthrottled", NULL);
		MigSetThrottled(job_id, wait ? reason : NULL);
		FinishStep();
		throttled = wait;
		if (!wait)
			return STEP_RESULT_DONE;
		if (!SleepOrStop(LAG_WAIT_MS, MIG_WAIT_THROTTLED, NULL))
			return STEP_RESULT_STOPPED;
	}
}


