/*-------------------------------------------------------------------------
 *
 * app_latency.c
 *	  The signal of max_app_latency: the share of the application's
 *	  statements that run longer than the limit.
 *
 * max_app_latency is a limit on the application's slow statements, its
 * p99: a job slows down while more than MIG_APP_TAIL (1 %) of the
 * statements of its database take longer than the limit, and speeds up
 * again while fewer do (pace.c).  The share is made of two counts.
 *
 * The statements that ran longer.  While a job with max_app_latency runs,
 * the launcher samples the backends' status (what pg_stat_activity shows)
 * every few milliseconds (an eighth of the smallest limit, 1 to 5 ms) and
 * counts, per job, the client backends' statements that ended after
 * running longer than the job's limit, and those running longer right
 * now.  A statement's running time is
 * exact once it has ended (state_change - query_start of its idle backend);
 * one seen running and followed by another by the next sample is taken to
 * have run halfway between what it had run then and the start of the next
 * one.  A statement longer than the limit runs through several samples, so
 * none is missed.
 * The launcher samples, not the job's worker: the worker cannot look while
 * its own chunk runs, which is when the application waits for it most.
 * Left out: pg_mig's workers and the launcher's scans (background
 * workers), sessions waiting in mig_wait, other databases.
 *
 * All statements: the transactions of the database (xact_commit +
 * xact_rollback of pg_stat_database, as its backends report them, about
 * once a second), less the worker's own.  A transaction of several
 * statements counts once: the share is then overstated and the job slower
 * than it needs to be, never faster.  Needs track_activities and
 * track_counts (a job with max_app_latency is refused at start without
 * them; sql_api.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "utils/backend_status.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "pg_mig.h"
#include "version_compat.h"

#define SAMPLE_MIN_MS		1
#define SAMPLE_MAX_MS		5
#define SAMPLE_SHARE		8	/* sample at most every limit / SAMPLE_SHARE */
#define PURGE_EVERY			1000	/* samples between purges of ended backends */

/* the launcher's view of one job under max_app_latency */
typedef struct AppLimit
{
	int			slot;
	Oid			dboid;
	int64		limit_us;
	uint64		over;
	uint32		running_over;
} AppLimit;

/* the launcher's memory of a client backend's statement */
typedef struct Statement
{
	pid_t		pid;			/* the key */
	TimestampTz start;			/* its query_start */
	int64		ran_us;			/* its running time at the last sample */
	bool		ended;			/* and counted as ended */
	uint64		seen;			/* the sample that last saw the backend */
} Statement;

static HTAB *statements;
static uint64 samples;
static TimestampTz last_sample_at;

/* the worker's side */
static MigWorkerSlot *my_slot;
static int64 my_limit_us;
static uint64 own_xacts;		/* this worker's transactions that ended */
static uint64 own_reported;		/* of them, reported to pg_stat_database */
static bool callback_registered;

/*
 * ReadLimits: the jobs that run under max_app_latency now, and the sessions
 * in mig_wait; returns how many jobs.
 */
static int
ReadLimits(AppLimit *limits, pid_t *waiters)
{
	int			n = 0;

	LWLockAcquire(MigShared->lock, LW_SHARED);
	for (int i = 0; i < MigShared->nslots; i++)
	{
		MigWorkerSlot *s = &MigShared->slots[i];

		if (!s->in_use || s->app_limit_us <= 0)
			continue;
		limits[n].slot = i;
		limits[n].dboid = s->dboid;
		limits[n].limit_us = s->app_limit_us;
		limits[n].over = 0;
		limits[n].running_over = 0;
		n++;
	}
	memcpy(waiters, MigShared->waiters, sizeof(pid_t) * MIG_MAX_WAITERS);
	LWLockRelease(MigShared->lock);
	return n;
}

static bool
IsWaiter(const pid_t *waiters, pid_t pid)
{
	for (int i = 0; i < MIG_MAX_WAITERS; i++)
		if (waiters[i] == pid)
			return true;
	return false;
}

/*
 * Over: a statement of database dboid ran ran_us, and ended or still runs:
 * the limits it went over.
 */
static void
Over(AppLimit *limits, int nlimits, Oid dboid, int64 ran_us, bool running)
{
	for (int j = 0; j < nlimits; j++)
		if (limits[j].dboid == dboid && ran_us >= limits[j].limit_us)
		{
			if (running)
				limits[j].running_over++;
			else
				limits[j].over++;
		}
}

/*
 * Sample: one look at every client backend of the databases in limits;
 * counts into limits and publishes the counts in the jobs' slots.
 */
static void
Sample(AppLimit *limits, int nlimits, const pid_t *waiters)
{
	TimestampTz now = GetCurrentTimestamp();
	int64		gap_us = last_sample_at != 0 ? now - last_sample_at : 0;

	if (statements == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(pid_t);
		ctl.entrysize = sizeof(Statement);
		ctl.hcxt = TopMemoryContext;
		statements = hash_create("pg_mig application statements", 256, &ctl,
								 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	samples++;
	pgstat_clear_backend_activity_snapshot();
	for (int b = 1; b <= pgstat_fetch_stat_numbackends(); b++)
	{
		LocalPgBackendStatus *ls = MigLocalBackendStatus(b);
		PgBackendStatus *st;
		Statement  *stmt;
		bool		found;
		bool		running;
		bool		in_db = false;
		int64		ran_us;

		if (ls == NULL)
			continue;
		st = &ls->backendStatus;
		if (st->st_backendType != B_BACKEND || st->st_procpid <= 0 ||
			st->st_activity_start_timestamp == 0 || IsWaiter(waiters, st->st_procpid))
			continue;
		for (int j = 0; j < nlimits && !in_db; j++)
			in_db = limits[j].dboid == st->st_databaseid;
		if (!in_db)
			continue;
		running = st->st_state == STATE_RUNNING || st->st_state == STATE_FASTPATH;
		if (running)
			ran_us = now - st->st_activity_start_timestamp;
		else if ((st->st_state == STATE_IDLE || st->st_state == STATE_IDLEINTRANSACTION ||
				  st->st_state == STATE_IDLEINTRANSACTION_ABORTED) &&
				 st->st_state_start_timestamp >= st->st_activity_start_timestamp)
			ran_us = st->st_state_start_timestamp - st->st_activity_start_timestamp;
		else
			continue;
		ran_us = Max(ran_us, 0);

		stmt = hash_search(statements, &st->st_procpid, HASH_ENTER, &found);
		if (found && stmt->start != st->st_activity_start_timestamp &&
			!stmt->ended && stmt->seen == samples - 1)
		{
			/*
			 * The statement seen running at the last sample ended since,
			 * unseen: it ran at least ran_us, and at most until the next
			 * one started (the client's turn between them included) or
			 * until now.  Not half the gap more: a launcher kept from the
			 * CPU samples late, and that counted many as over the limit.
			 */
			Over(limits, nlimits, st->st_databaseid,
				 (stmt->ran_us + Min(st->st_activity_start_timestamp - stmt->start,
									 stmt->ran_us + gap_us)) / 2, false);
		}
		if (!found || stmt->start != st->st_activity_start_timestamp)
		{
			stmt->start = st->st_activity_start_timestamp;
			/* one that ended before the sampling began is not news */
			stmt->ended = !running && (last_sample_at == 0 ||
									   st->st_state_start_timestamp < last_sample_at);
		}
		stmt->seen = samples;
		stmt->ran_us = ran_us;
		if (running || !stmt->ended)
			Over(limits, nlimits, st->st_databaseid, ran_us, running);
		stmt->ended = !running;
	}
	pgstat_clear_backend_activity_snapshot();
	last_sample_at = now;

	/* the launcher is the only writer of these */
	for (int j = 0; j < nlimits; j++)
	{
		MigWorkerSlot *s = &MigShared->slots[limits[j].slot];

		pg_atomic_write_u64(&s->app_over, pg_atomic_read_u64(&s->app_over) + limits[j].over);
		pg_atomic_write_u32(&s->app_running_over, limits[j].running_over);
	}

	if (samples % PURGE_EVERY == 0)
	{
		HASH_SEQ_STATUS seq;
		Statement  *stmt;

		hash_seq_init(&seq, statements);
		while ((stmt = hash_seq_search(&seq)) != NULL)
			if (stmt->seen != samples)
				(void) hash_search(statements, &stmt->pid, HASH_REMOVE, NULL);
	}
}

/*
 * MigAppLatencyWait: the launcher's wait between its rounds, up to
 * timeout_ms or until its latch is set; while a job runs under
 * max_app_latency it samples the application's statements through the
 * wait.  Returns WaitLatch's result (the caller resets the latch).
 */
int
MigAppLatencyWait(long timeout_ms, uint32 wait_event)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);
	AppLimit   *limits = palloc(sizeof(AppLimit) * MigShared->nslots);
	pid_t		waiters[MIG_MAX_WAITERS];

	for (;;)
	{
		long		left = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);
		int			n = ReadLimits(limits, waiters);
		long		interval = SAMPLE_MAX_MS;
		int			rc;

		if (n == 0)
		{
			last_sample_at = 0;
			return WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 Max(left, 0), wait_event);
		}
		for (int j = 0; j < n; j++)
			interval = Min(interval, limits[j].limit_us / 1000 / SAMPLE_SHARE);
		interval = Max(interval, SAMPLE_MIN_MS);
		Sample(limits, n, waiters);
		if (left <= 0)
			return WL_TIMEOUT;
		rc = WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					   Min(interval, left), wait_event);
		if (rc & WL_LATCH_SET)
			return rc;
	}
}

static void
CountOwnXacts(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT)
		own_xacts++;
}

/*
 * MigAppLatencyStatsReported: the worker reported its statistics
 * (pgstat_report_stat returned pending_ms); with nothing left pending its
 * own transactions are all in pg_stat_database now.
 */
void
MigAppLatencyStatsReported(long pending_ms)
{
	if (pending_ms == 0)
		own_reported = own_xacts;
}

/*
 * MigAppLatencyRead: the worker's counts for max_app_latency limit_ms (0:
 * the job has none; the launcher stops sampling for it).  Caller is in a
 * transaction.
 */
void
MigAppLatencyRead(int64 limit_ms, MigAppCounts *out)
{
	PgStat_StatDBEntry *db;

	memset(out, 0, sizeof(*out));
	if (MigShared == NULL)
		return;
	if (my_slot == NULL)
	{
		LWLockAcquire(MigShared->lock, LW_SHARED);
		for (int i = 0; i < MigShared->nslots; i++)
			if (MigShared->slots[i].in_use && MigShared->slots[i].pid == MyProcPid)
				my_slot = &MigShared->slots[i];
		LWLockRelease(MigShared->lock);
		if (my_slot == NULL)
			return;
	}
	if (!callback_registered)
	{
		RegisterXactCallback(CountOwnXacts, NULL);
		callback_registered = true;
	}
	if (my_limit_us != limit_ms * 1000)
	{
		my_limit_us = limit_ms * 1000;
		LWLockAcquire(MigShared->lock, LW_EXCLUSIVE);
		my_slot->app_limit_us = my_limit_us;
		LWLockRelease(MigShared->lock);
		MigWakeLauncher();
	}
	if (limit_ms <= 0)
		return;
	out->over = pg_atomic_read_u64(&my_slot->app_over);
	out->running_over = pg_atomic_read_u32(&my_slot->app_running_over);
	pgstat_clear_snapshot();
	db = pgstat_fetch_stat_dbentry(MyDatabaseId);
	if (db != NULL)
		out->statements = (uint64) MigDatabaseXacts(db) - own_reported;
	pgstat_clear_snapshot();
}
