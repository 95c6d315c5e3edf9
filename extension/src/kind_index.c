/*-------------------------------------------------------------------------
 *
 * kind_index.c
 *	  The index kind (mig_create_index): CREATE [UNIQUE] INDEX CONCURRENTLY
 *	  run by the worker, so that the client may go away and the build
 *	  still finishes.
 *
 * The recipe, one schema step each (run by worker.c; see kinds.h):
 *
 *	  drop_invalid	DROP INDEX CONCURRENTLY of an INVALID index of the same
 *					name, left by an earlier failed build
 *	  build			wait while replicas lag; CREATE INDEX CONCURRENTLY
 *					(a lock timeout leaves an INVALID index: it is
 *					dropped before the retry)
 *
 * Both are top-level statements: they cannot run in a transaction block,
 * so they run the way a client's simple query runs (see
 * MigRunTopLevel).  A valid index of the name is a build already done.  A
 * build that fails for good (a duplicate key of a unique index, ...)
 * fails the job, and the undo step drops the INVALID index it left.
 *
 * The statement is built from checked parts, never pasted: the column list
 * must parse as the index element list of CREATE INDEX and nothing else,
 * the method must be an index access method in pg_am, the predicate must
 * parse as the WHERE of CREATE INDEX and nothing else, and the statement
 * put together is parsed once more and must be one CREATE INDEX of the
 * job's table with exactly those parts.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/amapi.h"
#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_am.h"
#include "catalog/pg_class.h"
#include "catalog/pg_index.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "parse_check.h"
#include "parser/parse_utilcmd.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/ruleutils.h"
#include "utils/syscache.h"
#include "utils/varlena.h"

#include "pg_mig.h"
#include "start.h"
#include "steps.h"
#include "version_compat.h"

#define COLUMNS_HINT "Pass the column list of CREATE INDEX, e.g. 'created_at', 'lower(email)' or 'customer_id, created_at DESC'."
#define WHERE_HINT "Pass the predicate of a partial index as one boolean expression, e.g. 'deleted_at IS NULL'."

/*
 * MigIndexSql returns the CREATE INDEX CONCURRENTLY statement of an index
 * job from its parts (include: a list of column names, or NIL), after
 * checking that each part is what it claims to be (see the file header).
 * If stmt_out is not NULL it gets the parsed statement.
 */
char *
MigIndexSql(const char *relation_name, const char *index_name, const char *columns,
			bool unique, const char *method, const char *where_clause, List *include,
			IndexStmt **stmt_out)
{
	IndexStmt  *cols;
	IndexStmt  *full;
	StringInfoData buf;
	ListCell   *lc;

	/* the column list alone: an index element list, nothing after it */
	cols = (IndexStmt *) MigParseOne("columns",
									 psprintf("CREATE INDEX ON %s (%s\n)", relation_name, columns),
									 COLUMNS_HINT);
	if (!IsA(cols, IndexStmt) || cols->indexParams == NIL)
		MigRejectPart("columns", "it is not an index column list", COLUMNS_HINT);
	if (cols->whereClause || cols->indexIncludingParams || cols->options ||
		cols->tableSpace)
		MigRejectPart("columns", "it must contain only the column list", COLUMNS_HINT);
	if (where_clause)
	{
		IndexStmt  *pred = (IndexStmt *)
			MigParseOne("where_clause",
						psprintf("CREATE INDEX ON %s (x) WHERE %s\n", relation_name, where_clause),
						WHERE_HINT);

		if (!IsA(pred, IndexStmt) || pred->whereClause == NULL ||
			list_length(pred->indexParams) != 1 || pred->indexIncludingParams ||
			pred->options || pred->tableSpace)
			MigRejectPart("where_clause", "it is not one boolean expression", WHERE_HINT);
	}

	initStringInfo(&buf);
	appendStringInfo(&buf, "CREATE %sINDEX CONCURRENTLY %s ON %s USING %s (%s\n)",
					 unique ? "UNIQUE " : "", quote_identifier(index_name),
					 relation_name, quote_identifier(method), columns);
	if (include != NIL)
	{
		appendStringInfoString(&buf, " INCLUDE (");
		foreach(lc, include)
			appendStringInfo(&buf, "%s%s", foreach_current_index(lc) ? ", " : "",
							 quote_identifier(lfirst(lc)));
		appendStringInfoChar(&buf, ')');
	}
	if (where_clause)
		appendStringInfo(&buf, " WHERE (%s\n)", where_clause);

	/* and the whole: one CREATE INDEX of exactly these parts */
	full = (IndexStmt *) MigParseOne("index definition", buf.data, COLUMNS_HINT);
	if (!IsA(full, IndexStmt) || !full->concurrent || full->unique != unique ||
		full->idxname == NULL || strcmp(full->idxname, index_name) != 0 ||
		strcmp(full->accessMethod, method) != 0 ||
		list_length(full->indexParams) != list_length(cols->indexParams) ||
		list_length(full->indexIncludingParams) != list_length(include) ||
		(full->whereClause != NULL) != (where_clause != NULL) ||
		full->options || full->tableSpace)
		MigRejectPart("index definition", "its parts do not make one CREATE INDEX", COLUMNS_HINT);
	if (stmt_out)
		*stmt_out = full;
	return buf.data;
}

/* IncludeList: the job's include argument ("a,b") as a List of names */
static List *
IncludeList(const MigJob *job)
{
	const char *arg = MigKindArg(job, "include");
	List	   *names = NIL;

	if (arg == NULL || arg[0] == '\0')
		return NIL;
	if (!SplitIdentifierString(pstrdup(arg), ',', &names))
		elog(ERROR, "invalid include list of pg_mig index job");
	return names;
}

static const char *
IndexName(const MigJob *job)
{
	return MigKindArg(job, "index");
}

/* QualifiedIndexName: the index, in the table's schema */
static char *
QualifiedIndexName(const MigJob *job)
{
	return quote_qualified_identifier(get_namespace_name(get_rel_namespace(job->relid)),
									  IndexName(job));
}

/*
 * MigIndexState: 0 = no relation named name in the schema of table relid,
 * 1 = an INVALID index of that table, 2 = a valid index of that table;
 * anything else of the name is an error.  The index kind asks it of the
 * index it builds, the type change of each index it copies.
 */
int
MigIndexState(Oid relid, const char *name)
{
	Oid			indexoid = get_relname_relid(name, get_rel_namespace(relid));
	HeapTuple	tuple;
	int			result;
	Form_pg_index form;

	if (!OidIsValid(indexoid))
		return 0;
	tuple = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(indexoid));
	if (!HeapTupleIsValid(tuple))
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("relation \"%s\" already exists and is not an index", name)));
	form = (Form_pg_index) GETSTRUCT(tuple);
	if (form->indrelid != relid)
	{
		ReleaseSysCache(tuple);
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("index \"%s\" already exists on another table", name)));
	}
	result = form->indisvalid ? 2 : 1;
	ReleaseSysCache(tuple);
	return result;
}

/* IndexState: MigIndexState of the job's index */
static int
IndexState(const MigJob *job)
{
	return MigIndexState(job->relid, IndexName(job));
}

/* drop_invalid, also the undo step */
static char *
DescribeDrop(const MigJob *job)
{
	return psprintf("dropping invalid index %s left by an earlier build", IndexName(job));
}

static bool
DoneDrop(const MigJob *job)
{
	return IndexState(job) != 1;
}

static void
RunDrop(const MigJob *job)
{
	char	   *sql;

	StartTransactionCommand();
	sql = MemoryContextStrdup(TopMemoryContext,
							  psprintf("DROP INDEX CONCURRENTLY IF EXISTS %s",
									   QualifiedIndexName(job)));
	CommitTransactionCommand();
	MigRunTopLevel(sql, job->lock_timeout_ms);
	pfree(sql);
}

/* build */
static char *
DescribeBuild(const MigJob *job)
{
	return psprintf("building index %s", IndexName(job));
}

static bool
DoneBuild(const MigJob *job)
{
	return IndexState(job) == 2;
}

static void
RunBuild(const MigJob *job)
{
	char	   *sql;
	bool		leftover;

	/* an attempt that timed out left an INVALID index: drop it first */
	StartTransactionCommand();
	leftover = (IndexState(job) == 1);
	sql = MigIndexSql(MigJobRelationName(job), IndexName(job), MigKindArg(job, "columns"),
					  strcmp(MigKindArg(job, "unique"), "true") == 0,
					  MigKindArg(job, "method"), MigKindArg(job, "where"),
					  IncludeList(job), NULL);
	sql = MemoryContextStrdup(TopMemoryContext, sql);
	CommitTransactionCommand();
	if (leftover)
		RunDrop(job);
	MigRunTopLevel(sql, job->lock_timeout_ms);
	pfree(sql);
}

/*
 * ExplainFailure: a unique build over duplicate keys fails the job; say
 * what to do, in SQL.
 */
static char *
ExplainFailure(const MigJob *job, const MigStepDef *step, ErrorData *edata)
{
	if (strcmp(step->name, "build") != 0 || edata->sqlerrcode != ERRCODE_UNIQUE_VIOLATION)
		return NULL;
	return psprintf("%s%s%s (SQLSTATE %s). "
					"Hint: delete or change the duplicate rows first, e.g. with mig_start_delete(), then run mig_create_index() again.",
					edata->message, edata->detail ? ": " : "",
					edata->detail ? edata->detail : "",
					unpack_sql_state(edata->sqlerrcode));
}

static const MigStepDef index_steps[] = {
	{"drop_invalid", DescribeDrop, DoneDrop, RunDrop, true, false},
	{"build", DescribeBuild, DoneBuild, RunBuild, true, true},
};

static const MigStepDef index_undo =
{"undo", DescribeDrop, DoneDrop, RunDrop, true, false};

const MigKindDef mig_kind_index = {
	.kind = MIG_KIND_INDEX,
	.name = "index",
	.start_function = "mig_create_index",
	.with_article = "an index",
	.steps = index_steps,
	.nsteps = lengthof(index_steps),
	.explain_failure = ExplainFailure,
	.undo = &index_undo,
};

PG_FUNCTION_INFO_V1(mig_create_index);

#define COLUMNS_ARG_HINT "Pass the column list of CREATE INDEX, e.g. 'created_at', 'lower(email)' or 'customer_id, created_at DESC'."

/* the refusals of a start that name what it does (start.h) */
static const MigStartText index_text = {
	.recovery = gettext_noop("cannot start an index job during recovery"),
	.temp_table = gettext_noop("cannot create an index on temporary table \"%s\""),
	.not_owner = gettext_noop("permission denied to create an index on table \"%s\""),
};

/*
 * ResolveIndexParts rewrites the column list and the predicate of an index
 * job from their parse analysis (transformIndexStmt), deparsed with the
 * search_path pinned: every name in them is then qualified, resolved once
 * as the caller sees it now, and the worker (whose search_path is pinned
 * too) builds exactly that index.
 */
static void
ResolveIndexParts(Relation rel, IndexStmt *stmt, char **columns, char **where_clause)
{
	List	   *context = deparse_context_for(RelationGetRelationName(rel), RelationGetRelid(rel));
	StringInfoData buf;
	ListCell   *lc;
	int			nest = NewGUCNestLevel();

	(void) set_config_option("search_path", MIG_SAFE_SEARCH_PATH, PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	initStringInfo(&buf);
	foreach(lc, stmt->indexParams)
	{
		IndexElem  *elem = lfirst_node(IndexElem, lc);

		if (buf.len)
			appendStringInfoString(&buf, ", ");
		if (elem->name)
			appendStringInfoString(&buf, quote_identifier(elem->name));
		else
			appendStringInfo(&buf, "(%s)",
							 deparse_expression(elem->expr, context, false, false));
		if (elem->collation)
			appendStringInfo(&buf, " COLLATE %s", NameListToQuotedString(elem->collation));
		if (elem->opclass)
		{
			if (elem->opclassopts)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("invalid columns: operator class options are not supported")));
			appendStringInfo(&buf, " %s", NameListToQuotedString(elem->opclass));
		}
		if (elem->ordering == SORTBY_DESC)
			appendStringInfoString(&buf, " DESC");
		if (elem->nulls_ordering == SORTBY_NULLS_FIRST)
			appendStringInfoString(&buf, " NULLS FIRST");
		else if (elem->nulls_ordering == SORTBY_NULLS_LAST)
			appendStringInfoString(&buf, " NULLS LAST");
	}
	*columns = buf.data;
	if (stmt->whereClause)
		*where_clause = deparse_expression(stmt->whereClause, context, false, false);
	AtEOXact_GUC(true, nest);
}

/*
 * mig_create_index(relation, columns, index_name, unique, method,
 * where_clause, include, max_lag, max_lag_bytes, lock_timeout,
 * max_retries) starts an index job (kind_index.c).
 */
Datum
mig_create_index(PG_FUNCTION_ARGS)
{
	MigJob		job;
	Relation	rel;
	char	   *columns;
	char	   *index_name = NULL;
	bool		unique;
	char	   *method;
	char	   *where_clause = NULL;
	List	   *include = NIL;
	StringInfoData include_arg;
	Oid			amoid;
	IndexStmt  *stmt;
	ListCell   *lc;
	Oid			existing;

	rel = MigBeginStart(fcinfo, &job, &index_text);
	MIG_START_AGAIN(fcinfo, rel, &job, MIG_KIND_INDEX, "columns", "index_name", "unique", "method",
				"where_clause", "include");
	MigCheckDDLTable(rel, &index_text);
	if (rel->rd_rel->relkind == RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot create an index concurrently on partitioned table \"%s\"",
						RelationGetRelationName(rel)),
				 errhint("Create the index on each partition with mig_create_index(), then attach them to an index created ON ONLY the partitioned table.")));
	columns = MigTextArgument(fcinfo, 1, "columns", COLUMNS_ARG_HINT);
	unique = PG_ARGISNULL(3) ? false : PG_GETARG_BOOL(3);
	method = PG_ARGISNULL(4) ? pstrdup("btree") : MigTextArgument(fcinfo, 4, "method", NULL);
	if (!PG_ARGISNULL(5))
		where_clause = MigTextArgument(fcinfo, 5, "where_clause",
									"Pass NULL for an index of every row.");

	/* the method: an index access method in pg_am */
	amoid = get_index_am_oid(method, true);
	if (!OidIsValid(amoid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("index access method \"%s\" does not exist", method),
				 errhint("See the index access methods in pg_am, e.g. btree, hash, gin, gist, brin.")));
	if (unique && !GetIndexAmRoutineByAmId(amoid, false)->amcanunique)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("access method \"%s\" does not support unique indexes", method)));

	/* include: columns of the table */
	initStringInfo(&include_arg);
	if (!PG_ARGISNULL(6))
	{
		Datum	   *elems;
		bool	   *nulls;
		int			n;

		deconstruct_array(PG_GETARG_ARRAYTYPE_P(6), NAMEOID, NAMEDATALEN, false,
						  TYPALIGN_CHAR, &elems, &nulls, &n);
		for (int i = 0; i < n; i++)
		{
			char	   *name;

			if (nulls[i])
				ereport(ERROR,
						(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						 errmsg("include must not contain NULL")));
			name = pstrdup(NameStr(*DatumGetName(elems[i])));
			if (get_attnum(job.relid, name) <= 0)
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_COLUMN),
						 errmsg("column \"%s\" of relation \"%s\" does not exist",
								name, RelationGetRelationName(rel)),
						 errhint("include names columns to store in the index.")));
			include = lappend(include, name);
			appendStringInfo(&include_arg, "%s%s", i ? "," : "", quote_identifier(name));
		}
	}

	/* the name: given, or PostgreSQL's usual one */
	if (!PG_ARGISNULL(2))
		index_name = pstrdup(NameStr(*PG_GETARG_NAME(2)));
	(void) MigIndexSql(job.relation_name, index_name ? index_name : "pg_mig_index_name",
					   columns, unique, method, where_clause, include, &stmt);
	if (index_name == NULL)
	{
		StringInfoData name2;

		initStringInfo(&name2);
		foreach(lc, stmt->indexParams)
		{
			IndexElem  *elem = lfirst_node(IndexElem, lc);

			appendStringInfo(&name2, "%s%s", name2.len ? "_" : "",
							 elem->name ? elem->name : "expr");
		}
		index_name = ChooseRelationName(RelationGetRelationName(rel), name2.data,
										unique ? "key" : "idx",
										RelationGetNamespace(rel), false);
	}
	existing = get_relname_relid(index_name, RelationGetNamespace(rel));
	if (OidIsValid(existing) && get_rel_relkind(existing) != RELKIND_INDEX)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_TABLE),
				 errmsg("relation \"%s\" already exists", index_name)));
	/* a valid index of that name is someone's index, not a build to finish */
	if (OidIsValid(existing))
	{
		HeapTuple	tuple = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(existing));
		bool		valid = HeapTupleIsValid(tuple) &&
			((Form_pg_index) GETSTRUCT(tuple))->indisvalid;

		if (HeapTupleIsValid(tuple))
			ReleaseSysCache(tuple);
		if (valid)
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_TABLE),
					 errmsg("index \"%s\" already exists", index_name),
					 errdetail("It is a valid index; mig_create_index builds a new one."),
					 errhint("Pass another index_name, or drop the index first.")));
	}
	/* CREATE INDEX makes the index in the table's schema: CREATE on it */
	if (MigNamespaceAclCheck(RelationGetNamespace(rel), GetUserId(), ACL_CREATE) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for schema %s",
						get_namespace_name(RelationGetNamespace(rel))),
				 errdetail("The index is created in the schema of its table, as role \"%s\".",
						   GetUserNameFromId(GetUserId(), false)),
				 errhint("Grant that role CREATE on the schema, or have a role that has it start the job.")));

	/* the meaning of the parts: columns, expressions and predicate resolve */
	foreach(lc, stmt->indexParams)
	{
		IndexElem  *elem = lfirst_node(IndexElem, lc);

		if (elem->name && get_attnum(job.relid, elem->name) <= 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("invalid columns: column \"%s\" of relation \"%s\" does not exist",
							elem->name, RelationGetRelationName(rel)),
					 errhint("%s", COLUMNS_ARG_HINT)));
	}
	stmt = transformIndexStmt(job.relid, stmt, "mig_create_index");
	ResolveIndexParts(rel, stmt, &columns, &where_clause);
	(void) MigIndexSql(job.relation_name, index_name, columns, unique, method,
					   where_clause, include, NULL);

	MigStepJobDefaults(fcinfo, &job);
	MigReadKnobArg(fcinfo, "max_lag", &job);
	MigReadKnobArg(fcinfo, "max_lag_bytes", &job);

	job.kind = MIG_KIND_INDEX;
	job.kind_args = list_make5(psprintf("index=%s", index_name),
							   psprintf("columns=%s", columns),
							   psprintf("unique=%s", unique ? "true" : "false"),
							   psprintf("method=%s", method),
							   psprintf("include=%s", include_arg.data));
	if (where_clause)
		job.kind_args = lappend(job.kind_args, psprintf("where=%s", where_clause));
	PG_RETURN_INT64(MigFinishStart(rel, &job, NIL,
								psprintf("create %sindex %s concurrently", unique ? "unique " : "",
										 quote_identifier(index_name)), NULL, NULL));
}
