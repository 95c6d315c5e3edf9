/*-------------------------------------------------------------------------
 *
 * pg_mig.h
 *	  Shared declarations of the pg_mig library: names of the catalog
 *	  objects, settings, shared memory, the in-memory form of a job, and
 *	  the entry points each source file offers the others.
 *
 * Vocabulary (used in every file):
 *	  A *job* is one backfill started by mig_start_backfill(): a set clause
 *	  applied to the rows of one table that match a where clause.
 *	  A *target* is one heap the job walks: the table itself, or each leaf
 *	  partition of a partitioned table, in turn.
 *	  A *key* is the value of the target's primary key (or unique NOT NULL
 *	  index) columns; a job walks each target in key order.
 *	  A *chunk* is the rows between two keys, changed in one transaction.
 *	  A *checkpoint* is the job row's (target_ord, last_key, rows_done, ...),
 *	  written in the same transaction as the chunk it records.
 *	  The *launcher* is the one background worker that starts *workers*; a
 *	  *worker* runs one job, as the job's owner; a *scan* is a short-lived
 *	  worker that lists the runnable jobs of one database for the launcher.
 *	  A worker is *throttled* while a health signal (replica lag, a run
 *	  window, ...) says that no new chunk may start.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_MIG_H
#define PG_MIG_H

#include "postgres.h"

#include "access/htup.h"
#include "access/xact.h"
#include "access/tupdesc.h"
#include "datatype/timestamp.h"
#include "fmgr.h"
#include "nodes/pg_list.h"
#include "utils/relcache.h"
#include "storage/condition_variable.h"
#include "storage/latch.h"
#include "storage/lockdefs.h"
#include "utils/guc.h"
#include "storage/lwlock.h"

#include "knobs.h"

#define PG_MIG_VERSION			"0.4"
#define MIG_MAX_BATCH_SIZE		1000000 /* bound of batch_size everywhere */

/* bounds of the knobs, shared by the knob checks and the default_* settings */
#define MIG_MAX_CHUNK_TIME_MS	(10 * 60 * 1000)
#define MIG_MAX_SLEEP_MS		(60 * 60 * 1000)
#define MIG_MAX_LOCK_TIMEOUT_MS (10 * 60 * 1000)
#define MIG_MAX_STATEMENT_TIMEOUT_MS (24 * 60 * 60 * 1000)
#define MIG_MAX_LAG_MS			(24 * 60 * 60 * 1000)
#define MIG_MAX_RETRIES			1000
#define MIG_MAX_TEXT_KNOB		65536	/* bytes of a clause or text knob */
#define PG_MIG_EXTENSION_NAME	"pg_mig"
#define PG_MIG_NOTIFY_CHANNEL	"pg_mig"

/* the search_path of every statement pg_mig runs on its own behalf */
#define MIG_SAFE_SEARCH_PATH	"pg_catalog, pg_temp"

/* catalog objects, all in the extension's schema */
#define MIG_JOB_TABLE			"mig_job"
#define MIG_TARGET_TABLE		"mig_job_target"
#define MIG_EVENT_TABLE			"mig_job_event"
#define MIG_LANE_TABLE			"mig_job_lane"
#define MIG_SAMPLE_TABLE		"mig_job_sample"

/* parallel lanes: lane 0 is the one walker of a job with parallel = 1 */
#define MIG_MAX_LANES			32
#define MIG_LANE_BIT(lane)		(((uint64) 1) << (lane))

/* background worker types, as shown in pg_stat_activity.backend_type */
#define MIG_LAUNCHER_TYPE		"pg_mig launcher"
#define MIG_WORKER_TYPE			"pg_mig worker"
#define MIG_SCAN_TYPE			"pg_mig scan"

/* sizes of the shared request queue and note table */
#define MIG_MAX_REQUESTS		64
#define MIG_NOTE_LEN			256
#define MIG_MAX_DATABASES		256	/* the launcher's first room for scans; it grows */
#define MIG_MAX_WAITERS			128 /* sessions in mig_wait that throttling
									 * ignores */

/* settings (pg_mig.c) */
extern int	mig_max_workers;
extern int	mig_max_workers_per_role;
extern int	mig_naptime_s;
extern char *mig_databases;
extern bool mig_hold;
extern bool mig_lag_pacing;
extern int	mig_default_batch_size;
extern int	mig_default_chunk_time_ms;
extern int	mig_default_max_lag_ms;
extern int	mig_default_max_lag_bytes;
extern int	mig_default_lock_timeout_ms;
extern int	mig_default_statement_timeout_ms;
extern int	mig_default_max_retries;
extern int	mig_max_events_per_job;
extern int	mig_default_vacuum_every;

/* job states, as stored in mig_job.state */
typedef enum MigJobState
{
	MIG_STATE_QUEUED,
	MIG_STATE_RUNNING,
	MIG_STATE_PAUSED,
	MIG_STATE_SUCCEEDED,
	MIG_STATE_FAILED,
	MIG_STATE_CANCELLED
} MigJobState;

extern const char *MigStateName(MigJobState state);
extern MigJobState MigStateFromName(const char *name);
#define MigStateIsFinal(s) \
	((s) == MIG_STATE_SUCCEEDED || (s) == MIG_STATE_CANCELLED)

/*
 * Job kinds: the registry (kinds.h, kinds.c), one recipe per file.
 */
#include "kinds.h"

/*
 * MigJob: the in-memory form of one mig_job row.  Durations are in
 * milliseconds; 0 means "off" for every optional limit.
 */
typedef struct MigJob
{
	int64		job_id;
	Oid			relid;
	char	   *relation_name;	/* quoted, qualified name at start */
	char	   *set_clause;
	char	   *where_clause;	/* NULL if none */
	char	   *search_path;	/* search_path the clauses were checked under */
	List	   *settings;		/* of char * "name=value": the caller's
								 * DateStyle, TimeZone, ... at start */
	Oid			owner;
	char	   *owner_name;		/* the owner's name at start (survives a
								 * dump); NULL for jobs of 0.2 */
	MigJobState state;

	/*
	 * knobs (knobs.def): batch_size, chunk_time_ms, ..., max_app_latency_ms;
	 * 0 (NULL, NIL) is off.  vacuum_every: rows changed between VACUUMs, 0 =
	 * never, -1 = automatic (at start, until stored).
	 */
#define MIG_KNOB(name, kind, ctype, field, sqltype, unit, max, flags, setting, setting_var, sql_default, option, help) \
	ctype		field;
#include "knobs.def"
#undef MIG_KNOB

	/* checkpoint */
	int			target_ord;
	int			nlast_key;		/* 0 = current target not begun */
	char	  **last_key;		/* text form of the last key done */
	int64		rows_done;
	int64		keys_done;
	int64		chunks_done;
	int64		wal_bytes;
	int			retries;

	/* run-time */
	int			current_batch;	/* 0 = not set yet */
	char	   *throttled;		/* as stored */
	double		rows_per_sec;
	double		keys_per_sec;
	int64		rows_total;		/* estimates at start; -1 = unknown */
	int64		keys_total;
	bool		ever_started;	/* started_at is set */

	/* kind (0.3): loaded by MigLoadJobKind, stored by MigSetJobKind */
	MigJobKind	kind;
	List	   *kind_args;		/* of char * "name=value" */
	List	   *steps_done;		/* of char *: names of the steps done */
	char	   *step;			/* what the job does now, in words */

	/* parallel lanes and bloat control (0.3, issue 15) */
	int			parallel;		/* number of lanes, 1 = one walker */
	int			lane;			/* loaded for lane n (MigApplyLane), else 0 */
	int			lane_retries;	/* the lane's own retry count */

	/* starting again (0.4, job_key.c): loaded by MigLoadJobKey */
	char	   *job_key;		/* NULL: none, or released */
	List	   *start_args;		/* of char *: "name=value", "name" for NULL */
} MigJob;

/*
 * MigTarget: one heap a job walks, with its key and the upper key fixed
 * when the job started (NULL: the target was empty).
 */
typedef struct MigTarget
{
	int			ord;
	Oid			relid;
	char	   *relation_name;	/* quoted, qualified */
	int			nkeys;
	char	  **key_columns;	/* plain names */
	char	  **upper_key;		/* text form; NULL if the target was empty */
	int64		keys_estimate;
	char	   *set_clause;		/* the job's clauses as resolved at start for */
	char	   *where_clause;	/* this target, every name schema-qualified
								 * (NULL: not resolved yet, a job of 0.2;
								 * where_clause also NULL: no where clause) */
} MigTarget;

/*
 * MigCheckpoint: what one chunk adds to the job row, in the chunk's own
 * transaction.
 */
typedef struct MigCheckpoint
{
	int			target_ord;
	int			nlast_key;		/* 0 = the target is not begun */
	char	  **last_key;
	int64		rows;			/* rows changed by the chunk */
	int64		keys;			/* keys walked by the chunk */
	int64		wal_bytes;
	int			current_batch;
	double		rows_per_sec;
	double		keys_per_sec;
} MigCheckpoint;

/*
 * Shared memory.  One MigWorkerSlot per pg_mig.max_workers: a worker claims
 * a slot for its (database, job) before it touches the job, so a job never
 * has two workers.  The request queue carries "start the worker of job J"
 * (job_id > 0) and "scan database D" (job_id = 0) to the launcher.
 */
typedef struct MigWorkerSlot
{
	bool		in_use;
	Oid			dboid;
	int64		job_id;
	int			lane;			/* 0 for the one walker of a job */
	pid_t		pid;
	TimestampTz started_at;
	bool		wakeup;			/* job control asked the worker to look */
	int64		app_limit_us;	/* the job's max_app_latency, 0 = none */
	/* the launcher's counts for app_limit_us (app_latency.c) */
	pg_atomic_uint64 app_over;	/* statements that ended after running longer */
	pg_atomic_uint32 app_running_over;	/* running longer now */
} MigWorkerSlot;

/*
 * MigWorkerArgs: what the launcher puts in bgw_extra of a worker or a scan;
 * bgw_main_arg holds the job id (Int64GetDatum; 0 for a scan).
 */
typedef struct MigWorkerArgs
{
	Oid			dboid;
	Oid			owner;			/* role the worker connects as */
	int			lane;			/* the lane of a parallel job, else 0 */
} MigWorkerArgs;

typedef struct MigRequest
{
	Oid			dboid;
	int64		job_id;			/* 0 = scan the database */
	Oid			owner;
	uint64		lanes;			/* MIG_LANE_BIT of each lane to start */
} MigRequest;

typedef struct MigNote
{
	Oid			dboid;
	int64		job_id;
	char		text[MIG_NOTE_LEN];
} MigNote;

/* a session about to lock a job row FOR UPDATE (MigAnnounceJobLock) */
typedef struct MigJobLocker
{
	Oid			dboid;
	int64		job_id;
	pid_t		pid;			/* 0 = free; one entry per session at most */
	TimestampTz since;			/* when it was announced */
} MigJobLocker;

typedef struct MigSharedState
{
	LWLock	   *lock;			/* protects everything below */
	pid_t		launcher_pid;
	Latch	   *launcher_latch;
	ConditionVariable job_cv;	/* broadcast on every job state change */
	bool		rescan_all;		/* a request was lost: scan every database */
	Oid			scan_done_db;	/* set by a scan that finished its database */
	Oid			starved_owner;	/* owner of a queued job that waits for a
								 * free worker only; InvalidOid if none */
	int64		starved_job;
	int			nrequests;
	MigRequest	requests[MIG_MAX_REQUESTS];
	int			nnotes;
	MigNote		notes[MIG_MAX_REQUESTS];	/* why a queued job waits */
	pid_t		waiters[MIG_MAX_WAITERS];	/* sessions in mig_wait; 0 = free */
	MigJobLocker lockers[MIG_MAX_WAITERS];
	int			clean_exits;	/* job workers that ended by themselves,
								 * not yet seen by the launcher */
	int			nslots;
	MigWorkerSlot slots[FLEXIBLE_ARRAY_MEMBER];
} MigSharedState;

extern MigSharedState *MigShared;	/* NULL unless preloaded */

/* shared.c (on the shared memory pg_mig.c makes) */
extern void MigRequireShared(void);	/* ERROR with a hint unless preloaded */
extern void MigPostRequest(Oid dboid, int64 job_id, Oid owner, uint64 lanes);
extern void MigRequestAtCommit(Oid dboid, int64 job_id, Oid owner);
extern void MigRequestLanesAtCommit(Oid dboid, int64 job_id, Oid owner,
									uint64 lanes);
extern void MigWakeWorkerAtCommit(Oid dboid, int64 job_id);
extern void MigWakeLauncher(void);
extern void MigBroadcastJobChange(void);
extern bool MigClaimWorkerSlot(Oid dboid, int64 job_id, int lane);
extern pid_t MigLaneWorkerPid(Oid dboid, int64 job_id, int lane);
extern pid_t MigWorkerPid(Oid dboid, int64 job_id);
extern pid_t MigLiveWorkerPid(Oid dboid, int64 job_id);
extern int	MigDatabaseWorkers(Oid dboid, pid_t *pids, int64 *jobs, int max);
extern void MigWakeWorker(Oid dboid, int64 job_id);
extern bool MigTakeWakeup(void);
extern void MigSetStarved(Oid owner, int64 job_id);
extern bool MigStarvedTaken(void);
extern int64 MigTakeStarved(Oid my_owner);
extern void MigSetNote(Oid dboid, int64 job_id, const char *text);
extern void MigRegisterWaiter(bool on);
extern void MigAnnounceJobLock(Oid dboid, int64 job_id);
extern void MigJobLockTaken(void);
extern void MigNoteCleanExit(void);
extern bool MigTakeCleanExit(void);
extern bool MigJobLockAnnounced(Oid dboid, int64 job_id);
extern bool MigIsWaiter(pid_t pid);
extern ErrorData *MigTrySubtransaction(void (*fn) (void *), void *arg);
extern bool MigErrorIsTransient(int sqlerrcode);
extern int64 MigIntervalToMs(Datum interval);
extern Datum MigMsToInterval(int64 ms);

/* guard.c: who may do what */
extern void MigGuardOpen(void);
extern void MigGuardClose(void);
extern void MigPinSession(void);
/*
 * What a control action does to a job: MIG_CONTROL_STOP only holds or ends
 * it (pause, cancel, forget); MIG_CONTROL_RUN makes its worker run, run
 * again or run something else as the job's owner (resume, set, revert,
 * getting it back by key).
 */
typedef enum MigControl
{
	MIG_CONTROL_STOP,
	MIG_CONTROL_RUN
} MigControl;

extern bool MigCanControlJob(Oid owner, Oid relid, MigControl control);
extern void MigCheckJobControl(const MigJob *job, const char *action, MigControl control);

/*
 * guard.c: the messages of job control that name its action ("pause",
 * "resume", "cancel", "change", "revert", "forget"), one whole sentence per
 * action, so that none is assembled from a verb and a fragment
 */
typedef enum MigActionMessage
{
	MIG_MSG_DENIED,				/* errmsg: permission denied to <act> job N */
	MIG_MSG_DENIED_OWNER_HINT,	/* errhint: who may <act> a job of a role */
	MIG_MSG_DENIED_HINT,		/* errhint: who may <act> a job */
	MIG_MSG_FINISHED,			/* errmsg: cannot <act> job N because it is already S */
	MIG_MSG_RECOVERY,			/* errmsg: cannot <act> a job during recovery */
	MIG_MSG_NO_KEPT_VALUES,		/* errmsg: ... because it kept no old values */
	MIG_MSG_FORGOTTEN,			/* errmsg: ... because its kept values were forgotten */
	MIG_MSG_NOT_FINISHED,		/* errmsg: ... because it has not finished */
	MIG_MSG_COUNT
} MigActionMessage;
extern const char *MigActionFormat(const char *action, MigActionMessage which);
extern char *MigOwnerProblem(Oid owner, const char *owner_name);
extern char *MigReadOnlyProblem(bool everyone);
extern char *MigOwnerReadOnlyProblem(Oid owner);
/* mig_jobs.throttled of a job MigReadOnlyProblem holds (%s: the problem) */
#define MIG_READ_ONLY_NOTE "held: %s; the job goes on once it is off"
extern char *MigJobIdentityProblem(const MigJob *job);
extern char *MigJobRunProblem(const MigJob *job);

/* sql_api.c */
extern void MigCheckTextLength(const char *name, const char *s);

/*
 * wait_events.c: the names of pg_mig's waits in pg_stat_activity.wait_event
 * (17 and later; "Extension" before)
 */
typedef enum MigWait
{
	MIG_WAIT_LAUNCHER,			/* PgMigLauncherMain: the launcher between rounds */
	MIG_WAIT_THROTTLED,			/* PgMigThrottled: a health signal holds the job */
	MIG_WAIT_PACE,				/* PgMigPace: the pause between chunks */
	MIG_WAIT_BACKOFF,			/* PgMigBackoff: before a retry */
	MIG_WAIT_JOB_CONTROL,		/* PgMigJobControl: a lane lets job control go first */
	MIG_WAIT_JOB_CHANGE,		/* PgMigWaitForJob: mig_wait */
	MIG_WAIT_COUNT
} MigWait;
extern uint32 MigWaitEvent(MigWait which);

/* shared.c: the end of a transaction sends what waits for its commit */
extern void MigXactCallback(XactEvent event, void *arg);
extern void MigSubXactCallback(SubXactEvent event, SubTransactionId mySubid,
							   SubTransactionId parentSubid, void *arg);

/* launcher.c */
extern PGDLLEXPORT void mig_launcher_main(Datum main_arg);
extern void MigRegisterLauncher(void);
extern PGDLLEXPORT void mig_scan_main(Datum main_arg);

/* worker.c: a job's worker (see worker.h) */
extern PGDLLEXPORT void mig_worker_main(Datum main_arg);
extern void MigNoteStepLock(Oid relid, LOCKMODE lockmode);

/* job_store.c: all SPI on the job tables.  Callers are in a transaction. */
typedef struct MigStoreContext
{
	Oid			save_userid;
	int			save_sec_context;
	int			save_nestlevel;
} MigStoreContext;
extern void MigStoreEnter(MigStoreContext *sc);
extern void MigStoreLeave(MigStoreContext *sc);
extern char *MigTextColumn(HeapTuple tuple, TupleDesc desc, int col);
extern List *MigTextArrayColumn(HeapTuple tuple, TupleDesc desc, int col);
extern Datum MigCStringArrayDatum(int n, char **items);
extern int64 MigInt64Column(HeapTuple tuple, TupleDesc desc, int col, Oid type);
extern Oid	MigExtensionSchema(void);
extern char *MigInstalledVersion(void);
extern void MigRequireSchemaVersion(void);
extern bool MigVersionOlder(const char *a, const char *b);

/* upgrade.c */
extern void MigInstallUpgradeHook(void);
extern void MigNoteJobsAwaitUpdate(const char *installed);
extern void MigClearUpdateNotes(void);
extern const char *MigQualifiedTable(const char *table);
extern void MigNoteUnfinishedJobs(const char *note);
extern MigJob *MigLoadJob(int64 job_id, bool for_update);
extern MigJob *MigLoadJobShared(int64 job_id);
extern List *MigLoadTargets(int64 job_id);
extern int64 MigInsertJob(const MigJob *job, List *targets);
extern int64 MigFindActiveJobOn(List *relids);
extern int64 MigFindOtherActiveJobOn(List *relids, int64 except);
extern int64 MigFindChangeTypeJobOf(Oid relid, const char *column, const char *name);
extern void MigSaveCheckpoint(int64 job_id, const MigCheckpoint *cp);

/*
 * timeline.c: the rate window, waits and samples (see its header).
 * MIG_RATE_ANCHOR_SET is the SET list of a checkpoint's UPDATE (job or
 * lane row) that moves the window's anchors; $4 and $5 are the chunk's
 * rows and keys.  MIG_STALL_END_SET ends a wait (MigSetState, lanes).
 */
#define MIG_RATE_WINDOW_S		10
#define MIG_RATE_ANCHOR_SET \
	" rate_at0 = CASE WHEN rate_at1 IS NOT NULL AND clock_timestamp() - rate_at1 >= interval '10 s'" \
	"  THEN rate_at1 ELSE COALESCE(rate_at0, clock_timestamp()) END," \
	" rate_rows0 = CASE WHEN rate_at1 IS NOT NULL AND clock_timestamp() - rate_at1 >= interval '10 s'" \
	"  THEN rate_rows1 ELSE COALESCE(rate_rows0, rows_done + $4) END," \
	" rate_keys0 = CASE WHEN rate_at1 IS NOT NULL AND clock_timestamp() - rate_at1 >= interval '10 s'" \
	"  THEN rate_keys1 ELSE COALESCE(rate_keys0, keys_done + $5) END," \
	" rate_rows1 = CASE WHEN rate_at1 IS NULL OR clock_timestamp() - rate_at1 >= interval '10 s'" \
	"  THEN rows_done + $4 ELSE rate_rows1 END," \
	" rate_keys1 = CASE WHEN rate_at1 IS NULL OR clock_timestamp() - rate_at1 >= interval '10 s'" \
	"  THEN keys_done + $5 ELSE rate_keys1 END," \
	" rate_at1 = CASE WHEN rate_at1 IS NULL OR clock_timestamp() - rate_at1 >= interval '10 s'" \
	"  THEN clock_timestamp() ELSE rate_at1 END,"
#define MIG_STALL_END_SET \
	"throttled_ms = throttled_ms + COALESCE((extract(epoch FROM clock_timestamp() - stalled_since)" \
	" * 1000)::bigint, 0), stalled_since = NULL"
extern int	mig_timeline_interval_ms;
extern void MigResetRate(int64 job_id, int lane);
extern void MigSetStalled(int64 job_id, int lane, bool stalled);
extern void MigAddThrottledMs(int64 job_id, int lane, int64 ms);
extern void MigRecordSample(const MigJob *job, int lane, const char *throttled, bool force);
extern void MigReadLag(const MigJob *job, int64 *lag_bytes, int64 *lag_ms);
extern void MigCheckpointArgs(const MigCheckpoint *cp, Datum *values, char *nulls);
extern void MigRecordEvent(int64 job_id, const char *event, const char *detail);
extern void MigSetState(int64 job_id, MigJobState state, const char *last_error);
extern void MigSetRetries(int64 job_id, int retries, const char *last_error);
extern void MigSetThrottled(int64 job_id, const char *reason);
extern void MigSetJobColumns(int64 job_id, int ncols, const char **columns,
							 const Oid *types, const Datum *values,
							 const bool *isnull);
extern char *MigGetState(int64 job_id);
extern bool MigJobCreatedHere(int64 job_id);
extern void MigNotify(int64 job_id, const char *state);
extern void MigLoadJobKind(MigJob *job);
extern void MigSetJobKind(int64 job_id, MigJobKind kind, List *kind_args);
extern void MigSetStep(int64 job_id, const char *step);
extern void MigMarkStepDone(int64 job_id, const char *step_name);
extern int64 MigFindJobByKey(const char *job_key);
extern int64 MigFindFailedTwin(MigJobKind kind, Oid relid, List *start_args);
extern void MigLoadJobKey(MigJob *job);
extern void MigSetJobKey(int64 job_id, const char *job_key, List *start_args);

/*
 * job_key.c: starting again is safe (contract 0.4).  A start function
 * reads its job_key and start_args (MigReadJobKey), asks MigStartAgain
 * whether a job holds the key (then it returns that job's id and starts
 * nothing), and just before it would be refused by a job on the table asks
 * MigRetryFailedTwin whether that is a failed job of the same kind and
 * arguments to resume; a job it makes gets the key with MigKeepJobKey.
 */
#define MIG_MAX_JOB_KEY			1024	/* bytes */
extern void MigReadJobKey(FunctionCallInfo fcinfo, const char *const *identity,
						  int nidentity, MigJob *job);
extern int64 MigStartAgain(const MigJob *job);
extern int64 MigRetryFailedTwin(const MigJob *job);
extern void MigKeepJobKey(int64 job_id, const MigJob *job);
extern void MigReleaseJobKey(int64 job_id, const char *why);
extern void MigRefuseBusyTable(const char *relation, int64 busy);
extern Oid	MigLockTreeForStart(Oid relid);	/* every start, before
											 * MigFindActiveJobOn */
/* job_key.c: resume a paused or failed job (mig_resume, a retry) */
extern void MigResumeJob(MigJob *job, const char *event, const char *detail);

/* args.c: the arguments of the SQL function being called, by name */
extern int	MigArgNo(FunctionCallInfo fcinfo, const char *name);	/* -1: none */
extern Oid	MigArgType(FunctionCallInfo fcinfo, int argno);
extern bool MigArgBool(FunctionCallInfo fcinfo, const char *name, bool dflt);

/*
 * sql_api.c, for the start functions of the kinds (kind_*.c): the knobs
 * (knobs.def), found by their names
 */
extern void MigReadKnobArgs(FunctionCallInfo fcinfo, MigJob *job);
extern void MigDefaultKnobs(MigJob *job);
extern void MigReadKnobArg(FunctionCallInfo fcinfo, const char *name, MigJob *job);
extern void MigCheckAppLatencySignal(void);
extern void MigCheckOwnerCanLogin(Oid owner);

/* steps.c: a kind argument of a job */
extern const char *MigKindArg(const MigJob *job, const char *name);
extern void MigSetTargetClauses(int64 job_id, const MigTarget *target);

/* validate.c: checks at start, in the caller's transaction */
extern List *MigBuildTargets(Relation rel, const char *set_clause,
							 const char *where_clause, int64 *rows_total,
							 List **set_columns_out);
extern List *MigBuildOrphanTargets(Relation rel, const char *set_clause,
								   const char *where_clause, int64 *rows_total);
extern char *MigResolveThrottleQuery(const char *query);
extern void MigResolveClauses(MigTarget *target, const char *set_clause,
							  const char *where_clause);

/* chunk.c: the chunk statements of one target */
typedef struct MigChunkPlan MigChunkPlan;
typedef struct MigChunkResult
{
	int64		rows;			/* rows changed */
	int64		keys;			/* keys walked */
	char	  **end_key;		/* text form of the last key walked */
	bool		target_done;	/* the upper key was reached */
} MigChunkResult;
extern char *MigChunkUpdateSql(const MigTarget *target, const char *set_clause,
							   const char *where_clause, bool first);
extern char *MigChunkBoundarySql(const MigTarget *target, bool first);
extern MigChunkPlan *MigPrepareChunkPlan(const MigTarget *target,
										 const char *set_clause,
										 const char *where_clause);
extern MigChunkPlan *MigPrepareChunkPlanFor(const MigTarget *target,
											const char *set_clause,
											const char *where_clause,
											bool count_only);
extern MigChunkPlan *MigPrepareChunkPlanWith(const MigTarget *target,
											 const char *change_first,
											 const char *change_next,
											 bool counts);
extern void MigFreeChunkPlan(MigChunkPlan *plan);
extern void MigChunkPlanSearchPath(MigChunkPlan *plan, const char *search_path);
extern void MigRunChunk(MigChunkPlan *plan, int nlast_key, char **last_key,
						int batch, MigChunkResult *result);
extern List *MigKeySettings(void);
extern int	MigEnterKeyFormat(void);
extern void MigLeaveKeyFormat(int nestlevel);

/* throttle.c: health signals.  See the function comments there. */
typedef struct MigReplicaLag
{
	char		name[NAMEDATALEN + 32];	/* "standby1", "replication slot s" */
	int64		lag_bytes;
	int64		replay_lag_ms;	/* -1 = unknown */
	TimestampTz reply_at;		/* a standby's last report, 0 for a slot */
	double		fraction;		/* of the job's tightest lag limit */
} MigReplicaLag;

#define MIG_PACE_CHUNK_SHARE	8	/* a chunk writes <= 1/8 of max_lag_bytes */

extern bool MigSlowestReplica(const MigJob *job, MigReplicaLag *out);
extern char *MigFormatBytes(int64 b);
extern char *MigFormatMs(double ms);
extern bool MigThrottleCheck(const MigJob *job, bool was_throttled, char **reason);
/* app_latency.c: the signal of max_app_latency */
#define MIG_APP_TAIL		0.01	/* the share that may take longer: a p99 */
typedef struct MigAppCounts
{
	uint64		over;			/* statements that ended after running longer
								 * than the limit */
	uint32		running_over;	/* running longer than the limit now */
	uint64		statements;		/* all, the worker's own left out */
} MigAppCounts;
extern int	MigAppLatencyWait(long timeout_ms, uint32 wait_event);
extern void MigAppLatencyRead(int64 limit_ms, MigAppCounts *out);
extern void MigAppLatencyStatsReported(long pending_ms);
/* pace.c: the pacer under a lag budget and max_app_latency; event limits */
extern void MigPaceChunkDone(TimestampTz start, int64 ms, int64 wal_bytes);
extern bool MigPaceGate(const MigJob *job, long *wait_ms, char **reason);
extern bool MigPaceThrottledWrite(const char *stored, const char *reason);
extern bool MigThrottleEventStart(void);
extern char *MigThrottleEventEnd(bool recorded, double secs, const char *reason);
extern char *MigPaceSummary(const char *reason);
extern int64 MigPacingDelayMs(const MigJob *job, int64 chunk_ms, int64 chunk_wal_bytes);
extern int	MigNextBatchSize(const MigJob *job, int current, int64 chunk_ms,
							 int64 keys, int64 wal_bytes, double *rate_ewma);
extern bool MigRunWindowValid(const char *spec, char **errmsg);
extern bool MigInRunWindow(const char *spec, TimestampTz now);

/*
 * vacuum.c: bloat control, a VACUUM behind the walk every vacuum_every
 * rows.  pg_mig.default_vacuum_every = -1 (the default): automatic, a
 * tenth of the target's estimated rows, at least 100,000.
 */
#define MIG_VACUUM_AUTO_DIVISOR		10
#define MIG_VACUUM_AUTO_MIN_ROWS	100000
/*
 * MigResolveVacuumEvery: the vacuum_every a new job is stored with (the
 * store resolves it; a computation on the values above, calling nothing).
 * A given value (0: off) is kept; the automatic one (-1, from
 * pg_mig.default_vacuum_every) is a tenth of the rows of the job's average
 * target as estimated at start, at least MIG_VACUUM_AUTO_MIN_ROWS.
 */
static inline int64
MigResolveVacuumEvery(const MigJob *job, List *targets)
{
	ListCell   *lc;
	int64		keys = 0;

	if (job->vacuum_every >= 0)
		return job->vacuum_every;
	foreach(lc, targets)
		keys += Max(((MigTarget *) lfirst(lc))->keys_estimate, 0);
	if (targets != NIL)
		keys /= list_length(targets);
	return Max(keys / MIG_VACUUM_AUTO_DIVISOR, MIG_VACUUM_AUTO_MIN_ROWS);
}
extern void MigMaybeVacuum(const MigJob *job, Oid relid, long *delay_ms);
extern void MigVacuumSummary(int64 job_id, int lane);
extern void MigVacuumReport(int64 job_id, int lane);

/*
 * Undo (issue 14).  kept.c: the kept values of a backfill started with
 * keep_old_values, one table per job in the extension's schema;
 * kind_revert.c: the chunk statements of such a backfill and of its
 * revert; sql_undo.c: mig_revert, mig_forget.
 */
#define MIG_KEPT_PREFIX			"mig_kept_"
#define MIG_KEPT_SCHEMA			"mig_kept"	/* pg_mig's schema of kept tables */
extern int	mig_max_kept_tables_per_role;
/* the job's kind must be loaded (MigLoadJobKind) for these */
extern char *MigKeptTableName(const MigJob *job);	/* quoted, qualified */
extern Oid	MigKeptTableOid(const MigJob *job); /* InvalidOid: none */
extern void MigCreateKeptTable(const MigJob *job, Relation rel, List *targets,
							   List *set_columns);
extern void MigDropKeptTable(const MigJob *job);
extern char **MigKeptUpperKey(const MigJob *job, int nkeys, char **key_columns,
							  int64 *rows);
extern void MigAllowKeptWrites(Oid kept_relid);
extern bool MigJobKeepsValues(const MigJob *job);
extern MigChunkPlan *MigKeepingChunkPlan(MigJob *job, const MigTarget *target);
/* kind_change_type.c: the old column a change_type job keeps, its revert (sql_undo.c) */
extern char *MigChangeTypeForget(const MigJob *job, const char **event);
extern int64 MigChangeTypeRevert(const MigJob *job, MigJob *revert);

/*
 * Parallel lanes (issue 15), lanes.c: the split of a job's key range into
 * lanes at start, and the lanes' rows in mig_job_lane.
 */
#define MIG_VERIFY_OFF			"verify=false"
typedef struct MigLane
{
	int			lane;
	int			nkeys;
	char	  **lower_key;		/* exclusive; NULL: from the first key */
	char	  **upper_key;		/* inclusive; NULL: the target's upper key */
	char	  **last_key;		/* checkpoint; NULL: not begun */
	bool		done;
	int64		rows_done;
	int64		keys_done;
	int64		chunks_done;
	int64		wal_bytes;
	int			retries;
	int			current_batch;
	char	   *throttled;
	int64		keys_estimate;
} MigLane;
extern int	MigReadParallelArg(FunctionCallInfo fcinfo, List *targets);
extern void MigCreateLanes(int64 job_id, const MigTarget *target, int parallel);
extern List *MigPlanLanes(const MigTarget *target, int parallel);
extern MigLane *MigLoadLane(int64 job_id, int lane, bool for_update);
extern char *MigDescribeLane(const MigLane *lane);
extern void MigApplyLane(MigJob *job, const MigLane *lane);
extern MigTarget *MigLaneTarget(const MigTarget *target, const MigLane *lane);
extern void MigSaveLaneCheckpoint(int64 job_id, int lane, const MigCheckpoint *cp,
								  bool done);
extern void MigSetLaneThrottled(int64 job_id, int lane, const char *reason);
extern void MigSetLaneRetries(int64 job_id, int lane, int retries,
							  const char *last_error);
extern void MigResetLaneRetries(int64 job_id);
extern uint64 MigLanesToRun(int64 job_id, int parallel);
extern int64 MigLanesLeft(int64 job_id);
extern bool MigFinishLanes(int64 job_id, bool verify, const char *verified,
						   int64 *rows_done, int64 *chunks_done);
extern void MigRequestJobWorkers(const MigJob *job, int64 job_id);

/*
 * MigSetLockTimeout: lock_timeout for the rest of the transaction
 * (GUC_ACTION_LOCAL) or of the GUC nest level (GUC_ACTION_SAVE), in
 * milliseconds, at least 1 (0 would mean no timeout at all).
 */
static inline void
MigSetLockTimeout(int64 lock_ms, GucAction action)
{
	char		buf[32];

	snprintf(buf, sizeof(buf), INT64_FORMAT "ms", Max(lock_ms, 1));
	(void) set_config_option("lock_timeout", buf, PGC_USERSET, PGC_S_SESSION,
							 action, true, 0, false);
}

#endif							/* PG_MIG_H */
