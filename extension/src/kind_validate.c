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
#include "utils/builtins.h"
#include "utils/syscache.h"

#include "pg_mig.h"
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
