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

#include "pg_mig.h"

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
