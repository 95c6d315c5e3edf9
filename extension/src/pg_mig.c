/*-------------------------------------------------------------------------
 *
 * pg_mig.c
 *	  Entry point of the pg_mig library: its settings, its shared memory,
 *	  the launcher's registration.  The services on the shared memory that
 *	  the other files use are in shared.c.
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
#include "postgres.h"

#include <signal.h>

#include "access/xact.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "pg_mig.h"
#include "version_compat.h"

MIG_MODULE_MAGIC;

PG_FUNCTION_INFO_V1(mig_version);

/* settings */
int			mig_max_workers = 4;
int			mig_max_workers_per_role = 2;
int			mig_naptime_s = 30;
char	   *mig_databases = NULL;
bool		mig_hold = false;
bool		mig_lag_pacing = true;
int			mig_default_batch_size = 1000;
int			mig_default_chunk_time_ms = 50;
int			mig_default_max_lag_ms = 10000;
int			mig_default_max_lag_bytes = 64 * 1024 * 1024;
int			mig_default_lock_timeout_ms = 1000;
int			mig_default_statement_timeout_ms = 60000;
int			mig_default_max_retries = 10;
int			mig_max_events_per_job = 1000;
int			mig_max_kept_tables_per_role = 100;
int			mig_default_vacuum_every = -1;

static shmem_startup_hook_type prev_shmem_startup_hook = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;

void		_PG_init(void);
static void MigShmemRequest(void);
static void MigShmemStartup(void);
static Size MigShmemSize(void);
static const char *ShowPlainBytes(void);

/*
 * _PG_init defines the settings and, when preloaded, asks for shared memory
 * and registers the launcher.
 */
void
_PG_init(void)
{
	/*
	 * A PGC_POSTMASTER setting can only be defined while preloading; a backend
	 * that loads the library later (CREATE EXTENSION without the preload)
	 * must still get as far as MigRequireShared's clear error.
	 */
	if (process_shared_preload_libraries_in_progress)
		DefineCustomIntVariable("pg_mig.max_workers",
								"Number of pg_mig jobs that run at once.",
								NULL, &mig_max_workers, 4, 1, 64,
								PGC_POSTMASTER, 0, NULL, NULL, NULL);

	/*
	 * The per-role limit defaults to half of pg_mig.max_workers (at least
	 * 1), read just above from the configuration while preloading.
	 */
	DefineCustomIntVariable("pg_mig.max_workers_per_role",
							"Number of pg_mig jobs of one role that run at once.",
							"Default: half of pg_mig.max_workers, at least 1.",
							&mig_max_workers_per_role, Max(mig_max_workers / 2, 1), 1, 64,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("pg_mig.naptime",
							"How often the launcher looks for jobs to restart.",
							NULL, &mig_naptime_s, 30, 1, 3600,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomStringVariable("pg_mig.databases",
							   "Databases the launcher looks in (comma-separated; empty means all).",
							   NULL, &mig_databases, "",
							   PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomBoolVariable("pg_mig.hold",
							 "Holds every pg_mig job: no chunk starts while on.",
							 NULL, &mig_hold, false,
							 PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("pg_mig.default_batch_size",
							"Default batch_size of mig_start_backfill.",
							NULL, &mig_default_batch_size, 1000, 1, MIG_MAX_BATCH_SIZE,
							PGC_USERSET, 0, NULL, NULL, NULL);

	/*
	 * Durations and sizes are integer settings with units, so ALTER SYSTEM
	 * and postgresql.conf take '2s' or '64MB' as for any setting of
	 * PostgreSQL's; their bounds are the bounds of the knobs.  SHOW prints
	 * durations with a unit, but the size in plain bytes (ShowPlainBytes).
	 */
	DefineCustomIntVariable("pg_mig.default_chunk_time",
							"Default chunk_time of mig_start_backfill (0 = fixed batch_size).",
							NULL, &mig_default_chunk_time_ms, 50, 0, MIG_MAX_CHUNK_TIME_MS,
							PGC_USERSET, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("pg_mig.default_max_lag",
							"Default max_lag of mig_start_backfill (0 = off).",
							NULL, &mig_default_max_lag_ms, 10000, 0, MIG_MAX_LAG_MS,
							PGC_USERSET, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("pg_mig.default_max_lag_bytes",
							"Default max_lag_bytes of mig_start_backfill (0 = off).",
							"A number without a unit is bytes.",
							&mig_default_max_lag_bytes, 64 * 1024 * 1024, 0, INT_MAX,
							PGC_USERSET, GUC_UNIT_BYTE, NULL, NULL, ShowPlainBytes);
	DefineCustomIntVariable("pg_mig.default_lock_timeout",
							"Default lock_timeout of mig_start_backfill.",
							NULL, &mig_default_lock_timeout_ms, 1000, 1, MIG_MAX_LOCK_TIMEOUT_MS,
							PGC_USERSET, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("pg_mig.default_statement_timeout",
							"Default statement_timeout of mig_start_backfill.",
							NULL, &mig_default_statement_timeout_ms, 60000, 1,
							MIG_MAX_STATEMENT_TIMEOUT_MS,
							PGC_USERSET, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("pg_mig.default_max_retries",
							"Default max_retries of mig_start_backfill.",
							NULL, &mig_default_max_retries, 10, 0, MIG_MAX_RETRIES,
							PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("pg_mig.default_vacuum_every",
							"Default vacuum_every of the jobs that walk rows: rows changed between the worker's VACUUMs of the table (0 = none, -1 = automatic).",
							"Automatic: a tenth of the table's estimated rows, at least 100000. The VACUUMs behind the walk let the later chunks reuse the space of the old row versions, so a full backfill does not double the table.",
							&mig_default_vacuum_every, -1, -1, INT_MAX,
							PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("pg_mig.max_events_per_job",
							"Number of events kept in the history of one job.",
							"Over it, the oldest throttled, unthrottled and changed events go first.",
							&mig_max_events_per_job, 1000, 10, 1000000,
							PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("pg_mig.max_kept_tables_per_role",
							"Number of tables of kept values (keep_old_values) one role may have in a database.",
							"A kept table stays until mig_forget drops it; a start with keep_old_values over the limit is refused.",
							&mig_max_kept_tables_per_role, 100, 0, 1000000,
							PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("pg_mig.timeline_interval",
							"Time between two samples of a job's history (mig_job_timeline).",
							"Samples get sparser as a job ages: at least a thousandth of its age apart.",
							&mig_timeline_interval_ms, 10000, 100, 3600000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomBoolVariable("pg_mig.lag_pacing",
							 "Whether jobs under a lag budget set their pace to hold the lag near it.",
							 "Off: the stop/go of pg_mig 0.3 (stop over the budget, go below half of it, chunks of up to half the budget's WAL), for comparison.",
							 &mig_lag_pacing, true,
							 PGC_SIGHUP, 0, NULL, NULL, NULL);
	MarkGUCPrefixReserved("pg_mig");
	RegisterXactCallback(MigXactCallback, NULL);
	RegisterSubXactCallback(MigSubXactCallback, NULL);
	MigInstallUpgradeHook();

	if (!process_shared_preload_libraries_in_progress)
		return;

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = MigShmemRequest;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = MigShmemStartup;
	MigRegisterLauncher();
}

/*
 * ShowPlainBytes: SHOW and current_setting() of pg_mig.default_max_lag_bytes
 * print the number of bytes without a unit.  The defaults of the SQL
 * functions of 0.1 and 0.2 read it with current_setting(...)::bigint,
 * before any C code runs; with the unit ('64MB') every call of theirs
 * failed between a package upgrade and ALTER EXTENSION UPDATE.  0.3's
 * defaults parse a unit and take the plain number as well.
 */
static const char *
ShowPlainBytes(void)
{
	static char buf[32];

	snprintf(buf, sizeof(buf), "%d", mig_default_max_lag_bytes);
	return buf;
}

static Size
MigShmemSize(void)
{
	return add_size(offsetof(MigSharedState, slots),
					mul_size(sizeof(MigWorkerSlot), mig_max_workers));
}

static void
MigShmemRequest(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MigShmemSize());
	RequestNamedLWLockTranche("pg_mig", 1);
}

static void
MigShmemStartup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	MigShared = ShmemInitStruct("pg_mig", MigShmemSize(), &found);
	if (!found)
	{
		memset(MigShared, 0, MigShmemSize());
		MigShared->lock = &(GetNamedLWLockTranche("pg_mig"))->lock;
		ConditionVariableInit(&MigShared->job_cv);
		MigShared->nslots = mig_max_workers;
		for (int i = 0; i < mig_max_workers; i++)
		{
			pg_atomic_init_u64(&MigShared->slots[i].app_over, 0);
			pg_atomic_init_u32(&MigShared->slots[i].app_running_over, 0);
		}
	}
	LWLockRelease(AddinShmemInitLock);
}

Datum
mig_version(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(PG_MIG_VERSION));
}

