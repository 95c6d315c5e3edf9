/*-------------------------------------------------------------------------
 *
 * kind_not_null.c
 *	  The not_null kind (mig_set_not_null): SET NOT NULL without holding
 *	  ACCESS EXCLUSIVE for a scan of the table.
 *
 * On PostgreSQL 18 and later, which can add a NOT NULL constraint itself
 * NOT VALID, the recipe is two schema steps (run by worker.c):
 *
 *	  add_not_null	ALTER TABLE t ADD CONSTRAINT c NOT NULL col NOT VALID
 *					-- a short ACCESS EXCLUSIVE lock, no scan
 *	  validate		ALTER TABLE t VALIDATE CONSTRAINT c
 *					-- the scan, under SHARE UPDATE EXCLUSIVE: writes go on
 *
 * Before 18 it is four, around a check that stands in for the NOT NULL:
 *
 *	  add_check		ALTER TABLE t ADD CONSTRAINT c CHECK (col IS NOT NULL)
 *					NOT VALID	-- a short ACCESS EXCLUSIVE lock, no scan
 *	  validate		ALTER TABLE t VALIDATE CONSTRAINT c
 *					-- the scan, under SHARE UPDATE EXCLUSIVE: writes go on
 *	  set_not_null	ALTER TABLE t ALTER COLUMN col SET NOT NULL
 *					-- PostgreSQL sees the valid check and skips the scan
 *	  drop_check	ALTER TABLE t DROP CONSTRAINT c; on PostgreSQL 18, which
 *					keeps NOT NULL as a constraint with a name of its own,
 *					then ALTER TABLE t RENAME CONSTRAINT of that one to c
 *
 * The check's name c is the one PostgreSQL chooses for a NOT NULL of the
 * column (<table>_<column>_not_null, if free), so on 18 SET NOT NULL has to
 * pick another (..._not_null1) while the check is there; the rename in the
 * check's drop gives the NOT NULL the usual name back.
 *
 * If rows are still NULL the validate step fails; the job then fails with
 * their count and a hint, and the undo step drops the check (or the NOT
 * VALID NOT NULL) again, so no constraint is left behind.  The kind's arguments are the column and the
 * check's name (chosen when the job starts, so that it cannot clash).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_attribute.h"
#include "catalog/pg_constraint.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "pg_mig.h"
#include "start.h"
#include "steps.h"
#include "version_compat.h"

static const char *
Column(const MigJob *job)
{
	return MigKindArg(job, "column");
}

static const char *
Check(const MigJob *job)
{
	return MigJobConstraint(job);
}

/* ColumnIsNotNull: the job's column is NOT NULL now */
static bool
ColumnIsNotNull(const MigJob *job)
{
	HeapTuple	tuple = SearchSysCacheAttName(job->relid, Column(job));
	bool		result;

	if (!HeapTupleIsValid(tuple))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of table %s was dropped while the job ran",
						Column(job), job->relation_name)));
	result = ((Form_pg_attribute) GETSTRUCT(tuple))->attnotnull;
	ReleaseSysCache(tuple);
	return result;
}

/*
 * ColumnNotNullValid: the column has a valid NOT NULL.  Before 18 that is
 * attnotnull; from 18 on attnotnull is also set by a NOT VALID NOT NULL
 * constraint, whose convalidated tells.
 */
static bool
ColumnNotNullValid(const MigJob *job)
{
	HeapTuple	tuple;
	bool		result;

	if (!MIG_HAVE_NOT_NULL_NOT_VALID)
		return ColumnIsNotNull(job);
	tuple = MigNotNullConstraintTuple(job->relid, Column(job));
	if (!HeapTupleIsValid(tuple))
		return false;
	result = ((Form_pg_constraint) GETSTRUCT(tuple))->convalidated;
	heap_freetuple(tuple);
	return result;
}

/* add_not_null (18 and later) */
static char *
DescribeAddNotNull(const MigJob *job)
{
	return psprintf("adding constraint %s NOT NULL %s NOT VALID", Check(job), Column(job));
}

static void
RunAddNotNull(const MigJob *job)
{
	MigExecDDL(psprintf("ALTER TABLE %s ADD CONSTRAINT %s NOT NULL %s NOT VALID",
						MigJobRelationName(job), quote_identifier(Check(job)),
						quote_identifier(Column(job))));
}

/* validate (18 and later) */
static bool
DoneValidateNotNull(const MigJob *job)
{
	return ColumnNotNullValid(job) || MigJobConstraintState(job) == MIG_CONSTRAINT_VALID;
}

/* add_check */
static char *
DescribeAdd(const MigJob *job)
{
	return psprintf("adding constraint %s CHECK (%s IS NOT NULL) NOT VALID",
					Check(job), Column(job));
}

static bool
DoneAdd(const MigJob *job)
{
	return ColumnIsNotNull(job) || MigJobConstraintState(job) != MIG_CONSTRAINT_ABSENT;
}

static void
RunAdd(const MigJob *job)
{
	MigExecDDL(psprintf("ALTER TABLE %s ADD CONSTRAINT %s CHECK (%s IS NOT NULL) NOT VALID",
						MigJobRelationName(job), quote_identifier(Check(job)),
						quote_identifier(Column(job))));
}

/* validate */
static bool
DoneValidate(const MigJob *job)
{
	return ColumnIsNotNull(job) || MigJobConstraintState(job) == MIG_CONSTRAINT_VALID;
}

/* set_not_null */
static char *
DescribeSet(const MigJob *job)
{
	return psprintf("setting column %s NOT NULL", Column(job));
}

static bool
DoneSet(const MigJob *job)
{
	return ColumnIsNotNull(job);
}

static void
RunSet(const MigJob *job)
{
	MigExecDDL(psprintf("ALTER TABLE %s ALTER COLUMN %s SET NOT NULL",
						MigJobRelationName(job), quote_identifier(Column(job))));
}

/* drop_check, also the undo step */
static bool
DoneDrop(const MigJob *job)
{
	return MigJobConstraintState(job) == MIG_CONSTRAINT_ABSENT;
}

/*
 * RunDropCheck drops the check, then (on 18, see the file header) renames
 * the column's NOT NULL constraint, made by set_not_null while the check
 * held its name, to the check's name.  Run only while the check is there,
 * so the NOT NULL is this job's (with the column NOT NULL before the job,
 * add_check made no check).
 */
static void
RunDropCheck(const MigJob *job)
{
	HeapTuple	tuple;

	MigRunDropConstraint(job);
	tuple = MigNotNullConstraintTuple(job->relid, Column(job));
	if (HeapTupleIsValid(tuple))
	{
		const char *name = NameStr(((Form_pg_constraint) GETSTRUCT(tuple))->conname);

		if (strcmp(name, Check(job)) != 0)
			MigExecDDL(psprintf("ALTER TABLE %s RENAME CONSTRAINT %s TO %s",
								MigJobRelationName(job), quote_identifier(name),
								quote_identifier(Check(job))));
		heap_freetuple(tuple);
	}
}

/*
 * ExplainFailure: rows still NULL make the validate step fail; say how
 * many, and what to do.
 */
static char *
ExplainFailure(const MigJob *job, const MigStepDef *step, ErrorData *edata)
{
	MemoryContext ctx = CurrentMemoryContext;
	char	   *sql;
	bool		isnull;
	int64		count;

	if (strcmp(step->name, "validate") != 0 ||
		(edata->sqlerrcode != ERRCODE_CHECK_VIOLATION &&
		 edata->sqlerrcode != ERRCODE_NOT_NULL_VIOLATION))
		return NULL;
	sql = psprintf("SELECT count(*) FROM %s WHERE %s IS NULL",
				   MigJobRelationName(job), quote_identifier(Column(job)));
	if (SPI_execute(sql, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		return NULL;
	count = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	MemoryContextSwitchTo(ctx); /* SPI calls return in SPI's own context */
	return psprintf(ngettext("column \"%s\" of table %s has " INT64_FORMAT " NULL row (SQLSTATE %s). "
							 "Hint: backfill it first, e.g. with mig_start_backfill(), then run mig_set_not_null() again.",
							 "column \"%s\" of table %s has " INT64_FORMAT " NULL rows (SQLSTATE %s). "
							 "Hint: backfill them first, e.g. with mig_start_backfill(), then run mig_set_not_null() again.",
							 (unsigned long) count),
					Column(job), job->relation_name, count,
					unpack_sql_state(edata->sqlerrcode));
}

static const MigStepDef not_null_steps[] = {
	{"add_check", DescribeAdd, DoneAdd, RunAdd, false, false},
	{"validate", MigDescribeValidateConstraint, DoneValidate, MigRunValidateConstraint, false, false},
	{"set_not_null", DescribeSet, DoneSet, RunSet, false, false},
	{"drop_check", MigDescribeDropConstraint, DoneDrop, RunDropCheck, false, false},
};

/*
 * From 18 on: the add's done() is DoneAdd (attnotnull is set by a NOT VALID
 * NOT NULL too), and the undo drops the NOT VALID NOT NULL like the check.
 */
static const MigStepDef not_null_steps_18[] = {
	{"add_not_null", DescribeAddNotNull, DoneAdd, RunAddNotNull, false, false},
	{"validate", MigDescribeValidateConstraint, DoneValidateNotNull, MigRunValidateConstraint, false, false},
};

static const MigStepDef not_null_undo =
{"undo", MigDescribeDropConstraint, DoneDrop, MigRunDropConstraint, false, false};

const MigKindDef mig_kind_not_null = {
	.kind = MIG_KIND_NOT_NULL,
	.name = "not_null",
	.start_function = "mig_set_not_null",
	.with_article = "a not_null",
	.steps = MIG_HAVE_NOT_NULL_NOT_VALID ? not_null_steps_18 : not_null_steps,
	.nsteps = MIG_HAVE_NOT_NULL_NOT_VALID ? lengthof(not_null_steps_18) : lengthof(not_null_steps),
	.explain_failure = ExplainFailure,
	.undo = &not_null_undo,
};

PG_FUNCTION_INFO_V1(mig_set_not_null);

/* the refusals of a start that name what it does (start.h) */
static const MigStartText not_null_text = {
	.recovery = gettext_noop("cannot start a not_null job during recovery"),
	.temp_table = gettext_noop("cannot set a column NOT NULL on temporary table \"%s\""),
	.not_owner = gettext_noop("permission denied to set a column NOT NULL on table \"%s\""),
};

/*
 * mig_set_not_null(relation, column_name, lock_timeout, max_retries)
 * starts a not_null job (kind_not_null.c).
 */
Datum
mig_set_not_null(PG_FUNCTION_ARGS)
{
	MigJob		job;
	Relation	rel;
	char	   *column;
	AttrNumber	attnum;
	char	   *check;

	rel = MigBeginStart(fcinfo, &job, &not_null_text);
	MIG_START_AGAIN(fcinfo, rel, &job, MIG_KIND_NOT_NULL, "column_name");
	MigCheckDDLTable(rel, &not_null_text);
	MigRequireArg(fcinfo, 1, "column_name");
	column = pstrdup(NameStr(*PG_GETARG_NAME(1)));
	attnum = get_attnum(job.relid, column);
	if (attnum == InvalidAttrNumber || attnum < 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of relation \"%s\" does not exist",
						column, RelationGetRelationName(rel))));
	MigStepJobDefaults(fcinfo, &job);

	job.kind = MIG_KIND_NOT_NULL;
	check = ChooseConstraintName(RelationGetRelationName(rel), column, "not_null",
								 RelationGetNamespace(rel), NIL);
	job.kind_args = list_make2(psprintf("column=%s", column),
							   psprintf("constraint=%s", check));
	PG_RETURN_INT64(MigFinishStart(rel, &job, NIL,
								psprintf("set column %s NOT NULL through constraint %s",
										 quote_identifier(column), quote_identifier(check)), NULL, NULL));
}
