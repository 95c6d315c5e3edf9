/*-------------------------------------------------------------------------
 *
 * lanes.c
 *	  Parallel lanes: the split of a job's key range at start, and the
 *	  lanes' rows in mig_job_lane.
 *
 * A backfill or delete started with parallel => n > 1 walks its one
 * target in n lanes: disjoint parts (lower, upper] of the key range fixed
 * at start, each walked by its own worker, each with its own checkpoint in
 * its row of mig_job_lane, written in the same transaction as the lane's
 * chunk (so every lane is exactly once by itself).  The job row stays the
 * one row job control acts on: a lane's chunk holds it FOR SHARE, so the
 * lanes run side by side, and mig_pause, mig_cancel and mig_set (which
 * update it) wait for the chunks in progress and are seen by every lane
 * at its next chunk.  The last lane to finish finishes the job.
 *
 * The boundaries come from a block sample of the table (TABLESAMPLE
 * SYSTEM, at least 300 pages, 100 per lane), sorted by the key: the
 * key values at the n-quantiles of the sample.  That reads a few hundred
 * pages whatever the size of the table, and gives lanes of about equal
 * row counts where rows are spread evenly over the pages.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "pg_mig.h"

#define SAMPLE_PAGES		300		/* at least, in all */
#define SAMPLE_PAGES_PER_LANE 100

static char **KeyFromArray(MemoryContext ctx, List *items);
static char *KeyText(int n, char **key);

/*
 * MigReadParallelArg checks the parallel argument of a start function
 * (absent: 1):
 * 1 (the default, NULL) to MIG_MAX_LANES, and more than one lane only for
 * a job of one target (lanes split one key range).
 */
int
MigReadParallelArg(FunctionCallInfo fcinfo, List *targets)
{
	int			n = 1;
	int			argno = MigArgNo(fcinfo, "parallel");

	if (argno >= 0 && !PG_ARGISNULL(argno))
		n = PG_GETARG_INT32(argno);
	if (n < 1 || n > MIG_MAX_LANES)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("parallel must be between 1 and %d", MIG_MAX_LANES),
				 errhint("Each lane takes a pg_mig worker; pg_mig.max_workers and pg_mig.max_workers_per_role limit how many run at once.")));
	if (n > 1 && list_length(targets) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("parallel lanes are not supported for a table with %d partitions",
						list_length(targets)),
				 errdetail("Lanes split the key range of one table."),
				 errhint("Start the job with parallel => 1, or start one job per partition.")));
	return n;
}

/*
 * MigPlanLanes splits the target's key range into n lanes (List of
 * MigLane *), from a block sample of the table, as the caller sees it.
 * The first lane starts at the first key, the last one ends at the
 * target's upper key.
 */
List *
MigPlanLanes(const MigTarget *target, int n)
{
	Relation	rel;
	BlockNumber pages;
	double		pct;
	Oid		   *types = palloc(sizeof(Oid) * target->nkeys);
	Datum	   *upper = palloc(sizeof(Datum) * target->nkeys);
	StringInfoData sql;
	char	 ***sample = NULL;
	uint64		m = 0;
	List	   *lanes = NIL;
	char	  **prev = NULL;
	MemoryContext ctx = CurrentMemoryContext;
	int			nest;

	if (target->upper_key == NULL)
	{
		/* an empty table: every lane is empty */
		for (int i = 1; i <= n; i++)
		{
			MigLane    *l = palloc0(sizeof(MigLane));

			l->lane = i;
			l->nkeys = target->nkeys;
			lanes = lappend(lanes, l);
		}
		return lanes;
	}

	rel = relation_open(target->relid, AccessShareLock);
	pages = RelationGetNumberOfBlocks(rel);
	relation_close(rel, AccessShareLock);
	pct = 100.0 * Max(SAMPLE_PAGES, SAMPLE_PAGES_PER_LANE * n) / Max(pages, 1);
	pct = Min(pct, 100.0);

	/* keys in the stored text form; every name the sample uses pinned */
	nest = MigEnterKeyFormat();
	(void) set_config_option("search_path", MIG_SAFE_SEARCH_PATH,
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	for (int i = 0; i < target->nkeys; i++)
	{
		AttrNumber	att = get_attnum(target->relid, target->key_columns[i]);
		Oid			typinput;
		Oid			typioparam;
		int32		typmod;
		Oid			collation;

		get_atttypetypmodcoll(target->relid, att, &types[i], &typmod, &collation);
		getTypeInputInfo(types[i], &typinput, &typioparam);
		upper[i] = OidInputFunctionCall(typinput, target->upper_key[i], typioparam, typmod);
	}

	initStringInfo(&sql);
	appendStringInfoString(&sql, "SELECT ");
	for (int i = 0; i < target->nkeys; i++)
		appendStringInfo(&sql, "%s%s", i ? ", " : "", quote_identifier(target->key_columns[i]));
	appendStringInfo(&sql, " FROM ONLY %s TABLESAMPLE SYSTEM (%g) WHERE ", target->relation_name, pct);
	/* the key (a row for a composite key) up to the upper key, as chunk.c */
	appendStringInfoString(&sql, target->nkeys > 1 ? "(" : "");
	for (int i = 0; i < target->nkeys; i++)
		appendStringInfo(&sql, "%s%s", i ? ", " : "", quote_identifier(target->key_columns[i]));
	appendStringInfoString(&sql, target->nkeys > 1 ? ") OPERATOR(pg_catalog.<=) (" : " OPERATOR(pg_catalog.<=) ");
	for (int i = 0; i < target->nkeys; i++)
		appendStringInfo(&sql, "%s$%d", i ? ", " : "", i + 1);
	appendStringInfoString(&sql, target->nkeys > 1 ? ") ORDER BY " : " ORDER BY ");
	for (int i = 0; i < target->nkeys; i++)
		appendStringInfo(&sql, "%s%s", i ? ", " : "", quote_identifier(target->key_columns[i]));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args(sql.data, target->nkeys, types, upper, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not sample the keys of %s", target->relation_name);
	m = SPI_processed;
	{
		MemoryContext old = MemoryContextSwitchTo(ctx);

		sample = palloc(sizeof(char **) * Max(m, 1));
		for (uint64 r = 0; r < m; r++)
		{
			sample[r] = palloc(sizeof(char *) * target->nkeys);
			for (int i = 0; i < target->nkeys; i++)
				sample[r][i] = SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, i + 1);
		}
		MemoryContextSwitchTo(old);
	}
	SPI_finish();
	MigLeaveKeyFormat(nest);

	/* lane i ends at the sample's i/n quantile; the last at the upper key */
	for (int i = 1; i <= n; i++)
	{
		MigLane    *l = palloc0(sizeof(MigLane));
		uint64		from = (uint64) ((double) (i - 1) * m / n);
		uint64		to = (uint64) ((double) i * m / n);

		l->lane = i;
		l->nkeys = target->nkeys;
		l->lower_key = prev;
		if (i < n)
			l->upper_key = (m > 0) ? sample[Max(to, 1) - 1] : target->upper_key;
		l->keys_estimate = m > 0 ? (int64) ((double) Max(target->keys_estimate, 0) * (to - from) / m)
			: (i == 1 ? target->keys_estimate : 0);
		prev = l->upper_key ? l->upper_key : target->upper_key;
		lanes = lappend(lanes, l);
	}
	return lanes;
}

/*
 * MigCreateLanes records the lanes of a new job; caller is the start
 * function, in its transaction.
 */
void
MigCreateLanes(int64 job_id, const MigTarget *target, int n)
{
	List	   *lanes = MigPlanLanes(target, n);
	MigStoreContext sc;
	ListCell   *lc;
	char	   *sql;

	sql = psprintf("INSERT INTO %s (job_id, lane, lower_key, upper_key, keys_estimate)"
				   " VALUES ($1, $2, $3, $4, $5)", MigQualifiedTable(MIG_LANE_TABLE));
	MigStoreEnter(&sc);
	foreach(lc, lanes)
	{
		MigLane    *l = lfirst(lc);
		Oid			types[5] = {INT8OID, INT4OID, TEXTARRAYOID, TEXTARRAYOID, INT8OID};
		Datum		values[5];
		char		nulls[5] = {' ', ' ', ' ', ' ', ' '};

		values[0] = Int64GetDatum(job_id);
		values[1] = Int32GetDatum(l->lane);
		if (l->lower_key)
			values[2] = MigCStringArrayDatum(l->nkeys, l->lower_key);
		else
			nulls[2] = 'n';
		if (l->upper_key)
			values[3] = MigCStringArrayDatum(l->nkeys, l->upper_key);
		else
			nulls[3] = 'n';
		values[4] = Int64GetDatum(l->keys_estimate);
		if (SPI_execute_with_args(sql, 5, types, values, nulls, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not record a lane of pg_mig job " INT64_FORMAT, job_id);
	}
	MigStoreLeave(&sc);
}

/* KeyFromArray: a text[] column's items as a key in ctx, or NULL if none */
static char **
KeyFromArray(MemoryContext ctx, List *items)
{
	char	  **key;
	int			i = 0;
	ListCell   *lc;

	if (items == NIL)
		return NULL;
	key = MemoryContextAlloc(ctx, sizeof(char *) * list_length(items));
	foreach(lc, items)
		key[i++] = lfirst(lc);
	return key;
}

/*
 * MigLoadLane reads one lane of a job (with for_update, locks its row).
 * Returns NULL if there is no such lane.
 */
MigLane *
MigLoadLane(int64 job_id, int lane, bool for_update)
{
	MigStoreContext sc;
	char	   *sql;
	Oid			types[2] = {INT8OID, INT4OID};
	Datum		values[2] = {Int64GetDatum(job_id), Int32GetDatum(lane)};
	MigLane    *l = NULL;
	MemoryContext ctx = CurrentMemoryContext;

	sql = psprintf("SELECT lower_key, upper_key, done, last_key, rows_done, keys_done,"
				   " chunks_done, wal_bytes, retries, current_batch, throttled"
				   " FROM %s WHERE job_id = $1 AND lane = $2%s",
				   MigQualifiedTable(MIG_LANE_TABLE), for_update ? " FOR UPDATE" : "");
	MigStoreEnter(&sc);
	if (SPI_execute_with_args(sql, 2, types, values, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read lane %d of pg_mig job " INT64_FORMAT, lane, job_id);
	if (SPI_processed == 1)
	{
		HeapTuple	t = SPI_tuptable->vals[0];
		TupleDesc	d = SPI_tuptable->tupdesc;
		bool		isnull;
		List	   *lower = MigTextArrayColumn(t, d, 1);
		List	   *upper = MigTextArrayColumn(t, d, 2);
		List	   *last = MigTextArrayColumn(t, d, 4);

		l = MemoryContextAllocZero(ctx, sizeof(MigLane));
		l->lane = lane;
		l->nkeys = list_length(lower ? lower : upper ? upper : last);
		l->lower_key = KeyFromArray(ctx, lower);
		l->upper_key = KeyFromArray(ctx, upper);
		l->done = DatumGetBool(SPI_getbinval(t, d, 3, &isnull));
		l->last_key = KeyFromArray(ctx, last);
		l->rows_done = MigInt64Column(t, d, 5, INT8OID);
		l->keys_done = MigInt64Column(t, d, 6, INT8OID);
		l->chunks_done = MigInt64Column(t, d, 7, INT8OID);
		l->wal_bytes = MigInt64Column(t, d, 8, INT8OID);
		l->retries = (int) MigInt64Column(t, d, 9, INT4OID);
		l->current_batch = (int) MigInt64Column(t, d, 10, INT4OID);
		l->throttled = MigTextColumn(t, d, 11);
	}
	MigStoreLeave(&sc);
	return l;
}

/* KeyText: "(a, b)" */
static char *
KeyText(int n, char **key)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '(');
	for (int i = 0; i < n; i++)
		appendStringInfo(&buf, "%s%s", i ? ", " : "", key[i]);
	appendStringInfoChar(&buf, ')');
	return buf.data;
}

/* MigDescribeLane: "lane 2, keys after (10) to (20)", for events */
char *
MigDescribeLane(const MigLane *lane)
{
	return psprintf("lane %d, keys %s%s to %s", lane->lane,
					lane->lower_key ? "after " : "from the first key",
					lane->lower_key ? KeyText(lane->nkeys, lane->lower_key) : "",
					lane->upper_key ? KeyText(lane->nkeys, lane->upper_key) : "the upper key");
}

/*
 * MigApplyLane makes the loaded job the lane's walk: the lane's checkpoint
 * (or its lower key, if it has not begun), counters and retries.  A lane
 * walks the job's one target; target_ord past it means the lane is done.
 */
void
MigApplyLane(MigJob *job, const MigLane *lane)
{
	char	  **from = lane->last_key ? lane->last_key : lane->lower_key;

	job->lane = lane->lane;
	job->target_ord = lane->done ? 1 : 0;
	job->nlast_key = from ? lane->nkeys : 0;
	job->last_key = from;
	job->rows_done = lane->rows_done;
	job->keys_done = lane->keys_done;
	job->chunks_done = lane->chunks_done;
	job->wal_bytes = lane->wal_bytes;
	job->retries = lane->retries;
	job->lane_retries = lane->retries;
	job->current_batch = lane->current_batch;
	job->throttled = lane->throttled;
}

/* MigLaneTarget: a copy of the target that ends where the lane ends */
MigTarget *
MigLaneTarget(const MigTarget *target, const MigLane *lane)
{
	MigTarget  *t = palloc(sizeof(MigTarget));

	*t = *target;
	if (lane->upper_key && target->upper_key)
		t->upper_key = lane->upper_key;
	return t;
}

/*
 * MigSaveLaneCheckpoint records one chunk of a lane, in the chunk's own
 * transaction (what makes each chunk of the lane happen exactly once);
 * done: the lane reached its upper key.
 */
void
MigSaveLaneCheckpoint(int64 job_id, int lane, const MigCheckpoint *cp, bool done)
{
	MigStoreContext sc;
	char	   *sql;
	Oid			types[10] = {INT8OID, INT4OID, TEXTARRAYOID, INT8OID, INT8OID,
	INT8OID, INT4OID, FLOAT8OID, FLOAT8OID, BOOLOID};
	Datum		values[10];
	char		nulls[10] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};

	values[0] = Int64GetDatum(job_id);
	values[1] = Int32GetDatum(lane);
	MigCheckpointArgs(cp, values, nulls);
	values[9] = BoolGetDatum(done);
	sql = psprintf("UPDATE %s SET last_key = COALESCE($3, last_key),"
				   " rows_done = rows_done + $4, keys_done = keys_done + $5,"
				   " chunks_done = chunks_done + 1, wal_bytes = wal_bytes + $6,"
				   " current_batch = $7, rows_per_sec = $8, keys_per_sec = $9,"
				   MIG_RATE_ANCHOR_SET
				   " done = $10, retries = 0, throttled = NULL, updated_at = now()"
				   " WHERE job_id = $1 AND lane = $2",
				   MigQualifiedTable(MIG_LANE_TABLE));
	MigStoreEnter(&sc);
	if (SPI_execute_with_args(sql, 10, types, values, nulls, false, 0) != SPI_OK_UPDATE
		|| SPI_processed != 1)
		elog(ERROR, "could not record the checkpoint of lane %d of pg_mig job " INT64_FORMAT,
			 lane, job_id);
	MigStoreLeave(&sc);
}

/* LaneUpdate: one UPDATE of a lane's row, or of every lane (lane 0) */
static void
LaneUpdate(int64 job_id, int lane, const char *set, Oid type, Datum value, bool isnull)
{
	MigStoreContext sc;
	char	   *sql;
	Oid			types[3] = {INT8OID, INT4OID, type};
	Datum		values[3] = {Int64GetDatum(job_id), Int32GetDatum(lane), value};
	char		nulls[3] = {' ', ' ', isnull ? 'n' : ' '};

	sql = psprintf("UPDATE %s SET %s, updated_at = now()"
				   " WHERE job_id = $1 AND (lane = $2 OR $2 = 0)",
				   MigQualifiedTable(MIG_LANE_TABLE), set);
	MigStoreEnter(&sc);
	if (SPI_execute_with_args(sql, 3, types, values, nulls, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not change lane %d of pg_mig job " INT64_FORMAT, lane, job_id);
	MigStoreLeave(&sc);
}

/* MigSetLaneThrottled records why a lane waits (NULL: it runs freely) */
void
MigSetLaneThrottled(int64 job_id, int lane, const char *reason)
{
	LaneUpdate(job_id, lane, "throttled = $3", TEXTOID,
			   reason ? CStringGetTextDatum(reason) : (Datum) 0, reason == NULL);
}

/* MigSetLaneRetries records a retry of a lane's chunk and its error */
void
MigSetLaneRetries(int64 job_id, int lane, int retries, const char *last_error)
{
	LaneUpdate(job_id, lane, "last_error = COALESCE($3, last_error)", TEXTOID,
			   last_error ? CStringGetTextDatum(last_error) : (Datum) 0, last_error == NULL);
	LaneUpdate(job_id, lane, "retries = $3", INT4OID, Int32GetDatum(retries), false);
}

/* MigResetLaneRetries: mig_resume starts every lane's retries afresh */
void
MigResetLaneRetries(int64 job_id)
{
	LaneUpdate(job_id, 0, "retries = $3, throttled = NULL", INT4OID, Int32GetDatum(0), false);
}

/*
 * MigLanesToRun: the lanes of a parallel job that are not done, as a mask
 * of MIG_LANE_BIT; if every lane is done, lane 1 (its worker finishes the
 * job).
 */
uint64
MigLanesToRun(int64 job_id, int parallel)
{
	MigStoreContext sc;
	char	   *sql;
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(job_id)};
	uint64		mask = 0;

	sql = psprintf("SELECT lane FROM %s WHERE job_id = $1 AND NOT done",
				   MigQualifiedTable(MIG_LANE_TABLE));
	MigStoreEnter(&sc);
	/* not read-only: the lanes the start function just recorded count */
	if (SPI_execute_with_args(sql, 1, types, values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the lanes of pg_mig job " INT64_FORMAT, job_id);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		int			lane = (int) MigInt64Column(SPI_tuptable->vals[i],
												SPI_tuptable->tupdesc, 1, INT4OID);

		if (lane >= 1 && lane <= Min(parallel, MIG_MAX_LANES))
			mask |= MIG_LANE_BIT(lane);
	}
	MigStoreLeave(&sc);
	return mask ? mask : MIG_LANE_BIT(1);
}

/*
 * MigRequestJobWorkers asks the launcher, at commit, to start the job's
 * worker, or the workers of the lanes of a parallel job not done yet.
 */
void
MigRequestJobWorkers(const MigJob *job, int64 job_id)
{
	if (job->parallel > 1)
		MigRequestLanesAtCommit(MyDatabaseId, job_id, job->owner,
								MigLanesToRun(job_id, job->parallel));
	else
		MigRequestAtCommit(MyDatabaseId, job_id, job->owner);
}

/*
 * MigLanesLeft: how many lanes of the job are not done yet.  Caller is in
 * a transaction.
 */
int64
MigLanesLeft(int64 job_id)
{
	MigStoreContext sc;
	char	   *sql;
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(job_id)};
	int64		left;

	sql = psprintf("SELECT pg_catalog.count(*) FROM %s WHERE job_id = $1 AND NOT done",
				   MigQualifiedTable(MIG_LANE_TABLE));
	MigStoreEnter(&sc);
	if (SPI_execute_with_args(sql, 1, types, values, NULL, false, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "could not read the lanes of pg_mig job " INT64_FORMAT, job_id);
	left = MigInt64Column(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, INT8OID);
	MigStoreLeave(&sc);
	return left;
}

/*
 * MigFinishLanes sums up a parallel job whose lanes are all done: the
 * lanes' sums go into the job row, and the caller (walk.c) finishes the
 * walk with *rows_done in *chunks_done.  A job to be
 * verified (verify) is finished only with the count of its verification
 * (verified, the detail of the event 'verified', recorded before the job
 * succeeds): without it the job is left running for lane 1's worker,
 * which verifies the whole key range once every lane is done (the
 * launcher starts it for a job whose lanes are all done).  Locks the job
 * row, so two lanes that end at once finish it once.  Returns true if the
 * job is to be finished.  Caller is in a transaction of its own, with no
 * lock on the job row yet.
 */
bool
MigFinishLanes(int64 job_id, bool verify, const char *verified,
			   int64 *rows_done, int64 *chunks_done)
{
	MigJob	   *job = MigLoadJob(job_id, true);
	MigStoreContext sc;
	char	   *sql;
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(job_id)};
	int64		left;
	int64		sums[4];

	if (job == NULL ||
		(job->state != MIG_STATE_RUNNING && job->state != MIG_STATE_QUEUED))
		return false;
	sql = psprintf("SELECT pg_catalog.count(*) FILTER (WHERE NOT done),"
				   " COALESCE(pg_catalog.sum(rows_done), 0)::pg_catalog.int8,"
				   " COALESCE(pg_catalog.sum(keys_done), 0)::pg_catalog.int8,"
				   " COALESCE(pg_catalog.sum(chunks_done), 0)::pg_catalog.int8,"
				   " COALESCE(pg_catalog.sum(wal_bytes), 0)::pg_catalog.int8"
				   " FROM %s WHERE job_id = $1", MigQualifiedTable(MIG_LANE_TABLE));
	MigStoreEnter(&sc);
	if (SPI_execute_with_args(sql, 1, types, values, NULL, false, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "could not read the lanes of pg_mig job " INT64_FORMAT, job_id);
	left = MigInt64Column(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, INT8OID);
	for (int i = 0; i < 4; i++)
		sums[i] = MigInt64Column(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, i + 2, INT8OID);
	MigStoreLeave(&sc);
	if (left > 0 || (verify && verified == NULL))
		return false;
	if (verify)
		MigRecordEvent(job_id, "verified", verified);
	{
		const char *cols[5] = {"rows_done", "keys_done", "chunks_done", "wal_bytes",
		"target_ord"};
		Oid			ctypes[5] = {INT8OID, INT8OID, INT8OID, INT8OID, INT4OID};
		Datum		cvalues[5] = {Int64GetDatum(sums[0]), Int64GetDatum(sums[1]),
			Int64GetDatum(sums[2]), Int64GetDatum(sums[3]), Int32GetDatum(1)};
		bool		cnulls[5] = {false, false, false, false, false};

		MigSetJobColumns(job_id, 5, cols, ctypes, cvalues, cnulls);
	}
	*rows_done = sums[0];
	*chunks_done = sums[2];
	return true;
}
