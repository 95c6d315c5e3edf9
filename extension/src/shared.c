/*-------------------------------------------------------------------------
 *
 * shared.c
 *	  The small services the other files share, on pg_mig's shared memory
 *	  (made by pg_mig.c): requests to the launcher, worker slots, wake-ups,
 *	  notes, the announced job locks, and the names of states; the SQL
 *	  functions that show the workers.  It calls nothing above it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "access/xact.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "pg_mig.h"
#include "version_compat.h"

PG_FUNCTION_INFO_V1(mig_worker_status);
PG_FUNCTION_INFO_V1(mig_worker_lanes);

MigSharedState *MigShared = NULL;

/* requests and wake-ups that wait for the current transaction to commit */
typedef struct PendingAction
{
	bool		wake_only;
	MigRequest	request;
} PendingAction;
static List *pending_actions = NIL;
static bool announced_lock = false;	/* this backend is in lockers[] */
static void ForgetJobLocks(void);
static bool slot_exit_registered = false;

static void ReleaseWorkerSlot(int code, Datum arg);

/*
 * MigRequireShared raises an error unless the library was preloaded.
 */
void
MigRequireShared(void)
{
	if (MigShared == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pg_mig must be loaded via shared_preload_libraries"),
				 errhint("Add pg_mig to shared_preload_libraries in postgresql.conf and restart the server.")));
}

/*
 * MigPostRequest queues a request for the launcher and wakes it.  A full
 * queue turns into a scan of every database, so no request is lost.
 */
void
MigPostRequest(Oid dboid, int64 job_id, Oid owner, uint64 lanes)
{
	bool		dup = false;

	if (MigShared == NULL)
		return;
	LWLockAcquire(MigShared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < MigShared->nrequests; i++)
	{
		MigRequest *r = &MigShared->requests[i];

		if (r->dboid == dboid && r->job_id == job_id)
		{
			r->lanes |= lanes;
			dup = true;
		}
	}
	if (!dup)
	{
		if (MigShared->nrequests < MIG_MAX_REQUESTS)
		{
			MigRequest *r = &MigShared->requests[MigShared->nrequests++];

			r->dboid = dboid;
			r->job_id = job_id;
			r->owner = owner;
			r->lanes = lanes;
		}
		else
			MigShared->rescan_all = true;
	}
	LWLockRelease(MigShared->lock);
	MigWakeLauncher();
}

static void
RememberAction(bool wake_only, Oid dboid, int64 job_id, Oid owner, uint64 lanes)
{
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
	PendingAction *a = palloc0(sizeof(PendingAction));

	a->wake_only = wake_only;
	a->request.dboid = dboid;
	a->request.job_id = job_id;
	a->request.owner = owner;
	a->request.lanes = lanes;
	pending_actions = lappend(pending_actions, a);
	MemoryContextSwitchTo(old);
}

/* MigRequestAtCommit: MigPostRequest when the current transaction commits */
void
MigRequestAtCommit(Oid dboid, int64 job_id, Oid owner)
{
	RememberAction(false, dboid, job_id, owner, MIG_LANE_BIT(0));
}

/* MigRequestLanesAtCommit: the same for some lanes of a parallel job */
void
MigRequestLanesAtCommit(Oid dboid, int64 job_id, Oid owner, uint64 lanes)
{
	RememberAction(false, dboid, job_id, owner, lanes);
}

/* MigWakeWorkerAtCommit: wake the job's worker when the transaction commits */
void
MigWakeWorkerAtCommit(Oid dboid, int64 job_id)
{
	RememberAction(true, dboid, job_id, InvalidOid, 0);
}

/*
 * MigSubXactCallback: a subtransaction that aborts while this session
 * waits for a job row lock (an error, a lock_timeout, a statement
 * cancelled, in a savepoint or a PL/pgSQL exception block) takes its
 * announcement with it (MigAnnounceJobLock).
 */
void
MigSubXactCallback(SubXactEvent event, SubTransactionId mySubid,
				   SubTransactionId parentSubid, void *arg)
{
	if (announced_lock && event == SUBXACT_EVENT_ABORT_SUB)
		ForgetJobLocks();
}

void
MigXactCallback(XactEvent event, void *arg)
{
	ListCell   *lc;

	if (announced_lock && (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
						   event == XACT_EVENT_PARALLEL_ABORT))
		ForgetJobLocks();
	if (pending_actions == NIL)
		return;
	if (event == XACT_EVENT_COMMIT)
	{
		foreach(lc, pending_actions)
		{
			PendingAction *a = lfirst(lc);

			if (a->wake_only)
				MigWakeWorker(a->request.dboid, a->request.job_id);
			else
				MigPostRequest(a->request.dboid, a->request.job_id, a->request.owner,
							   a->request.lanes);
		}
		MigBroadcastJobChange();
	}
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT)
	{
		list_free_deep(pending_actions);
		pending_actions = NIL;
	}
}

void
MigWakeLauncher(void)
{
	Latch	   *latch;

	if (MigShared == NULL)
		return;
	LWLockAcquire(MigShared->lock, LW_SHARED);
	latch = MigShared->launcher_latch;
	LWLockRelease(MigShared->lock);
	if (latch)
		SetLatch(latch);
}

void
MigBroadcastJobChange(void)
{
	if (MigShared)
		ConditionVariableBroadcast(&MigShared->job_cv);
}

/*
 * MigClaimWorkerSlot claims a slot for (dboid, job_id, lane) for this
 * process.  Returns false if another live process has that lane of the
 * job, or no slot is free.
 * The slot is released when the process exits.
 */
bool
MigClaimWorkerSlot(Oid dboid, int64 job_id, int lane)
{
	int			free_slot = -1;
	bool		taken = false;

	MigRequireShared();
	LWLockAcquire(MigShared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < MigShared->nslots; i++)
	{
		MigWorkerSlot *s = &MigShared->slots[i];

		if (s->in_use && s->pid != MyProcPid && BackendPidGetProc(s->pid) == NULL &&
			kill(s->pid, 0) != 0)
			s->in_use = false;	/* its process is gone */
		if (s->in_use && s->dboid == dboid && s->job_id == job_id && s->lane == lane)
			taken = true;
		if (!s->in_use && free_slot < 0)
			free_slot = i;
	}
	if (!taken && free_slot >= 0)
	{
		MigWorkerSlot *s = &MigShared->slots[free_slot];

		s->in_use = true;
		s->dboid = dboid;
		s->job_id = job_id;
		s->lane = lane;
		s->pid = MyProcPid;
		s->started_at = GetCurrentTimestamp();
		s->wakeup = false;
		s->app_limit_us = 0;
	}
	LWLockRelease(MigShared->lock);
	if (taken || free_slot < 0)
		return false;
	if (!slot_exit_registered)
	{
		before_shmem_exit(ReleaseWorkerSlot, (Datum) 0);
		slot_exit_registered = true;
	}
	return true;
}

static void
ReleaseWorkerSlot(int code, Datum arg)
{
	if (MigShared == NULL)
		return;
	LWLockAcquire(MigShared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < MigShared->nslots; i++)
		if (MigShared->slots[i].in_use && MigShared->slots[i].pid == MyProcPid)
			MigShared->slots[i].in_use = false;
	LWLockRelease(MigShared->lock);
	MigBroadcastJobChange();
	MigWakeLauncher();
}

/* MigLaneWorkerPid: the pid of the worker of one lane (-1: any lane), or 0 */
pid_t
MigLaneWorkerPid(Oid dboid, int64 job_id, int lane)
{
	pid_t		pid = 0;

	if (MigShared == NULL)
		return 0;
	LWLockAcquire(MigShared->lock, LW_SHARED);
	for (int i = 0; i < MigShared->nslots; i++)
	{
		MigWorkerSlot *s = &MigShared->slots[i];

		if (s->in_use && s->dboid == dboid && s->job_id == job_id &&
			(lane < 0 || s->lane == lane) && pid == 0)
			pid = s->pid;
	}
	LWLockRelease(MigShared->lock);
	return pid;
}

/* MigWorkerPid: the pid of a worker of the job (any lane), or 0 */
pid_t
MigWorkerPid(Oid dboid, int64 job_id)
{
	return MigLaneWorkerPid(dboid, job_id, -1);
}

/* MigLiveWorkerPid: MigWorkerPid, if that process still lives, else 0 */
pid_t
MigLiveWorkerPid(Oid dboid, int64 job_id)
{
	pid_t		pid = MigWorkerPid(dboid, job_id);

	return pid != 0 && BackendPidGetProc(pid) != NULL ? pid : 0;
}

/*
 * MigDatabaseWorkers: the pids and jobs of the workers of a database's jobs
 * (every lane), at most max of them; returns how many.
 */
int
MigDatabaseWorkers(Oid dboid, pid_t *pids, int64 *jobs, int max)
{
	int			n = 0;

	if (MigShared == NULL)
		return 0;
	LWLockAcquire(MigShared->lock, LW_SHARED);
	for (int i = 0; i < MigShared->nslots && n < max; i++)
	{
		MigWorkerSlot *s = &MigShared->slots[i];

		if (s->in_use && s->dboid == dboid && s->pid != 0)
		{
			pids[n] = s->pid;
			jobs[n++] = s->job_id;
		}
	}
	LWLockRelease(MigShared->lock);
	return n;
}

/* MigWakeWorker wakes every worker of the job (each of its lanes) */
void
MigWakeWorker(Oid dboid, int64 job_id)
{
	pid_t		pids[MIG_MAX_LANES + 1];
	int			n = 0;

	if (MigShared == NULL)
		return;
	LWLockAcquire(MigShared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < MigShared->nslots; i++)
	{
		MigWorkerSlot *s = &MigShared->slots[i];

		if (s->in_use && s->dboid == dboid && s->job_id == job_id)
		{
			s->wakeup = true;
			if (n < lengthof(pids))
				pids[n++] = s->pid;
		}
	}
	LWLockRelease(MigShared->lock);
	for (int i = 0; i < n; i++)
	{
		PGPROC	   *proc = BackendPidGetProc(pids[i]);

		if (proc)
			SetLatch(&proc->procLatch);
	}
}

/*
 * MigTakeWakeup: whether job control asked this worker to look at its job
 * since the last call.
 */
bool
MigTakeWakeup(void)
{
	bool		result = false;

	if (MigShared == NULL)
		return false;
	LWLockAcquire(MigShared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < MigShared->nslots; i++)
	{
		MigWorkerSlot *s = &MigShared->slots[i];

		if (s->in_use && s->pid == MyProcPid && s->wakeup)
		{
			s->wakeup = false;
			result = true;
		}
	}
	LWLockRelease(MigShared->lock);
	return result;
}

/*
 * MigSetStarved publishes the queued job that waits for a free worker and
 * for nothing else (owner InvalidOid: none), so that a worker whose job has
 * been throttled for long can give its worker back (MigTakeStarved).
 * Called by the launcher.
 */
void
MigSetStarved(Oid owner, int64 starved_job)
{
	if (MigShared == NULL)
		return;
	LWLockAcquire(MigShared->lock, LW_EXCLUSIVE);
	MigShared->starved_owner = owner;
	MigShared->starved_job = starved_job;
	LWLockRelease(MigShared->lock);
}

/*
 * MigStarvedTaken: a worker took the job MigSetStarved published last (or
 * none was published).
 */
bool
MigStarvedTaken(void)
{
	bool		taken;

	if (MigShared == NULL)
		return false;
	LWLockAcquire(MigShared->lock, LW_SHARED);
	taken = !OidIsValid(MigShared->starved_owner);
	LWLockRelease(MigShared->lock);
	return taken;
}

/*
 * MigTakeStarved: if a queued job of a role other than my_owner waits for a
 * free worker, claims it (so that one worker only gives way for it) and
 * returns its id; else returns 0.
 */
int64
MigTakeStarved(Oid my_owner)
{
	int64		result = 0;

	if (MigShared == NULL)
		return 0;
	LWLockAcquire(MigShared->lock, LW_EXCLUSIVE);
	if (OidIsValid(MigShared->starved_owner) && MigShared->starved_owner != my_owner)
	{
		result = MigShared->starved_job;
		MigShared->starved_owner = InvalidOid;
		MigShared->starved_job = 0;
	}
	LWLockRelease(MigShared->lock);
	return result;
}

/*
 * MigSetNote records (text) or forgets (NULL) why a queued job waits.
 */
void
MigSetNote(Oid dboid, int64 job_id, const char *text)
{
	int			found = -1;

	if (MigShared == NULL)
		return;
	LWLockAcquire(MigShared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < MigShared->nnotes; i++)
		if (MigShared->notes[i].dboid == dboid && MigShared->notes[i].job_id == job_id)
			found = i;
	if (text == NULL && found >= 0)
		MigShared->notes[found] = MigShared->notes[--MigShared->nnotes];
	else if (text != NULL)
	{
		if (found < 0 && MigShared->nnotes < MIG_MAX_REQUESTS)
			found = MigShared->nnotes++;
		if (found >= 0)
		{
			MigShared->notes[found].dboid = dboid;
			MigShared->notes[found].job_id = job_id;
			strlcpy(MigShared->notes[found].text, text, MIG_NOTE_LEN);
		}
	}
	LWLockRelease(MigShared->lock);
}

/*
 * MigAnnounceJobLock says that this session is about to lock the row of a
 * job FOR UPDATE (job control, or a lane that changes the job), until it
 * holds the lock (MigJobLockTaken) or its (sub)transaction aborts.  The
 * lanes of a parallel job hold the row FOR SHARE, each for one chunk at a
 * time; a new share lock does not queue behind a waiting FOR UPDATE, so
 * while their chunks overlap the lock would never come: a lane takes no new
 * share lock while another session waits for it (MigJobLockAnnounced).  A
 * session has one entry at most, reused; only a session that may control
 * the job announces (MigLoadJob checks that first).  A full table only
 * means no announcement.
 */
void
MigAnnounceJobLock(Oid dboid, int64 job_id)
{
	int			entry = -1;

	if (MigShared == NULL)
		return;
	LWLockAcquire(MigShared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < MIG_MAX_WAITERS; i++)
	{
		MigJobLocker *l = &MigShared->lockers[i];

		if (l->pid == MyProcPid)
		{
			entry = i;			/* this session's own: reused */
			break;
		}
		if (l->pid != 0 && BackendPidGetProc(l->pid) == NULL)
			l->pid = 0;			/* its process is gone */
		if (l->pid == 0 && entry == -1)
			entry = i;
	}
	if (entry >= 0)
	{
		MigShared->lockers[entry].dboid = dboid;
		MigShared->lockers[entry].job_id = job_id;
		MigShared->lockers[entry].since = GetCurrentTimestamp();
		MigShared->lockers[entry].pid = MyProcPid;
		announced_lock = true;
	}
	LWLockRelease(MigShared->lock);
}

/* MigJobLockTaken: this session holds the row lock it announced */
void
MigJobLockTaken(void)
{
	if (announced_lock)
		ForgetJobLocks();
}

/*
 * MigNoteCleanExit: a job worker ends by itself (its job or lane is done,
 * paused, ...), so that the launcher does not count it among the workers
 * that die young (MigTakeCleanExit).
 */
void
MigNoteCleanExit(void)
{
	if (MigShared == NULL)
		return;
	LWLockAcquire(MigShared->lock, LW_EXCLUSIVE);
	if (MigShared->clean_exits < INT_MAX)
		MigShared->clean_exits++;
	LWLockRelease(MigShared->lock);
}

/* MigTakeCleanExit: the launcher consumes one clean end, if there is one */
bool
MigTakeCleanExit(void)
{
	bool		taken = false;

	if (MigShared == NULL)
		return false;
	LWLockAcquire(MigShared->lock, LW_EXCLUSIVE);
	if (MigShared->clean_exits > 0)
	{
		MigShared->clean_exits--;
		taken = true;
	}
	LWLockRelease(MigShared->lock);
	return taken;
}

/*
 * MigJobLockAnnounced: another live session is about to lock the job's row.
 * An announcement counts while its session waits for a lock, and for
 * MIG_ANNOUNCE_GRACE_MS after it was made (the time to get from the
 * announcement to the wait): a session that announced and then does
 * something else (a stale entry) does not hold the lanes back.
 */
#define MIG_ANNOUNCE_GRACE_MS	1000

bool
MigJobLockAnnounced(Oid dboid, int64 job_id)
{
	bool		result = false;
	TimestampTz now = GetCurrentTimestamp();

	if (MigShared == NULL)
		return false;
	LWLockAcquire(MigShared->lock, LW_SHARED);
	for (int i = 0; i < MIG_MAX_WAITERS && !result; i++)
	{
		MigJobLocker *l = &MigShared->lockers[i];
		PGPROC	   *proc;

		if (l->pid == 0 || l->pid == MyProcPid || l->dboid != dboid ||
			l->job_id != job_id)
			continue;
		proc = BackendPidGetProc(l->pid);
		if (proc == NULL)
			continue;
		result = proc->waitLock != NULL ||
			!TimestampDifferenceExceeds(l->since, now, MIG_ANNOUNCE_GRACE_MS);
	}
	LWLockRelease(MigShared->lock);
	return result;
}

/* ForgetJobLocks: this session's transaction ended, its announcements too */
static void
ForgetJobLocks(void)
{
	announced_lock = false;
	if (MigShared == NULL)
		return;
	LWLockAcquire(MigShared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < MIG_MAX_WAITERS; i++)
		if (MigShared->lockers[i].pid == MyProcPid)
			MigShared->lockers[i].pid = 0;
	LWLockRelease(MigShared->lock);
}

/*
 * MigRegisterWaiter adds this session to (on) or removes it from (off) the
 * sessions waiting in mig_wait, which the session and transaction-age
 * signals of throttling ignore: a job must not wait for its own waiter.
 * A full table only means that the session is counted like any other.
 */
void
MigRegisterWaiter(bool on)
{
	if (MigShared == NULL)
		return;
	LWLockAcquire(MigShared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < MIG_MAX_WAITERS; i++)
	{
		if (on && MigShared->waiters[i] == 0)
		{
			MigShared->waiters[i] = MyProcPid;
			break;
		}
		if (!on && MigShared->waiters[i] == MyProcPid)
			MigShared->waiters[i] = 0;
	}
	LWLockRelease(MigShared->lock);
}

/* MigIsWaiter: whether the process is a session waiting in mig_wait */
bool
MigIsWaiter(pid_t pid)
{
	bool		found = false;

	if (MigShared == NULL || pid == 0)
		return false;
	LWLockAcquire(MigShared->lock, LW_SHARED);
	for (int i = 0; i < MIG_MAX_WAITERS && !found; i++)
		found = (MigShared->waiters[i] == pid);
	LWLockRelease(MigShared->lock);
	return found;
}

/*
 * MigTrySubtransaction runs fn(arg) in an internal subtransaction.  Returns
 * NULL if it succeeded, or its error, copied into the caller's memory
 * context, after rolling the subtransaction back: the caller's transaction
 * goes on either way.
 */
ErrorData *
MigTrySubtransaction(void (*fn) (void *), void *arg)
{
	MemoryContext ctx = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	ErrorData  *volatile edata = NULL;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(ctx);
	PG_TRY();
	{
		fn(arg);
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(ctx);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(ctx);
	CurrentResourceOwner = owner;
	return edata;
}

const char *
MigStateName(MigJobState state)
{
	switch (state)
	{
		case MIG_STATE_QUEUED:
			return "queued";
		case MIG_STATE_RUNNING:
			return "running";
		case MIG_STATE_PAUSED:
			return "paused";
		case MIG_STATE_SUCCEEDED:
			return "succeeded";
		case MIG_STATE_FAILED:
			return "failed";
		case MIG_STATE_CANCELLED:
			return "cancelled";
	}
	return "?";
}

MigJobState
MigStateFromName(const char *name)
{
	static const MigJobState all[] = {MIG_STATE_QUEUED, MIG_STATE_RUNNING,
		MIG_STATE_PAUSED, MIG_STATE_SUCCEEDED, MIG_STATE_FAILED, MIG_STATE_CANCELLED};

	for (int i = 0; i < lengthof(all); i++)
		if (name && strcmp(name, MigStateName(all[i])) == 0)
			return all[i];
	elog(ERROR, "unknown pg_mig job state \"%s\"", name ? name : "(null)");
	return MIG_STATE_FAILED;	/* keep compiler quiet */
}

/*
 * MigErrorIsTransient: errors after which the same chunk or schema step may
 * well succeed when tried again (lock and serialization conflicts, a
 * cancelled statement, a shortage of resources); the others fail the job.
 */
bool
MigErrorIsTransient(int sqlerrcode)
{
	switch (sqlerrcode)
	{
		case ERRCODE_T_R_SERIALIZATION_FAILURE:
		case ERRCODE_T_R_DEADLOCK_DETECTED:
		case ERRCODE_LOCK_NOT_AVAILABLE:
		case ERRCODE_QUERY_CANCELED:
		case ERRCODE_OUT_OF_MEMORY:
		case ERRCODE_INSUFFICIENT_RESOURCES:
		case ERRCODE_DISK_FULL:
		case ERRCODE_TOO_MANY_CONNECTIONS:
			return true;
		default:
			return false;
	}
}

/* MigIntervalToMs: months count 30 days, days 24 hours */
int64
MigIntervalToMs(Datum interval)
{
	Interval   *iv = DatumGetIntervalP(interval);

	return ((int64) iv->month * 30 + iv->day) * INT64CONST(86400000) + iv->time / 1000;
}

Datum
MigMsToInterval(int64 ms)
{
	Interval   *iv = palloc0(sizeof(Interval));

	iv->time = ms * 1000;
	return IntervalPGetDatum(iv);
}

/*
 * mig_worker_status: the jobs of this database that have a worker (with its
 * pid) or a note why they wait for one.
 */
Datum
mig_worker_status(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	InitMaterializedSRF(fcinfo, 0);
	if (MigShared == NULL)
		PG_RETURN_VOID();
	LWLockAcquire(MigShared->lock, LW_SHARED);
	for (int i = 0; i < MigShared->nslots; i++)
	{
		MigWorkerSlot *s = &MigShared->slots[i];
		Datum		values[3];
		bool		nulls[3] = {false, false, true};
		bool		seen = false;

		if (!s->in_use || s->dboid != MyDatabaseId)
			continue;
		/* one row per job: the worker of its lowest lane, and its note */
		for (int j = 0; j < MigShared->nslots; j++)
		{
			MigWorkerSlot *o = &MigShared->slots[j];

			if (j != i && o->in_use && o->dboid == s->dboid && o->job_id == s->job_id &&
				(o->lane < s->lane || (o->lane == s->lane && j < i)))
				seen = true;
		}
		if (seen)
			continue;
		values[0] = Int64GetDatum(s->job_id);
		values[1] = Int32GetDatum(s->pid);
		for (int j = 0; j < MigShared->nnotes; j++)
			if (MigShared->notes[j].dboid == s->dboid &&
				MigShared->notes[j].job_id == s->job_id)
			{
				values[2] = CStringGetTextDatum(MigShared->notes[j].text);
				nulls[2] = false;
			}
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	for (int i = 0; i < MigShared->nnotes; i++)
	{
		MigNote    *n = &MigShared->notes[i];
		Datum		values[3];
		bool		nulls[3] = {false, true, false};
		bool		has_slot = false;

		if (n->dboid != MyDatabaseId)
			continue;
		for (int j = 0; j < MigShared->nslots; j++)
			if (MigShared->slots[j].in_use && MigShared->slots[j].dboid == n->dboid &&
				MigShared->slots[j].job_id == n->job_id)
				has_slot = true;
		if (has_slot)
			continue;
		values[0] = Int64GetDatum(n->job_id);
		values[2] = CStringGetTextDatum(n->text);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	LWLockRelease(MigShared->lock);
	PG_RETURN_VOID();
}

/*
 * mig_worker_lanes: the lanes of this database's jobs that have a worker,
 * with its pid.
 */
Datum
mig_worker_lanes(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	InitMaterializedSRF(fcinfo, 0);
	if (MigShared == NULL)
		PG_RETURN_VOID();
	LWLockAcquire(MigShared->lock, LW_SHARED);
	for (int i = 0; i < MigShared->nslots; i++)
	{
		MigWorkerSlot *s = &MigShared->slots[i];
		Datum		values[3];
		bool		nulls[3] = {false, false, false};

		if (!s->in_use || s->dboid != MyDatabaseId)
			continue;
		values[0] = Int64GetDatum(s->job_id);
		values[1] = Int32GetDatum(s->lane);
		values[2] = Int32GetDatum(s->pid);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	LWLockRelease(MigShared->lock);
	PG_RETURN_VOID();
}
