/*-------------------------------------------------------------------------
 *
 * kinds.h
 *	  The registry of job kinds (kinds.c): what a kind is made of.
 *
 * A job of any kind runs in one runtime (worker.c): a list of steps, each
 * in its own transaction with the job's lock_timeout, retried with backoff
 * on a lock timeout or deadlock, recorded in mig_job.steps_done.  One of
 * the steps may be a *walk* (walk.c): chunks in key order, each with its
 * checkpoint, under the job's throttle, pacer and lanes.  A kind is one
 * MigKindDef: its name, its start function, its schema steps, where its
 * walk comes among them, its undo, and the callbacks by which its walk
 * differs from a plain backfill.
 *
 * Adding a kind touches the registry and the kind's own file, nothing
 * else in C: a value in MigJobKind below and its entry in kinds.c's table
 * (the registry), and a file kind_<name>.c of its own (the Makefile takes
 * every kind_*.c) with its recipe (a const MigKindDef with its steps and
 * callbacks) and its SQL start function (PG_FUNCTION_INFO_V1, on the
 * plumbing every start shares: start.h, whose refusals name the kind's
 * action in whole sentences of the kind's file).  Nothing in worker.c,
 * walk.c, start.c or the store names a kind.  (The SQL side, in
 * sql/pg_mig.sql and the upgrade script: the start function's definition
 * and the kind's name in mig_job's CHECK (kind IN ...); a kind that walks
 * takes every knob, checked by ctest knobs.)
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_MIG_KINDS_H
#define PG_MIG_KINDS_H

/*
 * Job kinds, as stored in mig_job.kind (by name: MigKindName).  The order
 * is the registry's; the values are never stored.
 */
typedef enum MigJobKind
{
	MIG_KIND_BACKFILL,
	MIG_KIND_DELETE,
	MIG_KIND_NOT_NULL,
	MIG_KIND_FOREIGN_KEY,
	MIG_KIND_VALIDATE,
	MIG_KIND_INDEX,
	MIG_KIND_REVERT,			/* undo of a backfill (kind_revert.c) */
	MIG_KIND_REPACK,			/* REPACK (CONCURRENTLY), 19+ (kind_repack.c) */
	MIG_KIND_CHANGE_TYPE		/* online column type change (kind_change_type.c) */
} MigJobKind;

/*
 * What the job's owner must still hold on the table when its worker starts
 * (guard.c, MigJobRunProblem); a kind of schema steps runs DDL: the owner's
 */
typedef enum MigKindRight
{
	MIG_RIGHT_OWNER = 0,		/* own the table (the default) */
	MIG_RIGHT_UPDATE,			/* UPDATE on the table or on a column of it */
	MIG_RIGHT_DELETE			/* DELETE on the table */
} MigKindRight;

struct MigJob;
struct MigTarget;
struct MigChunkPlan;
struct ErrorData;

/*
 * A *schema step* is one DDL statement of a job, with a name (recorded in
 * mig_job.steps_done when it is done), a description for mig_jobs.step,
 * a test whether its effect is already there, and the statement itself.
 */
typedef struct MigStepDef
{
	const char *name;			/* as recorded in steps_done */
	/* what the step does, in words, for mig_jobs.step */
	char	   *(*describe) (const struct MigJob *job);
	/* is the effect there already?  In a transaction, as the job owner */
	bool		(*done) (const struct MigJob *job);
	/* the statement; in the step's transaction unless top_level */
	void		(*run) (const struct MigJob *job);
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
	const char *name;			/* mig_job.kind */
	const char *start_function; /* the SQL function that starts one (hints) */
	const char *with_article;	/* the name with its article: "an index" */
	MigKindRight right;			/* what its worker needs on the table */

	/* the schema steps, in order (none for a kind that only walks) */
	const MigStepDef *steps;
	int			nsteps;
	/*
	 * Optional: the message a failed step leaves in last_error instead of
	 * the error itself (e.g. the count of NULL rows); in a transaction.
	 */
	char	   *(*explain_failure) (const struct MigJob *job, const MigStepDef *step,
									struct ErrorData *edata);
	/*
	 * Optional: the step that takes back what the done steps did when the
	 * job fails (e.g. drop the NOT VALID check), run with the same retries.
	 */
	const MigStepDef *undo;

	/*
	 * The walk (walk.c): a kind with walks set walks rows before its step
	 * walk_at.  A walk before a step is recorded as the step "walk" in the
	 * transaction of its last chunk; a walk after the last step
	 * (walk_at == nsteps) ends the job.
	 */
	bool		walks;
	int			walk_at;
	/* optional: the chunk plan of a target; NULL from it: chunk.c's own */
	struct MigChunkPlan *(*chunk_plan) (struct MigJob *job, const struct MigTarget *target);
	/* optional: the chunks count rows and change none */
	bool		(*counts_only) (const struct MigJob *job);
	/* optional: when the worker prepares the chunks of a target */
	void		(*walk_begin) (const struct MigJob *job);
	/* the chunks write the job's table, not the target's (revert) */
	bool		writes_job_table;
	/* a walk with a where clause by one worker is verified after it */
	bool		verify;
	/* the verb of the 'succeeded' event of a walk that ends the job */
	const char *walk_verb;
	/*
	 * Optional: ends the job after its walk, in the transaction of its last
	 * chunk, instead of the 'succeeded' with walk_verb (revert)
	 */
	void		(*finish_walk) (struct MigJob *job, int64 rows_done, int64 chunks_done);
} MigKindDef;

/* kinds.c: the registry */
extern const MigKindDef *MigKindDefOf(MigJobKind kind);
extern const char *MigKindName(MigJobKind kind);
extern MigJobKind MigKindFromName(const char *name);
extern const char *MigKindStartFunction(MigJobKind kind);
extern const char *MigKindWithArticle(MigJobKind kind);

/* the recipes, one file each */
extern const MigKindDef mig_kind_backfill;	/* kind_backfill.c */
extern const MigKindDef mig_kind_delete;	/* kind_backfill.c */
extern const MigKindDef mig_kind_not_null;
extern const MigKindDef mig_kind_validate;
extern const MigKindDef mig_kind_index;
extern const MigKindDef mig_kind_foreign_key;
extern const MigKindDef mig_kind_revert;
extern const MigKindDef mig_kind_repack;
extern const MigKindDef mig_kind_change_type;

#endif							/* PG_MIG_KINDS_H */
