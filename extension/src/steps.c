/*-------------------------------------------------------------------------
 *
 * steps.c
 *	  What the schema steps of the kinds share: the statement of a step in
 *	  its transaction (MigExecDDL) or top-level (MigRunTopLevel), the job's
 *	  table and constraint and the statements on it, and the watch over a
 *	  running statement.  The steps are run by worker.c.
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

static volatile MigWorkerSlot *my_slot;	/* this worker's, for the watch */
static TimeoutId watch_timeout = MAX_TIMEOUTS;
static MemoryContext toplevel_context;

#define WATCH_TICK_MS		100	/* the watch looks this often */

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

static void WatchJobControl(void);
static void StartWatchTick(int tick_ms);

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
 * MigDescribeResume: the detail of the 'started' event of a job of steps
 * that starts again before a chunk of its walk (after a restart, a crash
 * of its worker, or a pause): the step it takes up, in words; a step that
 * was under way starts over (a REPACK copies the table again).  NULL for a
 * kind that only walks, or once a walk has a checkpoint: that says where
 * it goes on.  Caller is in a transaction.
 */
char *
MigDescribeResume(const MigJob *job)
{
	const MigKindDef *def = MigKindDefOf(job->kind);
	int			done = 0;

	if (def->nsteps == 0 || job->rows_done > 0 || job->chunks_done > 0)
		return NULL;
	for (int i = 0; i < def->nsteps; i++)
	{
		if (MigStepWasDone(job, def->steps[i].name))
		{
			done++;
			continue;
		}
		return psprintf("resumed at step %s, %d of %d done: %s",
						def->steps[i].name, done, def->nsteps,
						def->steps[i].describe(job));
	}
	return psprintf("resumed after its last step, %d of %d done", done, def->nsteps);
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
	MemoryContext caller_context = CurrentMemoryContext;
	bool		own_watch = watch_timeout == MAX_TIMEOUTS || !get_timeout_active(watch_timeout);

	if (own_watch)
	{
		/* the caller's loop takes job control's wakeups itself */
		watch_locks_only = true;
		MigStartWatch();
	}
	SetConfigOption("lock_timeout", "0", PGC_USERSET, PGC_S_SESSION);
	toplevel_wait_since = 0;
	toplevel_bound_hit = false;
	toplevel_bound_ms = Max(lock_timeout_ms, 1);
	StartWatchTick((int) Min(Max(toplevel_bound_ms / 4, 50), WATCH_TICK_MS));

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
			MigStopWatch();
		if (bounded)
		{
			ErrorData  *edata;

			/* the watch cancelled a wait others queue behind: a lock timeout */
			MemoryContextSwitchTo(caller_context);
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
		MigStopWatch();
	else
		StartWatchTick(WATCH_TICK_MS);

	receiver->rDestroy(receiver);
	PortalDrop(portal, false);
	CommitTransactionCommand();
	MemoryContextReset(parse_context);
	SetConfigOption("lock_timeout", "0", PGC_USERSET, PGC_S_SESSION);
	MemoryContextSwitchTo(caller_context);
	pgstat_report_activity(STATE_IDLE, NULL);
}

/*
 * The watch: while a step's statement runs (a VALIDATE or an index build
 * may take hours), a timeout fires every WATCH_TICK_MS and, if job control
 * asked the worker to look (mig_pause, mig_cancel, mig_set set the wakeup
 * flag of its slot), cancels the statement like a statement timeout does.
 * (At a tick of a second, a REPACK of a small table was done before a
 * cancel reached it.)  The
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

void
MigStartWatch(void)
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
						 TimestampTzPlusMilliseconds(GetCurrentTimestamp(), WATCH_TICK_MS),
						 WATCH_TICK_MS);
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

void
MigStopWatch(void)
{
	toplevel_bound_ms = 0;
	watch_locks_only = false;
	if (watch_timeout != MAX_TIMEOUTS)
		disable_timeout(watch_timeout, false);
}
