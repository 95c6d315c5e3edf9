/*-------------------------------------------------------------------------
 *
 * worker.h
 *	  The worker's runtime (worker.c) and the walk (walk.c), one kind of
 *	  step in it.
 *
 * worker.c owns the process: its loop, every transaction, the recording of
 * an error, the backoff and the sleeps.  walk.c's functions run *inside* a
 * transaction worker.c has opened (SPI connected, a snapshot, in the
 * step's memory context), and call nothing in worker.c.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_MIG_WORKER_H
#define PG_MIG_WORKER_H

#include "pg_mig.h"

typedef enum MigStepOutcome
{
	MIG_STEP_CHUNK,				/* a chunk was done */
	MIG_STEP_THROTTLED,			/* waiting for a health signal */
	MIG_STEP_RETRY,				/* a chunk failed and will be retried */
	MIG_STEP_STOP				/* the walk (or the job) is over for this worker */
} MigStepOutcome;

/* the backoff before retry number retries (1, 2, ...), in ms, jittered */
typedef double (*MigBackoffFunc) (int retries);

/* walk.c: each in the transaction of a step, as the job's owner */
extern void MigWalkInit(int64 job_id, const MigWorkerArgs *args);
extern bool MigWalkStartJob(void);
extern MigStepOutcome MigWalkStep(long *delay_ms, bool *changed);
extern MigStepOutcome MigWalkRecordError(ErrorData *edata, long *delay_ms,
										 MigBackoffFunc backoff);
extern bool MigWalkPromotePending(void);
extern const char *MigLaneText(const char *detail);
extern Oid	MigWalkChunkTable(void);
extern void MigWalkPromote(void);
extern bool MigWalkLaneFinished(void);
extern void MigWalkFinishLanes(void);
/* walk.c: between transactions, after a step that did a chunk */
extern void MigWalkAfterStep(MigStepOutcome outcome, long *delay_ms);

#endif							/* PG_MIG_WORKER_H */
