/*-------------------------------------------------------------------------
 *
 * pace.c
 *	  The pacer: how fast a job walks under a lag budget (max_lag_bytes,
 *	  max_lag) and under max_app_latency, and how often the worker records
 *	  throttled / unthrottled events.
 *
 * Lag.  Stop/go (stop over the budget, go again below half of it) makes
 * every restart overshoot: the chunk that starts just under the limit
 * lands on top of it.  The pacer instead sets the job's WAL rate so that
 * the lag of the slowest active replica (a connected standby, or a slot in
 * use) stays near PACE_TARGET of the budget:
 *
 *	  rate = replay + (PACE_TARGET - lag / budget) * budget / PACE_TAU_S
 *
 * replay is the rate at which that replica is seen to catch up (the WAL
 * written since the last look minus the growth of its lag, smoothed over
 * about a second), so the rate matches what the replica replays, plus a
 * proportional term that closes the gap to the target in about PACE_TAU_S.
 * While the replica replays nothing the rate falls to what the gap allows,
 * and to nothing at the target.  Below PACE_FREE of the budget the rate
 * does not hold the job (it gained only budget / PACE_TAU_S per
 * REPLAY_EWMA_S: 2 MB ran at a sixth of what the replica could take).  A
 * chunk starts only when the chunk before
 * it has been given its time at that rate (chunk start + its WAL / rate),
 * and only if the lag plus the WAL one chunk writes stays under PACE_GATE
 * of the budget (else the job looks again when the replica, at the rate it
 * replays, should have made room, at most PACE_STALL_LOOK_MS later, and
 * probes it meanwhile, see below); a chunk writes at most
 * 1/PACE_CHUNK_SHARE of the budget (MigNextBatchSize).  Under
 * max_lag_bytes the last chunk's WAL is flushed at the next look (chunks
 * commit asynchronously: their WAL waited for the WAL writer, counted as
 * lag), unless the lag is far below a large budget.  The lanes of a job
 * share one pace: each lane takes 1/parallel of the rate and counts every
 * lane's chunk at the gate.
 *
 * Under max_lag the lag is in time: the age of the oldest WAL the replica
 * has not replayed (WrittenAgoMs, from the insert positions noted at each
 * look), or its replay_lag if longer, against what remains of max_lag
 * after the longest replay stall seen lately (a stall adds its length to
 * the lag whatever the job does); the limit the lag is nearer to sets
 * the fraction, max_lag_bytes (when set) the budget in bytes.  Through a
 * stall the job goes on as long as the WAL it writes would replay in
 * time: after the rest of the stall, the backlog at the rate the replica
 * catches up, and the next stall if the backlog would outlast the window
 * before it (StallLagMs); while it waits for replay it writes a record
 * that replays as nothing (ProbeStandbys) so that the standby reports.
 *
 * Over the budget the job still stops outright (throttle.c: a standby that
 * stopped, a frozen slot, WAL of others), with today's reasons; inactive
 * slots are not paced to, they only stop the job.
 *
 * Application latency (max_app_latency).  The limit is one on the
 * application's p99: the signal (app_latency.c) is the share of the
 * statements of the job's database that took longer than the limit over
 * about the last APP_WINDOW_S (those running longer right now included;
 * in the first APP_WINDOW_S, of the time since the job's first look),
 * counted by the launcher, which samples them every few milliseconds.
 * The job's duty cycle (the share of wall-clock time it spends in chunks)
 * follows MIG_APP_TAIL / share per second: cut while more than MIG_APP_TAIL
 * of them take longer (at most to APP_DECREASE_MAX of it per second), down
 * to a stop below APP_MIN_DUTY, and grown while fewer do (at most by
 * APP_INCREASE per second), up to 1 (the free pace); it starts at
 * APP_START_DUTY.  (Growing only while
 * the p99 was below 80 % of the limit kept the job near a stop wherever
 * the application's own p99 was near that.)  Below
 * APP_MIN_STATEMENTS statements in the window the share is of that many:
 * in a quiet database one slow statement does not stop the job, and
 * several do.
 *
 * Events.  A throttled / unthrottled pair is recorded at most once per
 * EVENT_PAIR_INTERVAL_S; the spans in between are counted and recorded as
 * one 'throttled' event with their number and total time once a span ends
 * after the interval.  Pacing itself writes an event 'paced' at most every
 * PACE_SUMMARY_S, with the time spent pacing and the last reason.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/xlog.h"
#include "access/xloginsert.h"
#include "catalog/pg_control.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/walwriter.h"
#include "utils/backend_status.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "pg_mig.h"
#include "version_compat.h"

#define PACE_TARGET			0.85	/* of the budget: the lag the pacer holds */
#define PACE_GATE			0.95	/* lag + a chunk's WAL must stay below this */
#define PACE_FREE			0.5		/* below this of the budget: no rate */
#define PACE_TAU_S			0.25	/* the gap to the target closes in about this */
#define FLUSH_FREE_SHARE	0.25	/* of the budget: below this, no flush per chunk */
#define FLUSH_FREE_BUDGET	16.0	/* if the budget is this many wal_writer_flush_after */
#define REPLAY_EWMA_S		2.0		/* smoothing of the replica's replay rate */
#define PACE_MAX_WAIT_MS	200		/* look again at least this often */
#define PACE_MIN_WAIT_MS	10		/* and at most this often at the gate */
#define PACE_STALL_LOOK_MS	50		/* look (and probe) this often through a stall */
#define WAL_NOTES			1024	/* the insert positions kept, one per look */
#define STALL_DECAY_S		60.0	/* a replay stall seen is forgotten over this */
#define STALL_ROOM_MIN		0.25	/* of max_lag: the least room a stall leaves */
#define STALL_MIN_MS		50		/* a stall shorter than this ends no replay window */
#define STALL_DRAIN_SHARE	0.5		/* of the shortest window: the backlog a stall may hold */
#define CATCHUP_MIN_MS		20		/* the catch-up rate from reports this far apart */
#define CATCHUP_DECAY_S		10.0	/* a catch-up rate seen is forgotten over this */
#define CATCHUP_TRUST		0.7		/* of it: what the pacer counts on (replay slows under load) */
#define PACE_SHOWN_MS		1500	/* throttled says "pacing" this long after a wait */
#define THROTTLED_WRITE_MS	1000	/* rewrite a changing pacing text at most this often */

#define APP_WINDOW_S		3.0		/* the counts over the limit decay over this */
#define APP_RATE_WINDOW_S	10.0	/* the count of all statements over this */
#define APP_WARMUP_S		1.5		/* before: no counts from the sessions yet */
#define APP_MIN_STATEMENTS	100.0	/* the share is of at least this many */
#define APP_DECREASE_MAX	0.1		/* the deepest cut of the duty cycle per second */
#define APP_INCREASE		1.5		/* the fastest growth of the duty cycle per second */
#define APP_MIN_DUTY		0.02	/* below this the job stops */
#define APP_START_DUTY		0.1		/* the duty cycle of the first look */

#define EVENT_PAIR_INTERVAL_S	30
#define PACE_SUMMARY_S			60

/* the lag pacer's state, for the life of the worker */
static bool have_sample;
static TimestampTz sample_at;
static XLogRecPtr sample_insert;
static int64 sample_lag;
static double replay_rate;		/* bytes per second */
static TimestampTz chunk_start;
static int64 chunk_wal;
static int64 chunk_ms;
static TimestampTz paced_at;	/* the last time the pacer made the job wait */
/* the WAL insert position at each look, oldest first (a ring) */
static TimestampTz note_at[WAL_NOTES];
static XLogRecPtr note_lsn[WAL_NOTES];
static int	note_first;
static int	notes;
/* replay stalls: where and since when the replica's position stands */
static XLogRecPtr replay_seen;
static TimestampTz replay_moved_at;
static TimestampTz stall_at;
static double stall_ms;			/* the longest seen, decaying */
static bool stalling;			/* a stall of STALL_MIN_MS or more goes on */
static TimestampTz window_start;	/* when replay moved again after a stall */
static double window_ms;		/* the shortest replay window seen, decaying */
/* the replica's catch-up rate, bytes/s, from reports while it had a backlog */
static double catchup_rate;
static TimestampTz catchup_at;
static TimestampTz cap_reply_at;
static XLogRecPtr cap_pos;
static char *paced_reason;		/* in TopMemoryContext */

/* the application latency pacer */
static bool app_have;
static TimestampTz app_at;
static TimestampTz app_since;	/* the first look */
static MigAppCounts app_last;	/* the counts at the last look */
static double app_over;			/* statements that took longer, decaying */
static double app_statements;
static double app_duty = 1.0;

/* the event limiter */
static TimestampTz pair_at;
static int	spans_unrecorded;
static double secs_unrecorded;
static TimestampTz summary_at;
static double paced_secs;		/* pacing waits since the last 'paced' event */

static void
SetPacedReason(const char *reason)
{
	if (paced_reason)
		pfree(paced_reason);
	paced_reason = MemoryContextStrdup(TopMemoryContext, reason);
}

/*
 * MigPaceChunkDone tells the pacer about a chunk that committed: when it
 * started, how long it took and how much WAL it wrote.
 */
void
MigPaceChunkDone(TimestampTz start, int64 ms, int64 wal_bytes)
{
	chunk_start = start;
	chunk_ms = ms;
	chunk_wal = wal_bytes;
}

/* NoteInsert keeps the insert position at a look, if it moved */
static void
NoteInsert(TimestampTz now, XLogRecPtr insert)
{
	int			last = (note_first + notes - 1) % WAL_NOTES;
	int			slot;

	if (notes > 0 && note_lsn[last] >= insert)
		return;
	if (notes < WAL_NOTES)
		slot = (note_first + notes++) % WAL_NOTES;
	else
	{
		slot = note_first;
		note_first = (note_first + 1) % WAL_NOTES;
	}
	note_at[slot] = now;
	note_lsn[slot] = insert;
}

/*
 * WrittenAgoMs: how long ago the WAL after pos (a replica's replay
 * position) was written, from the insert positions noted at the looks
 * before, interpolated between the two around it; 0 if it is newer than
 * the last look, and at least the age of the oldest note if it is older.
 * This is the replica's lag in time as it grows while the replica replays
 * nothing: its own report (pg_stat_replication.replay_lag) moves only when
 * its replay does, and stays at its last value through a pause.
 */
static double
WrittenAgoMs(TimestampTz now, XLogRecPtr pos)
{
	for (int i = notes - 1; i >= 0; i--)
	{
		int			k = (note_first + i) % WAL_NOTES;
		int			next = (k + 1) % WAL_NOTES;
		double		at;

		if (note_lsn[k] > pos)
			continue;
		if (i == notes - 1)
			return 0;
		at = note_at[k] + (double) (note_at[next] - note_at[k]) *
			(double) (pos - note_lsn[k]) / (double) (note_lsn[next] - note_lsn[k]);
		return Max((now - at) / 1000.0, 0.0);
	}
	return notes > 0 ? Max((now - note_at[note_first]) / 1000.0, 0.0) : 0;
}

/*
 * ProbeStandbys: a WAL record that replays as nothing (XLOG_NOOP, which
 * logical decoding skips too), flushed.  A standby reports its replay
 * position when it receives WAL (else every wal_receiver_status_interval,
 * 10 s by default), so a job that waits and writes nothing would not hear
 * that replay moved again after a stall until its next chunk: it ran
 * about one chunk per resume.
 */
static void
ProbeStandbys(void)
{
	char		nothing = 0;

	XLogBeginInsert();
	XLogRegisterData(&nothing, sizeof(nothing));
	XLogFlush(XLogInsert(RM_XLOG_ID, XLOG_NOOP));
}

/*
 * StallLagMs: the lag the WAL written now would see through a stall that
 * has gone on since_ms, behind backlog bytes in all (its own included):
 * the rest of the stall (as long as the longest seen lately), the replay
 * of the backlog at CATCHUP_TRUST of the highest catch-up rate seen
 * lately (the highest is what the replica did at best), and the next
 * stall too if that
 * replay outlasts the first part (STALL_DRAIN_SHARE) of the shortest
 * window of replay seen lately between two stalls.  The WAL before it is
 * replayed first whatever the job writes now.
 */
static double
StallLagMs(double backlog, double since_ms)
{
	double		drain_ms = backlog / (CATCHUP_TRUST * catchup_rate) * 1000.0;

	return Max(stall_ms - since_ms, 0) + drain_ms +
		(drain_ms > STALL_DRAIN_SHARE * window_ms ? stall_ms : 0);
}

/*
 * LagGate: the lag pacer's answer for the next chunk.  Returns the time to
 * wait in ms (0: the chunk may start) and sets *reason while pacing.
 */
static long
LagGate(const MigJob *job, TimestampTz now, char **reason)
{
	MigReplicaLag r;
	XLogRecPtr	insert;
	double		budget;			/* bytes, or the bytes max_lag stands for */
	double		rate;
	int			lanes = (job->parallel > 1 && job->lane > 0) ? job->parallel : 1;
	double		next_wal;
	double		lag_ms;			/* the age of the oldest WAL not replayed */
	double		own_ms;			/* lag_ms less the stall going on now */
	bool		through = false;	/* the job goes on through a stall */
	bool		probe = false;	/* waits for the replica's replay in time */
	double		since_ms = 0;	/* the stall going on now, as far as known */
	double		room_ms = job->max_lag_ms;
	long		wait = 0;

	if ((job->max_lag_bytes <= 0 && job->max_lag_ms <= 0) || !mig_lag_pacing)
		return 0;
	if (RecoveryInProgress() || !MigSlowestReplica(job, &r))
	{
		have_sample = false;
		return 0;
	}
	insert = GetXLogInsertRecPtr();

	/*
	 * The chunks commit asynchronously: their WAL waits for the WAL writer
	 * (up to wal_writer_delay, or wal_writer_flush_after of it) before it
	 * goes to any replica, and counts as lag all that time.  Under a budget
	 * in bytes the last chunk's WAL is flushed now (one flush per chunk),
	 * so the lag is what replicas have yet to replay, not what waits here.
	 * Not while the lag is far below a budget much larger than what the WAL
	 * writer lets wait (FLUSH_FREE_SHARE, FLUSH_FREE_BUDGET): the job runs
	 * free there whatever waits, and the flush cost a delete about a tenth
	 * of its speed under the default budget.
	 */
	if (job->max_lag_bytes > 0 && XactLastCommitEnd != InvalidXLogRecPtr &&
		XactLastCommitEnd > GetFlushRecPtr(NULL) &&
		!((double) job->max_lag_bytes >=
		  FLUSH_FREE_BUDGET * (double) WalWriterFlushAfter * XLOG_BLCKSZ &&
		  (double) r.lag_bytes < FLUSH_FREE_SHARE * job->max_lag_bytes))
		XLogFlush(XactLastCommitEnd);

	/*
	 * The lag in time: the replica's report, or how long ago the WAL at its
	 * replay position was written, if longer (a replica that stopped
	 * replaying reports the lag it had when it stopped).
	 */
	NoteInsert(now, insert);
	lag_ms = Max(r.replay_lag_ms, 0);
	if (job->max_lag_ms > 0 && r.lag_bytes > 0 && insert > (XLogRecPtr) r.lag_bytes)
		lag_ms = Max(lag_ms, WrittenAgoMs(now, insert - r.lag_bytes));
	own_ms = lag_ms;

	/*
	 * A replica that stops replaying for a while (a pause, a conflict, a
	 * burst of others' WAL) adds that while to the lag in time of all it has
	 * not replayed, whatever the job does: the pacer keeps room for the
	 * longest such stall it has seen lately, and holds the lag it leaves
	 * near its share of what remains of max_lag.  A stall is what the
	 * standby's reports say: its replay position standing from one report
	 * to the next (a standby reports when it receives WAL, so a job that
	 * writes nothing for a while hears nothing, which is no stall).
	 */
	if (job->max_lag_ms > 0)
	{
		XLogRecPtr	replay_pos = insert - Min((XLogRecPtr) Max(r.lag_bytes, 0), insert);
		double		stalled = 0;

		/*
		 * The rate at which the replica replays when it has WAL in hand:
		 * what it replayed from one report to the next (at least
		 * CATCHUP_MIN_MS apart: a record's position moves when its replay
		 * ends) over the time between them is at most that rate; the
		 * highest seen lately (forgotten over CATCHUP_DECAY_S), which
		 * the catching up after a stall shows.
		 */
		if (catchup_at != 0)
			catchup_rate *= exp(-((now - catchup_at) / 1e6) / CATCHUP_DECAY_S);
		catchup_at = now;
		if (r.reply_at != 0 && r.reply_at != cap_reply_at)
		{
			if (cap_reply_at != 0 && r.reply_at - cap_reply_at < CATCHUP_MIN_MS * 1000)
				;				/* too close: wait for a later report */
			else
			{
				if (cap_reply_at != 0 && replay_pos > cap_pos)
					catchup_rate = Max(catchup_rate, (double) (replay_pos - cap_pos) /
									   ((r.reply_at - cap_reply_at) / 1e6));
				cap_reply_at = r.reply_at;
				cap_pos = replay_pos;
			}
		}

		if (r.reply_at == 0 || r.lag_bytes <= 0 || replay_moved_at == 0 ||
			replay_pos > replay_seen)
		{
			if (stalling)
				window_start = r.reply_at;	/* replay moves again */
			stalling = false;
			replay_seen = replay_pos;
			replay_moved_at = r.reply_at;
		}
		else
		{
			stalled = Max(r.reply_at - replay_moved_at, 0) / 1000.0;
			if (stalled >= STALL_MIN_MS && !stalling)
			{
				/* a stall begins: the window of replay before it ends */
				stalling = true;
				if (window_start != 0 && replay_moved_at > window_start)
				{
					double		w = (replay_moved_at - window_start) / 1000.0;

					window_ms = window_ms > 0 ? Min(window_ms, w) : w;
				}
			}
		}
		if (stall_at != 0)
		{
			stall_ms *= exp(-((now - stall_at) / 1e6) / STALL_DECAY_S);
			window_ms = Min(window_ms * exp(((now - stall_at) / 1e6) / STALL_DECAY_S),
							STALL_DECAY_S * 1000.0);	/* no stall lately: long */
		}
		stall_at = now;
		stall_ms = Max(stall_ms, stalled);
		room_ms = Max(job->max_lag_ms - stall_ms, job->max_lag_ms * STALL_ROOM_MIN);

		/*
		 * Through a stall (replay standing since replay_moved_at, as far as
		 * the reports tell) the lag in time of all the replica has not
		 * replayed grows with the stall whatever the job does, and what the
		 * job writes now does not add to it: it is replayed after all that
		 * came before.  So the job does not stop for the stall itself (it
		 * stopped at every stall and ran about one chunk per resume:
		 * it_throttle PacedJobHoldsATimeLagNearItsBudget); it writes while
		 * the lag its own WAL would see (StallLagMs: the rest of the stall,
		 * the replay of the backlog, the next stall if that replay would
		 * outlast the window before it) stays near PACE_TARGET of max_lag,
		 * and follows own_ms, the age of the oldest WAL not replayed when
		 * replay last moved.  Before the replica has shown a window of
		 * replay between two stalls and the rate it catches up at, the job
		 * waits as before.
		 */
		if (stalling && window_ms > 0 && catchup_rate > 0)
		{
			through = true;
			since_ms = Max(now - replay_moved_at, 0) / 1000.0;
			own_ms = Max(lag_ms - since_ms, 0);
		}
		r.fraction = Max(job->max_lag_bytes > 0 ? (double) r.lag_bytes / job->max_lag_bytes : 0,
						 through ? own_ms / room_ms : Max(r.fraction, lag_ms / room_ms));
	}
	if (have_sample)
	{
		double		dt = (now - sample_at) / 1e6;

		if (dt >= 0.02)
		{
			double		caught = (double) (insert - sample_insert) - (double) (r.lag_bytes - sample_lag);
			double		sample = Max(caught, 0.0) / dt;

			replay_rate += (1.0 - exp(-dt / REPLAY_EWMA_S)) * (sample - replay_rate);
			sample_at = now;
			sample_insert = insert;
			sample_lag = r.lag_bytes;
		}
	}
	else
	{
		have_sample = true;
		sample_at = now;
		sample_insert = insert;
		sample_lag = r.lag_bytes;
		replay_rate = 0;
	}

	/*
	 * The budget in bytes: max_lag_bytes, or what max_lag stands for at the
	 * replay rate (not the smaller of the two: at a job's start the replay
	 * rate is not known yet, and the default max_lag would pace every job
	 * from a 640 kB budget until it is).  Either limit sets the fraction.
	 */
	if (job->max_lag_bytes > 0)
		budget = (double) job->max_lag_bytes;
	else
		budget = room_ms / 1000.0 * Max(replay_rate, 65536.0);
	rate = replay_rate + (PACE_TARGET - r.fraction) * budget / PACE_TAU_S;

	/*
	 * The WAL the next chunks of every lane will write: as the last one,
	 * or the chunk cap of MigNextBatchSize when chunk_time sizes the chunks
	 * (the first chunk of a job, of batch_size, may have been bigger).  At
	 * most half the budget counts, so that a fixed batch_size that writes
	 * more than the budget in one chunk still makes progress (from a lag
	 * below half the budget).
	 */
	next_wal = (double) chunk_wal;
	if (job->max_lag_bytes > 0 && job->chunk_time_ms > 0)
		next_wal = Min(next_wal, (double) job->max_lag_bytes / MIG_PACE_CHUNK_SHARE / lanes);
	if (job->max_lag_bytes > 0 &&
		(double) r.lag_bytes + Min(next_wal * lanes, job->max_lag_bytes / 2.0) >
		PACE_GATE * job->max_lag_bytes)
	{
		/*
		 * The next chunk would take the lag over: look again when the
		 * replica, at the rate it replays, should have made room for it
		 * (a fixed 200 ms let a replica near the job's pace catch up on
		 * everything in between, and the job lost that time).
		 */
		double		over = (double) r.lag_bytes +
			Min(next_wal * lanes, job->max_lag_bytes / 2.0) - PACE_GATE * job->max_lag_bytes;

		wait = PACE_MAX_WAIT_MS;
		if (replay_rate > 0)
			wait = (long) Max(Min(over / replay_rate * 1000.0, (double) PACE_MAX_WAIT_MS),
							  (double) PACE_MIN_WAIT_MS);
		/* and hear from the standby by then: it reports when WAL comes */
		wait = Min(wait, PACE_STALL_LOOK_MS);
		probe = r.reply_at != 0 && r.lag_bytes > 0;
	}
	else if (through ?
			 StallLagMs((double) r.lag_bytes + next_wal * lanes, since_ms) > PACE_TARGET * job->max_lag_ms :
			 job->max_lag_ms > 0 && lag_ms > PACE_GATE * room_ms)
	{
		/* the WAL written now would replay too late */
		wait = stalling ? PACE_STALL_LOOK_MS : PACE_MAX_WAIT_MS;
		probe = r.reply_at != 0 && r.lag_bytes > 0;
	}
	else if (r.fraction < PACE_FREE)
		;						/* far below the target: the free pace */
	else if (chunk_start != 0 && rate <= 0)
		wait = PACE_MAX_WAIT_MS;
	else if (chunk_start != 0)
	{
		/* the last chunk's WAL at this lane's share of the rate */
		double		due_ms = (double) chunk_wal * lanes / rate * 1000.0;
		long		since = (long) ((now - chunk_start) / 1000);

		if (due_ms > since)
			wait = (long) Min(due_ms - since, (double) PACE_MAX_WAIT_MS);
	}

	if (wait > 0)
	{
		char	   *where = r.name;

		if (probe)
			ProbeStandbys();	/* hear from the standby before the next look */

		/* the limit the lag is nearer to */
		if (job->max_lag_bytes > 0 &&
			(job->max_lag_ms <= 0 ||
			 (double) r.lag_bytes / job->max_lag_bytes >= own_ms / room_ms))
			SetPacedReason(psprintf("pacing to replica lag budget %s: %s on %s",
									MigFormatBytes(job->max_lag_bytes),
									MigFormatBytes(r.lag_bytes), where));
		else
			SetPacedReason(psprintf("pacing to replica lag budget %s: %s on %s",
									MigFormatMs(job->max_lag_ms),
									MigFormatMs(lag_ms), where));
		paced_at = now;
	}
	if (paced_reason && paced_at != 0 &&
		!TimestampDifferenceExceeds(paced_at, now, PACE_SHOWN_MS))
		*reason = paced_reason;
	return wait;
}

/*
 * AppGate: the application latency pacer.  Returns the time to wait in ms
 * and sets *reason while the job runs slower for the application.
 */
static long
AppGate(const MigJob *job, TimestampTz now, char **reason)
{
	MigAppCounts c;
	double		dt;
	double		all;
	double		share;
	double		over;
	double		since_s;
	double		fill;
	double		fill_rate;

	MigAppLatencyRead(job->max_app_latency_ms, &c);
	if (job->max_app_latency_ms <= 0)
	{
		app_have = false;
		app_duty = 1.0;
		return 0;
	}
	if (!app_have)
	{
		app_have = true;
		app_at = app_since = now;
		app_last = c;
		app_over = app_statements = 0;
		/* a slow start: at the free pace the first seconds hurt the most */
		app_duty = Min(app_duty, APP_START_DUTY);
	}
	dt = (now - app_at) / 1e6;
	if (dt > 0)
	{
		app_over = app_over * exp(-dt / APP_WINDOW_S) + (double) (c.over - app_last.over);
		/* (a reset of pg_stat_database counts as nothing) */
		app_statements = app_statements * exp(-dt / APP_RATE_WINDOW_S) +
			(c.statements >= app_last.statements ? (double) (c.statements - app_last.statements) : 0);
		app_last = c;
	}
	/*
	 * The statements over the limit in a window of APP_WINDOW_S, and all
	 * statements in such a window at their rate over APP_RATE_WINDOW_S
	 * (sessions report their counts about once a second, in bursts); in
	 * the first windows, of the time since the first look, scaled up.
	 * Until the first reports are in (APP_WARMUP_S) only the statements
	 * running longer now count.
	 */
	since_s = (now - app_since) / 1e6;
	fill = Max(1.0 - exp(-since_s / APP_WINDOW_S), 0.01);
	fill_rate = Max(1.0 - exp(-since_s / APP_RATE_WINDOW_S), 0.01);
	over = since_s < APP_WARMUP_S ? 0 : app_over / fill;
	all = Max(Max(app_statements / fill_rate * (APP_WINDOW_S / APP_RATE_WINDOW_S), over) +
			  c.running_over, APP_MIN_STATEMENTS);
	share = (over + c.running_over) / all;
	if (dt > 0)
	{
		/*
		 * In proportion to MIG_APP_TAIL / share, per second: twice the
		 * share over halves the duty cycle in a second, half of it doubles
		 * it (at most APP_INCREASE).
		 */
		if (share > MIG_APP_TAIL)
			app_duty *= pow(Max(MIG_APP_TAIL / share, APP_DECREASE_MAX), Min(dt, 1.0));
		else
			app_duty = Min(1.0, Max(app_duty, APP_MIN_DUTY) *
						   pow(Min(MIG_APP_TAIL / Max(share, 1e-9), APP_INCREASE), Min(dt, 1.0)));
	}
	app_at = now;
	if (app_duty >= 1.0)
		return 0;
	if (app_duty < APP_MIN_DUTY)
	{
		*reason = psprintf("%.1f%% of application statements take longer than max_app_latency %s; waiting until at most %.0f%% do",
						   share * 100.0, MigFormatMs(job->max_app_latency_ms), MIG_APP_TAIL * 100.0);
		return PACE_MAX_WAIT_MS;
	}
	*reason = psprintf("pacing to max_app_latency %s: %.1f%% of application statements take longer, %.0f%% of the free pace",
					   MigFormatMs(job->max_app_latency_ms), share * 100.0, app_duty * 100.0);
	if (chunk_start != 0)
	{
		/* the chunk's time is app_duty of the time from its start to the next */
		double		due_ms = chunk_ms / app_duty;
		long		since = (long) ((now - chunk_start) / 1000);

		if (due_ms > since)
			return (long) Min(due_ms - since, (double) PACE_MAX_WAIT_MS);
	}
	return 0;
}

/*
 * MigPaceGate: whether the next chunk must wait for the pacer, and how
 * long (*wait_ms) before the worker looks again.  *reason is the pacing
 * text for throttled while the pacer holds the job below its free pace
 * (also when the chunk may start now), else NULL.  Caller is in the step's
 * transaction; the job's health signals (MigThrottleCheck) let it run.
 */
bool
MigPaceGate(const MigJob *job, long *wait_ms, char **reason)
{
	TimestampTz now = GetCurrentTimestamp();
	char	   *lag_reason = NULL;
	char	   *app_reason = NULL;
	long		lag_wait = LagGate(job, now, &lag_reason);
	long		app_wait = AppGate(job, now, &app_reason);

	*wait_ms = Max(lag_wait, app_wait);
	*reason = app_wait > lag_wait && app_reason ? app_reason :
		(lag_reason ? lag_reason : app_reason);
	if (*wait_ms > 0)
		paced_secs += *wait_ms / 1000.0;
	return *wait_ms > 0;
}

/*
 * MigPaceThrottledWrite: whether to write a pacing text into throttled now:
 * always when it starts or ends, else at most every THROTTLED_WRITE_MS
 * (the lag in it changes at every step).
 */
bool
MigPaceThrottledWrite(const char *stored, const char *reason)
{
	static TimestampTz written_at;
	TimestampTz now = GetCurrentTimestamp();

	if ((stored == NULL) != (reason == NULL) ||
		(stored && reason && strncmp(stored, reason, 10) != 0) ||
		(stored && reason && strcmp(stored, reason) != 0 &&
		 TimestampDifferenceExceeds(written_at, now, THROTTLED_WRITE_MS)))
	{
		written_at = now;
		return true;
	}
	return false;
}

/*
 * MigThrottleEventStart: a throttled span begins; returns whether to record
 * its 'throttled' event (at most one pair per EVENT_PAIR_INTERVAL_S).
 */
bool
MigThrottleEventStart(void)
{
	TimestampTz now = GetCurrentTimestamp();

	if (pair_at == 0 || TimestampDifferenceExceeds(pair_at, now, EVENT_PAIR_INTERVAL_S * 1000))
	{
		pair_at = now;
		return true;
	}
	return false;
}

/*
 * MigThrottleEventEnd: a throttled span of secs ended; recorded says
 * whether its start was.  Returns the detail of a summary event to record
 * now (the spans not recorded one by one since the last summary), or NULL.
 */
char *
MigThrottleEventEnd(bool recorded, double secs, const char *reason)
{
	char	   *summary = NULL;

	if (!recorded)
	{
		spans_unrecorded++;
		secs_unrecorded += secs;
	}
	if (spans_unrecorded > 0 &&
		TimestampDifferenceExceeds(pair_at, GetCurrentTimestamp(), EVENT_PAIR_INTERVAL_S * 1000))
	{
		summary = psprintf("%d more throttled spans, %.1f s in all, since the last throttled event; the last: %s",
						   spans_unrecorded, secs_unrecorded, reason ? reason : "?");
		spans_unrecorded = 0;
		secs_unrecorded = 0;
	}
	return summary;
}

/*
 * MigPaceSummary: the detail of a 'paced' event to record now (at most one
 * per PACE_SUMMARY_S, while the pacer made the job wait), or NULL.
 */
char *
MigPaceSummary(const char *reason)
{
	TimestampTz now = GetCurrentTimestamp();
	char	   *s;

	if (summary_at == 0)
		summary_at = now;
	if (paced_secs <= 0 || reason == NULL ||
		!TimestampDifferenceExceeds(summary_at, now, PACE_SUMMARY_S * 1000))
		return NULL;
	s = psprintf("%.1f s of pauses in the last %ld s; now %s", paced_secs,
				 (long) ((now - summary_at) / 1000000), reason);
	summary_at = now;
	paced_secs = 0;
	return s;
}
