/*-------------------------------------------------------------------------
 *
 * kind_foreign_key.c
 *	  The foreign_key kind (mig_add_foreign_key): a foreign key on a big
 *	  table, with the orphan rows found and handled chunk by chunk.
 *
 * The recipe:
 *
 *	  add_not_valid	 ALTER TABLE t ADD CONSTRAINT c FOREIGN KEY (...)
 *					 REFERENCES r (...) NOT VALID -- from now on every new
 *					 or changed row is checked, so no new orphan appears
 *	  walk			 the rows already there, in chunks, by the engine of a
 *					 backfill (backfill_worker.c): the chunk statement's
 *					 where clause is the orphan condition (every key column
 *					 non-NULL and no referenced row), and it counts
 *					 (orphans => 'fail'), deletes ('delete') or sets the
 *					 key columns NULL ('set_null') -- exactly once, throttled
 *	  check_orphans	 'fail' and orphans were found: the job fails with their
 *					 count and a few of them, and the undo step drops the
 *					 NOT VALID constraint again
 *	  validate		 ALTER TABLE t VALIDATE CONSTRAINT c (SHARE UPDATE
 *					 EXCLUSIVE: writes go on)
 *
 * The orphan condition and the set clause are built at start from the
 * checked column names (sql_kinds.c) and stored as the job's clauses, so
 * mig_jobs shows them and they are checked like a backfill's.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/varlena.h"

#include "pg_mig.h"
#include "steps.h"

#define EXAMPLES	5

static const char *
ConstraintName(const MigJob *job)
{
	return MigJobConstraint(job);
}

/* NameList: a kind argument of quoted, comma-separated names */
static List *
NameList(const MigJob *job, const char *arg)
{
	List	   *names = NIL;

	if (!SplitIdentifierString(pstrdup(MigKindArg(job, arg)), ',', &names))
		elog(ERROR, "invalid name list in pg_mig job");
	return names;
}

static char *
QuotedList(List *names)
{
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	foreach(lc, names)
		appendStringInfo(&buf, "%s%s", foreach_current_index(lc) ? ", " : "",
						 quote_identifier(lfirst(lc)));
	return buf.data;
}

static char *
RefRelationName(const MigJob *job)
{
	Oid			refid = (Oid) strtoul(MigKindArg(job, "ref_relid"), NULL, 10);
	char	   *name = get_rel_name(refid);

	if (name == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("the referenced table of constraint \"%s\" was dropped while the job ran",
						ConstraintName(job))));
	return quote_qualified_identifier(get_namespace_name(get_rel_namespace(refid)), name);
}

/* add_not_valid */
static char *
DescribeAdd(const MigJob *job)
{
	return psprintf("adding foreign key %s NOT VALID", ConstraintName(job));
}

static bool
DoneAdd(const MigJob *job)
{
	return MigJobConstraintState(job) != MIG_CONSTRAINT_ABSENT;
}

static void
RunAdd(const MigJob *job)
{
	MigExecDDL(psprintf("ALTER TABLE %s ADD CONSTRAINT %s FOREIGN KEY (%s) REFERENCES %s (%s)"
						" ON DELETE %s NOT VALID",
						MigJobRelationName(job), quote_identifier(ConstraintName(job)),
						QuotedList(NameList(job, "columns")), RefRelationName(job),
						QuotedList(NameList(job, "ref_columns")), MigKindArg(job, "on_delete")));
}

/* check_orphans */
static char *
DescribeCheck(const MigJob *job)
{
	return psprintf("checking the orphan rows the walk found");
}

static bool
DoneCheck(const MigJob *job)
{
	return strcmp(MigKindArg(job, "orphans"), "fail") != 0 || job->rows_done == 0;
}

/*
 * RunCheck fails the step with the number of orphan rows and a few of
 * them (their key columns), to be found quickly at the start of the table.
 */
static void
RunCheck(const MigJob *job)
{
	MemoryContext ctx = CurrentMemoryContext;
	StringInfoData examples;
	char	   *sql;

	sql = psprintf("SELECT ROW(%s)::text FROM ONLY %s WHERE (%s\n) LIMIT %d",
				   QuotedList(NameList(job, "columns")), MigJobRelationName(job),
				   job->where_clause, EXAMPLES);
	if (SPI_execute(sql, true, EXAMPLES) != SPI_OK_SELECT)
		elog(ERROR, "could not read the orphan rows of pg_mig job " INT64_FORMAT, job->job_id);
	MemoryContextSwitchTo(ctx);
	initStringInfo(&examples);
	for (uint64 i = 0; i < SPI_processed; i++)
		appendStringInfo(&examples, "%s%s", i ? ", " : "",
						 SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1));
	ereport(ERROR,
			(errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
			 errmsg("table %s has " INT64_FORMAT " orphan row%s whose (%s) has no row in %s, e.g. %s",
					job->relation_name, job->rows_done, job->rows_done == 1 ? "" : "s",
					QuotedList(NameList(job, "columns")), RefRelationName(job),
					examples.len ? examples.data : "(gone since)"),
			 errdetail("Delete them or set them NULL first, or start mig_add_foreign_key() with orphans => 'delete' or 'set_null'.")));
}

/* validate */
static bool
DoneValidate(const MigJob *job)
{
	return MigJobConstraintState(job) == MIG_CONSTRAINT_VALID;
}

/* undo: drop the constraint the job added */
static bool
DoneDrop(const MigJob *job)
{
	/* only a NOT VALID one: a valid foreign key is the job's result */
	return MigJobConstraintState(job) != MIG_CONSTRAINT_NOT_VALID;
}

static const MigStepDef foreign_key_steps[] = {
	{"add_not_valid", DescribeAdd, DoneAdd, RunAdd, false, false},
	/* the walk comes here (walk_at = 1) */
	{"check_orphans", DescribeCheck, DoneCheck, RunCheck, false, false},
	{"validate", MigDescribeValidateConstraint, DoneValidate, MigRunValidateConstraint, false, false},
};

static const MigStepDef foreign_key_undo =
{"undo", MigDescribeDropConstraint, DoneDrop, MigRunDropConstraint, false, false};

const MigKindDef mig_kind_foreign_key = {
	MIG_KIND_FOREIGN_KEY, foreign_key_steps, lengthof(foreign_key_steps),
	NULL, &foreign_key_undo, true, 1
};
