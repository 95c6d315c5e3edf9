/*-------------------------------------------------------------------------
 *
 * start.h
 *	  What the start functions of every kind share (start.c).
 *
 * Each kind's SQL start function (mig_start_backfill, mig_set_not_null,
 * ...) lives in the kind's own file, kind_<name>.c, beside its recipe; it
 * checks everything in the caller's transaction, with the caller's rights,
 * before a job is made.  What they all do the same way is here: the first
 * checks and the job's identity (MigBeginStart), the table a kind of
 * schema steps runs DDL on (MigCheckDDLTable), starting again by job_key
 * (MIG_START_AGAIN), and recording the job and asking for its worker
 * (MigFinishStart).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_MIG_START_H
#define PG_MIG_START_H

#include "fmgr.h"
#include "utils/relcache.h"

#include "pg_mig.h"

/*
 * The refusals of a start that name what the kind does, each a whole
 * sentence (gettext_noop in the kind's file, translated when raised); a
 * NULL one is never raised (a kind that runs no DDL has no temp_table or
 * not_owner).
 */
typedef struct MigStartText
{
	const char *recovery;		/* "cannot start a <kind> during recovery" */
	const char *temp_table;		/* "cannot <act> on temporary table \"%s\"" */
	const char *not_owner;		/* "permission denied to <act> on table \"%s\"" */
} MigStartText;

/*
 * MigFinishStart's hook: runs after the job is inserted (job->job_id set),
 * before its lanes and its 'queued' event (a backfill's kept table)
 */
typedef void (*MigAfterInsert) (MigJob *job, Relation rel, List *targets, void *arg);

extern void MigRequireArg(FunctionCallInfo fcinfo, int argno, const char *name);
extern char *MigTextArgument(FunctionCallInfo fcinfo, int argno, const char *name,
							 const char *hint);
extern Relation MigBeginStart(FunctionCallInfo fcinfo, MigJob *job, const MigStartText *text);
extern void MigCheckDDLTable(Relation rel, const MigStartText *text);
extern void MigStepJobDefaults(FunctionCallInfo fcinfo, MigJob *job);
extern int64 MigStartAgainFrom(FunctionCallInfo fcinfo, Relation rel, MigJob *job,
							   MigJobKind kind, const char *const *identity, int nidentity);
extern int64 MigFinishStart(Relation rel, MigJob *job, List *targets, const char *queued_detail,
							MigAfterInsert after_insert, void *arg);

/*
 * MIG_START_AGAIN(fcinfo, rel, job, kind, start argument names...): if the
 * call's job_key names a job (job_key.c), return that job's id from the
 * start function
 */
#define MIG_START_AGAIN(fcinfo, rel, job, kind, ...) \
	do { \
		static const char *const identity_[] = {__VA_ARGS__}; \
		int64		again_ = MigStartAgainFrom((fcinfo), (rel), (job), (kind), \
											   identity_, lengthof(identity_)); \
		if (again_ != 0) \
			PG_RETURN_INT64(again_); \
	} while (0)

#endif							/* PG_MIG_START_H */
