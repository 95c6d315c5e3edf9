/*-------------------------------------------------------------------------
 *
 * steps.h
 *	  The schema steps of a job (steps.c) and the kinds made of them
 *	  (kind_not_null.c, kind_validate.c, kind_index.c, kind_foreign_key.c,
 *	  kind_repack.c).
 *
 * A *schema step* is one DDL statement of a job, with a name (recorded in
 * mig_job.steps_done when it is done), a description for mig_jobs.step,
 * a test whether its effect is already there, and the statement itself.
 * The runner in steps.c runs each step in its own transaction with the
 * job's lock_timeout, retries a lock timeout or deadlock with jittered
 * backoff, records the step in the same transaction, and skips a step
 * that is recorded or whose effect is there already.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_MIG_STEPS_H
#define PG_MIG_STEPS_H

#include "pg_mig.h"

typedef struct MigStepDef
{
	const char *name;			/* as recorded in steps_done */
	/* what the step does, in words, for mig_jobs.step */
	char	   *(*describe) (const MigJob *job);
	/* is the effect there already?  In a transaction, as the job owner */
	bool		(*done) (const MigJob *job);
	/* the statement; in the step's transaction unless top_level */
	void		(*run) (const MigJob *job);
	/*
	 * A top-level step (CREATE INDEX CONCURRENTLY) runs outside any
	 * transaction block: run is called between transactions and starts
	 * its own (see MigRunTopLevel); it is recorded in a transaction of
	 * its own after it, and done() must tell it from a half-done one.
	 */
	bool		top_level;
	bool		wait_for_lag;	/* wait while replicas lag before each attempt */
} MigStepDef;

typedef struct MigKindDef
{
	MigJobKind	kind;
	const MigStepDef *steps;
	int			nsteps;
	/*
	 * Optional: the message a failed step leaves in last_error instead of
	 * the error itself (e.g. the count of NULL rows); in a transaction.
	 */
	char	   *(*explain_failure) (const MigJob *job, const MigStepDef *step,
									ErrorData *edata);
	/*
	 * Optional: the step that takes back what the done steps did when the
	 * job fails (e.g. drop the NOT VALID check), run with the same retries.
	 */
	const MigStepDef *undo;
	/*
	 * A kind that also walks rows (foreign_key: the orphan walk) does so
	 * before its step walk_at, with the engine of a backfill; the walk is
	 * recorded as the step "walk" in the transaction of its last chunk.
	 */
	bool		has_walk;
	int			walk_at;
} MigKindDef;

extern const MigKindDef mig_kind_not_null;
extern const MigKindDef mig_kind_validate;
extern const MigKindDef mig_kind_index;
extern const MigKindDef mig_kind_foreign_key;
extern const MigKindDef mig_kind_repack;

/* steps.c: helpers for the kinds */
extern char *MigJobRelationName(const MigJob *job);
extern void MigExecDDL(const char *sql);
extern void MigRunTopLevel(const char *sql, int64 lock_timeout_ms);
extern bool MigStepWasDone(const MigJob *job, const char *name);

/*
 * steps.c: the steps a kind shares on the constraint named by its kind
 * argument "constraint" (kind_not_null.c, kind_foreign_key.c,
 * kind_validate.c): its state, and the validate and drop statements
 */
typedef enum MigConstraintState
{
	MIG_CONSTRAINT_ABSENT,
	MIG_CONSTRAINT_NOT_VALID,
	MIG_CONSTRAINT_VALID
} MigConstraintState;

extern const char *MigJobConstraint(const MigJob *job);
extern MigConstraintState MigJobConstraintState(const MigJob *job);
extern char *MigDescribeValidateConstraint(const MigJob *job);
extern void MigRunValidateConstraint(const MigJob *job);
extern char *MigDescribeDropConstraint(const MigJob *job);
extern void MigRunDropConstraint(const MigJob *job);

/* kind_index.c: the checked statement of an index job */
struct IndexStmt;
extern char *MigIndexSql(const char *relation_name, const char *index_name,
						 const char *columns, bool unique, const char *method,
						 const char *where_clause, List *include,
						 struct IndexStmt **stmt_out);

#endif							/* PG_MIG_STEPS_H */
