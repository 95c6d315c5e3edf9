/*-------------------------------------------------------------------------
 *
 * kind_change_type_start.c
 *	  The start function of the change_type kind, mig_change_type; its
 *	  recipe is in kind_change_type.c.
 *
 * Every other kind's start function is in the kind's one file.  This one
 * is a file of its own only while kind_change_type.c is being worked on
 * elsewhere: it goes to the end of kind_change_type.c as it is.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "pg_mig.h"
#include "start.h"
#include "steps.h"

PG_FUNCTION_INFO_V1(mig_change_type);

/* the refusals of a start that name what it does (start.h) */
static const MigStartText change_type_text = {
	.recovery = gettext_noop("cannot start a change_type job during recovery"),
	.temp_table = gettext_noop("cannot change the type of a column on temporary table \"%s\""),
	.not_owner = gettext_noop("permission denied to change the type of a column on table \"%s\""),
};

/*
 * mig_change_type(relation, column_name, new_type, using_expr, cleanup,
 * convert_referencing, <walk knobs of mig_start_delete, parallel
 * included>, max_app_latency, job_key) starts a change_type job
 * (kind_change_type.c).  Unless the change is catalog-only, the new column
 * and its trigger are added here, in the caller's transaction, and the
 * walk's targets are fixed after them.
 */
Datum
mig_change_type(PG_FUNCTION_ARGS)
{
	MigJob		job;
	Relation	rel;
	char	   *column;
	char	   *new_type;
	char	   *using_expr = NULL;
	char	   *detail;
	List	   *targets = NIL;
	List	   *set_columns = NIL;
	int64		rows_total = 0;
	int64		job_id;
	ListCell   *lc;

	rel = MigBeginStart(fcinfo, &job, &change_type_text);
	MIG_START_AGAIN(fcinfo, rel, &job, MIG_KIND_CHANGE_TYPE, "column_name", "new_type", "using_expr",
				"cleanup", "convert_referencing");
	MigCheckDDLTable(rel, &change_type_text);
	MigRequireArg(fcinfo, 1, "column_name");
	column = pstrdup(NameStr(*PG_GETARG_NAME(1)));
	new_type = MigTextArgument(fcinfo, 2, "new_type", "Pass the new type as ALTER COLUMN TYPE takes it, e.g. 'bigint' or 'varchar(100)'.");
	if (!PG_ARGISNULL(3))
		using_expr = MigTextArgument(fcinfo, 3, "using_expr", NULL);
	MigReadKnobArgs(fcinfo, &job);
	{
		int			argno = MigArgNo(fcinfo, "parallel");

		if (argno >= 0 && !PG_ARGISNULL(argno) && PG_GETARG_INT32(argno) > 1)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("mig_change_type walks with one worker"),
					 errhint("Pass parallel => 1; lanes for the walk of a type change are not built yet.")));
	}

	if (MigChangeTypeStart(&rel, &job, column, new_type, using_expr,
						   MigArgBool(fcinfo, "cleanup", false),
						   MigArgBool(fcinfo, "convert_referencing", false), &detail))
	{
		/*
		 * the upper key as it is now, under the lock: the statement's
		 * snapshot is older than the lock, and a row committed between the
		 * two would be neither walked nor written through the trigger
		 */
		PushActiveSnapshot(GetLatestSnapshot());
		targets = MigBuildTargets(rel, job.set_clause, NULL, &rows_total, &set_columns);
		PopActiveSnapshot();
		if (list_length(set_columns) != 1 ||
			strcmp(linitial(set_columns), MigKindArg(&job, "new_column")) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_SYNTAX_ERROR),
					 errmsg("invalid using_expr: it is not one expression")));
		if (list_length(targets) != 1)
			elog(ERROR, "a change_type job has one target");
		MigChangeTypeAddTrigger(rel, &job, linitial(targets));
		/* convert_referencing: the walks of the referencing columns after it */
		targets = list_concat(targets, MigChangeTypeReferencingTargets(&job, list_length(targets),
																	   &rows_total));
		job.rows_total = rows_total;
		foreach(lc, targets)
			job.keys_total += Max(((MigTarget *) lfirst(lc))->keys_estimate, 0);
	}
	else
	{
		/* catalog-only: the steps alone (the walk is marked done below) */
		job.set_clause = NULL;
		job.rows_total = -1;
		job.keys_total = -1;
	}
	job.parallel = 1;
	job_id = MigFinishStart(rel, &job, targets, detail, NULL, NULL);
	if (targets == NIL)
		MigMarkStepDone(job_id, "walk");
	PG_RETURN_INT64(job_id);
}
