/*-------------------------------------------------------------------------
 *
 * kind_revert.c
 *	  Undo: the chunk statements of a backfill that keeps its old values,
 *	  and of the revert job that writes them back.
 *
 * A backfill with keep_old_values walks its targets like any backfill
 * (walk.c, chunk.c), but each chunk is one statement that also
 * keeps what it changes in the job's kept table (kept.c):
 *
 *	  WITH mig_old AS (SELECT key AS mig_k1.., c AS mig_o1.. FROM ONLY t
 *					   WHERE <chunk range> AND (<where clause>)),
 *		   mig_new AS (UPDATE ONLY t SET <set clause> FROM mig_old
 *					   WHERE <chunk range> AND (<where clause>)
 *					   AND t.key = mig_old.mig_k1..
 *					   AND record_image_eq(ROW(t.c..), ROW(mig_old.mig_o1..))
 *					   RETURNING key AS mig_k1.., c AS mig_n1..),
 *		   mig_kept AS (INSERT INTO kept SELECT n.mig_k1.., o.mig_o1.., n.mig_n1..
 *					   FROM mig_new n JOIN mig_old o ON n.mig_k1.. = o.mig_k1..
 *					   RETURNING 1)
 *	  SELECT mig_kept_check((SELECT count(*) FROM mig_kept),
 *							(SELECT count(*) FROM mig_old))
 *
 * The old values are read with the chunk's snapshot.  A row another
 * transaction changed since is found by the UPDATE in its newer version,
 * on which it rechecks its conditions: if the assigned columns no longer
 * hold what mig_old read (or the where clause no longer holds), the row is
 * not changed, fewer rows are kept than read, and mig_kept_check fails the
 * chunk with a serialization failure: it is rolled back and retried with a
 * new snapshot.  So the kept old values are always the values the UPDATE
 * replaced, without a row lock per row (SELECT ... FOR UPDATE cost a WAL
 * record per row).  The kept rows are inserted by the same statement, so
 * they commit with the chunk and its checkpoint or not at all; the chunk's
 * row count is the count of rows kept, which is the count of rows changed.
 *
 * A revert job (mig_revert, sql_undo.c) has one target: the kept table,
 * walked in key order with its own checkpoint.  Each chunk writes the old
 * values back to the rows of the chunk's kept keys whose assigned columns
 * still hold, byte for byte, what the backfill wrote (or already hold the
 * old values: a revert after a cancelled revert), in one statement:
 *
 *	  WITH mig_done AS (UPDATE [ONLY] t SET c = kept.mig_old_1..
 *		FROM ONLY kept WHERE <chunk range on kept> AND t.key = kept.key
 *		AND (record_image_eq(ROW(t.c..), ROW(kept.mig_new_1..))
 *			 OR record_image_eq(ROW(t.c..), ROW(kept.mig_old_1..)))
 *		RETURNING 1)
 *	  SELECT count(*) FROM mig_done
 *
 * record_image_eq compares NULLs as equal and needs no equality operator
 * of the column's type (json has none).  A chunk's keys are its kept rows,
 * so when the walk ends the rows left alone (changed by someone since the
 * backfill, or deleted) are keys_done - rows_done: the event 'conflicts'
 * gives that count and a few of their keys.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_class.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "pg_mig.h"

#define CONFLICT_KEYS_SHOWN	5

/*
 * MigJobKeepsValues: the job is a backfill started with keep_old_values.
 * Loads the job's kind.  Caller is in a transaction.
 */
bool
MigJobKeepsValues(const MigJob *job)
{
	MigJob		copy = *job;
	const char *keep;

	MigLoadJobKind(&copy);
	keep = MigKindArg(&copy, "keep_old_values");
	return copy.kind == MIG_KIND_BACKFILL && keep && strcmp(keep, "true") == 0;
}

/* KeptColumns: the kept columns (kind_args "kept_column=name"), in order */
static List *
KeptColumns(const MigJob *job)
{
	List	   *cols = NIL;
	ListCell   *lc;

	foreach(lc, job->kind_args)
	{
		const char *item = lfirst(lc);

		if (strncmp(item, "kept_column=", 12) == 0)
			cols = lappend(cols, pstrdup(item + 12));
	}
	return cols;
}

/* AppendTuple: "p.a" or "(p.a, p.b)", each name prefixed */
static void
AppendTuple(StringInfo buf, const char *qual, const char *prefix, int n,
			char **names)
{
	if (n > 1)
		appendStringInfoChar(buf, '(');
	for (int i = 0; i < n; i++)
	{
		if (i)
			appendStringInfoString(buf, ", ");
		if (qual)
			appendStringInfo(buf, "%s.", qual);
		if (prefix)
			appendStringInfo(buf, "%s%d", prefix, i + 1);
		else
			appendStringInfoString(buf, quote_identifier(names[i]));
	}
	if (n > 1)
		appendStringInfoChar(buf, ')');
}

/* AppendParams: "$first" or "($first, $first+1, ...)" */
static void
AppendParams(StringInfo buf, int n, int first)
{
	if (n > 1)
		appendStringInfoChar(buf, '(');
	for (int i = 0; i < n; i++)
		appendStringInfo(buf, "%s$%d", i ? ", " : "", first + i);
	if (n > 1)
		appendStringInfoChar(buf, ')');
}

/* AppendRange: the chunk's key range on relation qual (see chunk.c) */
static void
AppendRange(StringInfo buf, const char *qual, int n, char **keys, bool first)
{
	if (!first)
	{
		AppendTuple(buf, qual, NULL, n, keys);
		appendStringInfoString(buf, " OPERATOR(pg_catalog.>) ");
		AppendParams(buf, n, 1);
		appendStringInfoString(buf, " AND ");
	}
	AppendTuple(buf, qual, NULL, n, keys);
	appendStringInfoString(buf, " OPERATOR(pg_catalog.<=) ");
	AppendParams(buf, n, first ? 1 : n + 1);
}

/* ColumnArray: a List of char * as a char ** */
static char **
ColumnArray(List *cols)
{
	char	  **a = palloc(sizeof(char *) * Max(list_length(cols), 1));
	int			i = 0;
	ListCell   *lc;

	foreach(lc, cols)
		a[i++] = lfirst(lc);
	return a;
}

/* AppendImageEq: record_image_eq(ROW(t.c..), ROW(kept.<prefix>1..)) */
static void
AppendImageEq(StringInfo buf, const char *t, const char *kept, char **cols, int m,
			  const char *prefix)
{
	appendStringInfoString(buf, "pg_catalog.record_image_eq(ROW(");
	for (int i = 0; i < m; i++)
		appendStringInfo(buf, "%s%s.%s", i ? ", " : "", t, quote_identifier(cols[i]));
	appendStringInfoString(buf, "), ROW(");
	for (int i = 0; i < m; i++)
		appendStringInfo(buf, "%s%s.%s%d", i ? ", " : "", kept, prefix, i + 1);
	appendStringInfoString(buf, "))");
}

/* KeepingChunkSql: a backfill chunk that keeps its old values (file header) */
static char *
KeepingChunkSql(const MigJob *job, const MigTarget *target, List *kept_cols,
				bool first)
{
	StringInfoData buf;
	const char *t = target->relation_name;
	int			n = target->nkeys;
	int			m = list_length(kept_cols);
	char	  **cols = ColumnArray(kept_cols);

	initStringInfo(&buf);
	appendStringInfoString(&buf, "WITH mig_old AS (SELECT ");
	for (int i = 0; i < n; i++)
		appendStringInfo(&buf, "%s.%s AS mig_k%d, ", t,
						 quote_identifier(target->key_columns[i]), i + 1);
	for (int i = 0; i < m; i++)
		appendStringInfo(&buf, "%s%s.%s AS mig_o%d", i ? ", " : "", t,
						 quote_identifier(cols[i]), i + 1);
	appendStringInfo(&buf, "\n FROM ONLY %s WHERE ", t);
	AppendRange(&buf, t, n, target->key_columns, first);
	if (target->where_clause)
		appendStringInfo(&buf, " AND (%s\n)", target->where_clause);
	appendStringInfo(&buf, "),\nmig_new AS (UPDATE ONLY %s SET %s\n FROM mig_old WHERE ",
					 t, target->set_clause);
	AppendRange(&buf, t, n, target->key_columns, first);
	if (target->where_clause)
		appendStringInfo(&buf, " AND (%s\n)", target->where_clause);
	appendStringInfoString(&buf, " AND ");
	AppendTuple(&buf, t, NULL, n, target->key_columns);
	appendStringInfoString(&buf, " OPERATOR(pg_catalog.=) ");
	AppendTuple(&buf, "mig_old", "mig_k", n, NULL);
	/* the row still holds what mig_old read (rechecked on a newer version) */
	appendStringInfoString(&buf, "\n AND ");
	AppendImageEq(&buf, t, "mig_old", cols, m, "mig_o");
	appendStringInfoString(&buf, "\n RETURNING ");
	for (int i = 0; i < n; i++)
		appendStringInfo(&buf, "%s.%s AS mig_k%d, ", t,
						 quote_identifier(target->key_columns[i]), i + 1);
	for (int i = 0; i < m; i++)
		appendStringInfo(&buf, "%s%s.%s AS mig_n%d", i ? ", " : "", t,
						 quote_identifier(cols[i]), i + 1);
	appendStringInfo(&buf, "),\nmig_kept AS (INSERT INTO %s (", MigKeptTableName(job));
	for (int i = 0; i < n; i++)
		appendStringInfo(&buf, "%s, ", quote_identifier(target->key_columns[i]));
	for (int i = 0; i < m; i++)
		appendStringInfo(&buf, "mig_old_%d, ", i + 1);
	for (int i = 0; i < m; i++)
		appendStringInfo(&buf, "mig_new_%d%s", i + 1, i + 1 < m ? ", " : "");
	appendStringInfoString(&buf, ")\nSELECT ");
	for (int i = 0; i < n; i++)
		appendStringInfo(&buf, "mig_new.mig_k%d, ", i + 1);
	for (int i = 0; i < m; i++)
		appendStringInfo(&buf, "mig_old.mig_o%d, ", i + 1);
	for (int i = 0; i < m; i++)
		appendStringInfo(&buf, "mig_new.mig_n%d%s", i + 1, i + 1 < m ? ", " : "");
	appendStringInfoString(&buf, "\n FROM mig_new JOIN mig_old ON ");
	AppendTuple(&buf, "mig_new", "mig_k", n, NULL);
	appendStringInfoString(&buf, " OPERATOR(pg_catalog.=) ");
	AppendTuple(&buf, "mig_old", "mig_k", n, NULL);
	appendStringInfo(&buf, "\n RETURNING 1)\nSELECT %s((SELECT pg_catalog.count(*) FROM mig_kept),"
					 " (SELECT pg_catalog.count(*) FROM mig_old))",
					 MigQualifiedTable("mig_kept_check"));
	return buf.data;
}

/* RevertChunkSql: a chunk of a revert (file header) */
static char *
RevertChunkSql(const MigJob *job, const MigTarget *target, List *kept_cols,
			   bool first)
{
	StringInfoData buf;
	const char *t = job->relation_name;
	const char *kept = target->relation_name;
	int			n = target->nkeys;
	int			m = list_length(kept_cols);
	char	  **cols = ColumnArray(kept_cols);
	bool		partitioned = get_rel_relkind(job->relid) == RELKIND_PARTITIONED_TABLE;

	initStringInfo(&buf);
	appendStringInfo(&buf, "WITH mig_done AS (UPDATE %s%s SET ", partitioned ? "" : "ONLY ", t);
	for (int i = 0; i < m; i++)
		appendStringInfo(&buf, "%s%s = %s.mig_old_%d", i ? ", " : "",
						 quote_identifier(cols[i]), kept, i + 1);
	appendStringInfo(&buf, "\n FROM ONLY %s WHERE ", kept);
	AppendRange(&buf, kept, n, target->key_columns, first);
	appendStringInfoString(&buf, " AND ");
	AppendTuple(&buf, t, NULL, n, target->key_columns);
	appendStringInfoString(&buf, " OPERATOR(pg_catalog.=) ");
	AppendTuple(&buf, kept, NULL, n, target->key_columns);
	appendStringInfoString(&buf, "\n AND (");
	AppendImageEq(&buf, t, kept, cols, m, "mig_new_");
	appendStringInfoString(&buf, " OR ");
	AppendImageEq(&buf, t, kept, cols, m, "mig_old_");
	appendStringInfoString(&buf, ")\n RETURNING 1)\nSELECT pg_catalog.count(*) FROM mig_done");
	return buf.data;
}

/*
 * MigKeepingChunkPlan returns the chunk plan of target for a backfill with
 * keep_old_values, or NULL for a backfill without (chunk.c's statements
 * then): the chunk_plan of the kind backfill.  Caller is in the step's
 * transaction as the job's owner (walk.c) and keeps the plan like
 * MigPrepareChunkPlan's.
 */
MigChunkPlan *
MigKeepingChunkPlan(MigJob *job, const MigTarget *target)
{
	List	   *cols;

	if (!MigJobKeepsValues(job))
		return NULL;
	MigLoadJobKind(job);
	cols = KeptColumns(job);
	/* an error if the kept table is gone or not pg_mig's */
	(void) MigKeptTableName(job);
	MigAllowKeptWrites(MigKeptTableOid(job));
	if (target->set_clause == NULL)
		elog(ERROR, "the clauses of target %d were not resolved", target->ord);
	return MigPrepareChunkPlanWith(target, KeepingChunkSql(job, target, cols, true),
								   KeepingChunkSql(job, target, cols, false), true);
}

/* RevertChunkPlan: the chunk plan of a revert's target, its kept table */
static MigChunkPlan *
RevertChunkPlan(MigJob *job, const MigTarget *target)
{
	List	   *cols = KeptColumns(job);

	return MigPrepareChunkPlanWith(target, RevertChunkSql(job, target, cols, true),
								   RevertChunkSql(job, target, cols, false), true);
}

/*
 * FinishRevert ends a revert, in the transaction of its last chunk:
 * records the event 'conflicts' with the count of rows left alone and a
 * few of their keys, then 'succeeded'.  Caller has SPI connected, as the
 * job's owner.
 */
static void
FinishRevert(MigJob *job, int64 rows_done, int64 chunks_done)
{
	MigJob	   *now;
	List	   *targets;
	MigTarget  *target;
	List	   *cols;
	int64		conflicts;
	StringInfoData sql;
	StringInfoData keys;
	const char *of_job;
	int			nest;

	now = MigLoadJob(job->job_id, false);
	targets = MigLoadTargets(job->job_id);
	target = linitial(targets);
	cols = KeptColumns(job);
	of_job = MigKindArg(job, "of_job");
	conflicts = Max(now->keys_done - rows_done, 0);

	initStringInfo(&keys);
	if (conflicts > 0)
	{
		const char *t = job->relation_name;
		const char *kept = target->relation_name;
		int			n = target->nkeys;

		initStringInfo(&sql);
		appendStringInfoString(&sql, "SELECT ");
		if (n == 1)
			appendStringInfo(&sql, "%s.%s::pg_catalog.text", kept,
							 quote_identifier(target->key_columns[0]));
		else
		{
			appendStringInfoString(&sql, "ROW");
			AppendTuple(&sql, kept, NULL, n, target->key_columns);
			appendStringInfoString(&sql, "::pg_catalog.text");
		}
		appendStringInfo(&sql, " FROM ONLY %s WHERE NOT EXISTS (SELECT FROM %s WHERE ", kept, t);
		AppendTuple(&sql, t, NULL, n, target->key_columns);
		appendStringInfoString(&sql, " OPERATOR(pg_catalog.=) ");
		AppendTuple(&sql, kept, NULL, n, target->key_columns);
		appendStringInfoString(&sql, " AND ");
		AppendImageEq(&sql, t, kept, ColumnArray(cols), list_length(cols), "mig_old_");
		appendStringInfoString(&sql, ") ORDER BY ");
		for (int i = 0; i < n; i++)
			appendStringInfo(&sql, "%s%s.%s", i ? ", " : "", kept,
							 quote_identifier(target->key_columns[i]));
		appendStringInfo(&sql, " LIMIT %d", CONFLICT_KEYS_SHOWN);
		nest = MigEnterKeyFormat();
		if (SPI_execute(sql.data, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not read the conflicts of pg_mig job " INT64_FORMAT, job->job_id);
		for (uint64 i = 0; i < SPI_processed; i++)
			appendStringInfo(&keys, "%s%s", i ? ", " : "",
							 SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1));
		MigLeaveKeyFormat(nest);
	}
	MigRecordEvent(job->job_id, "conflicts",
				   conflicts == 0 ?
				   psprintf("0 rows were changed since job %s, every kept row was written back",
							of_job ? of_job : "?") :
				   psprintf(ngettext(INT64_FORMAT " row changed since job %s left as it is (keys %s%s)",
									 INT64_FORMAT " rows changed since job %s left as they are (keys %s%s)",
									 (unsigned long) conflicts),
							conflicts, of_job ? of_job : "?",
							keys.data, conflicts > CONFLICT_KEYS_SHOWN ? ", ..." : ""));
	MigSetState(job->job_id, MIG_STATE_SUCCEEDED, NULL);
	/* a reverted backfill no longer holds its job_key (contract 0.4) */
	if (of_job)
		MigReleaseJobKey(strtoi64(of_job, NULL, 10),
						 psprintf("reverted by job " INT64_FORMAT, job->job_id));
	MigRecordEvent(job->job_id, "succeeded",
				   psprintf(INT64_FORMAT " rows reverted in " INT64_FORMAT " chunks, "
							INT64_FORMAT " left alone", rows_done, chunks_done, conflicts));
}

const MigKindDef mig_kind_revert = {
	.kind = MIG_KIND_REVERT,
	.name = "revert",
	.start_function = "mig_revert",
	.with_article = "a revert",
	/* writes the kept old values back: UPDATE, as a backfill */
	.right = MIG_RIGHT_UPDATE,
	/* walks the kept table of the backfill, writes the backfill's table */
	.walks = true,
	.walk_at = 0,
	.chunk_plan = RevertChunkPlan,
	.writes_job_table = true,
	.finish_walk = FinishRevert,
};
