/*-------------------------------------------------------------------------
 *
 * chunk.c
 *	  The chunk statements of one target, and the running of one chunk.
 *
 * A chunk is found and changed in key order through the key's index, from
 * the checkpoint's last key (exclusive) to an end key (inclusive):
 *
 *	  boundary:  SELECT k FROM ONLY t WHERE k > $last AND k <= $upper
 *				 ORDER BY k OFFSET $batch - 1 LIMIT 1
 *	  update:	 UPDATE ONLY t SET <set clause>
 *				 WHERE k > $last AND k <= $end AND (<where clause>)
 *
 * The boundary query reads at most batch index entries past the last key,
 * so chunk boundaries never come from an OFFSET scan from the start, and
 * sparse keys make no empty chunks.  When it finds no row, fewer than batch
 * keys are left: the chunk ends at the upper key fixed when the job started,
 * and its keys are counted.  A composite key is compared as a row,
 * (a, b) > ($1, $2), which a b-tree index on (a, b) serves.  Each clause is
 * a complete grammar item (validate.c checks that at start), and the where
 * clause is parenthesised and ended by a newline, so neither can change the
 * key range around it.  The clauses are the job's resolved text (see
 * validate.c), and the statements' own operators and functions are named
 * with their schema, so they mean the same under any search_path.
 *
 * The statements are prepared once per target (SPI_prepare_cursor +
 * SPI_keepplan) with CURSOR_OPT_CUSTOM_PLAN: they are parsed once, but
 * planned for each chunk's actual keys, so the range always uses the
 * index however large the table is.
 *
 * The change statement fires the table's triggers and calls the functions
 * of the clauses, whose bodies find names with the session's search_path.
 * It is planned under the worker's pinned search_path, so the statement
 * means what it was resolved to, and executed under the search_path the
 * job was started with (MigChunkPlanSearchPath), so those bodies find
 * names as in the session that started the job.  It is run with the
 * executor, not SPI_execute_plan: the plan cache analyses a statement
 * again when the search_path has changed since it was planned, and the
 * resolved text names pg_catalog's operators and functions without their
 * schema, which a better match elsewhere on that search_path would take.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_attribute.h"
#include "catalog/pg_index.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "executor/spi_priv.h"
#include "executor/tstoreReceiver.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/plancache.h"
#include "utils/regproc.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "pg_mig.h"
#include "version_compat.h"

static int64 ExecuteWithSearchPath(SPIPlanPtr spiplan, Datum *values, const char *search_path,
								   bool counts);

struct MigChunkPlan
{
	MemoryContext context;
	Oid			relid;
	char	   *relation_name;
	int			nkeys;
	/* the key as the statements were prepared: checked before each chunk */
	char	  **key_names;
	AttrNumber *key_attnums;
	int32	   *key_typmods;
	Oid		   *key_collations;
	Oid		   *key_types;
	Oid		   *typinput;
	Oid		   *typioparam;
	char	  **upper_text;
	Datum	   *upper;
	SPIPlanPtr	boundary_first;
	SPIPlanPtr	boundary_next;
	SPIPlanPtr	count_first;
	SPIPlanPtr	count_next;
	SPIPlanPtr	update_first;
	SPIPlanPtr	update_next;
	bool		count_only;		/* the "update" statements only count */
	char	   *search_path;	/* the update statements', or NULL */
};

/*
 * MigEnterKeyFormat switches to the settings under which key values are
 * written as text and read back (ISO dates with numeric zone offsets, exact
 * floats), whatever the session's DateStyle: "IST" printed under DateStyle
 * SQL would read back as Israel time.  MigLeaveKeyFormat restores the
 * session's settings.
 */
int
MigEnterKeyFormat(void)
{
	int			nest = NewGUCNestLevel();

	(void) set_config_option("DateStyle", "ISO, YMD", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("IntervalStyle", "postgres", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("extra_float_digits", "3", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("bytea_output", "hex", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	return nest;
}

void
MigLeaveKeyFormat(int nestlevel)
{
	AtEOXact_GUC(true, nestlevel);
}

typedef enum RangeKind
{
	RANGE_TO_UPPER,				/* k <= $1.. (first chunk) */
	RANGE_BETWEEN				/* k > $1.. AND k <= $n+1.. */
} RangeKind;

/* AppendKeyList: "t.a" or "(t.a, t.b)" */
static void
AppendKeyList(StringInfo buf, const MigTarget *target, bool qualify)
{
	if (target->nkeys > 1)
		appendStringInfoChar(buf, '(');
	for (int i = 0; i < target->nkeys; i++)
		appendStringInfo(buf, "%s%s%s%s", i ? ", " : "",
						 qualify ? target->relation_name : "",
						 qualify ? "." : "",
						 quote_identifier(target->key_columns[i]));
	if (target->nkeys > 1)
		appendStringInfoChar(buf, ')');
}

/* AppendParams: "$first" or "($first, $first+1, ...)" */
static void
AppendParams(StringInfo buf, int nkeys, int first)
{
	if (nkeys > 1)
		appendStringInfoChar(buf, '(');
	for (int i = 0; i < nkeys; i++)
		appendStringInfo(buf, "%s$%d", i ? ", " : "", first + i);
	if (nkeys > 1)
		appendStringInfoChar(buf, ')');
}

/* AppendRange: the key range condition of a chunk statement */
static void
AppendRange(StringInfo buf, const MigTarget *target, RangeKind kind)
{
	if (kind == RANGE_BETWEEN)
	{
		AppendKeyList(buf, target, true);
		appendStringInfoString(buf, " OPERATOR(pg_catalog.>) ");
		AppendParams(buf, target->nkeys, 1);
		appendStringInfoString(buf, " AND ");
	}
	AppendKeyList(buf, target, true);
	appendStringInfoString(buf, " OPERATOR(pg_catalog.<=) ");
	AppendParams(buf, target->nkeys, kind == RANGE_BETWEEN ? target->nkeys + 1 : 1);
}

/*
 * MigChunkUpdateSql returns the change statement of one chunk: the UPDATE
 * of a backfill, or, with set_clause NULL, the DELETE of a delete job (the
 * two strategies of the walk).  Its parameters are the end key (first
 * chunk), or the last key then the end key.
 */
char *
MigChunkUpdateSql(const MigTarget *target, const char *set_clause,
				  const char *where_clause, bool first)
{
	StringInfoData buf;

	initStringInfo(&buf);
	if (set_clause == NULL)
		appendStringInfo(&buf, "DELETE FROM ONLY %s\nWHERE ", target->relation_name);
	else
		appendStringInfo(&buf, "UPDATE ONLY %s SET %s\nWHERE ", target->relation_name,
						 set_clause);
	AppendRange(&buf, target, first ? RANGE_TO_UPPER : RANGE_BETWEEN);
	if (where_clause)
		appendStringInfo(&buf, " AND (%s\n)", where_clause);
	return buf.data;
}

/*
 * MigChunkBoundarySql returns the query that finds a chunk's end key.  Its
 * parameters are the upper key (first chunk), or the last key then the
 * upper key; then the number of keys to skip (batch - 1).
 */
char *
MigChunkBoundarySql(const MigTarget *target, bool first)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "SELECT ");
	for (int i = 0; i < target->nkeys; i++)
		appendStringInfo(&buf, "%s%s", i ? ", " : "", quote_identifier(target->key_columns[i]));
	appendStringInfo(&buf, " FROM ONLY %s WHERE ", target->relation_name);
	AppendRange(&buf, target, first ? RANGE_TO_UPPER : RANGE_BETWEEN);
	appendStringInfoString(&buf, " ORDER BY ");
	for (int i = 0; i < target->nkeys; i++)
		appendStringInfo(&buf, "%s%s", i ? ", " : "", quote_identifier(target->key_columns[i]));
	appendStringInfo(&buf, " OFFSET $%d LIMIT 1",
					 (first ? 1 : 2) * target->nkeys + 1);
	return buf.data;
}

/* ChunkCountSql: counts the keys of the last chunk of a target */
static char *
ChunkCountSql(const MigTarget *target, bool first)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfo(&buf, "SELECT pg_catalog.count(*) FROM ONLY %s WHERE ", target->relation_name);
	AppendRange(&buf, target, first ? RANGE_TO_UPPER : RANGE_BETWEEN);
	return buf.data;
}

static bool HasKeyIndex(MigChunkPlan *plan);

static SPIPlanPtr
PrepareKept(const char *sql, int nargs, Oid *types)
{
	SPIPlanPtr	plan = SPI_prepare_cursor(sql, nargs, types, CURSOR_OPT_CUSTOM_PLAN);

	if (plan == NULL)
		elog(ERROR, "could not prepare pg_mig chunk statement: %s",
			 SPI_result_code_string(SPI_result));
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "could not keep pg_mig chunk statement");
	return plan;
}

/*
 * ChunkCountMatchingSql: the statement of a chunk that only looks, the
 * third strategy of the walk (the orphan check of a foreign_key job):
 * counts the chunk's rows that match where_clause.
 */
static char *
ChunkCountMatchingSql(const MigTarget *target, const char *where_clause, bool first)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfo(&buf, "SELECT pg_catalog.count(*) FROM ONLY %s\nWHERE ", target->relation_name);
	AppendRange(&buf, target, first ? RANGE_TO_UPPER : RANGE_BETWEEN);
	if (where_clause)
		appendStringInfo(&buf, " AND (%s\n)", where_clause);
	return buf.data;
}

/*
 * RecordKeyShape locks the target (ROW EXCLUSIVE, the lock every chunk
 * takes) and records its key as the chunk statements are about to be
 * prepared with it: the columns' numbers, types, typmods and collations,
 * and that a unique index on exactly those columns is there.  The
 * statements fix the
 * key's types when they are prepared, so CheckKeyShape compares this
 * record with the catalogs before every chunk.
 */
static void
RecordKeyShape(MigChunkPlan *plan, const MigTarget *target)
{
	int			n = target->nkeys;

	LockRelationOid(target->relid, RowExclusiveLock);
	plan->key_names = palloc(sizeof(char *) * n);
	plan->key_attnums = palloc(sizeof(AttrNumber) * n);
	plan->key_typmods = palloc(sizeof(int32) * n);
	plan->key_collations = palloc(sizeof(Oid) * n);
	for (int i = 0; i < n; i++)
	{
		AttrNumber	attnum = get_attnum(target->relid, target->key_columns[i]);

		if (attnum == InvalidAttrNumber)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("key column \"%s\" of %s no longer exists",
							target->key_columns[i], target->relation_name),
					 errhint("Cancel the job with mig_cancel(), then start it again on the table.")));
		plan->key_names[i] = pstrdup(target->key_columns[i]);
		plan->key_attnums[i] = attnum;
		get_atttypetypmodcoll(target->relid, attnum, &plan->key_types[i],
							  &plan->key_typmods[i], &plan->key_collations[i]);
	}

	if (!HasKeyIndex(plan))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table %s no longer has a unique index on the key the job walks",
						target->relation_name),
				 errhint("Cancel the job with mig_cancel(), then start it again on the table.")));
}

/*
 * HasKeyIndex: the target has a valid unique index on exactly the key
 * columns, in order.  Not one particular index: REINDEX CONCURRENTLY
 * replaces an index by a new one, which is as good.  Caller holds a lock
 * on the target.
 */
static bool
HasKeyIndex(MigChunkPlan *plan)
{
	Relation	rel = RelationIdGetRelation(plan->relid);
	List	   *indexes;
	ListCell   *lc;
	bool		found = false;

	if (!RelationIsValid(rel))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("table %s was dropped while the job ran", plan->relation_name)));
	indexes = RelationGetIndexList(rel);
	RelationClose(rel);
	foreach(lc, indexes)
	{
		HeapTuple	tuple = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(lfirst_oid(lc)));
		Form_pg_index form;
		bool		same;

		if (!HeapTupleIsValid(tuple))
			continue;
		form = (Form_pg_index) GETSTRUCT(tuple);
		same = form->indisunique && form->indisvalid && form->indnkeyatts == plan->nkeys;
		for (int i = 0; same && i < plan->nkeys; i++)
			same = form->indkey.values[i] == plan->key_attnums[i];
		ReleaseSysCache(tuple);
		if (same)
		{
			found = true;
			break;
		}
	}
	list_free(indexes);
	return found;
}

/*
 * CheckKeyShape fails the chunk if the target's key is no longer what the
 * chunk statements were prepared for (see RecordKeyShape): a key column
 * dropped, or changed in type, typmod or collation, or no unique index on
 * the key columns left.  A datum of the prepared type must never be
 * read as another type.  Caller holds the target's ROW EXCLUSIVE lock, so
 * the catalogs it reads cannot change before the chunk commits.
 */
static void
CheckKeyShape(MigChunkPlan *plan)
{
	HeapTuple	tuple;
	bool		same;
	bool		dropped;

	for (int i = 0; i < plan->nkeys; i++)
	{
		Form_pg_attribute att;

		tuple = SearchSysCache2(ATTNUM, ObjectIdGetDatum(plan->relid),
								Int16GetDatum(plan->key_attnums[i]));
		if (!HeapTupleIsValid(tuple))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_TABLE),
					 errmsg("table %s was dropped while the job ran", plan->relation_name)));
		att = (Form_pg_attribute) GETSTRUCT(tuple);
		dropped = att->attisdropped;
		same = att->atttypid == plan->key_types[i] &&
			att->atttypmod == plan->key_typmods[i] &&
			att->attcollation == plan->key_collations[i];
		ReleaseSysCache(tuple);
		if (dropped)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("key column \"%s\" of table %s was dropped while the job ran",
							plan->key_names[i], plan->relation_name),
					 errhint("Cancel the job with mig_cancel(), then start it again on the table.")));
		if (!same)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("key column \"%s\" of table %s changed its type or collation while the job ran",
							plan->key_names[i], plan->relation_name),
					 errdetail("The job's chunk statements were prepared for the key as it was when the job started."),
					 errhint("Cancel the job with mig_cancel(), then start it again on the table.")));
	}

	if (!HasKeyIndex(plan))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the unique index on the key of table %s was dropped while the job ran",
						plan->relation_name),
				 errhint("Cancel the job with mig_cancel(), then start it again on the table.")));
}

/*
 * MigPrepareChunkPlan prepares the chunk statements of one target.  Caller
 * has SPI connected, runs as the job owner with the job's settings, and
 * keeps the result across transactions until MigFreeChunkPlan.
 */
MigChunkPlan *
MigPrepareChunkPlan(const MigTarget *target, const char *set_clause,
					const char *where_clause)
{
	return MigPrepareChunkPlanFor(target, set_clause, where_clause, false);
}

/*
 * MigPrepareChunkPlanFor is MigPrepareChunkPlan with the chunk's strategy:
 * count_only chunks count the rows matching where_clause and change
 * nothing (set_clause is then ignored).
 */
MigChunkPlan *
MigPrepareChunkPlanFor(const MigTarget *target, const char *set_clause,
					   const char *where_clause, bool count_only)
{
	return MigPrepareChunkPlanWith(target,
								   count_only ?
								   ChunkCountMatchingSql(target, where_clause, true) :
								   MigChunkUpdateSql(target, set_clause, where_clause, true),
								   count_only ?
								   ChunkCountMatchingSql(target, where_clause, false) :
								   MigChunkUpdateSql(target, set_clause, where_clause, false),
								   count_only);
}

/*
 * MigChunkPlanSearchPath: the plan's change statements run with
 * search_path, the one the job was started with, as in the session that
 * started it: every name in the statements is qualified, but the table's
 * triggers, and the functions its clauses call, name tables and functions
 * as that session finds them (an audit trigger's INSERT INTO t_log), and
 * under the worker's pinned search_path every chunk failed on them.  They
 * run as the job's owner, who chose that search_path.  The statements
 * pg_mig runs on its own behalf (the boundary and count queries, the
 * bookkeeping) stay pinned.
 */
void
MigChunkPlanSearchPath(MigChunkPlan *plan, const char *search_path)
{
	plan->search_path = search_path ?
		MemoryContextStrdup(GetMemoryChunkContext(plan), search_path) : NULL;
}

/*
 * MigPrepareChunkPlanWith is MigPrepareChunkPlan with the chunk's change
 * statements given (undo, kind_revert.c): change_first takes the end key,
 * change_next the last key then the end key, as MigChunkUpdateSql's.  A
 * change statement that is an INSERT counts the rows it inserts; with
 * counts, it is a query whose one row and column is the chunk's row count.
 */
MigChunkPlan *
MigPrepareChunkPlanWith(const MigTarget *target, const char *change_first,
						const char *change_next, bool counts)
{
	bool		count_only = counts;
	MemoryContext context = AllocSetContextCreate(TopMemoryContext,
												  "pg_mig chunk plan",
												  ALLOCSET_SMALL_SIZES);
	MemoryContext old = MemoryContextSwitchTo(context);
	MigChunkPlan *plan = palloc0(sizeof(MigChunkPlan));
	int			n = target->nkeys;
	Oid		   *types = palloc(sizeof(Oid) * (2 * n + 1));

	plan->context = context;
	plan->relid = target->relid;
	plan->relation_name = pstrdup(target->relation_name);
	plan->nkeys = n;
	plan->key_types = palloc(sizeof(Oid) * n);
	plan->typinput = palloc(sizeof(Oid) * n);
	plan->typioparam = palloc(sizeof(Oid) * n);
	RecordKeyShape(plan, target);
	for (int i = 0; i < n; i++)
	{
		getTypeInputInfo(plan->key_types[i], &plan->typinput[i], &plan->typioparam[i]);
		types[i] = types[n + i] = plan->key_types[i];
	}
	types[2 * n] = INT8OID;

	if (target->upper_key)
	{
		int			nest = MigEnterKeyFormat();

		plan->upper_text = palloc(sizeof(char *) * n);
		plan->upper = palloc(sizeof(Datum) * n);
		for (int i = 0; i < n; i++)
		{
			plan->upper_text[i] = pstrdup(target->upper_key[i]);
			plan->upper[i] = OidInputFunctionCall(plan->typinput[i],
												  plan->upper_text[i],
												  plan->typioparam[i], -1);
		}
		MigLeaveKeyFormat(nest);
	}

	/* first chunk: $1.. = upper key, $n+1 = offset */
	{
		Oid		   *first_types = palloc(sizeof(Oid) * (n + 1));

		memcpy(first_types, types, sizeof(Oid) * n);
		first_types[n] = INT8OID;
		plan->boundary_first = PrepareKept(MigChunkBoundarySql(target, true), n + 1, first_types);
		plan->count_first = PrepareKept(ChunkCountSql(target, true), n, types);
		plan->update_first = PrepareKept(change_first, n, types);
	}
	plan->boundary_next = PrepareKept(MigChunkBoundarySql(target, false), 2 * n + 1, types);
	plan->count_next = PrepareKept(ChunkCountSql(target, false), 2 * n, types);
	plan->update_next = PrepareKept(change_next, 2 * n, types);
	plan->count_only = count_only;
	MemoryContextSwitchTo(old);
	return plan;
}

/*
 * MigFreeChunkPlan releases the statements and memory of a chunk plan.
 */
void
MigFreeChunkPlan(MigChunkPlan *plan)
{
	SPIPlanPtr	plans[6] = {plan->boundary_first, plan->boundary_next,
		plan->count_first, plan->count_next, plan->update_first, plan->update_next};

	for (int i = 0; i < 6; i++)
		if (plans[i])
			SPI_freeplan(plans[i]);
	MemoryContextDelete(plan->context);
}

/*
 * CheckTargetIdentity takes the target's ROW EXCLUSIVE lock (waiting no
 * longer than lock_timeout) and checks that its name still means the same
 * table: the prepared statements refer to it by name, and a rename followed
 * by a new table of the old name must not redirect the job.
 */
static void
CheckTargetIdentity(MigChunkPlan *plan)
{
	List	   *names;
	Oid			now_relid;

	LockRelationOid(plan->relid, RowExclusiveLock);
	names = MigStringToQualifiedNameList(plan->relation_name);
	now_relid = RangeVarGetRelid(makeRangeVarFromNameList(names), NoLock, true);
	if (now_relid != plan->relid)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("table %s was dropped or renamed while the job ran",
						plan->relation_name),
				 errhint("Cancel the job with mig_cancel(), then start it again on the table under its new name.")));
	CheckKeyShape(plan);
}

/*
 * ExecuteWithSearchPath runs the prepared change statement spiplan with
 * values for its parameters, as SPI_execute_plan does for a statement that
 * writes (a new snapshot that sees what the transaction did so far), but
 * with its plan checked and made under the current, pinned search_path and
 * only its execution under search_path (see the file header).  Returns the
 * rows it changed, or with counts the one value of the one row it returns.
 * Caller is connected to SPI.
 */
static int64
ExecuteWithSearchPath(SPIPlanPtr spiplan, Datum *values, const char *search_path, bool counts)
{
	CachedPlanSource *source;
	CachedPlan *cplan;
	ParamListInfo params;
	QueryDesc  *qd;
	DestReceiver *dest = None_Receiver;
	Tuplestorestate *store = NULL;
	int64		result;
	int			nest;

	if (list_length(spiplan->plancache_list) != 1)
		elog(ERROR, "a pg_mig chunk statement is not one statement");
	source = linitial(spiplan->plancache_list);
	params = makeParamList(spiplan->nargs);
	for (int i = 0; i < spiplan->nargs; i++)
	{
		params->params[i].value = values[i];
		params->params[i].isnull = false;
		params->params[i].pflags = PARAM_FLAG_CONST;
		params->params[i].ptype = spiplan->argtypes[i];
	}
	cplan = GetCachedPlan(source, params, CurrentResourceOwner, NULL);
	if (list_length(cplan->stmt_list) != 1)
		elog(ERROR, "a pg_mig chunk statement has %d plans", list_length(cplan->stmt_list));

	CommandCounterIncrement();
	PushActiveSnapshot(GetTransactionSnapshot());
	UpdateActiveSnapshotCommandId();
	if (counts)
	{
		store = tuplestore_begin_heap(false, false, work_mem);
		dest = CreateDestReceiver(DestTuplestore);
		SetTuplestoreDestReceiverParams(dest, store, CurrentMemoryContext, false, NULL, NULL);
	}
	nest = NewGUCNestLevel();
	(void) set_config_option("search_path", search_path, PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	qd = CreateQueryDesc(linitial_node(PlannedStmt, cplan->stmt_list), source->query_string,
						 GetActiveSnapshot(), InvalidSnapshot, dest, params, NULL, 0);
	ExecutorStart(qd, 0);
	MigExecutorRun(qd);
	ExecutorFinish(qd);
	result = (int64) qd->estate->es_processed;
	ExecutorEnd(qd);
	FreeQueryDesc(qd);
	AtEOXact_GUC(true, nest);
	PopActiveSnapshot();
	if (counts)
	{
		TupleTableSlot *slot = MakeSingleTupleTableSlot(source->resultDesc, &TTSOpsMinimalTuple);
		bool		isnull;

		if (!tuplestore_gettupleslot(store, true, false, slot))
			elog(ERROR, "pg_mig chunk count returned no row");
		result = DatumGetInt64(slot_getattr(slot, 1, &isnull));
		ExecDropSingleTupleTableSlot(slot);
		dest->rDestroy(dest);
		tuplestore_end(store);
	}
	ReleaseCachedPlan(cplan, CurrentResourceOwner);
	return result;
}

/*
 * MigRunChunk finds and changes one chunk of at most batch keys after
 * last_key (nlast_key = 0: from the start of the target).  Caller is in the
 * chunk's transaction with SPI connected, as the job owner; the result's
 * end key is allocated in the caller's memory context.
 */
void
MigRunChunk(MigChunkPlan *plan, int nlast_key, char **last_key, int batch,
			MigChunkResult *result)
{
	int			n = plan->nkeys;
	Datum	   *params = palloc(sizeof(Datum) * (2 * n + 1));
	Datum	   *end = palloc(sizeof(Datum) * n);
	bool		first = (nlast_key == 0);
	int			upper_at = first ? 0 : n;
	int			ret;

	memset(result, 0, sizeof(*result));
	if (plan->upper == NULL)
	{
		/* the target was empty when the job started */
		result->target_done = true;
		return;
	}
	CheckTargetIdentity(plan);

	if (!first)
	{
		int			nest;

		if (nlast_key != n)
			elog(ERROR, "checkpoint of pg_mig job has %d key values, expected %d",
				 nlast_key, n);
		nest = MigEnterKeyFormat();
		for (int i = 0; i < n; i++)
			params[i] = OidInputFunctionCall(plan->typinput[i], last_key[i],
											 plan->typioparam[i], -1);
		MigLeaveKeyFormat(nest);
	}
	for (int i = 0; i < n; i++)
		params[upper_at + i] = plan->upper[i];
	params[upper_at + n] = Int64GetDatum((int64) Max(batch, 1) - 1);

	/* where does this chunk end? */
	ret = SPI_execute_plan(first ? plan->boundary_first : plan->boundary_next,
						   params, NULL, false, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "pg_mig boundary query failed: %s", SPI_result_code_string(ret));
	result->end_key = palloc(sizeof(char *) * n);
	if (SPI_processed == 1)
	{
		HeapTuple	tuple = SPI_tuptable->vals[0];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		at_upper = true;
		int			nest = MigEnterKeyFormat();

		for (int i = 0; i < n; i++)
		{
			bool		isnull;
			Datum		d = SPI_getbinval(tuple, desc, i + 1, &isnull);

			result->end_key[i] = SPI_getvalue(tuple, desc, i + 1);
			end[i] = datumCopy(d, get_typbyval(plan->key_types[i]),
							   get_typlen(plan->key_types[i]));
			if (strcmp(result->end_key[i], plan->upper_text[i]) != 0)
				at_upper = false;
		}
		MigLeaveKeyFormat(nest);
		result->keys = batch;
		result->target_done = at_upper;
	}
	else
	{
		/* fewer than batch keys are left: this is the target's last chunk */
		ret = SPI_execute_plan(first ? plan->count_first : plan->count_next,
							   params, NULL, false, 1);
		if (ret != SPI_OK_SELECT || SPI_processed != 1)
			elog(ERROR, "pg_mig count query failed: %s", SPI_result_code_string(ret));
		{
			bool		isnull;

			result->keys = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
													   SPI_tuptable->tupdesc, 1, &isnull));
		}
		for (int i = 0; i < n; i++)
		{
			result->end_key[i] = pstrdup(plan->upper_text[i]);
			end[i] = plan->upper[i];
		}
		result->target_done = true;
	}

	/* change the chunk */
	for (int i = 0; i < n; i++)
		params[(first ? 0 : n) + i] = end[i];
	if (plan->search_path)
	{
		result->rows = ExecuteWithSearchPath(first ? plan->update_first : plan->update_next,
											 params, plan->search_path, plan->count_only);
		return;
	}
	ret = SPI_execute_plan(first ? plan->update_first : plan->update_next,
						   params, NULL, false, 0);
	if (plan->count_only)
	{
		bool		isnull;

		if (ret != SPI_OK_SELECT || SPI_processed != 1)
			elog(ERROR, "pg_mig chunk count failed: %s", SPI_result_code_string(ret));
		result->rows = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
												   SPI_tuptable->tupdesc, 1, &isnull));
		return;
	}
	if (ret != SPI_OK_UPDATE && ret != SPI_OK_DELETE && ret != SPI_OK_INSERT)
		elog(ERROR, "pg_mig chunk statement failed: %s", SPI_result_code_string(ret));
	result->rows = (int64) SPI_processed;
}
