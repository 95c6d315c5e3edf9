/*-------------------------------------------------------------------------
 *
 * kind_validate.c
 *	  The validate kind (mig_validate_constraint): VALIDATE CONSTRAINT of
 *	  an existing NOT VALID check or foreign key, as one schema step.
 *
 * VALIDATE CONSTRAINT takes SHARE UPDATE EXCLUSIVE (writes go on) for the
 * scan; the step runner (worker.c) gives it the job's lock_timeout and retries
 * a timeout, so even waiting for that lock never holds up the application
 * for long.  A constraint that is valid already is not validated again.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_constraint.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "pg_mig.h"
#include "start.h"
#include "steps.h"

static bool
Done(const MigJob *job)
{
	Oid			conoid = get_relation_constraint_oid(job->relid, MigJobConstraint(job), true);
	HeapTuple	tuple;
	bool		valid;

	if (!OidIsValid(conoid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("constraint \"%s\" of table %s was dropped while the job ran",
						MigJobConstraint(job), job->relation_name)));
	tuple = SearchSysCache1(CONSTROID, ObjectIdGetDatum(conoid));
	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for constraint %u", conoid);
	valid = ((Form_pg_constraint) GETSTRUCT(tuple))->convalidated;
	ReleaseSysCache(tuple);
	return valid;
}

static const MigStepDef validate_steps[] = {
	{"validate", MigDescribeValidateConstraint, Done, MigRunValidateConstraint, false, false},
};

const MigKindDef mig_kind_validate = {
	.kind = MIG_KIND_VALIDATE,
	.name = "validate",
	.start_function = "mig_validate_constraint",
	.with_article = "a validate",
	.steps = validate_steps,
	.nsteps = lengthof(validate_steps),
};

PG_FUNCTION_INFO_V1(mig_validate_constraint);

/* the refusals of a start that name what it does (start.h) */
static const MigStartText validate_text = {
	.recovery = gettext_noop("cannot start a validate job during recovery"),
	.temp_table = gettext_noop("cannot validate a constraint on temporary table \"%s\""),
	.not_owner = gettext_noop("permission denied to validate a constraint on table \"%s\""),
};

/*
 * mig_validate_constraint(relation, constraint_name, lock_timeout,
 * max_retries) starts a validate job (kind_validate.c).
 */
Datum
mig_validate_constraint(PG_FUNCTION_ARGS)
{
	MigJob		job;
	Relation	rel;
	char	   *name;
	Oid			conoid;
	HeapTuple	tuple;
	char		contype;

	rel = MigBeginStart(fcinfo, &job, &validate_text);
	MIG_START_AGAIN(fcinfo, rel, &job, MIG_KIND_VALIDATE, "constraint_name");
	MigCheckDDLTable(rel, &validate_text);
	MigRequireArg(fcinfo, 1, "constraint_name");
	name = pstrdup(NameStr(*PG_GETARG_NAME(1)));
	conoid = get_relation_constraint_oid(job.relid, name, true);
	if (!OidIsValid(conoid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("constraint \"%s\" of relation \"%s\" does not exist",
						name, RelationGetRelationName(rel)),
				 errhint("Add it first with ALTER TABLE ... ADD CONSTRAINT ... NOT VALID.")));
	tuple = SearchSysCache1(CONSTROID, ObjectIdGetDatum(conoid));
	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for constraint %u", conoid);
	contype = ((Form_pg_constraint) GETSTRUCT(tuple))->contype;
	ReleaseSysCache(tuple);
	if (contype != CONSTRAINT_CHECK && contype != CONSTRAINT_FOREIGN)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("constraint \"%s\" of relation \"%s\" is not a check or foreign key constraint",
						name, RelationGetRelationName(rel)),
				 errdetail("Only check and foreign key constraints can be NOT VALID.")));
	MigStepJobDefaults(fcinfo, &job);

	job.kind = MIG_KIND_VALIDATE;
	job.kind_args = list_make1(psprintf("constraint=%s", name));
	PG_RETURN_INT64(MigFinishStart(rel, &job, NIL,
								psprintf("validate constraint %s", quote_identifier(name)), NULL, NULL));
}
