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
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_index.h"
#include "commands/defrem.h"
#include "nodes/parsenodes.h"
#include "parser/parse_utilcmd.h"
#include "utils/builtins.h"
#include "utils/varlena.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "access/xact.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "parse_check.h"
#include "pg_mig.h"
#include "steps.h"

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
