/*-------------------------------------------------------------------------
 *
 * vacuum.c
 *	  Bloat control: the worker vacuums the table behind its walk.
 *
 * A chunk's UPDATE writes a new version of every row it changes.  In a
 * table whose pages are full (every table after its load, fillfactor 100)
 * no new version fits on its old page, so each goes where the free space
 * map says there is room, and with no VACUUM during the walk there is none:
 * every new version goes to a new page at the end, and after a full
 * backfill the table is twice its size, like after one UPDATE.  Autovacuum
 * comes too late for that, even with a short naptime (bench/bloat.sh).
 *
 * So the worker runs, every vacuum_every rows it changed,
 *
 *	  VACUUM (INDEX_CLEANUP OFF, TRUNCATE OFF) table
 *
 * between two chunks.  The old versions behind the walk are dead by then;
 * the VACUUM frees their space and records it in the free space map, and
 * the next chunks put their new versions there instead of at the end.  The
 * table grows by about vacuum_every rows' worth and no more.
 *
 * INDEX_CLEANUP OFF: an index cleanup reads every index in full at every
 * VACUUM (on 1 M rows, 10 VACUUMs with it took 17 % of the worker's CPU
 * time, 10 % in the index scans; without it 10 %), and it would not make the
 * indexes smaller either: a non-HOT update adds an entry to each index, and
 * the space of an old entry is reused only by keys of its leaf page, which
 * the walk has passed.  So the dead rows keep their 4-byte line pointers
 * and their index entries until the next VACUUM with index cleanup; the
 * ANALYZE after the job counts them as dead rows, and autovacuum's VACUUM
 * after it cleans them up.  The price: those pages never become
 * all-visible during the walk, so each VACUUM reads again every page the
 * walk has passed; the automatic vacuum_every, a tenth of the table, keeps
 * that to about five reads of the table in all (cheap ones: nothing left
 * to prune), a cost linear in the table's size.
 * TRUNCATE OFF: truncating the end of the table takes an ACCESS EXCLUSIVE
 * lock, which also stops the queries on the standbys.
 *
 * The VACUUM runs as the job's owner, as everything the worker does: a
 * role that may not vacuum the table (VACUUM would only warn "skipping")
 * is found before, recorded once as a 'vacuum_skipped' event, and the job
 * goes on without.  It waits for its lock no longer than the job's
 * lock_timeout (then it is tried again after the next chunk), runs only
 * when the job is not throttled and when it can free something (an older
 * snapshot keeps every row version the walk replaced since the last one:
 * put off, one 'vacuum_held' event names the holder), and its WAL and time
 * count in the pacing like a chunk's.  A 'vacuumed' event records the first
 * VACUUM, then at most one summary a minute, and one of the rest when the
 * walk ends or stops.
 *
 * With parallel lanes, lane 1 alone vacuums, every vacuum_every / parallel
 * rows of its own: the lanes walk equal parts at about the same rate, so
 * that is about every vacuum_every rows of the job, and two VACUUMs of the
 * table never wait for each other.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "access/transam.h"
#include "access/xact.h"
#include "catalog/pg_class.h"
#include "catalog/pg_database.h"
#include "catalog/pg_type.h"
#include "executor/instrument.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "replication/slot.h"
#include "storage/bufmgr.h"
#include "storage/procarray.h"
#include "storage/spin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "pg_mig.h"
#include "steps.h"
#include "version_compat.h"

/* at most one 'vacuumed' summary event per this many seconds */
#define VACUUM_EVENT_INTERVAL_MS	60000
#define VACUUM_WORK_MEM			"1MB"	/* maintenance_work_mem of its VACUUM */

/* what the worker knows of its VACUUMs, for the life of the process */
static Oid	counted_relid = InvalidOid; /* the table the rows are counted on */
static int64 rows_at_last;		/* rows_done at the last VACUUM (or start) */
static TransactionId xid_at_last;	/* the next xid then: no chunk since is older */
static bool held_recorded;		/* 'vacuum_held' recorded since then */
static bool skipped_recorded;	/* 'vacuum_skipped' recorded for the table */
static bool may_not_vacuum;		/* the owner may not vacuum counted_relid */

/* since the last 'vacuumed' event */
static TimestampTz last_event_at;
static int	vacuums_unreported;
static int64 ms_unreported;
static int64 wal_unreported;
static int64 every_unreported;	/* vacuum_every (the lane's share) then */

typedef enum VacuumCheck
{
	VACUUM_GO,					/* run it, *sql set */
	VACUUM_WAIT,				/* throttled, or nothing to free: after the next chunk */
	VACUUM_NEVER				/* the owner may not vacuum the table */
} VacuumCheck;

static void CountFrom(int64 rows_done);
static VacuumCheck CheckVacuum(const MigJob *job, Oid relid, char *volatile *sql);
static bool HorizonHoldsTheWalk(const MigJob *job, Oid relid);
static char *HorizonHolder(TransactionId horizon);
static void RecordVacuumed(const MigJob *job, int64 ms, int64 wal, int64 every);
static void ForgetUnreported(void);
static void RecordVacuumFailed(const MigJob *job, ErrorData *edata);

/*
 * MigMaybeVacuum runs a VACUUM of relid, the table the job's last chunk
 * changed, if the job has changed vacuum_every rows (its share, for lane 1
 * of a parallel job) since the last one, and adds the pause its WAL needs
 * under max_wal_rate to *delay_ms.  job is the job as loaded for the
 * chunk (job->rows_done: the rows done before it, the lane's for a lane).
 * Caller is the job's worker, between transactions, after the chunk
 * committed.  Never raises an error for the VACUUM: a failed one is
 * recorded as an event and the job goes on.
 */
void
MigMaybeVacuum(const MigJob *job, Oid relid, long *delay_ms)
{
	MemoryContext ctx = CurrentMemoryContext;
	volatile int64 every;		/* volatile: gcc 15 -Wclobbered (PG_TRY below) */
	volatile VacuumCheck check = VACUUM_WAIT;
	char	   *volatile sql = NULL;
	TimestampTz start;
	int64		wal_before;
	int64		ms;
	int64		wal;
	ErrorData  *volatile edata = NULL;
	char	   *mwm;

	if (job->vacuum_every <= 0 || (job->parallel > 1 && job->lane != 1))
		return;
	if (relid != counted_relid)
	{
		/* a new table (or the worker's first chunk): count from here */
		counted_relid = relid;
		CountFrom(job->rows_done);
		skipped_recorded = false;
		may_not_vacuum = false;
		return;
	}
	if (may_not_vacuum)
		return;
	every = job->parallel > 1 ? Max(job->vacuum_every / job->parallel, 1)
		: job->vacuum_every;
	if (job->rows_done - rows_at_last < every)
		return;

	PG_TRY();
	{
		check = CheckVacuum(job, relid, &sql);
	}
	PG_CATCH();
	{
		/* a throttle query that fails, ...: the next chunk meets it too */
		MemoryContextSwitchTo(ctx);
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
		check = VACUUM_WAIT;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(ctx);
	if (check == VACUUM_NEVER)
		may_not_vacuum = true;
	if (check != VACUUM_GO)
		return;

	start = GetCurrentTimestamp();
	wal_before = pgWalUsage.wal_bytes;

	/*
	 * With INDEX_CLEANUP OFF the VACUUM's dead item store buys nothing (it
	 * is emptied whenever it fills, with no index pass), but grows up to
	 * maintenance_work_mem in the worker: keep it, and the worker's memory,
	 * small.
	 */
	mwm = pstrdup(GetConfigOption("maintenance_work_mem", false, false));
	SetConfigOption("maintenance_work_mem", VACUUM_WORK_MEM, PGC_USERSET, PGC_S_SESSION);
	PG_TRY();
	{
		MigRunTopLevel(sql, job->lock_timeout_ms);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(ctx);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		SetConfigOption("lock_timeout", "0", PGC_USERSET, PGC_S_SESSION);
		QueryCancelPending = false;
		pgstat_report_activity(STATE_IDLE, NULL);
	}
	PG_END_TRY();
	MemoryContextSwitchTo(ctx);
	SetConfigOption("maintenance_work_mem", mwm, PGC_USERSET, PGC_S_SESSION);
	ms = TimestampDifferenceMilliseconds(start, GetCurrentTimestamp());
	wal = pgWalUsage.wal_bytes - wal_before;

	/* the VACUUM's WAL and time count in the pacing like a chunk's */
	{
		MigJob		share = *job;

		share.sleep_ms = 0;
		if (job->parallel > 1 && job->max_wal_rate > 0)
			share.max_wal_rate = Max(job->max_wal_rate / job->parallel, 1);
		*delay_ms += (long) MigPacingDelayMs(&share, ms, wal);
	}

	if (edata == NULL)
	{
		elog(DEBUG1, "pg_mig job " INT64_FORMAT ": VACUUM in " INT64_FORMAT " ms, WAL " INT64_FORMAT " bytes",
			 job->job_id, ms, wal);
		CountFrom(job->rows_done);
		RecordVacuumed(job, ms, wal, every);
	}
	else if (edata->sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE)
	{
		/* autovacuum or DDL holds the table: after the next chunk */
		ereport(DEBUG1,
				(errmsg("pg_mig job " INT64_FORMAT ": VACUUM waited too long for its lock",
						job->job_id)));
	}
	else
	{
		/* recorded; tried again after another vacuum_every rows */
		CountFrom(job->rows_done);
		RecordVacuumFailed(job, edata);
	}
	MemoryContextSwitchTo(ctx);
}

/*
 * CountFrom starts counting the rows changed towards the next VACUUM at
 * rows_done, and notes the next transaction id: every chunk from here on
 * has it or a later one.
 */
static void
CountFrom(int64 rows_done)
{
	rows_at_last = rows_done;
	xid_at_last = ReadNextTransactionId();
	held_recorded = false;
}

/*
 * CheckVacuum decides, in a transaction of its own, whether the VACUUM may
 * run now: not while a health signal says wait (the next chunk waits for
 * it, then the VACUUM is tried again), not while it could free nothing
 * (HorizonHoldsTheWalk: tried again after the next chunk), never if the
 * job's owner may not vacuum the table (recorded once).  Builds the
 * statement.
 */
static VacuumCheck
CheckVacuum(const MigJob *job, Oid relid, char *volatile *sql)
{
	MemoryContext ctx = CurrentMemoryContext;
	VacuumCheck result = VACUUM_GO;
	char	   *reason = NULL;
	char	   *relname;
	char	   *nspname;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	MemoryContextSwitchTo(ctx);
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "pg_mig: checking before VACUUM");

	relname = get_rel_name(relid);
	nspname = relname ? get_namespace_name(get_rel_namespace(relid)) : NULL;
	if (relname == NULL || nspname == NULL)
		result = VACUUM_WAIT;	/* dropped: the next chunk fails the job */
	else if (!MigMayVacuum(relid, GetUserId()))
	{
		result = VACUUM_NEVER;
		if (!skipped_recorded)
		{
			MigRecordEvent(job->job_id, "vacuum_skipped",
						   psprintf("role \"%s\" may not vacuum table \"%s\", so the table is not vacuumed behind the walk (vacuum_every " INT64_FORMAT "); only autovacuum reclaims the space of the old row versions",
									GetUserNameFromId(GetUserId(), false),
									relname, job->vacuum_every));
			skipped_recorded = true;
		}
	}
	else if (MigThrottleCheck(job, false, &reason))
		result = VACUUM_WAIT;
	else if (HorizonHoldsTheWalk(job, relid))
		result = VACUUM_WAIT;
	else
		*sql = MemoryContextStrdup(ctx,
								   psprintf("VACUUM (INDEX_CLEANUP OFF, TRUNCATE OFF%s) %s",
											MIG_VACUUM_EXTRA_OPTIONS,
											quote_qualified_identifier(nspname, relname)));
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	MemoryContextSwitchTo(ctx);
	pgstat_report_activity(STATE_IDLE, NULL);
	return result;
}

/*
 * HorizonHoldsTheWalk: whether the oldest transaction id that a snapshot
 * may still need for relid (the xmin horizon: of a transaction in this
 * database, a standby's hot_standby_feedback, a replication slot, a
 * prepared transaction) is no later than the first chunk since the last
 * VACUUM.  Then no row version those chunks replaced can be removed yet: a
 * VACUUM would free nothing and read again every page the walk has passed
 * (they are not all-visible), and the table grows as without one whatever
 * the worker does.  The first time in a span it records a 'vacuum_held'
 * event that names the holder; the next VACUUM is recorded at once.
 */
static bool
HorizonHoldsTheWalk(const MigJob *job, Oid relid)
{
	Relation	rel;
	TransactionId horizon;

	if (!TransactionIdIsNormal(xid_at_last))
		return false;
	rel = try_relation_open(relid, AccessShareLock);
	if (rel == NULL)
		return false;
	horizon = GetOldestNonRemovableTransactionId(rel);
	relation_close(rel, AccessShareLock);
	if (!TransactionIdIsNormal(horizon) || TransactionIdFollows(horizon, xid_at_last))
		return false;
	if (!held_recorded)
	{
		MigRecordEvent(job->job_id, "vacuum_held",
					   psprintf("%sVACUUM of %s put off: the row versions the walk replaced since the last one cannot be removed while %s holds back the xmin horizon (xmin %u); the table grows by the rows changed meanwhile, and the worker vacuums once the horizon moves on",
								job->lane > 0 ? psprintf("lane %d: ", job->lane) : "",
								get_rel_name(relid), HorizonHolder(horizon), horizon));
		held_recorded = true;
		last_event_at = 0;		/* the VACUUM after it: its event at once */
	}
	return true;
}

/*
 * HorizonHolder names what holds the xmin horizon at horizon, in this
 * order: the backend whose transaction id it is; the prepared transaction
 * whose id it is (by its gid); a replication slot whose xmin it is; the
 * backend whose snapshot's xmin it is (a walsender's: the standby's
 * hot_standby_feedback).  A running transaction's id is the xmin of every
 * snapshot taken while it runs, this worker's too, so the ids come first.
 * Caller is connected to SPI.
 */
static char *
HorizonHolder(TransactionId horizon)
{
	TransactionId slot_xmin;

	for (int b = 1; b <= pgstat_fetch_stat_numbackends(); b++)
	{
		LocalPgBackendStatus *ls = MigLocalBackendStatus(b);

		if (ls != NULL && ls->backend_xid == horizon)
			return psprintf("the transaction of pid %d", ls->backendStatus.st_procpid);
	}
	{
		Oid			types[1] = {XIDOID};
		Datum		values[1] = {TransactionIdGetDatum(horizon)};

		if (SPI_execute_with_args("SELECT gid FROM pg_catalog.pg_prepared_xacts"
								  " WHERE transaction OPERATOR(pg_catalog.=) $1",
								  1, types, values, NULL, true, 1) == SPI_OK_SELECT &&
			SPI_processed == 1)
			return psprintf("the prepared transaction %s",
							quote_literal_cstr(SPI_getvalue(SPI_tuptable->vals[0],
															SPI_tuptable->tupdesc, 1)));
	}
	ProcArrayGetReplicationSlotXmin(&slot_xmin, NULL);
	if (slot_xmin == horizon)
	{
		NameData	name;
		bool		found = false;

		LWLockAcquire(ReplicationSlotControlLock, LW_SHARED);
		for (int i = 0; ReplicationSlotCtl && i < max_replication_slots && !found; i++)
		{
			ReplicationSlot *s = &ReplicationSlotCtl->replication_slots[i];

			if (!s->in_use)
				continue;
			SpinLockAcquire(&s->mutex);
			if (s->effective_xmin == horizon)
			{
				name = s->data.name;
				found = true;
			}
			SpinLockRelease(&s->mutex);
		}
		LWLockRelease(ReplicationSlotControlLock);
		return psprintf("the replication slot \"%s\"", found ? NameStr(name) : "?");
	}
	for (int b = 1; b <= pgstat_fetch_stat_numbackends(); b++)
	{
		LocalPgBackendStatus *ls = MigLocalBackendStatus(b);

		if (ls == NULL || ls->backend_xmin != horizon || ls->backendStatus.st_procpid == MyProcPid)
			continue;
		if (ls->backendStatus.st_backendType == B_WAL_SENDER)
			return psprintf("the standby \"%s\" (walsender pid %d, hot_standby_feedback)",
							ls->backendStatus.st_appname, ls->backendStatus.st_procpid);
		return psprintf("the snapshot of pid %d", ls->backendStatus.st_procpid);
	}
	return pstrdup("a transaction");
}

/*
 * RecordVacuumed counts the VACUUM just done for a 'vacuumed' event: the
 * first is recorded at once, then at most one summary a minute of those
 * since (and of the rest when the walk ends or stops: MigVacuumSummary,
 * MigVacuumReport).  Caller is between transactions.
 */
static void
RecordVacuumed(const MigJob *job, int64 ms, int64 wal, int64 every)
{
	vacuums_unreported++;
	ms_unreported += ms;
	wal_unreported += wal;
	every_unreported = every;
	if (last_event_at != 0 &&
		!TimestampDifferenceExceeds(last_event_at, GetCurrentTimestamp(),
									VACUUM_EVENT_INTERVAL_MS))
		return;
	MigVacuumReport(job->job_id, job->lane);
}

/*
 * MigVacuumReport records the VACUUMs not recorded yet (MigVacuumSummary)
 * in a transaction of its own; an error there is only logged: an event is
 * not worth failing the job for.  Caller is between transactions: the
 * worker after a VACUUM, and when its walk stops (paused, cancelled,
 * failed: a walk that ends records them as it ends).
 */
void
MigVacuumReport(int64 job_id, int lane)
{
	MemoryContext ctx = CurrentMemoryContext;

	if (vacuums_unreported == 0)
		return;
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PG_TRY();
	{
		MemoryContextSwitchTo(ctx);
		PushActiveSnapshot(GetTransactionSnapshot());
		MigVacuumSummary(job_id, lane);
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(ctx);
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(ctx);
	/* not again for a minute, recorded or not */
	ForgetUnreported();
}

/*
 * MigVacuumSummary records the VACUUMs of the job's worker (lane: its lane,
 * 0 for none) not recorded yet in a 'vacuumed' event, in the caller's
 * transaction (the last chunk's, when the walk ends), so that the events
 * count every VACUUM the job ran.
 */
void
MigVacuumSummary(int64 job_id, int lane)
{
	Relation	rel;
	BlockNumber pages;

	if (vacuums_unreported == 0 || !OidIsValid(counted_relid))
		return;
	rel = try_relation_open(counted_relid, AccessShareLock);
	pages = rel ? RelationGetNumberOfBlocks(rel) : 0;
	if (rel)
		relation_close(rel, AccessShareLock);
	MigRecordEvent(job_id, "vacuumed",
				   psprintf("%s%d VACUUM%s of %s in %.1f s, WAL %.1f MB, every " INT64_FORMAT " rows; the table has %u pages",
							lane > 0 ? psprintf("lane %d: ", lane) : "",
							vacuums_unreported, vacuums_unreported == 1 ? "" : "s",
							get_rel_name(counted_relid) ? get_rel_name(counted_relid) : "?",
							ms_unreported / 1000.0, wal_unreported / 1048576.0,
							every_unreported, pages));
	ForgetUnreported();
}

/* ForgetUnreported: the VACUUMs so far are recorded; none again for a minute */
static void
ForgetUnreported(void)
{
	last_event_at = GetCurrentTimestamp();
	vacuums_unreported = 0;
	ms_unreported = 0;
	wal_unreported = 0;
}

/* RecordVacuumFailed: a 'vacuum_failed' event (and the log) for a failed VACUUM */
static void
RecordVacuumFailed(const MigJob *job, ErrorData *edata)
{
	MemoryContext ctx = CurrentMemoryContext;

	ereport(LOG,
			(errmsg("pg_mig job " INT64_FORMAT ": VACUUM failed: %s (SQLSTATE %s)",
					job->job_id, edata->message, unpack_sql_state(edata->sqlerrcode))));
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PG_TRY();
	{
		MemoryContextSwitchTo(ctx);
		PushActiveSnapshot(GetTransactionSnapshot());
		MigRecordEvent(job->job_id, "vacuum_failed",
					   psprintf("%s (SQLSTATE %s); tried again after another vacuum_every rows",
								edata->message, unpack_sql_state(edata->sqlerrcode)));
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(ctx);
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(ctx);
}
