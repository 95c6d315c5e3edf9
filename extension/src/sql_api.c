/*-------------------------------------------------------------------------
 *
 * sql_api.c
 *	  The SQL-callable functions of job control: mig_pause, mig_resume,
 *	  mig_cancel, mig_wait and mig_set, and the knobs' one check for every
 *	  start function (the start functions are in the kinds' files,
 *	  kind_*.c, on start.c's plumbing).
 *
 * Every argument is checked here, in the caller's transaction, before a job
 * is made or changed; a bad one is an ERROR and nothing is written.  Who
 * may control a job is decided in one place, MigCheckJobControl (guard.c).
 * The workers are woken, and the launcher asked to start one, only when
 * the caller's transaction commits.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/relation.h"
#include "access/table.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "catalog/partition.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/condition_variable.h"
#include "storage/ipc.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "tcop/pquery.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/portal.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "pg_mig.h"
#include "version_compat.h"

PG_FUNCTION_INFO_V1(mig_pause);
PG_FUNCTION_INFO_V1(mig_resume);
PG_FUNCTION_INFO_V1(mig_cancel);
PG_FUNCTION_INFO_V1(mig_wait);
PG_FUNCTION_INFO_V1(mig_set);

static void CheckKnob(MigKnob k, Datum arg, const char *setting, MigKnobValue *v);
static MigJob *LoadJobOrError(int64 job_id, bool for_update);
static void CheckNotFinished(const MigJob *job, const char *action);

/*
 * InvalidKnob raises the error for a bad knob value: fmt is the whole
 * message, its first %s the knob's name (or the setting's), then the
 * values of its other conversions.  setting is the pg_mig.default_*
 * setting the value came from, or NULL if it was given.
 */
#define InvalidKnob(name, setting, fmt, ...) \
	ereport(ERROR, \
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE), \
			 errmsg(fmt, (setting) ? (setting) : (name), ##__VA_ARGS__), \
			 (setting) ? \
			 errdetail("%s was not given, so it takes the value of setting %s.", \
					   (name), (setting)) : 0, \
			 (setting) ? \
			 errhint("Change the setting %s, or pass %s => ... explicitly.", \
					 (setting), (name)) : \
			 errhint("See the pg_mig README for the meaning and range of each argument.")))

/*
 * MigCheckTextLength raises an error if a clause or text knob is longer than
 * MIG_MAX_TEXT_KNOB bytes: the worker stores and runs each of them for every
 * chunk.  NULL (an absent clause) passes.
 */
void
MigCheckTextLength(const char *name, const char *s)
{
	size_t		len;

	if (s == NULL)
		return;
	len = strlen(s);

	if (len > MIG_MAX_TEXT_KNOB)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("%s is too long", name),
				 errdetail("It has %zu bytes; at most %d are allowed.",
						   len, MIG_MAX_TEXT_KNOB),
				 errhint("Move long logic into a function and call that function instead.")));
}

/*
 * CheckKnob checks one knob value (not NULL) and converts it.  This is the
 * one check of every knob, whether given (mig_start_backfill, mig_set) or
 * taken from a pg_mig.default_* setting (setting is then its name).
 */
static void
CheckKnob(MigKnob k, Datum arg, const char *setting, MigKnobValue *v)
{
	const MigKnobSpec *spec = &MigKnobs[k];
	bool		optional = (spec->flags & MIG_KNOB_OPTIONAL) != 0;

	memset(v, 0, sizeof(*v));
	v->datum = arg;
	switch (spec->kind)
	{
		case MIG_KNOB_KIND_INT:
		case MIG_KNOB_KIND_BIGINT:
			v->i = spec->kind == MIG_KNOB_KIND_INT ? DatumGetInt32(arg) : DatumGetInt64(arg);
			if (v->i < 0)
				InvalidKnob(spec->name, setting, "%s must not be negative");
			if (v->i == 0 && (spec->flags & MIG_KNOB_POSITIVE))
				InvalidKnob(spec->name, setting, "%s must be a positive integer");
			if (spec->max > 0 && v->i > spec->max)
				InvalidKnob(spec->name, setting, "%s must be at most " INT64_FORMAT, spec->max);
			v->off = optional && v->i == 0;
			break;
		case MIG_KNOB_KIND_INTERVAL:
			{
				Interval   *iv = DatumGetIntervalP(arg);

				if (iv->month < 0 || iv->day < 0 || iv->time < 0)
					InvalidKnob(spec->name, setting, "%s must not be negative");
				if (iv->month > 1200 || iv->day > 36500)
					InvalidKnob(spec->name, setting, "%s is too large");
				v->i = MigIntervalToMs(arg);
				if (spec->max > 0 && v->i > spec->max)
					InvalidKnob(spec->name, setting, "%s must be at most %s",
								DatumGetCString(DirectFunctionCall1(interval_out,
																	MigMsToInterval(spec->max))));
				if (v->i == 0 && (spec->flags & MIG_KNOB_POSITIVE))
					InvalidKnob(spec->name, setting, "%s must be positive");
				if (k == KNOB_max_app_latency && v->i == 0 && iv->time > 0)
					InvalidKnob(spec->name, setting, "%s must be at least 1 millisecond, or 0 to turn it off");
				if (k == KNOB_max_app_latency && v->i > 0)
					MigCheckAppLatencySignal();
				v->off = optional && v->i == 0;
			}
			break;
		case MIG_KNOB_KIND_FLOAT:
			v->f = DatumGetFloat8(arg);
			if (isnan(v->f) || isinf(v->f) || v->f < 0 || v->f > (double) spec->max)
				InvalidKnob(spec->name, setting, "%s must be between 0 and %g", (double) spec->max);
			v->off = (v->f == 0);
			break;
		case MIG_KNOB_KIND_TEXT:
			v->s = TextDatumGetCString(arg);
			MigCheckTextLength(spec->name, v->s);
			v->off = (v->s[strspn(v->s, " \t\r\n")] == '\0');
			if (!v->off && k == KNOB_run_window)
			{
				char	   *msg = NULL;

				if (!MigRunWindowValid(v->s, &msg))
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("%s", msg ? msg : "invalid run_window"),
							 errhint("Write run windows like '01:00-05:00', 'mon-fri 22:00-06:00; sat-sun 00:00-24:00' or '22:00-06:00 Europe/Berlin'.")));
			}
			if (!v->off && k == KNOB_throttle_query)
			{
				/* stored (also by mig_set, from datum) and run as resolved */
				v->s = MigResolveThrottleQuery(v->s);
				v->datum = CStringGetTextDatum(v->s);
			}
			break;
		case MIG_KNOB_KIND_TEXT_ARRAY:
			{
				ArrayType  *arr = DatumGetArrayTypeP(arg);
				Datum	   *elems;
				bool	   *nulls;
				int			n;
				size_t		total = 0;

				if (ARR_NDIM(arr) > 1)
					InvalidKnob(spec->name, setting, "%s must be a one-dimensional array");
				deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT,
								  &elems, &nulls, &n);
				for (int i = 0; i < n; i++)
				{
					char	   *item;

					if (nulls[i])
						InvalidKnob(spec->name, setting, "%s must not contain NULL");
					item = TextDatumGetCString(elems[i]);
					MigCheckTextLength(psprintf("%s entry", spec->name), item);
					total += strlen(item) + 1;
					if (total > MIG_MAX_TEXT_KNOB)
						ereport(ERROR,
								(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
								 errmsg("%s is too long", spec->name),
								 errdetail("Its entries have more than %d bytes together.",
										   MIG_MAX_TEXT_KNOB),
								 errhint("List fewer replication slots.")));
					v->list = lappend(v->list, item);
				}
				v->off = (n == 0);
			}
			break;
		case MIG_KNOB_KIND_BOOL:
			v->i = DatumGetBool(arg);
			break;
	}
}

/*
 * DefaultKnob checks and returns the value a knob takes when its argument
 * is NULL or absent: its pg_mig.default_* setting where knobs.def says so
 * (MIG_KNOB_NULL_TAKES_SETTING; vacuum_every's -1 is "automatic", resolved
 * by MigResolveVacuumEvery when the job is stored), else 0, which is off
 * for every optional limit, no sleep and no autovacuum throttle.  Values
 * from a setting go through CheckKnob like given ones.
 */
static void
DefaultKnob(MigKnob k, MigKnobValue *v)
{
	const MigKnobSpec *spec = &MigKnobs[k];
	int64		setting = 0;
	Datum		arg = (Datum) 0;

	memset(v, 0, sizeof(*v));
	v->off = true;
	if (!(spec->flags & MIG_KNOB_NULL_TAKES_SETTING))
		return;
	switch (k)
	{
#define MIG_KNOB(name, kind, ctype, field, sqltype, unit, max, flags, setting_name, setting_var, sql_default, option, help) \
		case KNOB_##name: \
			setting = (int64) (setting_var); \
			break;
#include "knobs.def"
#undef MIG_KNOB
		case KNOB_COUNT:
			break;
	}
	if (setting < 0)
	{
		/* automatic (vacuum_every): MigResolveVacuumEvery, when stored */
		v->off = false;
		v->i = -1;
		return;
	}
	switch (spec->kind)
	{
		case MIG_KNOB_KIND_INT:
			arg = Int32GetDatum((int32) setting);
			break;
		case MIG_KNOB_KIND_BIGINT:
			arg = Int64GetDatum(setting);
			break;
		case MIG_KNOB_KIND_INTERVAL:
			arg = MigMsToInterval(setting);
			break;
		default:
			elog(ERROR, "pg_mig knob \"%s\" cannot take a setting", spec->name);
	}
	CheckKnob(k, arg, spec->setting, v);
}

/*
 * CheckOwnerCanRun checks that a worker may run a job as the role (see
 * MigOwnerProblem): it exists, may log in, and its password has not
 * expired.
 */
static void
CheckOwnerCanRun(Oid owner)
{
	char	   *problem = MigOwnerProblem(owner, NULL);
	Oid			session_user = GetSessionUserId();

	if (problem == NULL)
		return;
	/* a group role taken on by SET ROLE, or by the login role's settings */
	if (session_user != owner && MigOwnerProblem(session_user, NULL) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
				 errmsg("%s", problem),
				 errdetail("A job runs in a background worker as the role that starts it."),
				 errhint("Run SET ROLE NONE first to start the job as role \"%s\", the role you logged in as.",
						 GetUserNameFromId(session_user, false))));
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
			 errmsg("%s", problem),
			 errdetail("A job runs in a background worker as the role that starts it."),
			 errhint("Start the job as a role that may log in.")));
}

/* LoadJobOrError: the job, or an ERROR that says there is no such job */
static MigJob *
LoadJobOrError(int64 job_id, bool for_update)
{
	MigJob	   *job;

	MigRequireShared();
	job = MigLoadJob(job_id, for_update);
	if (job == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("job " INT64_FORMAT " does not exist", job_id),
				 errhint("See the jobs of this database in mig_jobs.")));
	MigLoadJobKind(job);
	return job;
}

static void
CheckNotFinished(const MigJob *job, const char *action)
{
	if (MigStateIsFinal(job->state))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg(MigActionFormat(action, MIG_MSG_FINISHED),
						job->job_id, MigStateName(job->state)),
				 errhint("Start a new job with %s().", MigKindStartFunction(job->kind))));
}

static char *
ActorDetail(void)
{
	return psprintf("by %s", GetUserNameFromId(GetUserId(), false));
}

/*
 * mig_pause pauses a queued, running or failed job: no chunk starts after
 * the caller commits (a chunk running now finishes first).
 */
Datum
mig_pause(PG_FUNCTION_ARGS)
{
	int64		job_id = PG_GETARG_INT64(0);
	MigJob	   *job = LoadJobOrError(job_id, true);

	MigCheckJobControl(job, "pause", MIG_CONTROL_STOP);
	CheckNotFinished(job, "pause");
	if (job->state == MIG_STATE_PAUSED)
	{
		ereport(NOTICE,
				(errmsg("job " INT64_FORMAT " is already paused", job_id)));
		PG_RETURN_VOID();
	}
	MigSetState(job_id, MIG_STATE_PAUSED, NULL);
	MigRecordEvent(job_id, "paused", ActorDetail());
	MigWakeWorkerAtCommit(MyDatabaseId, job_id);
	PG_RETURN_VOID();
}

/*
 * mig_resume queues a paused or failed job again; it goes on from its
 * checkpoint.  A forgotten job stays as it is.
 */
Datum
mig_resume(PG_FUNCTION_ARGS)
{
	int64		job_id = PG_GETARG_INT64(0);
	MigJob	   *job = LoadJobOrError(job_id, true);

	MigCheckJobControl(job, "resume", MIG_CONTROL_RUN);
	CheckNotFinished(job, "resume");
	if (job->state == MIG_STATE_QUEUED || job->state == MIG_STATE_RUNNING)
	{
		ereport(NOTICE,
				(errmsg("job " INT64_FORMAT " is already %s", job_id,
						MigStateName(job->state))));
		PG_RETURN_VOID();
	}
	if (MigKindArg(job, "forgotten") != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot resume job " INT64_FORMAT " because it was forgotten", job_id),
				 errdetail("mig_forget(" INT64_FORMAT ") ended it for good.", job_id),
				 errhint("Start it again with %s().", MigKindStartFunction(job->kind))));
	MigResumeJob(job, "resumed", ActorDetail());
	PG_RETURN_VOID();
}

/*
 * mig_cancel ends a job for good; the chunks committed so far stay.
 */
Datum
mig_cancel(PG_FUNCTION_ARGS)
{
	int64		job_id = PG_GETARG_INT64(0);
	MigJob	   *job = LoadJobOrError(job_id, true);

	MigCheckJobControl(job, "cancel", MIG_CONTROL_STOP);
	if (job->state == MIG_STATE_CANCELLED)
	{
		ereport(NOTICE,
				(errmsg("job " INT64_FORMAT " is already cancelled", job_id)));
		PG_RETURN_VOID();
	}
	CheckNotFinished(job, "cancel");
	MigSetState(job_id, MIG_STATE_CANCELLED, NULL);
	MigRecordEvent(job_id, "cancelled", ActorDetail());
	MigWakeWorkerAtCommit(MyDatabaseId, job_id);
	PG_RETURN_VOID();
}

/*
 * StatementReadsNoTable: whether the statement being run reads no table at
 * all, as in SELECT mig_wait(42): its range table (which covers its
 * subqueries too) holds only the empty FROM.  Its snapshot is then used for
 * nothing but a result row, and need not hold back vacuum while mig_wait
 * sleeps.
 */
static bool
StatementReadsNoTable(void)
{
	PlannedStmt *stmt;
	ListCell   *lc;

	if (ActivePortal == NULL || list_length(ActivePortal->stmts) != 1)
		return false;
	stmt = linitial_node(PlannedStmt, ActivePortal->stmts);
	if (stmt->commandType != CMD_SELECT || stmt->utilityStmt != NULL ||
		stmt->relationOids != NIL)
		return false;
	foreach(lc, stmt->rtable)
		if (lfirst_node(RangeTblEntry, lc)->rtekind != RTE_RESULT)
			return false;
	return true;
}

/* WaiterCleanup: on error or exit in mig_wait, forget the waiter */
static void
WaiterCleanup(int code, Datum arg)
{
	MigRegisterWaiter(false);
	ConditionVariableCancelSleep();
}

#define BLOCKED_CHECK_MS	500		/* mig_wait looks for a worker it blocks */

/*
 * BlockedWorker: a worker of this database's jobs that waits for a lock of
 * this session's transaction (CREATE INDEX CONCURRENTLY waits so for every
 * transaction that holds an older snapshot), with its job in *job_id; 0 if
 * none does.  As pg_blocking_pids sees it.
 */
static pid_t
BlockedWorker(int64 *job_id)
{
	pid_t	   *pids = palloc(sizeof(pid_t) * Max(mig_max_workers, 1));
	int64	   *jobs = palloc(sizeof(int64) * Max(mig_max_workers, 1));
	int			n = MigDatabaseWorkers(MyDatabaseId, pids, jobs, Max(mig_max_workers, 1));

	for (int i = 0; i < n; i++)
	{
		ArrayType  *blockers;
		Datum	   *items;
		int			nitems;

		blockers = DatumGetArrayTypeP(DirectFunctionCall1(pg_blocking_pids,
														  Int32GetDatum(pids[i])));
		deconstruct_array(blockers, INT4OID, sizeof(int32), true, TYPALIGN_INT,
						  &items, NULL, &nitems);
		for (int j = 0; j < nitems; j++)
			if (DatumGetInt32(items[j]) == MyProcPid)
			{
				*job_id = jobs[i];
				return pids[i];
			}
	}
	return 0;
}

/*
 * WaitForJob is mig_wait's loop: a check, with a snapshot of its own, then
 * a sleep on the condition variable that workers broadcast on every change
 * (at most a second).  While it sleeps, the session holds no snapshot when
 * release_xmin: it does not pin the xmin horizon, so vacuum can clean up
 * after the job it waits for; the next check takes a fresh snapshot.
 *
 * A job must never wait for its waiter: CREATE INDEX CONCURRENTLY waits for
 * the end of every transaction that held an older snapshot when it looked,
 * and a waiter's transaction lasts as long as the wait.  So the loop reads
 * the job's state only while no worker runs it (a check takes a snapshot
 * for a moment, and a build of the job's that looked then would wait for
 * the whole wait); and at most every BLOCKED_CHECK_MS it looks whether a
 * worker of this database waits for this transaction (a statement that
 * reads a table keeps its snapshot, a transaction block may hold locks, a
 * check may have met another job's build), and if one does, ends the
 * transaction with an error rather than wait for a job that waits for it.
 */
static char *
WaitForJob(int64 job_id, int64 timeout_ms, bool release_xmin)
{
	TimestampTz start = GetCurrentTimestamp();
	TimestampTz blocked_checked_at = 0;
	MemoryContext callerctx = CurrentMemoryContext;
	MemoryContext loopctx;
	MemoryContext blockctx;
	MemoryContext old;
	char	   *state = NULL;

	loopctx = AllocSetContextCreate(CurrentMemoryContext, "mig_wait",
									ALLOCSET_SMALL_SIZES);
	blockctx = AllocSetContextCreate(CurrentMemoryContext, "mig_wait blockers",
									 ALLOCSET_SMALL_SIZES);
	for (;;)
	{
		long		sleep_ms = 1000;
		bool		timed_out = false;
		TimestampTz now = GetCurrentTimestamp();
		pid_t		blocked;
		int64		blocked_job;

		if (timeout_ms >= 0)
		{
			long		waited = (long) ((now - start) / 1000);

			timed_out = waited >= timeout_ms;
			sleep_ms = Min(sleep_ms, timeout_ms - waited);
		}

		/*
		 * A job that a live worker runs has not ended: no check, and so no
		 * snapshot.  The first look, a job no worker runs (queued, paused,
		 * just ended) and the look at the timeout read its state.
		 */
		if (state == NULL || timed_out || MigLiveWorkerPid(MyDatabaseId, job_id) == 0)
		{
			MemoryContextReset(loopctx);
			old = MemoryContextSwitchTo(loopctx);
			state = MigGetState(job_id);
			MemoryContextSwitchTo(old);
			if (state == NULL)
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_OBJECT),
						 errmsg("job " INT64_FORMAT " does not exist", job_id)));
			if (strcmp(state, "succeeded") == 0 || strcmp(state, "failed") == 0 ||
				strcmp(state, "cancelled") == 0)
				break;
		}
		if (timed_out)
			break;
		InvalidateCatalogSnapshot();
		if (release_xmin)
			MyProc->xmin = InvalidTransactionId;
		if (TimestampDifferenceExceeds(blocked_checked_at, now, BLOCKED_CHECK_MS))
		{
			blocked_checked_at = now;
			MemoryContextReset(blockctx);
			old = MemoryContextSwitchTo(blockctx);
			blocked = BlockedWorker(&blocked_job);
			MemoryContextSwitchTo(old);
			/* another job may be another role's: it is not named */
			if (blocked != 0)
				ereport(ERROR,
						(errcode(ERRCODE_T_R_DEADLOCK_DETECTED),
						 blocked_job == job_id ?
						 errmsg("job " INT64_FORMAT " waits for this transaction to end", job_id) :
						 errmsg("a pg_mig job waits for this transaction to end"),
						 errdetail("Its worker (PID %d) waits for a lock of this transaction: for a row or a table the job changes, or, as CREATE INDEX CONCURRENTLY does, for every transaction that holds an older snapshot.",
								   (int) blocked),
						 errhint("Call mig_wait in a statement of its own that reads no table, outside a transaction block: SELECT mig_wait(" INT64_FORMAT ").",
								 job_id)));
		}
		(void) ConditionVariableTimedSleep(&MigShared->job_cv, Max(sleep_ms, 1),
										   MigWaitEvent(MIG_WAIT_JOB_CHANGE));
	}
	ConditionVariableCancelSleep();
	state = MemoryContextStrdup(callerctx, state);
	MemoryContextDelete(loopctx);
	MemoryContextDelete(blockctx);
	return state;
}

/* WaitAsWaiter: WaitForJob while registered as a waiter */
static char *
WaitAsWaiter(int64 job_id, int64 timeout_ms, bool release_xmin)
{
	char	   *volatile state = NULL;

	MigRegisterWaiter(true);
	PG_ENSURE_ERROR_CLEANUP(WaiterCleanup, (Datum) 0);
	{
		state = WaitForJob(job_id, timeout_ms, release_xmin);
	}
	PG_END_ENSURE_ERROR_CLEANUP(WaiterCleanup, (Datum) 0);
	MigRegisterWaiter(false);
	return state;
}

/*
 * mig_wait waits until the job has succeeded, failed or been cancelled,
 * and returns that state; after timeout (NULL: none) it returns the state
 * the job is in.  Throttling ignores a waiting session (MigRegisterWaiter),
 * and, called as a statement of its own (SELECT mig_wait(...)), it holds
 * no snapshot while it sleeps (see WaitForJob).
 */
Datum
mig_wait(PG_FUNCTION_ARGS)
{
	int64		job_id;
	int64		timeout_ms = -1;
	char	   *state;
	bool		release_xmin;

	MigRequireSchemaVersion();
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("job_id must not be NULL")));
	job_id = PG_GETARG_INT64(0);
	if (!PG_ARGISNULL(1))
	{
		Interval   *iv = PG_GETARG_INTERVAL_P(1);

		if (iv->month < 0 || iv->day < 0 || iv->time < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("timeout must not be negative")));
		timeout_ms = MigIntervalToMs(PG_GETARG_DATUM(1));
	}
	MigRequireShared();
	if (IsolationUsesXactSnapshot())
		ereport(ERROR,
				(errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
				 errmsg("mig_wait cannot run in a REPEATABLE READ or SERIALIZABLE transaction"),
				 errdetail("Such a transaction would never see the job change."),
				 errhint("Call mig_wait in a READ COMMITTED transaction.")));

	if (MigJobCreatedHere(job_id))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("job " INT64_FORMAT " was started in this transaction and cannot run before it commits",
						job_id),
				 errhint("Commit, then call mig_wait.")));

	/*
	 * Release the xmin only where no snapshot of this transaction can be
	 * used again after the wait: a statement of its own (no transaction
	 * block, so no cursor either) that reads no table.
	 */
	release_xmin = !IsTransactionBlock() && StatementReadsNoTable();

	state = WaitAsWaiter(job_id, timeout_ms, release_xmin);
	PG_RETURN_TEXT_P(cstring_to_text(state));
}

/*
 * mig_set changes the knobs of an unfinished job; the worker uses them from
 * its next chunk.  NULL leaves a knob as it is; 0, an empty string or an
 * empty array turns an optional limit off.
 */
Datum
mig_set(PG_FUNCTION_ARGS)
{
	int64		job_id;
	MigJob	   *job;
	const char *cols[KNOB_COUNT];
	Oid			types[KNOB_COUNT];
	Datum		values[KNOB_COUNT];
	bool		nulls[KNOB_COUNT];
	int			n = 0;
	StringInfoData detail;

	MigRequireSchemaVersion();
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("job_id must not be NULL")));
	job_id = PG_GETARG_INT64(0);
	job = LoadJobOrError(job_id, true);
	MigCheckJobControl(job, "change", MIG_CONTROL_RUN);
	CheckNotFinished(job, "change");

	initStringInfo(&detail);
	appendStringInfoString(&detail, ActorDetail());
	for (int k = 0; k < KNOB_COUNT; k++)
	{
		MigKnobValue v;
		int			argno = MigArgNo(fcinfo, MigKnobs[k].name);
		const MigKnobSpec *spec = &MigKnobs[k];

		if (argno < 0 || PG_ARGISNULL(argno))
			continue;
		CheckKnob(k, PG_GETARG_DATUM(argno), NULL, &v);
		cols[n] = spec->name;
		nulls[n] = v.off;
		values[n] = v.datum;
		types[n] = spec->type;
		appendStringInfo(&detail, "%s %s %s", n == 0 ? ":" : ",", spec->name,
						 v.off ? "off" : "changed");
		n++;
	}
	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("no knob to change was given"),
				 errhint("Pass the knobs by name, e.g. mig_set(" INT64_FORMAT ", batch_size => 5000).",
						 job_id)));
	MigSetJobColumns(job_id, n, cols, types, values, nulls);
	MigRecordEvent(job_id, "changed", detail.data);
	MigWakeWorkerAtCommit(MyDatabaseId, job_id);
	PG_RETURN_VOID();
}

/*
 * MigReadKnobArgs checks the knob arguments of a start function, found by
 * their names (knobs.def), and stores them in job; a knob the function
 * does not take, or whose argument is NULL, takes its default
 * (DefaultKnob).
 */
void
MigReadKnobArgs(FunctionCallInfo fcinfo, MigJob *job)
{
	for (int k = 0; k < KNOB_COUNT; k++)
	{
		MigKnobValue v;
		int			argno = MigArgNo(fcinfo, MigKnobs[k].name);

		if (argno >= 0 && !PG_ARGISNULL(argno))
			CheckKnob(k, PG_GETARG_DATUM(argno), NULL, &v);
		else
			DefaultKnob(k, &v);
		MigKnobApply(job, k, &v);
	}
}

/*
 * MigDefaultKnobs stores the default of every knob in job: what a job of
 * schema steps starts from, before MigReadKnobArg reads the few knobs it
 * takes.
 */
void
MigDefaultKnobs(MigJob *job)
{
	for (int k = 0; k < KNOB_COUNT; k++)
	{
		MigKnobValue v;

		DefaultKnob(k, &v);
		MigKnobApply(job, k, &v);
	}
}

/*
 * MigReadKnobArg checks the argument of the knob name (if the function
 * takes it and it is not NULL) and stores it in job; else the job's value
 * stays.
 */
void
MigReadKnobArg(FunctionCallInfo fcinfo, const char *name, MigJob *job)
{
	MigKnob		k = MigKnobByName(name);
	int			argno;
	MigKnobValue v;

	if (k == KNOB_COUNT)
		elog(ERROR, "unknown pg_mig knob \"%s\"", name);
	argno = MigArgNo(fcinfo, name);
	if (argno < 0 || PG_ARGISNULL(argno))
		return;
	CheckKnob(k, PG_GETARG_DATUM(argno), NULL, &v);
	MigKnobApply(job, k, &v);
}

/* MigCheckOwnerCanLogin: CheckOwnerCanRun for the other start functions */
void
MigCheckOwnerCanLogin(Oid owner)
{
	CheckOwnerCanRun(owner);
}

/*
 * MigCheckAppLatencySignal refuses max_app_latency where its signal is
 * missing (app_latency.c): the running time of other sessions' statements,
 * which the server records only with track_activities on, and their
 * number, from the database's transaction counts (track_counts).  A
 * setting off in the session or in the server's configuration is refused
 * (the worker runs with the latter).
 */
void
MigCheckAppLatencySignal(void)
{
	static const char *const settings[] = {"track_activities", "track_counts"};
	static const char *const what[] = {
		"the running time of the statements of other sessions",
		"the number of the database's transactions"};
	const bool	on[] = {pgstat_track_activities, pgstat_track_counts};

	for (int i = 0; i < lengthof(settings); i++)
	{
		const char *reset = GetConfigOptionResetString(settings[i]);

		if (!on[i] || reset == NULL || strcmp(reset, "on") != 0)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("max_app_latency needs %s", settings[i]),
					 errdetail("pg_mig measures the application's latency from %s, which the server records only with %s on.",
							   what[i], settings[i]),
					 errhint("Set %s = on in postgresql.conf and reload, or start the job without max_app_latency.",
							 settings[i])));
	}
}
