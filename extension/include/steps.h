/*-------------------------------------------------------------------------
 *
 * steps.h
 *	  What the schema steps of the kinds share (steps.c): their statements
 *	  (in the step's transaction, or top-level), the job's table and
 *	  constraint, the watch over a running statement.  The steps themselves
 *	  (MigStepDef, kinds.h) are run by worker.c.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_MIG_STEPS_H
#define PG_MIG_STEPS_H

#include "pg_mig.h"

/* kind_foreign_key.c */
extern void MigForeignKeyEqualityOps(Relation ref, int n, const AttrNumber *ref_attnums,
									 const Oid *fk_types, Oid *eqops, Oid *casts);

/* steps.c: helpers for the kinds */
extern char *MigJobRelationName(const MigJob *job);
extern void MigExecDDL(const char *sql);
extern void MigRunTopLevel(const char *sql, int64 lock_timeout_ms);
extern bool MigStepWasDone(const MigJob *job, const char *name);
extern char *MigDescribeResume(const MigJob *job);

/*
 * steps.c: the watch over a running statement (worker.c starts it around
 * each attempt of a step): job control's wakeups cancel the statement, and
 * a top-level statement's waits for locks others queue behind are bounded
 */
extern void MigStartWatch(void);
extern void MigStopWatch(void);

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
extern int MigIndexState(Oid relid, const char *name);
extern char *MigIndexSql(const char *relation_name, const char *index_name,
						 const char *columns, bool unique, const char *method,
						 const char *where_clause, List *include,
						 struct IndexStmt **stmt_out);

#endif							/* PG_MIG_STEPS_H */
