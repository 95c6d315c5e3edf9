/*-------------------------------------------------------------------------
 *
 * kind_repack.c
 *	  The repack kind (mig_repack, PostgreSQL 19 and later): REPACK
 *	  (CONCURRENTLY) of a table run by the worker, so that the client may
 *	  go away and the table is still rewritten, without the space a big
 *	  backfill or delete left behind.
 *
 * The recipe is one schema step (run by worker.c):
 *
 *	  repack		wait while replicas lag; REPACK (CONCURRENTLY) t
 *
 * REPACK (CONCURRENTLY) copies the table under SHARE UPDATE EXCLUSIVE
 * (writes go on; the changes made meanwhile are decoded from the WAL
 * through a replication slot of its own), then takes ACCESS EXCLUSIVE for
 * a moment to apply the last changes and swap the files.  That upgrade is
 * a lock wait that makes everyone queue behind it: it is bounded by the
 * job's lock_timeout, and an attempt that times out is rolled back and
 * retried -- and a retry copies the table again (the step says so).  Waits
 * that block nobody are not bounded: REPACK waiting for older
 * transactions to end before its slot has a snapshot never fails the job.
 * MigRunTopLevel (steps.c) bounds exactly those waits: it runs the
 * statement with lock_timeout off and cancels it when it has waited longer
 * than lock_timeout for a lock that others queue behind, and only then.
 *
 * The step is done when the table's relfilenode is no longer the one it
 * had when the job started (kind argument relfilenode): after a crash the
 * job tells a finished REPACK from one that was rolled back.  Before 19
 * mig_repack refuses to start (below).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_class.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "pg_mig.h"
#include "start.h"
#include "steps.h"
#include "version_compat.h"

/* RelFileNumberNow: the table's relfilenode now; caller is in a transaction */
static Oid
RelFileNumberNow(const MigJob *job)
{
	HeapTuple	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(job->relid));
	Oid			result;

	if (!HeapTupleIsValid(tuple))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("table %s was dropped while the job ran", job->relation_name)));
	result = ((Form_pg_class) GETSTRUCT(tuple))->relfilenode;
	ReleaseSysCache(tuple);
	return result;
}

/* repack */
static char *
DescribeRepack(const MigJob *job)
{
	if (job->retries > 0)
		return psprintf("repacking table %s concurrently, attempt %d (a retry copies the table again)",
						job->relation_name, job->retries + 1);
	return psprintf("repacking table %s concurrently (copying it; a lock timeout at the end would copy it again)",
					job->relation_name);
}

static bool
DoneRepack(const MigJob *job)
{
	const char *before = MigKindArg(job, "relfilenode");

	return before != NULL && RelFileNumberNow(job) != (Oid) strtoul(before, NULL, 10);
}

static void
RunRepack(const MigJob *job)
{
	MemoryContext ctx = CurrentMemoryContext;
	char	   *sql;

	StartTransactionCommand();
	sql = MemoryContextStrdup(TopMemoryContext,
							  psprintf("REPACK (CONCURRENTLY) %s", MigJobRelationName(job)));
	CommitTransactionCommand();
	/*
	 * lock waits others queue behind are bounded by lock_timeout, no others;
	 * an attempt that times out says that its retry copies the table again
	 * (the retried event shows it)
	 */
	PG_TRY();
	{
		MigRunTopLevel(sql, job->lock_timeout_ms);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(ctx);
		edata = CopyErrorData();
		if (edata->sqlerrcode != ERRCODE_LOCK_NOT_AVAILABLE)
			PG_RE_THROW();
		FlushErrorState();
		ereport(ERROR,
				(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
				 errmsg("REPACK of table %s was canceled due to lock timeout",
						job->relation_name),
				 edata->detail ?
				 errdetail("%s The attempt is rolled back; a retry copies the table again.",
						   edata->detail) :
				 errdetail("The attempt is rolled back; a retry copies the table again.")));
	}
	PG_END_TRY();
	pfree(sql);
}

static const MigStepDef repack_steps[] = {
	{"repack", DescribeRepack, DoneRepack, RunRepack, true, true},
};

const MigKindDef mig_kind_repack = {
	.kind = MIG_KIND_REPACK,
	.name = "repack",
	.start_function = "mig_repack",
	.with_article = "a repack",
	.steps = repack_steps,
	.nsteps = lengthof(repack_steps),
};

PG_FUNCTION_INFO_V1(mig_repack);

/* the refusals of a start that name what it does (start.h) */
static const MigStartText repack_text = {
	.recovery = gettext_noop("cannot start a repack job during recovery"),
	.temp_table = gettext_noop("cannot repack temporary table \"%s\""),
	.not_owner = gettext_noop("permission denied to repack table \"%s\""),
};

/*
 * mig_repack(relation, lock_timeout, max_retries, max_lag, max_lag_bytes,
 * job_key) starts a repack job (kind_repack.c): REPACK (CONCURRENTLY) of
 * the table, on PostgreSQL 19 and later; refused before.
 */
Datum
mig_repack(PG_FUNCTION_ARGS)
{
	MigJob		job;
	Relation	rel;

	if (!MIG_HAVE_REPACK)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("mig_repack needs PostgreSQL 19 or later"),
				 errdetail("REPACK (CONCURRENTLY) is new in PostgreSQL 19."),
				 errhint("Use pg_repack, or VACUUM FULL in a maintenance window (it holds an ACCESS EXCLUSIVE lock while it rewrites the table).")));

	rel = MigBeginStart(fcinfo, &job, &repack_text);
	MIG_START_AGAIN(fcinfo, rel, &job, MIG_KIND_REPACK, "relation");
	MigCheckDDLTable(rel, &repack_text);
	if (rel->rd_rel->relkind == RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot repack partitioned table \"%s\" concurrently",
						RelationGetRelationName(rel)),
				 errhint("Repack each partition with mig_repack().")));

	MigStepJobDefaults(fcinfo, &job);
	MigReadKnobArg(fcinfo, "max_lag", &job);
	MigReadKnobArg(fcinfo, "max_lag_bytes", &job);

	job.kind = MIG_KIND_REPACK;
	job.kind_args = list_make1(psprintf("relfilenode=%u", rel->rd_rel->relfilenode));
	PG_RETURN_INT64(MigFinishStart(rel, &job, NIL,
								psprintf("repack table %s concurrently", job.relation_name), NULL, NULL));
}
