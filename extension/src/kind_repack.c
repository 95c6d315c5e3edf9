/*-------------------------------------------------------------------------
 *
 * kind_repack.c
 *	  The repack kind (mig_repack, PostgreSQL 19 and later): REPACK
 *	  (CONCURRENTLY) of a table run by the worker, so that the client may
 *	  go away and the table is still rewritten, without the space a big
 *	  backfill or delete left behind.
 *
 * The recipe is one schema step (see steps.c):
 *
 *	  repack		wait while replicas lag; REPACK (CONCURRENTLY) t
 *
 * REPACK (CONCURRENTLY) copies the table under SHARE UPDATE EXCLUSIVE
 * (writes go on; the changes made meanwhile are decoded from the WAL
 * through a replication slot of its own), then takes ACCESS EXCLUSIVE for
 * a moment to apply the last changes and swap the files.  That upgrade is
 * a lock wait that makes everyone queue behind it: it is bounded by the
 * job's lock_timeout, and an attempt that times out is rolled back and
 * retried -- and a retry copies the table again (the step says so).  Waits
 * that block nobody are not bounded: REPACK waiting for older
 * transactions to end before its slot has a snapshot never fails the job.
 * So lock_timeout is not armed for the statement; a watch (WatchLockWait)
 * cancels it when it has waited longer than lock_timeout for a lock on a
 * relation, and only then.
 *
 * The step is done when the table's relfilenode is no longer the one it
 * had when the job started (kind argument relfilenode): after a crash the
 * job tells a finished REPACK from one that was rolled back.  Before 19
 * mig_repack refuses to start (sql_kinds.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_class.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/latch.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"

#include "pg_mig.h"
#include "steps.h"
#include "version_compat.h"

#define LOCK_WATCH_MS			100

static TimeoutId lock_watch = MAX_TIMEOUTS;
static int64 lock_watch_limit_ms;
static volatile sig_atomic_t lock_watch_fired = false;

/*
 * WatchLockWait, a timeout handler armed while REPACK runs: a wait for a
 * lock on a relation (the upgrade to ACCESS EXCLUSIVE at the end, or the
 * SHARE UPDATE EXCLUSIVE at the start, which makes DDL and autovacuum
 * queue) that has lasted longer than lock_timeout cancels the statement.
 * A wait for another transaction or virtual transaction (for older
 * snapshots) is left alone.  Reads only this backend's own PGPROC and sets
 * flags, which is all a signal handler may do.
 */
static void
WatchLockWait(void)
{
	LOCK	   *lock = MyProc->waitLock;

	if (lock != NULL && lock->tag.locktag_type == LOCKTAG_RELATION)
	{
		TimestampTz since = (TimestampTz) pg_atomic_read_u64(&MyProc->waitStart);

		if (since != 0 &&
			TimestampDifferenceExceeds(since, GetCurrentTimestamp(), (int) lock_watch_limit_ms))
		{
			lock_watch_fired = true;
			QueryCancelPending = true;
			InterruptPending = true;
		}
	}
	SetLatch(MyLatch);
}

/* RelFileNumberNow: the table's relfilenode now; caller is in a transaction */
static Oid
RelFileNumberNow(const MigJob *job)
{
	HeapTuple	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(job->relid));
	Oid			result;

	if (!HeapTupleIsValid(tuple))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("table %s was dropped while the job ran", job->relation_name)));
	result = ((Form_pg_class) GETSTRUCT(tuple))->relfilenode;
	ReleaseSysCache(tuple);
	return result;
}

/* repack */
static char *
DescribeRepack(const MigJob *job)
{
	if (job->retries > 0)
		return psprintf("repacking table %s concurrently, attempt %d (a retry copies the table again)",
						job->relation_name, job->retries + 1);
	return psprintf("repacking table %s concurrently (copying it; a lock timeout at the end would copy it again)",
					job->relation_name);
}

static bool
DoneRepack(const MigJob *job)
{
	const char *before = MigKindArg(job, "relfilenode");

	return before != NULL && RelFileNumberNow(job) != (Oid) strtoul(before, NULL, 10);
}

static void
RunRepack(const MigJob *job)
{
	char	   *sql;

	StartTransactionCommand();
	sql = MemoryContextStrdup(TopMemoryContext,
							  psprintf("REPACK (CONCURRENTLY) %s", MigJobRelationName(job)));
	CommitTransactionCommand();

	if (lock_watch == MAX_TIMEOUTS)
		lock_watch = RegisterTimeout(USER_TIMEOUT, WatchLockWait);
	lock_watch_limit_ms = Max(job->lock_timeout_ms, 1);
	lock_watch_fired = false;
	enable_timeout_every(lock_watch,
						 TimestampTzPlusMilliseconds(GetCurrentTimestamp(), LOCK_WATCH_MS),
						 LOCK_WATCH_MS);
	PG_TRY();
	{
		MigRunTopLevel(sql, -1);	/* no lock_timeout: the watch bounds the lock waits */
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		disable_timeout(lock_watch, false);
		MemoryContextSwitchTo(TopMemoryContext);
		edata = CopyErrorData();
		if (lock_watch_fired && edata->sqlerrcode == ERRCODE_QUERY_CANCELED)
		{
			FlushErrorState();
			ereport(ERROR,
					(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
					 errmsg("canceling REPACK of table %s: it waited longer than lock_timeout (" INT64_FORMAT " ms) for a lock on the table",
							job->relation_name, job->lock_timeout_ms),
					 errdetail("The attempt is rolled back; a retry copies the table again.")));
		}
		FreeErrorData(edata);
		PG_RE_THROW();
	}
	PG_END_TRY();
	disable_timeout(lock_watch, false);
	pfree(sql);
}

static const MigStepDef repack_steps[] = {
	{"repack", DescribeRepack, DoneRepack, RunRepack, true, true},
};

const MigKindDef mig_kind_repack = {
	MIG_KIND_REPACK, repack_steps, lengthof(repack_steps), NULL, NULL
};
