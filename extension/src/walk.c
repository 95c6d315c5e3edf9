/*-------------------------------------------------------------------------
 *
 * walk.c
 *	  The walk: a job's rows, chunk after chunk in key order, as the job's
 *	  owner; one kind of step of the worker (worker.c).
 *
 * Each step of a walk is one transaction, opened by worker.c:
 *
 *	  lock the job row (orders the step against mig_pause/cancel/set)
 *	  -> the job is no longer running: stop
 *	  -> a health signal says wait: record why, commit, sleep, step again
 *	  -> else run one chunk and write the checkpoint, then commit
 *
 * The chunk and its checkpoint commit together, so after any crash the
 * job goes on from the last committed chunk and no row is changed twice.
 * That is also why the chunk transactions may commit with
 * synchronous_commit = off: a crash can lose only the latest chunks, and
 * it loses each chunk together with its checkpoint, so the lost chunks are
 * simply done again.  A chunk that fails with a transient error (deadlock,
 * serialization failure, lock or statement timeout, cancel) is retried
 * with jittered exponential backoff, at half the size after a timeout
 * (MigWalkRecordError; after a lock timeout the worker first waits for the
 * transactions that held rows of the table, worker.c); after max_retries,
 * or on any other error, the job fails and keeps its checkpoint, and
 * mig_resume() retries it.  A wait for the job row (job control in an
 * open transaction) is a wait, not an error.
 *
 * How a kind's walk differs from a backfill's (its chunk statements, a
 * walk that only counts, its end) are callbacks of its entry in the
 * registry (kinds.h); nothing here names a kind.  A job throttled for
 * longer than pg_mig.naptime gives its worker to a queued job of another
 * role that waits for one (see MaybeGiveWorkerBack).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/instrument.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"

#include "pg_mig.h"
#include "steps.h"
#include "worker.h"
#include "version_compat.h"

#define THROTTLE_MIN_WAIT_MS	100
#define THROTTLE_MAX_WAIT_MS	2000
#define RATE_WINDOW_S			10.0

typedef MigStepOutcome StepOutcome;
#define STEP_CHUNK		MIG_STEP_CHUNK
#define STEP_THROTTLED	MIG_STEP_THROTTLED
#define STEP_RETRY		MIG_STEP_RETRY
#define STEP_STOP		MIG_STEP_STOP

/* the worker's job, for the whole life of the process */
static int64 job_id;
static MigWorkerArgs worker_args;
static MemoryContext job_context;
static List *targets;			/* of MigTarget *, in job_context */
static MigChunkPlan *chunk_plan;
static int	chunk_plan_ord = -1;
/* the table the chunks of chunk_plan write: the one bloat control vacuums */
static Oid	chunk_plan_writes = InvalidOid;

/* run-time state */
static int	current_batch;
static int	last_seen_batch_size;
static int64 lock_timeout_ms = 1000;
static bool throttled_now;
static bool throttle_event_recorded;	/* the span's 'throttled' event is */
static bool paced_now;			/* the pacer holds the job below its free pace */
static TimestampTz paced_since;
static bool paced_event_recorded;
/* within a span of pacing: whether the pacer holds the next chunk now (the
 * job cannot move: stalled, see MigSetStalled), since when, and for how long
 * it did so before in this span */
static bool pace_stalled;
static TimestampTz pace_stalled_since;
static int64 paced_stall_ms;
static TimestampTz throttled_since;
static char *throttle_reason;	/* in job_context */
static long throttle_wait_ms = THROTTLE_MIN_WAIT_MS;
static TimestampTz last_chunk_end;
static double rows_rate;
static double keys_rate;
static double batch_rate_ewma;	/* keys per ms, for the adaptive batch size */
static MigJob *chunk_job;		/* in the step's memory: valid until the next step */

/*
 * The verification after a walk with a where clause (see RunVerifyChunk):
 * in memory only, for it changes nothing; a worker that starts again on a
 * walked job counts again from the first key.
 */
static int	verify_wanted = -1;	/* -1: not looked at yet */
static int	verify_ord;
static int	verify_nkey;
static char **verify_key;		/* in job_context */
static int64 verify_rows;
static MigChunkPlan *verify_plan;
/*
 * A parallel job is verified once every lane is done, by lane 1's worker,
 * over the whole key range (LaneVerifies); verified_text is the count it
 * found, for FinishLaneJob (in job_context).
 */
static bool lane_verifies;
static char *verified_text;

/* a lane of a parallel job (worker_args.lane > 0; see lanes.c) */
static bool lane_finished;		/* the lane is done: finish the job if all are */
static bool promote_queued;		/* resumed while alive: set running after the step */

static MigJob *LockJobRow(bool exclusive);
static StepOutcome RunChunk(MigJob *job, long *delay_ms);
static bool VerifyWanted(MigJob *job);
static bool LaneVerifies(MigJob *job);
static StepOutcome RunVerifyChunk(MigJob *job, long *delay_ms);
static bool MaybeGiveWorkerBack(const char *reason);
static void EndPacedSpan(void);
static void EndPaceStall(void);
static void ArmTimeouts(int64 lock_ms, int64 statement_ms);
static void FinishWalk(MigJob *job, int64 rows_done, int64 chunks_done);
static void ApplyJobSettings(const MigJob *job);
static bool JobMayRun(MigJob *job);
static void ResolveOldTargets(const MigJob *job);
static char *FormatKey(int n, char **key);

/*
 * MigWalkInit: the job (and lane) this worker walks, for the life of the
 * process.  Caller is the worker (worker.c), before its first step.
 */
void
MigWalkInit(int64 the_job_id, const MigWorkerArgs *args)
{
	job_id = the_job_id;
	worker_args = *args;
	job_context = AllocSetContextCreate(TopMemoryContext, "pg_mig job",
										ALLOCSET_DEFAULT_SIZES);
}

/*
 * ArmTimeouts sets the step's lock_timeout and arms its statement timeout
 * (a background worker has no statement timeout of its own), and lets the
 * step commit asynchronously (see the file header for why that is safe).
 */
static void
ArmTimeouts(int64 lock_ms, int64 statement_ms)
{
	MigSetLockTimeout(lock_ms, GUC_ACTION_LOCAL);
	(void) set_config_option("synchronous_commit", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_LOCAL, true, 0, false);
	disable_timeout(STATEMENT_TIMEOUT, false);
	if (statement_ms > 0)
		enable_timeout_after(STATEMENT_TIMEOUT, (int) Min(statement_ms, INT_MAX));
}

/*
 * ApplyJobSettings makes the clauses mean what they meant when the job was
 * started: the caller's DateStyle, TimeZone and so on.  The search_path
 * stays pinned (MigPinSession): the clauses were resolved at start, with
 * every name qualified; the chunk's change statement alone runs with the
 * job's (MigChunkPlanSearchPath), for the triggers it fires.
 */
static void
ApplyJobSettings(const MigJob *job)
{
	ListCell   *lc;

	foreach(lc, job->settings)
	{
		char	   *setting = pstrdup(lfirst(lc));
		char	   *eq = strchr(setting, '=');

		if (eq == NULL)
			continue;
		*eq = '\0';
		SetConfigOption(setting, eq + 1, PGC_USERSET, PGC_S_SESSION);
	}
	SetConfigOption("application_name",
					worker_args.lane > 0
					? psprintf("pg_mig job " INT64_FORMAT " lane %d", job_id, worker_args.lane)
					: psprintf("pg_mig job " INT64_FORMAT, job_id),
					PGC_USERSET, PGC_S_SESSION);
}

/*
 * MigWalkStartJob marks the job running, records that it started (or
 * restarted from its checkpoint) and loads its targets: the first step of
 * every job's worker, of whatever kind.  Returns false if the job is not
 * runnable (paused, finished, gone), belongs to another role, or may not
 * run as its owner (JobMayRun, which fails it).  Caller is in the step's
 * transaction (worker.c).
 */
bool
MigWalkStartJob(void)
{
	MigJob	   *job;
	bool		runnable = false;

	pgstat_report_activity(STATE_RUNNING, "pg_mig: starting job");

	/*
	 * A lane starts under the job row FOR SHARE, like its chunks: the other
	 * lanes' chunks hold it FOR SHARE back to back, and new share lockers
	 * do not queue behind a waiting FOR UPDATE, so a lane that locked it FOR
	 * UPDATE (or updated it) here could wait for as long as they run.  A
	 * queued job is set running after the step (PromoteQueuedJob).
	 */
	job = LockJobRow(worker_args.lane == 0);
	if (job != NULL && job->lane > 0 && job->target_ord > 0 &&
		!(job->owner == worker_args.owner &&
		  (job->state == MIG_STATE_QUEUED || job->state == MIG_STATE_RUNNING) &&
		  LaneVerifies(job)))
	{
		/* a lane that is done: only the job may be left to finish */
		lane_finished = true;
	}
	else if (job != NULL && job->owner == worker_args.owner &&
			 (job->state == MIG_STATE_QUEUED || job->state == MIG_STATE_RUNNING) &&
			 JobMayRun(job))
	{
		MemoryContext old;
		MigLane    *lane = NULL;
		char	   *resumed;

		runnable = true;
		ApplyJobSettings(job);
		if (worker_args.lane == 0)
			MigSetState(job_id, MIG_STATE_RUNNING, NULL);
		else if (job->state == MIG_STATE_QUEUED)
			promote_queued = true;
		if (job->lane > 0)
		{
			/* the lane's keys live as long as its target (below) */
			old = MemoryContextSwitchTo(job_context);
			lane = MigLoadLane(job_id, job->lane, false);
			MemoryContextSwitchTo(old);
		}
		if (lane != NULL && lane->done)
			MigRecordEvent(job_id, "started",
						   MigLaneText("every lane is done: verifying the whole key range"));
		else if (job->rows_done == 0 && job->chunks_done == 0 &&
				 (lane != NULL || !job->ever_started))
			MigRecordEvent(job_id, "started",
						   lane ? MigDescribeLane(lane) : NULL);
		else if (lane == NULL && (resumed = MigDescribeResume(job)) != NULL)
			MigRecordEvent(job_id, "started", resumed);
		else
			MigRecordEvent(job_id, "started",
						   MigLaneText(psprintf("resumed from the checkpoint after " INT64_FORMAT " rows (target %d, %s)",
											    job->rows_done, job->target_ord,
											    job->nlast_key ? FormatKey(job->nlast_key, job->last_key)
											    : "from its first key")));
		old = MemoryContextSwitchTo(job_context);
		if (targets)
			list_free_deep(targets);
		targets = MigLoadTargets(job_id);
		ResolveOldTargets(job);
		if (lane != NULL && !lane->done)
		{
			/* the lane walks its part of the one target */
			if (list_length(targets) != 1)
				elog(ERROR, "pg_mig job " INT64_FORMAT " has lanes and %d targets",
					 job_id, list_length(targets));
			targets = list_make1(MigLaneTarget(linitial(targets), lane));
		}
		MemoryContextSwitchTo(old);
		current_batch = job->current_batch > 0 ? job->current_batch : job->batch_size;
		last_seen_batch_size = job->batch_size;
		lock_timeout_ms = job->lock_timeout_ms;
		/* the rate counts from now; the history gets a point where it starts */
		MigResetRate(job_id, worker_args.lane);
		MigRecordSample(job, worker_args.lane, NULL, true);
	}
	return runnable;
}

/*
 * JobMayRun checks, before the worker does anything for the job, what it
 * must not take from the job tables on trust (MigJobRunProblem): the owner
 * still exists under its name, may log in, and holds UPDATE on the table,
 * which is still the one of the stored name.  If not, the job fails with
 * the reason.  Caller is in the step's transaction, with the job row
 * locked.
 */
static bool
JobMayRun(MigJob *job)
{
	char	   *problem;

	MigLoadJobKind(job);
	problem = MigJobRunProblem(job);

	if (problem == NULL)
		return true;
	ereport(LOG,
			(errmsg("pg_mig job " INT64_FORMAT " cannot run: %s", job_id, problem)));
	MigSetState(job_id, MIG_STATE_FAILED, problem);
	MigRecordEvent(job_id, "failed", problem);
	return false;
}

/*
 * ResolveOldTargets resolves the clauses of targets that have none yet (a
 * job started by pg_mig 0.2), and the throttle query of such a job, once,
 * with the search_path the job was started with, and records them; from
 * then on they are used as if they had been resolved at start.  Allocates
 * in the current memory context.
 */
static void
ResolveOldTargets(const MigJob *job)
{
	ListCell   *lc;
	bool		old_job = false;
	int			nest;

	if (job->set_clause == NULL)
		return;
	nest = NewGUCNestLevel();
	(void) set_config_option("search_path", job->search_path,
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	foreach(lc, targets)
	{
		MigTarget  *target = lfirst(lc);

		/* a delete's targets have no set clause but a resolved where clause */
		if (target->set_clause != NULL || target->where_clause != NULL)
			continue;
		old_job = true;
		MigResolveClauses(target, job->set_clause, job->where_clause);
		MigSetTargetClauses(job_id, target);
	}
	if (old_job && job->throttle_query)
	{
		/* its throttle query too, as mig_start_backfill now stores it */
		const char *cols[1] = {"throttle_query"};
		Oid			types[1] = {TEXTOID};
		Datum		values[1];
		bool		nulls[1] = {false};

		values[0] = CStringGetTextDatum(MigResolveThrottleQuery(job->throttle_query));
		MigSetJobColumns(job_id, 1, cols, types, values, nulls);
	}
	AtEOXact_GUC(true, nest);
}

/*
 * LockJobRow locks and loads the job row, waiting for as long as another
 * transaction holds it (an open mig_pause(), mig_set(), ...), with no lock
 * timeout: the step holds nothing else yet, and a wait for job control is
 * not a chunk failure, so it must not be retried as one (and halve the
 * batch) nor end the worker.  Caller is in the step's transaction.
 */
static MigJob *
LockJobRow(bool exclusive)
{
	MigJob	   *job;
	MigLane    *lane;

	(void) set_config_option("lock_timeout", "0", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_LOCAL, true, 0, false);
	if (worker_args.lane == 0)
		return MigLoadJob(job_id, true);

	/*
	 * A lane: the job row FOR SHARE for a chunk (the lanes run side by side;
	 * job control waits for them), FOR UPDATE to change the job; then the
	 * lane's own row, whose checkpoint the lane uses.  A new share lock does
	 * not queue behind a waiting FOR UPDATE, so while the lanes' chunks
	 * overlap, job control (or a lane failing the job) could wait for ever:
	 * whoever is about to lock the row FOR UPDATE says so (MigLoadJob), and a
	 * lane takes no new share lock until it has had its turn.
	 */
	if (!exclusive)
	{
		pgstat_report_activity(STATE_RUNNING, "pg_mig: waiting for job control");
		while (MigJobLockAnnounced(worker_args.dboid, job_id))
		{
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 10L, MigWaitEvent(MIG_WAIT_JOB_CONTROL));
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
		}
	}
	job = exclusive ? MigLoadJob(job_id, true) : MigLoadJobShared(job_id);
	if (job == NULL)
		return NULL;
	lane = MigLoadLane(job_id, worker_args.lane, true);
	if (lane == NULL)
		return NULL;
	MigApplyLane(job, lane);
	return job;
}

/*
 * MigWalkChunkTable: the table whose rows the chunks write now (a target of
 * the job: a partition of its table, or a revert's job table); InvalidOid
 * before the first chunk
 */
Oid
MigWalkChunkTable(void)
{
	return chunk_plan_writes;
}

/* MigLaneText: an event's detail or a step's words, naming a worker's lane */
const char *
MigLaneText(const char *detail)
{
	if (worker_args.lane == 0)
		return detail;
	return psprintf("lane %d: %s", worker_args.lane, detail);
}

/* MigWalkLaneFinished: this worker's lane is done */
bool
MigWalkLaneFinished(void)
{
	return lane_finished;
}

/*
 * MigWalkFinishLanes: a lane is done; if every lane of the job is, the job
 * is finished (lanes.c); a job to be verified only by lane 1's worker,
 * with its count (RunVerifyChunk).  Caller is in a transaction of its own
 * (worker.c), which only logs an error here: the lane's worker ends, the
 * launcher starts a worker for the lanes again (lane 1 if all are done),
 * and that one finishes the job.
 */
void
MigWalkFinishLanes(void)
{
	int64		rows_done;
	int64		chunks_done;
	MigJob	   *job;

	pgstat_report_activity(STATE_RUNNING, "pg_mig: finishing job");
	(void) set_config_option("lock_timeout", "0", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_LOCAL, true, 0, false);
	MigVacuumSummary(job_id, worker_args.lane);
	job = MigLoadJob(job_id, false);
	if (job != NULL &&
		MigFinishLanes(job_id, VerifyWanted(job), verified_text, &rows_done, &chunks_done))
		FinishWalk(MigLoadJob(job_id, false), rows_done, chunks_done);
}

/*
 * MigWalkPromotePending: a lane found its job queued (resumed while the
 * lane's worker was still there); MigWalkPromote sets it running, in a
 * transaction of its own after the step, holding no share lock on the job
 * row that the other lanes could hold too.
 */
bool
MigWalkPromotePending(void)
{
	return promote_queued;
}

void
MigWalkPromote(void)
{
	MigJob	   *job;

	promote_queued = false;
	job = LockJobRow(true);
	if (job != NULL && job->state == MIG_STATE_QUEUED)
		MigSetState(job_id, MIG_STATE_RUNNING, NULL);
}

/*
 * MigWalkStep runs one step of the walk (see the file header) and says how
 * it went and how long to wait before the next one; *changed: the job's
 * row changed in a way others are told of.  Caller is in the step's
 * transaction (worker.c).
 */
StepOutcome
MigWalkStep(long *delay_ms, bool *changed_out)
{
	StepOutcome outcome = STEP_STOP;
	bool		changed = false;

	chunk_job = NULL;
	{
		MigJob	   *job;

		pgstat_report_activity(STATE_RUNNING, "pg_mig: checking job");
		job = LockJobRow(false);

		if (job == NULL || job->owner != worker_args.owner)
			outcome = STEP_STOP;
		else if (job->state != MIG_STATE_RUNNING && job->state != MIG_STATE_QUEUED)
			outcome = STEP_STOP;	/* paused, cancelled, ... by a user */
		else
		{
			char	   *reason = NULL;

			if (job->state == MIG_STATE_QUEUED && worker_args.lane > 0)
				promote_queued = true;	/* after this step: see PromoteQueuedJob */
			else if (job->state == MIG_STATE_QUEUED)
			{
				/* resumed while this worker was still alive */
				MigSetState(job_id, MIG_STATE_RUNNING, NULL);
				changed = true;
			}
			lock_timeout_ms = job->lock_timeout_ms;
			ArmTimeouts(job->lock_timeout_ms, job->statement_timeout_ms);
			if (job->batch_size != last_seen_batch_size)
			{
				/* mig_set changed the batch size: adapt from there afresh */
				current_batch = job->batch_size;
				last_seen_batch_size = job->batch_size;
				batch_rate_ewma = 0;
			}

			if (MigThrottleCheck(job, throttled_now, &reason))
			{
				if (!throttled_now)
				{
					/* a stop ends a span of pacing: its time is the stop's */
					if (paced_now)
						EndPacedSpan();
					throttled_now = true;
					throttled_since = GetCurrentTimestamp();
					throttle_wait_ms = THROTTLE_MIN_WAIT_MS;
					/* one throttled / unthrottled pair per interval (pace.c) */
					throttle_event_recorded = MigThrottleEventStart();
					if (throttle_event_recorded)
						MigRecordEvent(job_id, "throttled", MigLaneText(reason));
					MigSetStalled(job_id, worker_args.lane, true);
				}
				MigRecordSample(job, worker_args.lane, reason, false);
				if (job->throttled == NULL || strcmp(job->throttled, reason) != 0)
				{
					if (worker_args.lane > 0)
						MigSetLaneThrottled(job_id, worker_args.lane, reason);
					else
						MigSetThrottled(job_id, reason);
				}
				if (throttle_reason)
					pfree(throttle_reason);
				throttle_reason = MemoryContextStrdup(job_context, reason);
				*delay_ms = throttle_wait_ms;
				throttle_wait_ms = Min(throttle_wait_ms * 2, THROTTLE_MAX_WAIT_MS);
				outcome = STEP_THROTTLED;
				if (MaybeGiveWorkerBack(reason))
				{
					outcome = STEP_STOP;
					changed = true;
				}
			}
			else
			{
				long		pace_ms = 0;
				char	   *pace_reason = NULL;
				char	   *summary;

				if (throttled_now)
				{
					long		secs;
					int			usecs;

					TimestampDifference(throttled_since, GetCurrentTimestamp(), &secs, &usecs);
					if (worker_args.lane > 0)
						MigSetLaneThrottled(job_id, worker_args.lane, NULL);
					else
						MigSetThrottled(job_id, NULL);
					job->throttled = NULL;
					if (throttle_event_recorded)
						MigRecordEvent(job_id, "unthrottled",
									   MigLaneText(psprintf("after %.1f s: %s", secs + usecs / 1e6,
														    throttle_reason ? throttle_reason : "?")));
					summary = MigThrottleEventEnd(throttle_event_recorded, secs + usecs / 1e6,
												  throttle_reason);
					if (summary)
						MigRecordEvent(job_id, "throttled", MigLaneText(summary));
					MigSetStalled(job_id, worker_args.lane, false);
					throttled_now = false;
				}

				/*
				 * The pacer (pace.c): under a lag budget or max_app_latency
				 * the chunk may have to wait for its turn; throttled says so
				 * while the job runs slower than its free pace.
				 */
				if (MigPaceGate(job, &pace_ms, &pace_reason) ||
					pace_reason != NULL || job->throttled != NULL)
				{
					if (MigPaceThrottledWrite(job->throttled, pace_reason))
					{
						if (worker_args.lane > 0)
							MigSetLaneThrottled(job_id, worker_args.lane, pace_reason);
						else
							MigSetThrottled(job_id, pace_reason);
					}
					summary = MigPaceSummary(pace_reason);
					if (summary)
						MigRecordEvent(job_id, "paced", MigLaneText(summary));
				}

				/*
				 * A span of pacing is a throttled span (slower than the free
				 * pace), with its events under the same limit as stops.
				 */
				if (pace_reason != NULL && !paced_now)
				{
					paced_now = true;
					paced_since = GetCurrentTimestamp();
					paced_stall_ms = 0;
					paced_event_recorded = MigThrottleEventStart();
					if (paced_event_recorded)
						MigRecordEvent(job_id, "throttled", MigLaneText(pace_reason));
				}
				else if (pace_reason == NULL && paced_now)
					EndPacedSpan();
				if (pace_ms > 0)
				{
					/* held by the pacer in a span of pacing: it cannot move */
					if (paced_now && !pace_stalled)
					{
						MigSetStalled(job_id, worker_args.lane, true);
						pace_stalled = true;
						pace_stalled_since = GetCurrentTimestamp();
					}
					if (pace_reason != NULL)
						MigRecordSample(job, worker_args.lane, pace_reason, false);
					*delay_ms = pace_ms;
					outcome = STEP_THROTTLED;
				}
				else
				{
					EndPaceStall();
					outcome = RunChunk(job, delay_ms);
					/* the walk is done: a span of pacing ends with it */
					if (outcome == STEP_STOP && paced_now)
						EndPacedSpan();
				}
				changed = changed || (outcome == STEP_STOP);
				/* (not the steps that verify a walked job: they change nothing) */
				if (outcome == STEP_CHUNK && job->target_ord < list_length(targets))
					chunk_job = job;
			}
		}
	}
	*changed_out = changed;
	return outcome;
}

/*
 * MigWalkAfterStep: bloat control, a VACUUM behind the walk, after the
 * step's chunk committed.  Caller is between transactions (worker.c).
 */
void
MigWalkAfterStep(StepOutcome outcome, long *delay_ms)
{
	if (chunk_job != NULL && outcome == STEP_CHUNK && OidIsValid(chunk_plan_writes))
		MigMaybeVacuum(chunk_job, chunk_plan_writes, delay_ms);
	chunk_job = NULL;
}

/*
 * EndPacedSpan: the pacer no longer holds the job (or the walk is done):
 * the span's 'unthrottled' event if its start was recorded, else it is
 * counted for the summary (pace.c).  Caller is in the step's transaction.
 */
static void
EndPacedSpan(void)
{
	long		secs;
	int			usecs;
	char	   *summary;

	paced_now = false;
	EndPaceStall();
	TimestampDifference(paced_since, GetCurrentTimestamp(), &secs, &usecs);
	/*
	 * Throttled time is the time slower than the free pace: the whole span;
	 * its stalls were counted as they ended (MigSetStalled), the rest here.
	 */
	MigAddThrottledMs(job_id, worker_args.lane,
					  Max((int64) secs * 1000 + usecs / 1000 - paced_stall_ms, 0));
	paced_stall_ms = 0;
	if (paced_event_recorded)
		MigRecordEvent(job_id, "unthrottled",
					   MigLaneText(psprintf("after %.1f s of pacing", secs + usecs / 1e6)));
	summary = MigThrottleEventEnd(paced_event_recorded, secs + usecs / 1e6, "pacing");
	if (summary)
		MigRecordEvent(job_id, "throttled", MigLaneText(summary));
}

/*
 * EndPaceStall: the pacer no longer holds the next chunk (it runs, or the
 * span of pacing ends); the stall's time goes to throttled_ms.  Caller is in
 * the step's transaction.
 */
static void
EndPaceStall(void)
{
	if (!pace_stalled)
		return;
	pace_stalled = false;
	MigSetStalled(job_id, worker_args.lane, false);
	paced_stall_ms += TimestampDifferenceMilliseconds(pace_stalled_since, GetCurrentTimestamp());
}

/*
 * MaybeGiveWorkerBack: a job that has been throttled for longer than
 * pg_mig.naptime while a queued job of another role waits for a free
 * worker gives its worker to that job: it goes back to queued, with the
 * reason in throttled, and the worker ends; the launcher starts it again
 * when a worker is free.  Caller is in the step's transaction and holds
 * the job row.  Returns true if the worker is to end.
 */
static bool
MaybeGiveWorkerBack(const char *reason)
{
	int64		other_job;
	long		secs;
	int			usecs;
	char	   *why;

	/* a lane does not give way: its job would go back to queued as a whole */
	if (!throttled_now || worker_args.lane > 0 ||
		!TimestampDifferenceExceeds(throttled_since, GetCurrentTimestamp(),
									mig_naptime_s * 1000))
		return false;
	other_job = MigTakeStarved(worker_args.owner);
	if (other_job == 0)
		return false;
	TimestampDifference(throttled_since, GetCurrentTimestamp(), &secs, &usecs);
	why = psprintf("gave its worker to job " INT64_FORMAT " of another role after %ld s throttled: %s",
				   other_job, secs, reason);
	MigSetState(job_id, MIG_STATE_QUEUED, NULL);
	MigSetThrottled(job_id, why);
	MigRecordEvent(job_id, "yielded", why);
	return true;
}

/*
 * RunChunk runs the next chunk of the job and writes its checkpoint, in the
 * step's transaction.  On the last chunk of the last target it marks the
 * job succeeded.
 */
static StepOutcome
RunChunk(MigJob *job, long *delay_ms)
{
	MigTarget  *target;
	MigChunkResult result;
	MigCheckpoint cp;
	TimestampTz start;
	TimestampTz end;
	int64		wal_before;
	int64		chunk_ms;
	double		dt;
	long		secs;
	int			usecs;

	if (job->target_ord >= list_length(targets))
	{
		if (worker_args.lane > 0 && LaneVerifies(job))
			return RunVerifyChunk(job, delay_ms);
		else if (worker_args.lane > 0)
			lane_finished = true;
		else if (VerifyWanted(job))
			return RunVerifyChunk(job, delay_ms);
		else
			FinishWalk(job, job->rows_done, job->chunks_done);
		return STEP_STOP;
	}

	target = list_nth(targets, job->target_ord);
	if (chunk_plan_ord != target->ord)
	{
		MemoryContext old = MemoryContextSwitchTo(job_context);
		const MigKindDef *def;

		if (chunk_plan)
			MigFreeChunkPlan(chunk_plan);
		chunk_plan = NULL;
		chunk_plan_ord = -1;
		MigLoadJobKind(job);
		def = MigKindDefOf(job->kind);
		/* the kind's own statements (kind_revert.c: keeping old values, a revert) */
		if (def->chunk_plan)
			chunk_plan = def->chunk_plan(job, target);
		if (chunk_plan == NULL)
			chunk_plan = MigPrepareChunkPlanFor(target, target->set_clause,
												target->where_clause,
												def->counts_only && def->counts_only(job));
		MigChunkPlanSearchPath(chunk_plan, job->search_path);
		chunk_plan_ord = target->ord;
		/* a revert walks its kept table, but writes (and bloats) the job's table */
		chunk_plan_writes = def->writes_job_table ? job->relid : target->relid;
		if (def->walk_begin)
			def->walk_begin(job);
		MemoryContextSwitchTo(old);
	}

	pgstat_report_activity(STATE_RUNNING,
						   psprintf("pg_mig job " INT64_FORMAT ": chunk of %d keys of %s after %s",
									job_id, current_batch, target->relation_name,
									job->nlast_key ? FormatKey(job->nlast_key, job->last_key)
									: "the first key"));
	start = GetCurrentTimestamp();
	wal_before = pgWalUsage.wal_bytes;
	MigRunChunk(chunk_plan, job->nlast_key, job->last_key, current_batch, &result);
	end = GetCurrentTimestamp();
	TimestampDifference(start, end, &secs, &usecs);
	chunk_ms = secs * 1000 + usecs / 1000;

	/* rates over a window of about RATE_WINDOW_S, wall clock */
	TimestampDifference(last_chunk_end ? last_chunk_end : start, end, &secs, &usecs);
	dt = Max(secs + usecs / 1e6, 1e-3);
	{
		double		alpha = 1.0 - exp(-dt / RATE_WINDOW_S);

		if (last_chunk_end == 0)
		{
			rows_rate = result.rows / dt;
			keys_rate = result.keys / dt;
		}
		else
		{
			rows_rate += alpha * (result.rows / dt - rows_rate);
			keys_rate += alpha * (result.keys / dt - keys_rate);
		}
	}
	last_chunk_end = end;

	memset(&cp, 0, sizeof(cp));
	cp.target_ord = job->target_ord;
	if (result.target_done)
	{
		cp.target_ord++;
		cp.nlast_key = 0;
	}
	else
	{
		cp.nlast_key = target->nkeys;
		cp.last_key = result.end_key;
	}
	cp.rows = result.rows;
	cp.keys = result.keys;
	cp.wal_bytes = pgWalUsage.wal_bytes - wal_before;
	MigPaceChunkDone(start, chunk_ms, cp.wal_bytes);
	cp.current_batch = current_batch;
	cp.rows_per_sec = rows_rate;
	cp.keys_per_sec = keys_rate;
	{
		/* the job's history: its counters after this chunk */
		MigJob		after = *job;

		after.rows_done += result.rows;
		after.keys_done += result.keys;
		after.wal_bytes += cp.wal_bytes;
		after.current_batch = current_batch;
		MigRecordSample(&after, worker_args.lane, NULL,
						result.target_done && cp.target_ord >= list_length(targets));
	}
	if (worker_args.lane > 0)
	{
		MigSaveLaneCheckpoint(job_id, worker_args.lane, &cp,
							  result.target_done && cp.target_ord >= list_length(targets));
		if (result.target_done && cp.target_ord >= list_length(targets))
		{
			/* lane 1 verifies the job if every lane is done (next step) */
			if (worker_args.lane == 1 && VerifyWanted(job))
			{
				*delay_ms = 0;
				return STEP_CHUNK;
			}
			lane_finished = true;
			return STEP_STOP;
		}
	}
	else
	{
		MigSaveCheckpoint(job_id, &cp);
		if (result.target_done && cp.target_ord >= list_length(targets))
		{
			/* the walk is done; with a where clause, the next steps verify it */
			if (VerifyWanted(job))
			{
				*delay_ms = 0;
				return STEP_CHUNK;
			}
			FinishWalk(job, job->rows_done + result.rows, job->chunks_done + 1);
			return STEP_STOP;
		}
	}

	/*
	 * The next chunk's size and the pause before it.  The lanes of a job
	 * share its budgets: each lane's chunk writes at most its share of the
	 * WAL one chunk may write under max_lag_bytes, and paces itself to its
	 * share of max_wal_rate, so n lanes together lag and write no more than
	 * one walker would.
	 */
	{
		MigJob		share = *job;

		if (job->parallel > 1 && worker_args.lane > 0)
		{
			share.max_lag_bytes = job->max_lag_bytes > 0 ?
				Max(job->max_lag_bytes / job->parallel, 1) : 0;
			share.max_wal_rate = job->max_wal_rate > 0 ?
				Max(job->max_wal_rate / job->parallel, 1) : 0;
		}
		current_batch = MigNextBatchSize(&share, current_batch, chunk_ms, result.keys,
										 cp.wal_bytes, &batch_rate_ewma);
		*delay_ms = (long) MigPacingDelayMs(&share, chunk_ms, cp.wal_bytes);
	}
	return STEP_CHUNK;
}

/*
 * VerifyWanted: the job is verified after its walk: a backfill or a delete
 * with a where clause, with its knob verify on (the kind argument
 * verify=false turns it off).  Caller is in a transaction.
 */
static bool
VerifyWanted(MigJob *job)
{
	if (verify_wanted < 0)
	{
		const char *knob;

		MigLoadJobKind(job);
		knob = MigKindArg(job, "verify");	/* MIG_VERIFY_OFF: "verify=false" */
		verify_wanted = job->where_clause != NULL &&
			MigKindDefOf(job->kind)->verify &&
			!(knob && strcmp(knob, "false") == 0);
	}
	return verify_wanted > 0;
}

/*
 * LaneVerifies: this worker verifies its parallel job now: it is lane 1's,
 * the job is to be verified and every lane is done.  The lanes walked
 * parts of the key range, the verification counts the whole of it (the
 * job's one target, loaded again), in steps of this worker.  Caller is in
 * the step's transaction, with the job row locked.
 */
static bool
LaneVerifies(MigJob *job)
{
	if (!lane_verifies && worker_args.lane == 1 && VerifyWanted(job) &&
		MigLanesLeft(job_id) == 0)
	{
		MemoryContext old = MemoryContextSwitchTo(job_context);

		/* (the lane's target stays allocated: its chunk plan may use it) */
		targets = MigLoadTargets(job_id);
		MemoryContextSwitchTo(old);
		lane_verifies = true;
	}
	return lane_verifies;
}

/*
 * RunVerifyChunk counts, one chunk of keys at a time (the job's batch size,
 * and throttled like a chunk: it is a step of the same loop, under the same
 * health signals; with no pause after it, for it writes nothing), the rows up
 * to the job's fixed upper key that still match its where clause: rows the
 * application wrote below the upper key during the walk that the set
 * clause does not fix (or that a delete left).  At the end it records the
 * event verified ("0 rows left" or the count) and finishes the job.  It
 * changes nothing and keeps no checkpoint.  Caller is in the step's
 * transaction, with the job row locked.
 */
static StepOutcome
RunVerifyChunk(MigJob *job, long *delay_ms)
{
	MigTarget  *target;
	MigChunkResult result;

	if (verify_ord < list_length(targets))
	{
		target = list_nth(targets, verify_ord);
		if (verify_plan == NULL)
		{
			MemoryContext old = MemoryContextSwitchTo(job_context);

			verify_plan = MigPrepareChunkPlanFor(target, NULL, target->where_clause, true);
			MigChunkPlanSearchPath(verify_plan, job->search_path);
			MemoryContextSwitchTo(old);
		}
		pgstat_report_activity(STATE_RUNNING,
							   psprintf("pg_mig job " INT64_FORMAT ": verifying %d keys of %s",
										job_id, current_batch, target->relation_name));
		MigRunChunk(verify_plan, verify_nkey, verify_key, current_batch, &result);
		verify_rows += result.rows;
		if (result.target_done)
		{
			verify_ord++;
			verify_nkey = 0;
			verify_key = NULL;
			MigFreeChunkPlan(verify_plan);
			verify_plan = NULL;
		}
		else
		{
			MemoryContext old = MemoryContextSwitchTo(job_context);

			verify_key = palloc(sizeof(char *) * target->nkeys);
			for (int i = 0; i < target->nkeys; i++)
				verify_key[i] = pstrdup(result.end_key[i]);
			verify_nkey = target->nkeys;
			MemoryContextSwitchTo(old);
		}
	}
	if (verify_ord < list_length(targets))
	{
		/* the health signals hold it like a chunk; it writes nothing to pace */
		*delay_ms = 0;
		return STEP_CHUNK;
	}
	if (worker_args.lane > 0)
	{
		/* the job is finished with the lanes' sums (FinishLaneJob) */
		verified_text = MemoryContextStrdup(job_context,
											psprintf(INT64_FORMAT " rows left", verify_rows));
		lane_finished = true;
		return STEP_STOP;
	}
	MigRecordEvent(job_id, "verified", psprintf(INT64_FORMAT " rows left", verify_rows));
	FinishWalk(job, job->rows_done, job->chunks_done);
	return STEP_STOP;
}

/*
 * FinishWalk ends the walk of a job, in the transaction of its last chunk
 * (the VACUUMs not recorded yet first): a walk before a step of its kind
 * is recorded as the step "walk" done; a walk that ends its kind's steps
 * ends the job (succeeded, or the kind's own end).
 */
static void
FinishWalk(MigJob *job, int64 rows_done, int64 chunks_done)
{
	const MigKindDef *def;

	MigVacuumSummary(job_id, worker_args.lane);
	MigLoadJobKind(job);
	def = MigKindDefOf(job->kind);
	if (def->walk_at < def->nsteps)
	{
		MigMarkStepDone(job_id, "walk");
		MigRecordEvent(job_id, "step",
					   psprintf("walk: done, " INT64_FORMAT " rows in " INT64_FORMAT " chunks",
								rows_done, chunks_done));
		return;
	}
	if (def->finish_walk)
	{
		def->finish_walk(job, rows_done, chunks_done);
		return;
	}
	MigSetState(job_id, MIG_STATE_SUCCEEDED, NULL);
	MigRecordEvent(job_id, "succeeded",
				   psprintf(INT64_FORMAT " rows %s in " INT64_FORMAT " chunks", rows_done,
							def->walk_verb ? def->walk_verb : "changed", chunks_done));
}

/*
 * MigWalkRecordError records a failed step of the walk: a retry while
 * retries last for a transient error (after backoff(retries) ms, at half
 * the batch after a timeout), else the job fails.  Caller is in a fresh
 * transaction (worker.c's MigRecordStepError), the failed one rolled back.
 */
StepOutcome
MigWalkRecordError(ErrorData *edata, long *delay_ms, MigBackoffFunc backoff_ms)
{
	StepOutcome outcome = STEP_RETRY;
	char	   *message = psprintf("%s (SQLSTATE %s)", edata->message,
								   unpack_sql_state(edata->sqlerrcode));
	MigJob	   *job;
	int			batch = current_batch;

	job = LockJobRow(true);
	if (job == NULL || (job->state != MIG_STATE_RUNNING && job->state != MIG_STATE_QUEUED))
		outcome = STEP_STOP;
	else if (MigErrorIsTransient(edata->sqlerrcode) && job->retries < job->max_retries)
	{
		int			retries = job->retries + 1;
		double		backoff = backoff_ms(retries);

		/* a chunk that timed out is retried at half the size */
		if (edata->sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE ||
			edata->sqlerrcode == ERRCODE_QUERY_CANCELED)
			batch = Max(current_batch / 2, 1);
		if (worker_args.lane > 0)
			MigSetLaneRetries(job_id, worker_args.lane, retries, message);
		else
			MigSetRetries(job_id, retries, message);
		MigRecordEvent(job_id, "retried",
					   MigLaneText(psprintf("attempt %d of %d in %.1f s, batch %d: %s", retries,
										    job->max_retries, backoff / 1000.0, batch, message)));
		*delay_ms = (long) backoff;
	}
	else
	{
		/* a lane that fails fails the job: the other lanes stop at their next chunk */
		if (worker_args.lane > 0)
			MigSetLaneRetries(job_id, worker_args.lane, job->lane_retries, message);
		MigSetState(job_id, MIG_STATE_FAILED, MigLaneText(message));
		MigRecordEvent(job_id, "failed", MigLaneText(message));
		outcome = STEP_STOP;
	}
	current_batch = batch;		/* only once the retry is recorded; see worker.c */
	return outcome;
}

/* FormatKey: "key (a, b)" for messages */
static char *
FormatKey(int n, char **key)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "key (");
	for (int i = 0; i < n; i++)
		appendStringInfo(&buf, "%s%s", i ? ", " : "", key[i]);
	appendStringInfoChar(&buf, ')');
	return buf.data;
}
