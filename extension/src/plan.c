/*-------------------------------------------------------------------------
 *
 * plan.c
 *	  mig_plan: a dry run of a backfill, for migctl plan.
 *
 * mig_plan runs every check mig_start_backfill runs (with the caller's
 * rights), makes no job, and reports what the job would walk: its targets
 * and keys, the planner's estimate of the rows to change, the columns the
 * set clause assigns, and optionally a few sample chunks.
 *
 * A sample chunk is the job's own chunk statements, run in an internal
 * subtransaction that is always rolled back: it measures keys, rows, time
 * and WAL of a real chunk and leaves no change behind.  The samples are the
 * first chunks of the walk, which is what the job would do first.  They do
 * write WAL (the rolled-back row versions) and leave dead tuples for vacuum,
 * and they take the same row locks as the job for as long as a chunk lasts,
 * waiting no longer than lock_timeout.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "executor/instrument.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "pg_mig.h"

PG_FUNCTION_INFO_V1(mig_plan);

#define MAX_PLAN_SAMPLES	20

static ArrayType *
TextArray(int n, char **items)
{
	Datum	   *d = palloc(sizeof(Datum) * Max(n, 1));

	for (int i = 0; i < n; i++)
		d[i] = CStringGetTextDatum(items[i]);
	return construct_array(d, n, TEXTOID, -1, false, TYPALIGN_INT);
}

static ArrayType *
TextArrayFromList(List *items)
{
	char	  **a = palloc(sizeof(char *) * Max(list_length(items), 1));
	int			n = 0;
	ListCell   *lc;

	foreach(lc, items)
		a[n++] = (char *) lfirst(lc);
	return TextArray(n, a);
}

/* one output row: kind, target, columns, keys, rows, ms, wal_bytes */
static void
PutRow(Tuplestorestate *store, TupleDesc desc, const char *kind, const char *target,
	   ArrayType *columns, int64 keys, int64 rows, double ms, int64 wal_bytes,
	   bool has_ms)
{
	Datum		values[7];
	bool		nulls[7] = {false};

	values[0] = CStringGetTextDatum(kind);
	if (target)
		values[1] = CStringGetTextDatum(target);
	else
		nulls[1] = true;
	if (columns)
		values[2] = PointerGetDatum(columns);
	else
		nulls[2] = true;
	values[3] = Int64GetDatum(keys);
	nulls[3] = keys < 0;
	values[4] = Int64GetDatum(rows);
	nulls[4] = rows < 0;
	values[5] = Float8GetDatum(ms);
	nulls[5] = !has_ms;
	values[6] = Int64GetDatum(wal_bytes);
	nulls[6] = !has_ms;
	tuplestore_putvalues(store, desc, values, nulls);
}

/*
 * RunSample runs one chunk after last_key in an internal subtransaction and
 * always rolls it back, also when the chunk fails: then the error is raised
 * again after the rollback, with the caller's memory context and resource
 * owner restored, so the caller's transaction (and any exception block of
 * the caller's) stays as it was.  The chunk's end key is copied into the
 * caller's context.
 */
static void
RunSample(MigChunkPlan *plan, int nlast_key, char **last_key, int batch,
		  MigChunkResult *result, double *ms, int64 *wal_bytes)
{
	MemoryContext ctx = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	instr_time	start,
				end;
	int64		wal_before;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(ctx);
	PG_TRY();
	{
		wal_before = pgWalUsage.wal_bytes;
		INSTR_TIME_SET_CURRENT(start);
		MigRunChunk(plan, nlast_key, last_key, batch, result);
		INSTR_TIME_SET_CURRENT(end);
		INSTR_TIME_SUBTRACT(end, start);
		*ms = INSTR_TIME_GET_MILLISEC(end);
		/* the rolled-back row versions were logged all the same */
		*wal_bytes = pgWalUsage.wal_bytes - wal_before;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(ctx);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(ctx);
		CurrentResourceOwner = owner;
		ReThrowError(edata);
	}
	PG_END_TRY();
	RollbackAndReleaseCurrentSubTransaction();
	MemoryContextSwitchTo(ctx);
	CurrentResourceOwner = owner;
}

/*
 * SampleTarget puts up to max sample rows of one target's first chunks into
 * the result and returns how many.  The kept statements live outside any
 * transaction: they are freed when a sample fails too, or every failed call
 * would leak them.
 */
static int
SampleTarget(ReturnSetInfo *rsinfo, MigTarget *t, const char *set_clause,
			 const char *where_clause, int batch, int max)
{
	MigChunkPlan *volatile plan = NULL;
	volatile int done = 0;

	PG_TRY();
	{
		int			nlast = 0;
		char	  **last = NULL;

		plan = MigPrepareChunkPlan(t, set_clause, where_clause);
		while (done < max)
		{
			MigChunkResult result;
			double		ms;
			int64		wal;

			CHECK_FOR_INTERRUPTS();
			RunSample(plan, nlast, last, batch, &result, &ms, &wal);
			PutRow(rsinfo->setResult, rsinfo->setDesc, "sample", t->relation_name,
				   NULL, result.keys, result.rows, ms, wal, true);
			done++;
			if (result.target_done)
				break;
			nlast = t->nkeys;
			last = result.end_key;
		}
	}
	PG_CATCH();
	{
		if (plan != NULL)
			MigFreeChunkPlan(plan);
		PG_RE_THROW();
	}
	PG_END_TRY();
	MigFreeChunkPlan(plan);
	return done;
}

/*
 * mig_plan(relation, set_clause, where_clause, batch_size, samples,
 *			lock_timeout) returns rows of
 *	  ('change', NULL, set columns, keys estimate, rows estimate)
 *	  ('target', target, key columns, keys estimate, NULL)   one per target
 *	  ('sample', target, NULL, keys, rows, ms, wal_bytes)	  one per sample
 */
Datum
mig_plan(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Oid			relid;
	char	   *set_clause;
	char	   *where_clause;
	int			batch;
	int			samples;
	int64		lock_timeout_ms;
	int			parallel;
	Relation	rel;
	List	   *targets;
	List	   *set_columns;
	int64		rows_total;
	int64		keys_total = 0;
	ListCell   *lc;

	MigRequireSchemaVersion();
	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot plan a backfill during recovery"),
				 errhint("Connect to the primary server.")));
	/* set_clause NULL with a where clause: the plan of a delete (0.3) */
	if (PG_ARGISNULL(0) || (PG_ARGISNULL(1) && PG_ARGISNULL(2)))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("relation and set_clause must not be NULL"),
				 !PG_ARGISNULL(0) ?
				 errhint("Pass set_clause NULL and a where_clause to plan a mig_start_delete().") : 0));
	relid = PG_GETARG_OID(0);
	set_clause = PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1));
	where_clause = PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2));
	if (set_clause)
		MigCheckTextLength("set_clause", set_clause);
	if (where_clause)
		MigCheckTextLength("where_clause", where_clause);
	batch = PG_ARGISNULL(3) ? mig_default_batch_size : PG_GETARG_INT32(3);
	samples = PG_ARGISNULL(4) ? 0 : PG_GETARG_INT32(4);
	lock_timeout_ms = PG_ARGISNULL(5) ? 1000 : MigIntervalToMs(PG_GETARG_DATUM(5));
	if (batch < 1 || batch > MIG_MAX_BATCH_SIZE)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("batch_size must be between 1 and %d", MIG_MAX_BATCH_SIZE)));
	if (samples < 0 || samples > MAX_PLAN_SAMPLES)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("samples must be between 0 and %d", MAX_PLAN_SAMPLES)));
	if (lock_timeout_ms < 1 || lock_timeout_ms > 60000)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("lock_timeout must be between 1ms and 1min")));

	InitMaterializedSRF(fcinfo, 0);

	rel = try_relation_open(relid, AccessShareLock);
	if (rel == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	/* the same checks as mig_start_backfill, with the caller's rights */
	targets = MigBuildTargets(rel, set_clause, where_clause, &rows_total, &set_columns);
	parallel = MigReadParallelArg(fcinfo, targets);
	foreach(lc, targets)
		keys_total += Max(((MigTarget *) lfirst(lc))->keys_estimate, 0);

	PutRow(rsinfo->setResult, rsinfo->setDesc, "change", NULL,
		   TextArrayFromList(set_columns), keys_total, rows_total, 0, 0, false);
	foreach(lc, targets)
	{
		MigTarget  *t = lfirst(lc);

		PutRow(rsinfo->setResult, rsinfo->setDesc, "target", t->relation_name,
			   TextArray(t->nkeys, t->key_columns), t->keys_estimate, -1, 0, 0, false);
	}

	/* parallel => n: the lanes the job would walk, as lanes.c splits them */
	if (parallel > 1)
	{
		MigTarget  *t = linitial(targets);

		foreach(lc, MigPlanLanes(t, parallel))
		{
			MigLane    *l = lfirst(lc);
			int64		rows = (t->keys_estimate > 0 && rows_total >= 0)
				? (int64) ((double) rows_total * l->keys_estimate / t->keys_estimate) : -1;

			PutRow(rsinfo->setResult, rsinfo->setDesc, "lane", MigDescribeLane(l),
				   TextArray(t->nkeys, t->key_columns), l->keys_estimate, rows, 0, 0, false);
		}
	}

	if (samples > 0)
	{
		int			nest = NewGUCNestLevel();
		int			done = 0;

		(void) set_config_option("lock_timeout", psprintf(INT64_FORMAT "ms", lock_timeout_ms),
								 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
		/* the resolved clauses, as the worker runs them */
		(void) set_config_option("search_path", MIG_SAFE_SEARCH_PATH,
								 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		foreach(lc, targets)
		{
			MigTarget  *t = lfirst(lc);

			if (t->upper_key == NULL)
				continue;		/* empty */
			done += SampleTarget(rsinfo, t, t->set_clause, t->where_clause, batch,
								 samples - done);
			if (done >= samples)
				break;
		}
		SPI_finish();
		AtEOXact_GUC(true, nest);
	}
	relation_close(rel, NoLock);
	return (Datum) 0;
}
