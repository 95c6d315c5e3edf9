/*-------------------------------------------------------------------------
 *
 * throttle.c
 *	  Health signals: whether the next chunk may start, how long to pause
 *	  after a chunk, and how big the next chunk should be.
 *
 * Replica lag is read from shared memory, not from pg_stat_replication:
 * every walsender's replay position and replay lag, and every replication
 * slot's restart_lsn (physical) or confirmed_flush (logical).  That works
 * for a job owner who is not a superuser (unprivileged roles see NULL LSNs
 * in pg_stat_replication) and widens nobody's rights: only lag figures and
 * names are used.  A slot whose position cannot be read (invalidated, or
 * never reserved) holds the job: pg_mig fails closed and says so.
 *
 * Lag limits have hysteresis: once throttled, a job resumes only below half
 * of each limit, so it does not flap at the limit.  Below the limits the
 * pacer (pace.c) sets the job's pace so that it gets there rarely: over a
 * limit means a replica that stopped or something else that writes WAL.
 *
 * Run windows: one or more windows separated by ";", each
 * "[DAYS ]HH:MM-HH:MM", DAYS a day or a day range (mon, tue, ... sun) or
 * a comma list of those, e.g. "01:00-05:00", "mon-fri 22:00-06:00; sat,sun
 * 00:00-24:00".  A window whose end is before its start crosses midnight
 * and belongs to the day it starts on.  Server time zone.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "commands/progress.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "pgtime.h"
#include "replication/slot.h"
#include "replication/walsender.h"
#include "replication/walsender_private.h"
#include "storage/fd.h"
#include "storage/spin.h"
#include "utils/acl.h"
#include "utils/backend_status.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"

#include "pg_mig.h"
#include "version_compat.h"

PG_FUNCTION_INFO_V1(mig_replicas);

#define MIN_BATCH				10
#define MAX_BATCH				100000
#define GROWTH_CAP				1.5
#define RATE_EWMA_WEIGHT		0.5	/* weight of the newest chunk's rate */

typedef struct Replica
{
	const char *kind;			/* "standby", "physical slot", "logical slot" */
	char		name[NAMEDATALEN + 32];
	bool		active;
	bool		known;			/* lag_bytes could be read */
	int64		lag_bytes;
	int64		replay_lag_us;	/* -1 = unknown */
	TimestampTz reply_at;		/* a standby's last report, 0 for a slot */
} Replica;

/* ReadReplicas fills out[] with every walsender and slot; returns how many */
static int
ReadReplicas(Replica **out)
{
	XLogRecPtr	now = RecoveryInProgress() ? InvalidXLogRecPtr : GetXLogInsertRecPtr();
	int			cap = max_wal_senders + max_replication_slots;
	Replica    *r = palloc0(sizeof(Replica) * Max(cap, 1));
	int			n = 0;

	for (int i = 0; WalSndCtl && i < max_wal_senders; i++)
	{
		WalSnd	   *w = &WalSndCtl->walsnds[i];
		pid_t		pid;
		WalSndState state;
		XLogRecPtr	apply,
					flush;
		TimeOffset	applyLag;
		TimestampTz replyTime;

		SpinLockAcquire(&w->mutex);
		pid = w->pid;
		state = w->state;
		apply = w->apply;
		flush = w->flush;
		applyLag = w->applyLag;
		replyTime = w->replyTime;
		SpinLockRelease(&w->mutex);
		if (pid == 0 || (state != WALSNDSTATE_STREAMING && state != WALSNDSTATE_CATCHUP))
			continue;
		r[n].kind = "standby";
		snprintf(r[n].name, sizeof(r[n].name), "walsender pid %d", (int) pid);
		for (int b = 1; b <= pgstat_fetch_stat_numbackends(); b++)
		{
			LocalPgBackendStatus *ls = MigLocalBackendStatus(b);

			if (ls && ls->backendStatus.st_procpid == pid && ls->backendStatus.st_appname[0])
				snprintf(r[n].name, sizeof(r[n].name), "%s", ls->backendStatus.st_appname);
		}
		r[n].active = true;
		if (XLogRecPtrIsInvalid(apply))
			apply = flush;
		r[n].known = !XLogRecPtrIsInvalid(apply);
		r[n].lag_bytes = (r[n].known && now > apply) ? (int64) (now - apply) : 0;
		r[n].replay_lag_us = applyLag;
		r[n].reply_at = replyTime;
		n++;
	}

	LWLockAcquire(ReplicationSlotControlLock, LW_SHARED);
	for (int i = 0; ReplicationSlotCtl && i < max_replication_slots; i++)
	{
		ReplicationSlot *s = &ReplicationSlotCtl->replication_slots[i];
		XLogRecPtr	pos;
		bool		logical;

		if (!s->in_use)
			continue;
		/* REPACK (CONCURRENTLY)'s own slot is no replica (see version_compat.h) */
		if (MigIsRepackSlot(NameStr(s->data.name)))
			continue;
		SpinLockAcquire(&s->mutex);
		logical = OidIsValid(s->data.database);
		pos = logical ? s->data.confirmed_flush : s->data.restart_lsn;
		r[n].active = MigSlotIsActive(s);
		snprintf(r[n].name, sizeof(r[n].name), "slot %s", NameStr(s->data.name));
		SpinLockRelease(&s->mutex);
		r[n].kind = logical ? "logical slot" : "physical slot";
		r[n].known = !XLogRecPtrIsInvalid(pos);
		r[n].lag_bytes = (r[n].known && now > pos) ? (int64) (now - pos) : 0;
		r[n].replay_lag_us = -1;
		n++;
	}
	LWLockRelease(ReplicationSlotControlLock);
	*out = r;
	return n;
}

/*
 * FormatBytes: a size as a DBA writes it: "2 MB" for an exact 2 MB limit,
 * "2.0 MB" for a lag of 2076 kB, "870 kB", "512 bytes"
 */
char *
MigFormatBytes(int64 b)
{
	static const char *const units[] = {"bytes", "kB", "MB", "GB", "TB"};
	int64		unit = 1;
	int			u = 0;

	while (u < 4 && b >= unit * 1024)
	{
		unit *= 1024;
		u++;
	}
	if (b % unit == 0)
		return psprintf(INT64_FORMAT " %s", b / unit, units[u]);
	if ((double) b / unit < 10)
		return psprintf("%.1f %s", (double) b / unit, units[u]);
	return psprintf("%.0f %s", (double) b / unit, units[u]);
}

char *
MigFormatMs(double ms)
{
	if (ms >= 120000)
		return psprintf("%.0f min", ms / 60000);
	if (ms >= 1000 && fmod(ms, 1000) == 0)
		return psprintf("%.0f s", ms / 1000);
	if (ms >= 1000)
		return psprintf("%.1f s", ms / 1000);
	return psprintf("%.0f ms", ms);
}

static bool
SlotIgnored(const MigJob *job, const char *name)
{
	ListCell   *lc;

	if (strncmp(name, "slot ", 5) != 0)
		return false;
	foreach(lc, job->ignore_slots)
		if (strcmp(lfirst(lc), name + 5) == 0)
			return true;
	return false;
}

/*
 * CheckReplicas: the first replica over a lag limit, as a reason, or NULL.
 * The reason names the replica, how far behind it is, the limit the user
 * set and the level the job waits for (half the limit, see the hysteresis
 * above), e.g. "standby1 is 2.0 MB behind (max_lag_bytes 2 MB); waiting
 * until below 1 MB".
 */
static char *
CheckReplicas(const MigJob *job, bool was_throttled)
{
	Replica    *r;
	int			n;
	double		scale = was_throttled ? 0.5 : 1.0;

	if (job->max_lag_bytes <= 0 && job->max_lag_ms <= 0)
		return NULL;
	n = ReadReplicas(&r);
	for (int i = 0; i < n; i++)
	{
		if (SlotIgnored(job, r[i].name))
			continue;
		if (!r[i].known)
			return psprintf("cannot read the position of %s; drop it or add it to ignore_slots",
							r[i].name);
		if (job->max_lag_bytes > 0 && r[i].lag_bytes > job->max_lag_bytes * scale)
			return psprintf("%s%s is %s behind (max_lag_bytes %s); waiting until below %s%s",
							strcmp(r[i].kind, "standby") == 0 ? "" : "replication ",
							r[i].name, MigFormatBytes(r[i].lag_bytes),
							MigFormatBytes(job->max_lag_bytes),
							MigFormatBytes(job->max_lag_bytes / 2),
							strcmp(r[i].kind, "standby") != 0 && !r[i].active ?
							"; the slot is inactive: start its standby, or drop the slot or add it to ignore_slots" :
							"");
		if (job->max_lag_ms > 0 && r[i].lag_bytes > 0 && r[i].replay_lag_us >= 0 &&
			r[i].replay_lag_us / 1000.0 > job->max_lag_ms * scale)
			return psprintf("%s replays %s behind (max_lag %s); waiting until below %s",
							r[i].name,
							MigFormatMs(r[i].replay_lag_us / 1000.0),
							MigFormatMs(job->max_lag_ms),
							MigFormatMs(job->max_lag_ms / 2.0));
	}
	return NULL;
}

/*
 * MigSlowestReplica: the active replica (a streaming standby, or a slot in
 * use) that is furthest behind relative to the job's lag limits, for the
 * pacer (pace.c).  Inactive slots, ignored slots and positions that cannot
 * be read are left to CheckReplicas, which stops the job for them.
 * Returns false if there is none.
 */
bool
MigSlowestReplica(const MigJob *job, MigReplicaLag *out)
{
	Replica    *r;
	int			n = ReadReplicas(&r);
	bool		found = false;

	for (int i = 0; i < n; i++)
	{
		double		f = 0;

		if (!r[i].active || !r[i].known || SlotIgnored(job, r[i].name))
			continue;
		if (job->max_lag_bytes > 0)
			f = (double) r[i].lag_bytes / job->max_lag_bytes;
		if (job->max_lag_ms > 0 && r[i].lag_bytes > 0 && r[i].replay_lag_us >= 0)
			f = Max(f, r[i].replay_lag_us / 1000.0 / job->max_lag_ms);
		if (!found || f > out->fraction)
		{
			found = true;
			out->fraction = f;
			out->lag_bytes = r[i].lag_bytes;
			out->replay_lag_ms = r[i].replay_lag_us >= 0 ? r[i].replay_lag_us / 1000 : -1;
			out->reply_at = r[i].reply_at;
			if (strncmp(r[i].name, "slot ", 5) == 0)
				snprintf(out->name, sizeof(out->name), "replication slot %s", r[i].name + 5);
			else
				snprintf(out->name, sizeof(out->name), "%s", r[i].name);
		}
	}
	return found;
}

/* CheckSessions: active sessions, oldest transaction, autovacuum on the table */
static char *
CheckSessions(const MigJob *job)
{
	int			active = 0;
	TimestampTz oldest = 0;
	TimestampTz now = GetCurrentTimestamp();
	bool		autovacuum = false;

	if (job->max_active_sessions <= 0 && job->max_xact_age_ms <= 0 &&
		!job->throttle_on_autovacuum)
		return NULL;
	for (int b = 1; b <= pgstat_fetch_stat_numbackends(); b++)
	{
		LocalPgBackendStatus *ls = MigLocalBackendStatus(b);
		PgBackendStatus *st;

		if (ls == NULL)
			continue;
		st = &ls->backendStatus;
		if (st->st_procpid == MyProcPid)
			continue;
		/* a session in mig_wait waits for this job: it must not hold it */
		if (st->st_backendType == B_BACKEND && MigIsWaiter(st->st_procpid))
			continue;
		if (st->st_backendType == B_BACKEND && st->st_state == STATE_RUNNING)
			active++;
		if (st->st_backendType == B_BACKEND && st->st_xact_start_timestamp != 0 &&
			(oldest == 0 || st->st_xact_start_timestamp < oldest))
			oldest = st->st_xact_start_timestamp;
		if (st->st_backendType == B_AUTOVAC_WORKER &&
			st->st_progress_command == PROGRESS_COMMAND_VACUUM &&
			st->st_progress_command_target == job->relid)
			autovacuum = true;
	}
	if (job->max_active_sessions > 0 && active > job->max_active_sessions)
		return psprintf("%d client sessions are active (max_active_sessions %d); waiting until at most %d",
						active, job->max_active_sessions, job->max_active_sessions);
	if (job->max_xact_age_ms > 0 && oldest != 0 &&
		(now - oldest) / 1000 > job->max_xact_age_ms)
		return psprintf("a transaction has been open for %s (max_xact_age %s); waiting until it ends",
						MigFormatMs((now - oldest) / 1000.0), MigFormatMs(job->max_xact_age_ms));
	if (job->throttle_on_autovacuum && autovacuum)
		return psprintf("autovacuum running on %s", job->relation_name);
	return NULL;
}

/* CheckArchive: WAL files waiting to be archived */
static char *
CheckArchive(const MigJob *job)
{
	DIR		   *dir;
	struct dirent *de;
	int			ready = 0;

	if (job->max_archive_backlog <= 0)
		return NULL;
	dir = AllocateDir("pg_wal/archive_status");
	if (dir == NULL)
		return pstrdup("cannot read pg_wal/archive_status");
	while ((de = ReadDir(dir, "pg_wal/archive_status")) != NULL)
	{
		size_t		len = strlen(de->d_name);

		if (len > 6 && strcmp(de->d_name + len - 6, ".ready") == 0)
			ready++;
	}
	FreeDir(dir);
	if (ready > job->max_archive_backlog)
		return psprintf("%d WAL files wait to be archived (max_archive_backlog %d); check archive_command",
						ready, job->max_archive_backlog);
	return NULL;
}

/*
 * CheckQuery runs the throttle query in a subtransaction, so that its
 * error does not abort the step; an error or NULL throttles the job.
 */
typedef struct QueryCall
{
	const char *query;
	char	   *reason;
} QueryCall;

static void
RunThrottleQuery(void *arg)
{
	QueryCall  *call = arg;
	bool		isnull = true;
	Datum		d;

	if (SPI_execute(call->query, true, 2) != SPI_OK_SELECT || SPI_processed != 1 ||
		SPI_tuptable->tupdesc->natts != 1 ||
		TupleDescAttr(SPI_tuptable->tupdesc, 0)->atttypid != BOOLOID)
	{
		call->reason = "throttle_query did not return one boolean";
		return;
	}
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (isnull)
		call->reason = "throttle_query returned NULL";
	else if (DatumGetBool(d))
		call->reason = "throttle_query returned true";
}

static char *
CheckQuery(const MigJob *job)
{
	QueryCall	call = {job->throttle_query, NULL};
	ErrorData  *edata;

	if (job->throttle_query == NULL)
		return NULL;
	edata = MigTrySubtransaction(RunThrottleQuery, &call);
	if (edata)
		return psprintf("throttle_query failed: %s", edata->message);
	return call.reason ? pstrdup(call.reason) : NULL;
}

/*
 * MigThrottleCheck decides whether the next chunk may start.  Caller is in
 * a transaction with SPI connected, as the job owner.  Returns true if the
 * job must wait, with *reason saying why.
 */
bool
MigThrottleCheck(const MigJob *job, bool was_throttled, char **reason)
{
	char	   *r = NULL;

	pgstat_clear_backend_activity_snapshot();
	if (mig_hold)
		r = pstrdup("held by pg_mig.hold");
	else if (job->run_window && !MigInRunWindow(job->run_window, GetCurrentTimestamp()))
		r = psprintf("outside run window %s", job->run_window);
	if (r == NULL)
		r = CheckReplicas(job, was_throttled);
	if (r == NULL)
		r = CheckSessions(job);
	if (r == NULL)
		r = CheckArchive(job);
	if (r == NULL)
		r = CheckQuery(job);
	*reason = r;
	return r != NULL;
}

/*
 * MigPacingDelayMs: the pause after a chunk: sleep, plus nice_ratio times
 * the chunk's duration, plus what the chunk's WAL needs at max_wal_rate
 * beyond the chunk's own duration.
 */
int64
MigPacingDelayMs(const MigJob *job, int64 chunk_ms, int64 chunk_wal_bytes)
{
	int64		delay = job->sleep_ms;

	if (job->nice_ratio > 0)
		delay += (int64) (job->nice_ratio * chunk_ms);
	if (job->max_wal_rate > 0)
	{
		int64		need_ms = (int64) ((double) chunk_wal_bytes * 1000.0 / job->max_wal_rate);

		delay += Max(need_ms - chunk_ms, 0);
	}
	return delay;
}

/*
 * MigNextBatchSize: with chunk_time set, the size that the measured rate
 * says would take chunk_time.  The rate (keys per ms) is an exponentially
 * weighted moving average over the chunks so far, like pt-online-schema-
 * change's --chunk-time, kept in *rate_ewma between calls (0 = none yet).
 * The size grows at most GROWTH_CAP times per chunk and at least halves
 * after an overrun of 1.5 times (the average restarts from that chunk).
 * With max_lag_bytes set, a chunk writes at most 1/MIG_PACE_CHUNK_SHARE of
 * that much WAL, so the pacer (pace.c) can hold the lag near the limit and
 * a standby that stops replaying falls behind by the limit plus that at
 * most.  Within [MIN_BATCH, MAX_BATCH].  Without chunk_time, the fixed
 * batch_size.
 */
int
MigNextBatchSize(const MigJob *job, int current, int64 chunk_ms, int64 keys,
				 int64 wal_bytes, double *rate_ewma)
{
	double		next;

	if (job->chunk_time_ms <= 0)
		return job->batch_size;
	if (keys <= 0 || chunk_ms <= 0)
		next = current * GROWTH_CAP;
	else
	{
		double		rate = (double) keys / chunk_ms;	/* keys per ms */
		bool		overrun = chunk_ms > job->chunk_time_ms * 1.5;

		if (*rate_ewma <= 0 || overrun)
			*rate_ewma = rate;
		else
			*rate_ewma = RATE_EWMA_WEIGHT * rate + (1.0 - RATE_EWMA_WEIGHT) * *rate_ewma;
		next = *rate_ewma * job->chunk_time_ms;
		if (next > current * GROWTH_CAP)
			next = current * GROWTH_CAP;
		if (overrun)
			next = Min(next, current / 2.0);
	}
	if (job->max_lag_bytes > 0 && wal_bytes > 0 && keys > 0)
	{
		double		cap = ((double) job->max_lag_bytes / (mig_lag_pacing ? MIG_PACE_CHUNK_SHARE : 2)) /
			((double) wal_bytes / keys);

		if (next > cap)
			next = cap;
	}
	if (next < MIN_BATCH)
		next = MIN_BATCH;
	if (next > MAX_BATCH)
		next = MAX_BATCH;
	return (int) next;
}

/* ---- run windows ---- */

static const char *const day_names[7] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

static int
DayIndex(const char *p)
{
	for (int i = 0; i < 7; i++)
		if (pg_strncasecmp(p, day_names[i], 3) == 0)
			return i;
	return -1;
}

/*
 * ParseWindow parses one window; sets days (bit per weekday), from and to
 * in minutes.  Returns an error message or NULL.
 */
static char *
ParseWindow(const char *w, int *days, int *from, int *to)
{
	const char *p = w;
	int			h1,
				m1,
				h2,
				m2,
				consumed = 0;

	while (*p == ' ')
		p++;
	*days = 0x7f;
	if (isalpha((unsigned char) *p))
	{
		*days = 0;
		for (;;)
		{
			int			a = DayIndex(p),
						b;

			if (a < 0)
				return psprintf("invalid run window \"%s\": unknown day \"%.3s\"", w, p);
			p += 3;
			b = a;
			if (*p == '-')
			{
				b = DayIndex(p + 1);
				if (b < 0)
					return psprintf("invalid run window \"%s\": unknown day \"%.3s\"", w, p + 1);
				p += 4;
			}
			for (int d = a;; d = (d + 1) % 7)
			{
				*days |= 1 << d;
				if (d == b)
					break;
			}
			if (*p != ',')
				break;
			p++;
		}
		if (*p != ' ')
			return psprintf("invalid run window \"%s\": expected a space after the days", w);
	}
	if (sscanf(p, " %d:%d-%d:%d%n", &h1, &m1, &h2, &m2, &consumed) != 4)
		return psprintf("invalid run window \"%s\": expected HH:MM-HH:MM", w);
	p += consumed;
	while (*p == ' ')
		p++;
	if (*p != '\0')
		return psprintf("invalid run window \"%s\": unexpected \"%s\"", w, p);
	if (h1 < 0 || h1 > 24 || h2 < 0 || h2 > 24 || m1 < 0 || m1 > 59 || m2 < 0 || m2 > 59 ||
		(h1 == 24 && m1) || (h2 == 24 && m2))
		return psprintf("invalid run window \"%s\": hours must be 0-24 and minutes 0-59", w);
	*from = h1 * 60 + m1;
	*to = h2 * 60 + m2;
	if (*from == *to)
		return psprintf("invalid run window \"%s\": it is empty", w);
	return NULL;
}

/*
 * SplitZone splits a run window spec into its windows and the time zone
 * written after the last one, if any ('mon-fri 22:00-06:00 Europe/Berlin'):
 * returns the windows (a copy) and sets *zone to the zone name or NULL.
 */
static char *
SplitZone(const char *spec, char **zone)
{
	char	   *copy = pstrdup(spec);
	char	   *last = strrchr(copy, ';');
	char	   *end;
	char	   *p;

	last = last ? last + 1 : copy;
	*zone = NULL;
	/* the zone is the last word of the last window, if it is no time range */
	end = last + strlen(last);
	while (end > last && isspace((unsigned char) end[-1]))
		*--end = '\0';
	p = end;
	while (p > last && !isspace((unsigned char) p[-1]))
		p--;
	if (p > last && *p != '\0' && strchr(p, ':') == NULL)
	{
		*zone = pstrdup(p);
		*p = '\0';
	}
	return copy;
}

/*
 * CheckOrMatch parses every window of spec (and its time zone); with
 * match, also sets *in to whether the time now falls in one of them, in the
 * spec's zone, or without one in the server's TimeZone.  Returns an error
 * message or NULL.
 */
static char *
CheckOrMatch(const char *spec, bool match, TimestampTz now, bool *in)
{
	char	   *zone = NULL;
	char	   *copy = SplitZone(spec, &zone);
	char	   *save = NULL;
	pg_tz	   *tz;
	int			dow = 0;
	int			minute = 0;

	*in = false;
	if (zone != NULL)
	{
		tz = pg_tzset(zone);
		if (tz == NULL)
			return psprintf("invalid run window \"%s\": unknown time zone \"%s\"", spec, zone);
	}
	else
	{
		/*
		 * The server's TimeZone: the value of the setting a new session
		 * gets (postgresql.conf, or ALTER DATABASE / ROLE ... SET), not a
		 * SET of the session that started the job, whose TimeZone the
		 * worker takes for the clauses.
		 */
		tz = pg_tzset(GetConfigOptionResetString("TimeZone"));
		if (tz == NULL)
			tz = session_timezone;
	}
	if (match)
	{
		pg_time_t	t = timestamptz_to_time_t(now);
		struct pg_tm *tm = pg_localtime(&t, tz);

		dow = tm->tm_wday;
		minute = tm->tm_hour * 60 + tm->tm_min;
	}

	for (char *w = strtok_r(copy, ";", &save); w; w = strtok_r(NULL, ";", &save))
	{
		int			days = 0,
					from = 0,
					to = 0;
		char	   *err = ParseWindow(w, &days, &from, &to);

		if (err)
			return err;
		if (!match)
			continue;
		if (from < to)
		{
			if ((days & (1 << dow)) && minute >= from && minute < to)
				*in = true;
		}
		else
		{
			/* crosses midnight: belongs to the day it starts on */
			if ((days & (1 << dow)) && minute >= from)
				*in = true;
			if ((days & (1 << ((dow + 6) % 7))) && minute < to)
				*in = true;
		}
	}
	return NULL;
}

/* MigRunWindowValid: whether spec is a valid run window; else *errmsg says why */
bool
MigRunWindowValid(const char *spec, char **errmsg)
{
	bool		in;

	*errmsg = CheckOrMatch(spec, false, 0, &in);
	return *errmsg == NULL;
}

/*
 * MigInRunWindow: whether now falls in the run window spec (false for an
 * invalid spec).  Times are in the zone written at the end of the spec, or
 * else in the server's TimeZone.
 */
bool
MigInRunWindow(const char *spec, TimestampTz now)
{
	bool		in;

	if (CheckOrMatch(spec, true, now, &in) != NULL)
		return false;
	return in;
}

/*
 * mig_replicas lists the replicas pg_mig watches, with their lag.  Names
 * and lag are shown to superusers and members of pg_monitor only, as
 * pg_stat_replication hides them; others see each replica's kind and
 * whether it is active.  (A job's owner sees the replica that holds her job
 * back in the job's throttle reason.)
 */
Datum
mig_replicas(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Replica    *r;
	int			n;
	bool		privileged = superuser() ||
		has_privs_of_role(GetUserId(), ROLE_PG_MONITOR);

	InitMaterializedSRF(fcinfo, 0);
	n = ReadReplicas(&r);
	for (int i = 0; !privileged && i < n; i++)
	{
		/* like pg_stat_replication: no names or positions to PUBLIC */
		Datum		values[6];
		bool		nulls[6] = {false, true, false, true, true, false};

		values[0] = CStringGetTextDatum(r[i].kind);
		values[2] = BoolGetDatum(r[i].active);
		values[5] = CStringGetTextDatum("insufficient privilege");
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	for (int i = 0; privileged && i < n; i++)
	{
		Datum		values[6];
		bool		nulls[6] = {false, false, false, false, false, false};

		values[0] = CStringGetTextDatum(r[i].kind);
		values[1] = CStringGetTextDatum(strncmp(r[i].name, "slot ", 5) == 0 ?
										r[i].name + 5 : r[i].name);
		values[2] = BoolGetDatum(r[i].active);
		values[3] = Int64GetDatum(r[i].lag_bytes);
		nulls[3] = !r[i].known;
		if (r[i].replay_lag_us >= 0)
			values[4] = MigMsToInterval(r[i].replay_lag_us / 1000);
		else
			nulls[4] = true;
		if (r[i].known)
			nulls[5] = true;
		else
			values[5] = CStringGetTextDatum("position unknown (slot invalidated or not reserved)");
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	PG_RETURN_VOID();
}

/*
 * MigReadLag sets *lag_bytes to the largest lag in bytes of the replicas
 * the job waits for (those of ignore_slots left out), and *lag_ms to the
 * largest replay lag of a standby; -1 when there is none.  For the
 * samples of a job's history (timeline.c).
 */
void
MigReadLag(const MigJob *job, int64 *lag_bytes, int64 *lag_ms)
{
	Replica    *r;
	int			n = ReadReplicas(&r);

	*lag_bytes = -1;
	*lag_ms = -1;
	for (int i = 0; i < n; i++)
	{
		if (SlotIgnored(job, r[i].name) || !r[i].known)
			continue;
		*lag_bytes = Max(*lag_bytes, r[i].lag_bytes);
		/* a standby that has caught up keeps its last replay lag: it is 0 */
		if (r[i].replay_lag_us >= 0)
			*lag_ms = Max(*lag_ms, r[i].lag_bytes > 0 ? r[i].replay_lag_us / 1000 : 0);
	}
	pfree(r);
}
