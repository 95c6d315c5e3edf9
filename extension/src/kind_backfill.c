/*-------------------------------------------------------------------------
 *
 * kind_backfill.c
 *	  The kinds backfill (mig_start_backfill) and delete (mig_start_delete):
 *	  a walk and nothing else.
 *
 * A backfill's chunk is an UPDATE of the keys in its range with the job's
 * set clause, a delete's a DELETE (chunk.c); a backfill started with
 * keep_old_values first copies the rows' old values into its kept table
 * (kind_revert.c).  Started with a where clause and walked by one worker,
 * either is verified after its walk: the rows below its upper key that
 * still match the where clause are counted (walk.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/rel.h"

#include "pg_mig.h"
#include "start.h"

const MigKindDef mig_kind_backfill = {
	.kind = MIG_KIND_BACKFILL,
	.name = "backfill",
	.start_function = "mig_start_backfill",
	.with_article = "a backfill",
	.right = MIG_RIGHT_UPDATE,
	.walks = true,
	.walk_at = 0,
	.chunk_plan = MigKeepingChunkPlan,
	.verify = true,
	.walk_verb = "changed",
};

const MigKindDef mig_kind_delete = {
	.kind = MIG_KIND_DELETE,
	.name = "delete",
	.start_function = "mig_start_delete",
	.with_article = "a delete",
	.right = MIG_RIGHT_DELETE,
	.walks = true,
	.walk_at = 0,
	.verify = true,
	.walk_verb = "deleted",
};

PG_FUNCTION_INFO_V1(mig_start_backfill);
PG_FUNCTION_INFO_V1(mig_start_delete);

/*
 * WalkTargets: the targets of a backfill's or a delete's walk (validate.c),
 * its lanes (parallel) and its totals, in job
 */
static List *
WalkTargets(FunctionCallInfo fcinfo, Relation rel, MigJob *job, List **set_columns)
{
	List	   *targets;
	ListCell   *lc;
	int64		rows_total;

	targets = MigBuildTargets(rel, job->set_clause, job->where_clause, &rows_total,
							  set_columns);
	job->parallel = MigReadParallelArg(fcinfo, targets);
	job->rows_total = rows_total;
	job->keys_total = 0;
	foreach(lc, targets)
		job->keys_total += Max(((MigTarget *) lfirst(lc))->keys_estimate, 0);
	return targets;
}

/* QueuedDetail: the detail of the 'queued' event; what: "change", "delete" */
static char *
QueuedDetail(const MigJob *job, List *targets, const char *what)
{
	return psprintf("%d target%s, about " INT64_FORMAT " rows to %s, batch_size %d%s",
					list_length(targets), list_length(targets) == 1 ? "" : "s",
					Max(job->rows_total, 0), what, job->batch_size,
					job->parallel > 1 ? psprintf(", %d lanes", job->parallel) : "");
}

/* the refusals of a start that name what it does (start.h) */
static const MigStartText backfill_text = {
	.recovery = gettext_noop("cannot start a backfill during recovery"),
};

/* what a backfill does once it is inserted (BackfillAfterInsert) */
typedef struct BackfillExtras
{
	bool		keep_old_values;
	bool		verify;
	List	   *set_columns;	/* the columns the set clause writes */
} BackfillExtras;

/*
 * BackfillAfterInsert: undo (kept.c): keep_old_values makes the job's kept
 * table; monitoring: verify => false keeps the walk from being verified
 */
static void
BackfillAfterInsert(MigJob *job, Relation rel, List *targets, void *arg)
{
	BackfillExtras *extras = arg;

	if (extras->keep_old_values)
		MigCreateKeptTable(job, rel, targets, extras->set_columns);
	if (!extras->verify)
	{
		MigJob		kind;

		memset(&kind, 0, sizeof(kind));
		kind.job_id = job->job_id;
		MigLoadJobKind(&kind);
		MigSetJobKind(job->job_id, MIG_KIND_BACKFILL,
					  lappend(kind.kind_args, pstrdup(MIG_VERIFY_OFF)));
	}
}

/*
 * mig_start_backfill(relation, set_clause, where_clause, <knobs>,
 * keep_old_values, parallel, verify, max_app_latency, job_key) checks
 * everything, records a queued job and asks the launcher, at commit, to
 * start its worker.  Returns the job id.
 */
Datum
mig_start_backfill(PG_FUNCTION_ARGS)
{
	MigJob		job;
	Relation	rel;
	List	   *targets;
	BackfillExtras extras;

	memset(&extras, 0, sizeof(extras));
	rel = MigBeginStart(fcinfo, &job, &backfill_text);
	job.set_clause = MigTextArgument(fcinfo, 1, "set_clause", NULL);
	if (!PG_ARGISNULL(2))
		job.where_clause = MigTextArgument(fcinfo, 2, "where_clause",
										   "Pass NULL to change every row.");
	MigReadKnobArgs(fcinfo, &job);
	MIG_START_AGAIN(fcinfo, rel, &job, MIG_KIND_BACKFILL, "set_clause", "where_clause",
					"keep_old_values");
	job.kind = MIG_KIND_BACKFILL;

	targets = WalkTargets(fcinfo, rel, &job, &extras.set_columns);
	extras.keep_old_values = MigArgBool(fcinfo, "keep_old_values", false);
	extras.verify = MigArgBool(fcinfo, "verify", true);

	PG_RETURN_INT64(MigFinishStart(rel, &job, targets, QueuedDetail(&job, targets, "change"),
								   BackfillAfterInsert, &extras));
}

/* the refusals of a start that name what it does (start.h) */
static const MigStartText delete_text = {
	.recovery = gettext_noop("cannot start a delete during recovery"),
};

/*
 * mig_start_delete(relation, where_clause, <knobs of mig_start_backfill>)
 * starts a chunked DELETE of the rows matching where_clause: the walk of a
 * backfill with a DELETE as each chunk's statement.
 */
Datum
mig_start_delete(PG_FUNCTION_ARGS)
{
	MigJob		job;
	Relation	rel;
	List	   *targets;

	rel = MigBeginStart(fcinfo, &job, &delete_text);
	MIG_START_AGAIN(fcinfo, rel, &job, MIG_KIND_DELETE, "where_clause");
	job.kind = MIG_KIND_DELETE;
	job.set_clause = NULL;
	job.where_clause = MigTextArgument(fcinfo, 1, "where_clause",
									"A delete needs the condition of the rows to delete, e.g. 'created_at < now() - interval ''1 year'''.");
	MigReadKnobArgs(fcinfo, &job);
	/* monitoring: verify => false keeps the walk from being verified */
	if (!MigArgBool(fcinfo, "verify", true))
		job.kind_args = lappend(job.kind_args, pstrdup(MIG_VERIFY_OFF));
	if (pg_class_aclcheck(job.relid, GetUserId(), ACL_DELETE) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to delete from table \"%s\"",
						RelationGetRelationName(rel)),
				 errhint("A delete runs with the rights of the role that starts it; that role needs DELETE on the table.")));

	targets = WalkTargets(fcinfo, rel, &job, NULL);

	PG_RETURN_INT64(MigFinishStart(rel, &job, targets, QueuedDetail(&job, targets, "delete"),
								   NULL, NULL));
}
