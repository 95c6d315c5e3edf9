/*-------------------------------------------------------------------------
 *
 * launcher.c
 *	  The launcher, which starts the workers, and the scan, which tells the
 *	  launcher which jobs of one database should run.
 *
 * The launcher starts with the server once recovery has finished (so never
 * on a standby, and after a promotion), connected to no database.  It lists
 * the databases from the shared catalog pg_database and starts a short scan
 * worker in each, one at a time; a scan in a database where pg_mig is
 * installed posts a request for every queued or running job.  The launcher
 * also takes requests posted by mig_start_backfill and mig_resume at commit.
 * For each request it starts the job's worker, unless the job has one, or
 * pg_mig.max_workers are busy, or its owner already runs
 * pg_mig.max_workers_per_role (then the job stays queued, with a note that
 * mig_jobs.throttled shows).  When a worker it started stops, it scans that
 * database again, after a backoff that doubles while workers keep dying
 * young: a job whose worker died is started again; a job that ended is not.
 * A scan is bounded (lock and statement timeouts, and a deadline after
 * which the launcher ends it); a scan that did not finish is tried again
 * later, and the other databases are scanned meanwhile.  Everything one
 * iteration of the launcher allocates is freed at the next one.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_database.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"
#include "utils/timeout.h"
#include "utils/varlena.h"

#include "pg_mig.h"
#include "version_compat.h"

#define MAX_HANDLES			128
#define QUICK_DEATH_MS		10000
#define MAX_BACKOFF_MS		(5 * 60 * 1000)

/*
 * A scan waits at most SCAN_LOCK_TIMEOUT for a lock (connecting to a
 * database waits for its lock: an open ALTER DATABASE ... RENAME holds it)
 * and runs at most SCAN_STATEMENT_TIMEOUT; a scan that is still there
 * after SCAN_DEADLINE_MS is terminated by the launcher.  A scan that did
 * not finish is tried again after SCAN_RETRY_MS, and the other databases
 * are scanned meanwhile.
 */
#define SCAN_LOCK_TIMEOUT		"5s"
#define SCAN_STATEMENT_TIMEOUT	"30s"
#define SCAN_DEADLINE_MS		60000
#define SCAN_RETRY_MS			10000

/* a worker or scan the launcher started */
typedef struct LaunchedWorker
{
	bool		in_use;
	BackgroundWorkerHandle *handle;
	Oid			dboid;
	int64		job_id;			/* 0 = a scan */
	int			lane;
	Oid			owner;
	TimestampTz started;
} LaunchedWorker;

/* a database to scan, not before a time */
typedef struct ScanDue
{
	Oid			dboid;
	TimestampTz not_before;
} ScanDue;

static LaunchedWorker launched[MAX_HANDLES];
/* the scans due, one per database, as many as there are databases */
static ScanDue *scans = NULL;
static int	nscans = 0;
static int	maxscans = 0;
static MigRequest pending[MIG_MAX_REQUESTS * 2];
static int	npending = 0;
static int	quick_deaths = 0;
static MemoryContext loop_context;	/* reset at every iteration */

/*
 * The job published as waiting for a free worker (MigSetStarved), and the
 * one a worker already gave way for: that one is not published again while
 * it waits, or every throttled worker would give way for the same job.
 */
static bool starved_published = false;
static MigRequest starved;
static MigRequest given;

static void ScheduleScan(Oid dboid, TimestampTz not_before);
static void ScheduleAllDatabases(void);
static void TakeRequests(void);
static void StartPendingWorkers(void);
static void StartDueScan(void);
static void ReapStopped(void);
static void EndOverdueScan(void);
static bool Launch(Oid dboid, int64 job_id, Oid owner, int lane);
static char *RoleName(Oid roleid);
static char *OwnerCannotRunHere(Oid owner, const char *owner_name);

/*
 * MigRegisterLauncher registers the launcher.  Called from _PG_init while
 * shared_preload_libraries are loaded.
 */
void
MigRegisterLauncher(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 10;
	strlcpy(worker.bgw_library_name, "pg_mig", BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, "mig_launcher_main", BGW_MAXLEN);
	strlcpy(worker.bgw_name, MIG_LAUNCHER_TYPE, BGW_MAXLEN);
	strlcpy(worker.bgw_type, MIG_LAUNCHER_TYPE, BGW_MAXLEN);
	RegisterBackgroundWorker(&worker);
}

/*
 * mig_launcher_main is the launcher's main loop.
 */
void
mig_launcher_main(Datum main_arg)
{
	TimestampTz next_rescan;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	MigPinSession();

	LWLockAcquire(MigShared->lock, LW_EXCLUSIVE);
	MigShared->launcher_pid = MyProcPid;
	MigShared->launcher_latch = MyLatch;
	LWLockRelease(MigShared->lock);

	/*
	 * Everything one iteration allocates (notes, lists, ...) goes into
	 * loop_context, which is reset at the start of the next one (as in
	 * pg_cron's launcher); what lives longer is allocated in
	 * TopMemoryContext explicitly.
	 */
	loop_context = AllocSetContextCreate(TopMemoryContext, "pg_mig launcher loop",
										 ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(loop_context);
	ScheduleAllDatabases();
	next_rescan = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), mig_naptime_s * 1000L);

	for (;;)
	{
		MemoryContextSwitchTo(loop_context);
		MemoryContextReset(loop_context);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		if (GetCurrentTimestamp() >= next_rescan)
		{
			ScheduleAllDatabases();
			next_rescan = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													  mig_naptime_s * 1000L);
		}
		EndOverdueScan();
		ReapStopped();
		TakeRequests();
		StartPendingWorkers();
		StartDueScan();

		/* (sampling the application's statements for max_app_latency) */
		(void) MigAppLatencyWait(500L, MigWaitEvent(MIG_WAIT_LAUNCHER));
		ResetLatch(MyLatch);
	}
}

/* ScheduleScan: scan dboid once not_before has passed */
static void
ScheduleScan(Oid dboid, TimestampTz not_before)
{
	for (int i = 0; i < nscans; i++)
	{
		if (scans[i].dboid == dboid)
		{
			scans[i].not_before = Min(scans[i].not_before, not_before);
			return;
		}
	}
	if (nscans >= maxscans)
	{
		int			grown = Max(maxscans * 2, MIG_MAX_DATABASES);

		scans = scans == NULL ?
			MemoryContextAlloc(TopMemoryContext, sizeof(ScanDue) * grown) :
			repalloc(scans, sizeof(ScanDue) * grown);
		maxscans = grown;
	}
	scans[nscans].dboid = dboid;
	scans[nscans].not_before = not_before;
	nscans++;
}

/* DatabaseAllowed: pg_mig.databases is empty or lists the database */
static bool
DatabaseAllowed(const char *name)
{
	char	   *copy;
	List	   *names;
	ListCell   *lc;
	bool		found = false;

	if (mig_databases == NULL || mig_databases[0] == '\0')
		return true;
	copy = pstrdup(mig_databases);
	if (!SplitIdentifierString(copy, ',', &names))
		return false;
	foreach(lc, names)
		if (strcmp(lfirst(lc), name) == 0)
			found = true;
	return found;
}

/*
 * ScheduleAllDatabases schedules a scan of every database that allows
 * connections and that pg_mig.databases lets the launcher look in.
 */
static void
ScheduleAllDatabases(void)
{
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tuple;
	TimestampTz now = GetCurrentTimestamp();
	List	   *dbs = NIL;
	ListCell   *lc;
	MemoryContext ctx = CurrentMemoryContext;

	StartTransactionCommand();
	(void) GetTransactionSnapshot();
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while (HeapTupleIsValid(tuple = heap_getnext(scan, ForwardScanDirection)))
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tuple);

		if (!db->datallowconn || db->datistemplate)
			continue;
		if (!DatabaseAllowed(NameStr(db->datname)))
			continue;
		{
			MemoryContext old = MemoryContextSwitchTo(ctx);

			dbs = lappend_oid(dbs, db->oid);
			MemoryContextSwitchTo(old);
		}
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	CommitTransactionCommand();
	MemoryContextSwitchTo(ctx);

	foreach(lc, dbs)
		ScheduleScan(lfirst_oid(lc), now);
	list_free(dbs);

	LWLockAcquire(MigShared->lock, LW_EXCLUSIVE);
	MigShared->rescan_all = false;
	LWLockRelease(MigShared->lock);
}

/* TakeRequests moves the shared requests into the launcher's own list */
static void
TakeRequests(void)
{
	bool		rescan;

	LWLockAcquire(MigShared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < MigShared->nrequests; i++)
	{
		MigRequest *r = &MigShared->requests[i];

		if (r->job_id == 0)
			ScheduleScan(r->dboid, 0);
		else
		{
			bool		dup = false;

			for (int j = 0; j < npending; j++)
				if (pending[j].dboid == r->dboid && pending[j].job_id == r->job_id)
				{
					pending[j].lanes |= r->lanes;
					dup = true;
				}
			if (!dup && npending < lengthof(pending))
				pending[npending++] = *r;
			else if (!dup)
				MigShared->rescan_all = true;
		}
	}
	MigShared->nrequests = 0;
	rescan = MigShared->rescan_all;
	LWLockRelease(MigShared->lock);
	if (rescan)
		ScheduleAllDatabases();
}

/* Busy: a slot or a launched, not yet claimed worker for the job's lane */
static bool
Busy(Oid dboid, int64 job_id, int lane)
{
	if (MigLaneWorkerPid(dboid, job_id, lane) != 0)
		return true;
	for (int i = 0; i < MAX_HANDLES; i++)
		if (launched[i].in_use && launched[i].dboid == dboid &&
			launched[i].job_id == job_id && launched[i].lane == lane)
			return true;
	return false;
}

static int
WorkersInUse(void)
{
	int			n = 0;

	for (int i = 0; i < MAX_HANDLES; i++)
		if (launched[i].in_use && launched[i].job_id != 0)
			n++;
	LWLockAcquire(MigShared->lock, LW_SHARED);
	{
		int			slots = 0;

		for (int i = 0; i < MigShared->nslots; i++)
			if (MigShared->slots[i].in_use)
				slots++;
		n = Max(n, slots);
	}
	LWLockRelease(MigShared->lock);
	return n;
}

/* RoleWorkers: the job workers the launcher started for owner, still there */
static int
RoleWorkers(Oid owner)
{
	int			n = 0;

	for (int i = 0; i < MAX_HANDLES; i++)
		if (launched[i].in_use && launched[i].job_id != 0 && launched[i].owner == owner)
			n++;
	return n;
}

/*
 * RoleName: the name of a role, for the notes; the launcher is connected
 * to no database, but pg_authid is a shared catalog.
 */
static char *
RoleName(Oid roleid)
{
	MemoryContext ctx = CurrentMemoryContext;
	char	   *name;

	StartTransactionCommand();
	name = GetUserNameFromId(roleid, true);
	name = MemoryContextStrdup(ctx, name ? name : "?");
	CommitTransactionCommand();
	MemoryContextSwitchTo(ctx);
	return name;
}

/*
 * StartPendingWorkers starts a worker for each pending request while
 * pg_mig.max_workers and pg_mig.max_workers_per_role allow; the others
 * wait, with a note.  The first request that waits only for a free worker
 * is published (MigSetStarved), so that a long-throttled job of another
 * role can give its worker back.
 */
static void
StartPendingWorkers(void)
{
	int			kept = 0;
	bool		given_waits = false;
	MigRequest	candidate = {InvalidOid, 0, InvalidOid, 0};

	if (starved_published && MigStarvedTaken())
		given = starved;
	for (int i = 0; i < npending; i++)
	{
		MigRequest *r = &pending[i];
		bool		is_given = (r->dboid == given.dboid && r->job_id == given.job_id);
		bool		parallel = (r->lanes & ~MIG_LANE_BIT(0)) != 0;
		char	   *note = NULL;
		int			waiting = 0;

		/* each lane asked for (lane 0: the one walker of a job) */
		for (int lane = 0; lane <= MIG_MAX_LANES; lane++)
		{
			int			role_workers;

			if ((r->lanes & MIG_LANE_BIT(lane)) == 0)
				continue;
			if (Busy(r->dboid, r->job_id, lane))
			{
				r->lanes &= ~MIG_LANE_BIT(lane);
				continue;
			}
			role_workers = RoleWorkers(r->owner);
			if (WorkersInUse() >= mig_max_workers)
			{
				note = psprintf("waiting for a free pg_mig worker (pg_mig.max_workers = %d)",
								mig_max_workers);
				/* a role below its own limit may take a throttled job's worker */
				if (is_given)
					given_waits = true;
				else if (candidate.job_id == 0 &&
						 role_workers < mig_max_workers_per_role)
					candidate = *r;
				waiting++;
				continue;
			}
			if (role_workers >= mig_max_workers_per_role)
			{
				note = psprintf("waiting: role %s already runs %d worker%s (pg_mig.max_workers_per_role = %d)",
								RoleName(r->owner), role_workers,
								role_workers == 1 ? "" : "s", mig_max_workers_per_role);
				waiting++;
				continue;
			}
			if (!Launch(r->dboid, r->job_id, r->owner, lane))
			{
				note = "no free background worker slot; raise max_worker_processes";
				waiting++;
				continue;
			}
			r->lanes &= ~MIG_LANE_BIT(lane);
		}
		if (note != NULL && parallel)
			note = psprintf("%d lane%s: %s", waiting, waiting == 1 ? "" : "s", note);
		if (r->lanes != 0)
		{
			if (note)
				MigSetNote(r->dboid, r->job_id, note);
			pending[kept++] = *r;
		}
		else if (parallel)
			MigSetNote(r->dboid, r->job_id, NULL);	/* every lane has its worker */
	}
	npending = kept;
	if (!given_waits)
		memset(&given, 0, sizeof(given));
	MigSetStarved(candidate.owner, candidate.job_id);
	starved_published = (candidate.job_id != 0);
	starved = candidate;
}

/* StartDueScan starts one scan whose time has come, if none runs */
static void
StartDueScan(void)
{
	TimestampTz now = GetCurrentTimestamp();

	for (int i = 0; i < MAX_HANDLES; i++)
		if (launched[i].in_use && launched[i].job_id == 0)
			return;				/* one scan at a time */
	for (int i = 0; i < nscans; i++)
	{
		if (scans[i].not_before > now)
			continue;
		if (Launch(scans[i].dboid, 0, InvalidOid, 0))
			scans[i] = scans[--nscans];
		return;
	}
}

/*
 * Launch registers a worker (job_id > 0) or a scan (job_id = 0).  Returns
 * false if no background worker slot is free.
 */
static bool
Launch(Oid dboid, int64 job_id, Oid owner, int lane)
{
	BackgroundWorker worker;
	MigWorkerArgs args;
	int			slot = -1;

	for (int i = 0; i < MAX_HANDLES && slot < 0; i++)
		if (!launched[i].in_use)
			slot = i;
	if (slot < 0)
		return false;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	strlcpy(worker.bgw_library_name, "pg_mig", BGW_MAXLEN);
	if (job_id > 0)
	{
		strlcpy(worker.bgw_function_name, "mig_worker_main", BGW_MAXLEN);
		if (lane > 0)
			snprintf(worker.bgw_name, BGW_MAXLEN,
					 "pg_mig worker for job " INT64_FORMAT " lane %d", job_id, lane);
		else
			snprintf(worker.bgw_name, BGW_MAXLEN, "pg_mig worker for job " INT64_FORMAT, job_id);
		strlcpy(worker.bgw_type, MIG_WORKER_TYPE, BGW_MAXLEN);
	}
	else
	{
		strlcpy(worker.bgw_function_name, "mig_scan_main", BGW_MAXLEN);
		snprintf(worker.bgw_name, BGW_MAXLEN, "pg_mig scan of database %u", dboid);
		strlcpy(worker.bgw_type, MIG_SCAN_TYPE, BGW_MAXLEN);
	}
	worker.bgw_main_arg = Int64GetDatum(job_id);
	args.dboid = dboid;
	args.owner = owner;
	args.lane = lane;
	memcpy(worker.bgw_extra, &args, sizeof(args));
	worker.bgw_notify_pid = MyProcPid;

	if (job_id == 0)
	{
		LWLockAcquire(MigShared->lock, LW_EXCLUSIVE);
		MigShared->scan_done_db = InvalidOid;
		LWLockRelease(MigShared->lock);
	}
	{
		/* the handle lives until ReapStopped, past this iteration */
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
		bool		ok = RegisterDynamicBackgroundWorker(&worker, &launched[slot].handle);

		MemoryContextSwitchTo(old);
		if (!ok)
			return false;
	}
	launched[slot].in_use = true;
	launched[slot].dboid = dboid;
	launched[slot].job_id = job_id;
	launched[slot].lane = lane;
	launched[slot].owner = owner;
	launched[slot].started = GetCurrentTimestamp();
	return true;
}

/*
 * ReapStopped forgets the workers that stopped, and scans the database of
 * each stopped job worker again, after a backoff if workers die young.
 */
static void
ReapStopped(void)
{
	TimestampTz now = GetCurrentTimestamp();

	for (int i = 0; i < MAX_HANDLES; i++)
	{
		pid_t		pid;
		bool		clean;

		if (!launched[i].in_use)
			continue;
		if (GetBackgroundWorkerPid(launched[i].handle, &pid) != BGWH_STOPPED)
			continue;
		launched[i].in_use = false;
		pfree(launched[i].handle);
		if (launched[i].job_id == 0)
		{
			bool		done;

			LWLockAcquire(MigShared->lock, LW_SHARED);
			done = (MigShared->scan_done_db == launched[i].dboid);
			LWLockRelease(MigShared->lock);
			if (!done)
			{
				/* it failed, timed out or was terminated: again, later */
				ereport(LOG,
						(errmsg("pg_mig scan of database %u did not finish; it is tried again in %d s",
								launched[i].dboid, SCAN_RETRY_MS / 1000)));
				ScheduleScan(launched[i].dboid,
							 TimestampTzPlusMilliseconds(now, SCAN_RETRY_MS));
			}
			continue;
		}
		/*
		 * A worker that ended by itself (its job or lane done, paused, ...)
		 * did not die: only workers that die young back the scans off.  The
		 * clean ends are counted, not matched to their worker; a crash at
		 * the same moment as a clean end only misses one step of backoff.
		 */
		clean = MigTakeCleanExit();
		if (clean || TimestampDifferenceExceeds(launched[i].started, now, QUICK_DEATH_MS))
		{
			quick_deaths = 0;
			ScheduleScan(launched[i].dboid, now);
		}
		else
		{
			long		backoff = Min(1000L << Min(quick_deaths, 20), (long) MAX_BACKOFF_MS);

			quick_deaths++;
			ScheduleScan(launched[i].dboid, TimestampTzPlusMilliseconds(now, backoff));
		}
	}
}

/*
 * EndOverdueScan terminates a scan that has run for longer than
 * SCAN_DEADLINE_MS (it waits for something its own timeouts do not
 * cover); ReapStopped then schedules that database again, and the
 * launcher goes on with the others.
 */
static void
EndOverdueScan(void)
{
	TimestampTz now = GetCurrentTimestamp();

	for (int i = 0; i < MAX_HANDLES; i++)
	{
		if (!launched[i].in_use || launched[i].job_id != 0)
			continue;
		if (TimestampDifferenceExceeds(launched[i].started, now, SCAN_DEADLINE_MS))
		{
			ereport(LOG,
					(errmsg("pg_mig scan of database %u takes longer than %d s; ending it",
							launched[i].dboid, SCAN_DEADLINE_MS / 1000)));
			TerminateBackgroundWorker(launched[i].handle);
		}
	}
}

/*
 * OwnerCannotRunHere says why a job of owner cannot run in this database
 * (NULL: it can): MigOwnerProblem (gone, renamed away from its OID, cannot
 * log in, expired), or no CONNECT privilege, with which the worker would
 * not get past connecting and would be started again and again with no
 * error recorded.
 */
static char *
OwnerCannotRunHere(Oid owner, const char *owner_name)
{
	char	   *problem = MigOwnerProblem(owner, owner_name);

	if (problem == NULL &&
		MigDatabaseAclCheck(MyDatabaseId, owner, ACL_CONNECT) != ACLCHECK_OK)
		problem = psprintf("role \"%s\" may no longer connect to database \"%s\"",
						   owner_name ? owner_name : GetUserNameFromId(owner, false),
						   get_database_name(MyDatabaseId));
	return problem;
}

/*
 * ArmScanTimeouts bounds the scan: lock waits (connecting to the database
 * included) and its statements.  Called before connecting; the settings
 * win over the database's and the role's.
 */
static void
ArmScanTimeouts(void)
{
	SetConfigOption("lock_timeout", SCAN_LOCK_TIMEOUT, PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("statement_timeout", SCAN_STATEMENT_TIMEOUT, PGC_SUSET, PGC_S_OVERRIDE);
}

/*
 * mig_scan_main is the scan of one database: it posts a request for every
 * queued or running job, and fails the jobs whose owner may not run them
 * (MigOwnerProblem: gone, renamed away from its OID, cannot log in).  It
 * runs as the bootstrap superuser, so its search_path is pinned before it
 * runs any statement.
 */
void
mig_scan_main(Datum main_arg)
{
	MigWorkerArgs args;
	Oid			extoid;
	char	   *version;
	char	   *held;

	memcpy(&args, MyBgworkerEntry->bgw_extra, sizeof(args));
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	ArmScanTimeouts();
	BackgroundWorkerInitializeConnectionByOid(args.dboid, InvalidOid, 0);
	/* the database's and role's search_path must not reach our statements */
	MigPinSession();

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	enable_timeout_after(STATEMENT_TIMEOUT, StatementTimeout);
	PushActiveSnapshot(GetTransactionSnapshot());
	extoid = get_extension_oid(PG_MIG_EXTENSION_NAME, true);
	/*
	 * The version read once: a DROP EXTENSION that commits after the look
	 * above leaves none (the catalog is read afresh once a lock is taken).
	 */
	version = OidIsValid(extoid) ? MigInstalledVersion() : NULL;
	if (version == NULL)
		extoid = InvalidOid;
	else if ((held = MigReadOnlyProblem(true)) != NULL)
	{
		/* write nothing here: the jobs wait, and say why */
		MigNoteUnfinishedJobs(psprintf(MIG_READ_ONLY_NOTE, held));
		elog(DEBUG1, "pg_mig: not running the jobs of database \"%s\": %s",
			 get_database_name(MyDatabaseId), held);
		extoid = InvalidOid;
	}
	else if (strcmp(version, PG_MIG_VERSION) != 0)
	{
		/*
		 * its jobs wait for ALTER EXTENSION UPDATE (the tables lack
		 * columns), and say so in mig_jobs.throttled
		 */
		MigNoteJobsAwaitUpdate(version);
		ereport(LOG,
				(errmsg("pg_mig: not running the jobs of database \"%s\": extension pg_mig is at version %s, the library at %s",
						get_database_name(MyDatabaseId), version, PG_MIG_VERSION),
				 errhint("Run ALTER EXTENSION pg_mig UPDATE in that database.")));
		extoid = InvalidOid;
	}
	if (OidIsValid(extoid))
	{
		char	   *sql;
		int64	   *jobs;
		Oid		   *owners;
		char	  **owner_names;
		uint64	   *lanes;
		uint64		n;

		MigClearUpdateNotes();
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		/* the lanes of a parallel job not done yet, as a bit mask */
		sql = psprintf("SELECT j.job_id, j.owner, j.owner_name::pg_catalog.text,"
					   " CASE WHEN j.parallel OPERATOR(pg_catalog.>) 1 THEN"
					   "  COALESCE((SELECT pg_catalog.sum(1::pg_catalog.int8 OPERATOR(pg_catalog.<<) l.lane)"
					   "              FROM %s l WHERE l.job_id OPERATOR(pg_catalog.=) j.job_id"
					   "               AND NOT l.done), 0)::pg_catalog.int8"
					   "  ELSE 1::pg_catalog.int8 END"
					   " FROM %s j"
					   " WHERE j.state OPERATOR(pg_catalog.=) ANY ('{queued,running}'::pg_catalog.text[])"
					   " ORDER BY j.job_id", MigQualifiedTable(MIG_LANE_TABLE),
					   MigQualifiedTable(MIG_JOB_TABLE));
		if (SPI_execute(sql, true, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not list pg_mig jobs");
		n = SPI_processed;
		jobs = MemoryContextAlloc(TopMemoryContext, sizeof(int64) * (n + 1));
		owners = MemoryContextAlloc(TopMemoryContext, sizeof(Oid) * (n + 1));
		owner_names = MemoryContextAllocZero(TopMemoryContext, sizeof(char *) * (n + 1));
		lanes = MemoryContextAlloc(TopMemoryContext, sizeof(uint64) * (n + 1));
		for (uint64 i = 0; i < n; i++)
		{
			bool		isnull;

			jobs[i] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i],
												  SPI_tuptable->tupdesc, 1, &isnull));
			owners[i] = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i],
													   SPI_tuptable->tupdesc, 2, &isnull));
			lanes[i] = (uint64) DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i],
															 SPI_tuptable->tupdesc, 4, &isnull));
			/* every lane done: one worker finishes the job */
			if (lanes[i] == 0)
				lanes[i] = MIG_LANE_BIT(1);
			(void) SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 3, &isnull);
			if (!isnull)
				owner_names[i] = MemoryContextStrdup(TopMemoryContext,
													 SPI_getvalue(SPI_tuptable->vals[i],
																  SPI_tuptable->tupdesc, 3));
		}
		SPI_finish();
		for (uint64 i = 0; i < n; i++)
		{
			char	   *problem = OwnerCannotRunHere(owners[i], owner_names[i]);

			if (problem)
			{
				MigSetState(jobs[i], MIG_STATE_FAILED, problem);
				MigRecordEvent(jobs[i], "failed", problem);
				MigSetNote(MyDatabaseId, jobs[i], NULL);
			}
			else if ((held = MigOwnerReadOnlyProblem(owners[i])) != NULL)
				MigSetNote(MyDatabaseId, jobs[i], psprintf(MIG_READ_ONLY_NOTE, held));
			else
				MigPostRequest(MyDatabaseId, jobs[i], owners[i], lanes[i]);
		}
	}
	PopActiveSnapshot();
	disable_timeout(STATEMENT_TIMEOUT, false);
	CommitTransactionCommand();
	LWLockAcquire(MigShared->lock, LW_EXCLUSIVE);
	MigShared->scan_done_db = MyDatabaseId;
	LWLockRelease(MigShared->lock);
	MigBroadcastJobChange();
	proc_exit(0);
}
