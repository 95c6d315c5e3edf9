/*-------------------------------------------------------------------------
 *
 * sql_api.c
 *	  The SQL-callable functions of pg_mig: mig_start_backfill, mig_pause,
 *	  mig_resume, mig_cancel, mig_wait and mig_set.
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

PG_FUNCTION_INFO_V1(mig_start_backfill);
PG_FUNCTION_INFO_V1(mig_pause);
PG_FUNCTION_INFO_V1(mig_resume);
PG_FUNCTION_INFO_V1(mig_cancel);
PG_FUNCTION_INFO_V1(mig_wait);
PG_FUNCTION_INFO_V1(mig_set);

/* limits of the knobs */
/* limits of the knobs (the others are in pg_mig.h) */
#define MAX_NICE_RATIO			100.0

/*
 * The knobs, in the argument order shared by mig_start_backfill (from
 * argument 3 on) and mig_set (from argument 1 on).
 */
typedef enum Knob
{
	K_BATCH_SIZE,
	K_CHUNK_TIME,
	K_MAX_LAG,
	K_MAX_LAG_BYTES,
	K_SLEEP,
	K_LOCK_TIMEOUT,
	K_MAX_RETRIES,
	K_STATEMENT_TIMEOUT,
	K_MAX_WAL_RATE,
	K_NICE_RATIO,
	K_IGNORE_SLOTS,
	K_RUN_WINDOW,
	K_THROTTLE_QUERY,
	K_MAX_ACTIVE_SESSIONS,
	K_MAX_XACT_AGE,
	K_MAX_ARCHIVE_BACKLOG,
	K_THROTTLE_ON_AUTOVACUUM,
	K_VACUUM_EVERY,				/* not in the start functions' run of knobs */
	K_MAX_APP_LATENCY,			/* 0.4: the last knob of every walking kind */
	K_COUNT
} Knob;

/* the knobs the start functions take in order, from their first knob on */
#define K_START_RUN		K_VACUUM_EVERY

typedef enum KnobKind
{
	KK_INT,						/* int4 */
	KK_BIGINT,					/* int8 */
	KK_INTERVAL,
	KK_FLOAT,
	KK_TEXT,
	KK_TEXT_ARRAY,
	KK_BOOL
} KnobKind;

typedef struct KnobSpec
{
	const char *name;			/* argument and column name */
	KnobKind	kind;
	bool		optional;		/* 0 or NULL turns it off */
	int64		max;			/* upper bound (ms for intervals), 0 = none */
} KnobSpec;

static const KnobSpec knobs[K_COUNT] = {
	[K_BATCH_SIZE] = {"batch_size", KK_INT, false, MIG_MAX_BATCH_SIZE},
	[K_CHUNK_TIME] = {"chunk_time", KK_INTERVAL, true, MIG_MAX_CHUNK_TIME_MS},
	[K_MAX_LAG] = {"max_lag", KK_INTERVAL, true, MIG_MAX_LAG_MS},
	[K_MAX_LAG_BYTES] = {"max_lag_bytes", KK_BIGINT, true, 0},
	[K_SLEEP] = {"sleep", KK_INTERVAL, false, MIG_MAX_SLEEP_MS},
	[K_LOCK_TIMEOUT] = {"lock_timeout", KK_INTERVAL, false, MIG_MAX_LOCK_TIMEOUT_MS},
	[K_MAX_RETRIES] = {"max_retries", KK_INT, false, MIG_MAX_RETRIES},
	[K_STATEMENT_TIMEOUT] = {"statement_timeout", KK_INTERVAL, false, MIG_MAX_STATEMENT_TIMEOUT_MS},
	[K_MAX_WAL_RATE] = {"max_wal_rate", KK_BIGINT, true, 0},
	[K_NICE_RATIO] = {"nice_ratio", KK_FLOAT, true, 0},
	[K_IGNORE_SLOTS] = {"ignore_slots", KK_TEXT_ARRAY, true, 0},
	[K_RUN_WINDOW] = {"run_window", KK_TEXT, true, 0},
	[K_THROTTLE_QUERY] = {"throttle_query", KK_TEXT, true, 0},
	[K_MAX_ACTIVE_SESSIONS] = {"max_active_sessions", KK_INT, true, 0},
	[K_MAX_XACT_AGE] = {"max_xact_age", KK_INTERVAL, true, MIG_MAX_LAG_MS},
	[K_MAX_ARCHIVE_BACKLOG] = {"max_archive_backlog", KK_INT, true, 0},
	[K_THROTTLE_ON_AUTOVACUUM] = {"throttle_on_autovacuum", KK_BOOL, false, 0},
	[K_VACUUM_EVERY] = {"vacuum_every", KK_BIGINT, true, 0},
	[K_MAX_APP_LATENCY] = {"max_app_latency", KK_INTERVAL, true, MIG_MAX_LAG_MS},
};

/* a checked knob value: off, or a number, text or list */
typedef struct KnobValue
{
	bool		off;			/* 0 or empty: the limit is off */
	int64		i;				/* integers; milliseconds for intervals */
	double		f;
	char	   *s;
	List	   *list;
	Datum		datum;			/* the argument as passed */
} KnobValue;

static void CheckKnob(Knob k, Datum arg, const char *setting, KnobValue *v);
static void ApplyKnob(MigJob *job, Knob k, const KnobValue *v);
static char *TextArg(FunctionCallInfo fcinfo, int argno, const char *name,
					 bool allow_null);
static MigJob *LoadJobOrError(int64 job_id, bool for_update);
static void CheckNotFinished(const MigJob *job, const char *action);

/*
 * InvalidKnob raises the error for a bad knob value.  setting is the
 * pg_mig.default_* setting the value came from, or NULL if it was given.
 */
static void
InvalidKnob(const char *name, const char *setting, const char *problem)
{
	if (setting)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s %s", setting, problem),
				 errdetail("%s was not given, so it takes the value of setting %s.",
						   name, setting),
				 errhint("Change the setting %s, or pass %s => ... explicitly.",
						 setting, name)));
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("%s %s", name, problem),
			 errhint("See the pg_mig README for the meaning and range of each argument.")));
}

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
CheckKnob(Knob k, Datum arg, const char *setting, KnobValue *v)
{
	const KnobSpec *spec = &knobs[k];

	memset(v, 0, sizeof(*v));
	v->datum = arg;
	switch (spec->kind)
	{
		case KK_INT:
		case KK_BIGINT:
			v->i = spec->kind == KK_INT ? DatumGetInt32(arg) : DatumGetInt64(arg);
			if (v->i < 0)
				InvalidKnob(spec->name, setting, "must not be negative");
			if (v->i == 0 && !spec->optional && k == K_BATCH_SIZE)
				InvalidKnob(spec->name, setting, "must be a positive integer");
			if (spec->max > 0 && v->i > spec->max)
				InvalidKnob(spec->name, setting,
							psprintf("must be at most " INT64_FORMAT, spec->max));
			v->off = spec->optional && v->i == 0;
			break;
		case KK_INTERVAL:
			{
				Interval   *iv = DatumGetIntervalP(arg);

				if (iv->month < 0 || iv->day < 0 || iv->time < 0)
					InvalidKnob(spec->name, setting, "must not be negative");
				if (iv->month > 1200 || iv->day > 36500)
					InvalidKnob(spec->name, setting, "is too large");
				v->i = MigIntervalToMs(arg);
				if (spec->max > 0 && v->i > spec->max)
					InvalidKnob(spec->name, setting,
								psprintf("must be at most %s",
										 DatumGetCString(DirectFunctionCall1(interval_out,
																			 MigMsToInterval(spec->max)))));
				if (v->i == 0 && (k == K_LOCK_TIMEOUT || k == K_STATEMENT_TIMEOUT))
					InvalidKnob(spec->name, setting, "must be positive");
				if (k == K_MAX_APP_LATENCY && v->i == 0 && iv->time > 0)
					InvalidKnob(spec->name, setting, "must be at least 1 millisecond, or 0 to turn it off");
				if (k == K_MAX_APP_LATENCY && v->i > 0)
					MigCheckAppLatencySignal();
				v->off = spec->optional && v->i == 0;
			}
			break;
		case KK_FLOAT:
			v->f = DatumGetFloat8(arg);
			if (isnan(v->f) || isinf(v->f) || v->f < 0 || v->f > MAX_NICE_RATIO)
				InvalidKnob(spec->name, setting,
							psprintf("must be between 0 and %g", MAX_NICE_RATIO));
			v->off = (v->f == 0);
			break;
		case KK_TEXT:
			v->s = TextDatumGetCString(arg);
			MigCheckTextLength(spec->name, v->s);
			v->off = (v->s[strspn(v->s, " \t\r\n")] == '\0');
			if (!v->off && k == K_RUN_WINDOW)
			{
				char	   *msg = NULL;

				if (!MigRunWindowValid(v->s, &msg))
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("%s", msg ? msg : "invalid run_window"),
							 errhint("Write run windows like '01:00-05:00', 'mon-fri 22:00-06:00; sat-sun 00:00-24:00' or '22:00-06:00 Europe/Berlin'.")));
			}
			if (!v->off && k == K_THROTTLE_QUERY)
			{
				/* stored (also by mig_set, from datum) and run as resolved */
				v->s = MigResolveThrottleQuery(v->s);
				v->datum = CStringGetTextDatum(v->s);
			}
			break;
		case KK_TEXT_ARRAY:
			{
				ArrayType  *arr = DatumGetArrayTypeP(arg);
				Datum	   *elems;
				bool	   *nulls;
				int			n;
				size_t		total = 0;

				if (ARR_NDIM(arr) > 1)
					InvalidKnob(spec->name, setting, "must be a one-dimensional array");
				deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT,
								  &elems, &nulls, &n);
				for (int i = 0; i < n; i++)
				{
					char	   *item;

					if (nulls[i])
						InvalidKnob(spec->name, setting, "must not contain NULL");
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
		case KK_BOOL:
			v->i = DatumGetBool(arg);
			break;
	}
}

/* ApplyKnob stores a checked knob value in the in-memory job */
static void
ApplyKnob(MigJob *job, Knob k, const KnobValue *v)
{
	switch (k)
	{
		case K_BATCH_SIZE:
			job->batch_size = (int) v->i;
			break;
		case K_CHUNK_TIME:
			job->chunk_time_ms = v->i;
			break;
		case K_MAX_LAG:
			job->max_lag_ms = v->i;
			break;
		case K_MAX_LAG_BYTES:
			job->max_lag_bytes = v->i;
			break;
		case K_SLEEP:
			job->sleep_ms = v->i;
			break;
		case K_LOCK_TIMEOUT:
			job->lock_timeout_ms = v->i;
			break;
		case K_MAX_RETRIES:
			job->max_retries = (int) v->i;
			break;
		case K_STATEMENT_TIMEOUT:
			job->statement_timeout_ms = v->i;
			break;
		case K_MAX_WAL_RATE:
			job->max_wal_rate = v->i;
			break;
		case K_NICE_RATIO:
			job->nice_ratio = v->f;
			break;
		case K_IGNORE_SLOTS:
			job->ignore_slots = v->list;
			break;
		case K_RUN_WINDOW:
			job->run_window = v->off ? NULL : v->s;
			break;
		case K_THROTTLE_QUERY:
			job->throttle_query = v->off ? NULL : v->s;
			break;
		case K_MAX_ACTIVE_SESSIONS:
			job->max_active_sessions = (int) v->i;
			break;
		case K_MAX_XACT_AGE:
			job->max_xact_age_ms = v->i;
			break;
		case K_MAX_ARCHIVE_BACKLOG:
			job->max_archive_backlog = (int) v->i;
			break;
		case K_THROTTLE_ON_AUTOVACUUM:
			job->throttle_on_autovacuum = (v->i != 0);
			break;
		case K_VACUUM_EVERY:
			job->vacuum_every = v->off ? 0 : v->i;
			break;
		case K_MAX_APP_LATENCY:
			job->max_app_latency_ms = v->off ? 0 : v->i;
			break;
		case K_COUNT:
			break;
	}
}

/*
 * DefaultKnob checks and returns the value a knob takes when its argument
 * is NULL: the pg_mig.default_* setting for batch_size, max_retries,
 * lock_timeout, statement_timeout and vacuum_every, no pause and no autovacuum throttle,
 * and "off" for every optional limit.  Values from a setting go through
 * CheckKnob like given ones.
 */
static void
DefaultKnob(Knob k, KnobValue *v)
{
	switch (k)
	{
		case K_BATCH_SIZE:
			CheckKnob(k, Int32GetDatum(mig_default_batch_size),
					  "pg_mig.default_batch_size", v);
			return;
		case K_MAX_RETRIES:
			CheckKnob(k, Int32GetDatum(mig_default_max_retries),
					  "pg_mig.default_max_retries", v);
			return;
		case K_LOCK_TIMEOUT:
			CheckKnob(k, MigMsToInterval(mig_default_lock_timeout_ms),
					  "pg_mig.default_lock_timeout", v);
			return;
		case K_STATEMENT_TIMEOUT:
			CheckKnob(k, MigMsToInterval(mig_default_statement_timeout_ms),
					  "pg_mig.default_statement_timeout", v);
			return;
		case K_SLEEP:
			CheckKnob(k, MigMsToInterval(0), NULL, v);
			return;
		case K_THROTTLE_ON_AUTOVACUUM:
			CheckKnob(k, BoolGetDatum(false), NULL, v);
			return;
		case K_VACUUM_EVERY:
			if (mig_default_vacuum_every < 0)
			{
				/* automatic: MigResolveVacuumEvery, when the job is stored */
				memset(v, 0, sizeof(*v));
				v->i = -1;
				return;
			}
			CheckKnob(k, Int64GetDatum((int64) mig_default_vacuum_every),
					  "pg_mig.default_vacuum_every", v);
			return;
		default:
			memset(v, 0, sizeof(*v));
			v->off = true;
			return;
	}
}

/* TextArg: a text argument, which must not be NULL or blank unless allowed */
static char *
TextArg(FunctionCallInfo fcinfo, int argno, const char *name, bool allow_null)
{
	char	   *s;

	if (PG_ARGISNULL(argno))
	{
		if (allow_null)
			return NULL;
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be NULL", name)));
	}
	s = TextDatumGetCString(PG_GETARG_DATUM(argno));
	if (s[strspn(s, " \t\r\n\f")] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be empty", name),
				 allow_null ? errhint("Pass NULL to change every row.") : 0));
	MigCheckTextLength(name, s);
	return s;
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

	if (problem)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
				 errmsg("%s", problem),
				 errdetail("A job runs in a background worker as the role that starts it."),
				 errhint("Start the job as a role that may log in.")));
}

/*
 * mig_start_backfill checks everything, records a queued job and asks the
 * launcher, at commit, to start its worker.  Returns the job id.
 */
Datum
mig_start_backfill(PG_FUNCTION_ARGS)
{
	MigJob		job;
	Oid			relid;
	Relation	rel;
	List	   *targets;
	List	   *relids = NIL;
	ListCell   *lc;
	int64		job_id;
	int64		active;
	int64		rows_total;
	List	   *set_columns = NIL;

	MigRequireSchemaVersion();
	MigRequireShared();
	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot start a backfill during recovery"),
				 errhint("Connect to the primary server.")));

	memset(&job, 0, sizeof(job));
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("relation must not be NULL")));
	relid = PG_GETARG_OID(0);
	job.set_clause = TextArg(fcinfo, 1, "set_clause", false);
	job.where_clause = TextArg(fcinfo, 2, "where_clause", true);

	MigReadKnobArgs(fcinfo, 3, &job);
	MigReadKnobArg(fcinfo, MIG_PARALLEL_ARGNO + 1, "vacuum_every", &job);
	MigReadKnobArg(fcinfo, MIG_APP_LATENCY_ARGNO, "max_app_latency", &job);

	rel = try_relation_open(relid, AccessShareLock);
	if (rel == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));

	job.owner = GetUserId();
	CheckOwnerCanRun(job.owner);
	job.owner_name = GetUserNameFromId(job.owner, false);
	job.relid = relid;
	job.relation_name =
		quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
								   RelationGetRelationName(rel));
	job.search_path = pstrdup(namespace_search_path);
	job.settings = MigKeySettings();

	/* starting again (job_key.c): the job that holds the key, if any */
	{
		static const int identity[] = {1, 2, MIG_KEEP_OLD_VALUES_ARGNO};

		job.kind = MIG_KIND_BACKFILL;
		MigReadJobKey(fcinfo, MIG_BACKFILL_JOB_KEY_ARGNO, identity,
					  lengthof(identity), &job);
		job_id = MigStartAgain(&job);
		if (job_id != 0)
		{
			relation_close(rel, NoLock);
			PG_RETURN_INT64(job_id);
		}
	}

	targets = MigBuildTargets(rel, job.set_clause, job.where_clause, &rows_total,
							  &set_columns);
	job.parallel = MigReadParallelArg(fcinfo, MIG_PARALLEL_ARGNO, targets);
	job.rows_total = rows_total;
	job.keys_total = 0;
	relids = list_make1_oid(relid);
	foreach(lc, targets)
	{
		MigTarget  *target = lfirst(lc);

		job.keys_total += Max(target->keys_estimate, 0);
		relids = lappend_oid(relids, target->relid);
	}

	(void) MigLockTreeForStart(relid);
	job_id = MigRetryFailedTwin(&job);
	if (job_id != 0)
	{
		relation_close(rel, NoLock);
		PG_RETURN_INT64(job_id);
	}
	active = MigFindActiveJobOn(relids);
	if (active != 0)
		MigRefuseBusyTable(RelationGetRelationName(rel), active);

	job_id = MigInsertJob(&job, targets);
	MigKeepJobKey(job_id, &job);
	/* undo (kept.c): keep_old_values, after the knobs */
	if (PG_NARGS() > MIG_KEEP_OLD_VALUES_ARGNO &&
		!PG_ARGISNULL(MIG_KEEP_OLD_VALUES_ARGNO) &&
		PG_GETARG_BOOL(MIG_KEEP_OLD_VALUES_ARGNO))
	{
		job.job_id = job_id;
		MigCreateKeptTable(&job, rel, targets, set_columns);
	}
	/* monitoring: verify => false keeps the walk from being verified */
	if (PG_NARGS() > MIG_VERIFY_ARGNO && !PG_ARGISNULL(MIG_VERIFY_ARGNO) &&
		!PG_GETARG_BOOL(MIG_VERIFY_ARGNO))
	{
		MigJob		kind;

		memset(&kind, 0, sizeof(kind));
		kind.job_id = job_id;
		MigLoadJobKind(&kind);
		MigSetJobKind(job_id, MIG_KIND_BACKFILL,
					  lappend(kind.kind_args, pstrdup(MIG_VERIFY_OFF)));
	}
	if (job.parallel > 1)
		MigCreateLanes(job_id, linitial(targets), job.parallel);
	MigRecordEvent(job_id, "queued",
				   psprintf("%d target%s, about " INT64_FORMAT " rows to change, batch_size %d%s",
							list_length(targets), list_length(targets) == 1 ? "" : "s",
							Max(rows_total, 0), job.batch_size,
							job.parallel > 1 ? psprintf(", %d lanes", job.parallel) : ""));
	MigNotify(job_id, "queued");
	MigRequestJobWorkers(&job, job_id);

	relation_close(rel, NoLock);
	PG_RETURN_INT64(job_id);
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

/*
 * WaitForJob is mig_wait's loop: a check, with a snapshot of its own, then
 * a sleep on the condition variable that workers broadcast on every change
 * (at most a second).  While it sleeps, the session holds no snapshot when
 * release_xmin: it does not pin the xmin horizon, so vacuum can clean up
 * after the job it waits for; the next check takes a fresh snapshot.
 */
static char *
WaitForJob(int64 job_id, int64 timeout_ms, bool release_xmin)
{
	TimestampTz start = GetCurrentTimestamp();
	MemoryContext callerctx = CurrentMemoryContext;
	MemoryContext loopctx;
	MemoryContext old;
	char	   *state;

	loopctx = AllocSetContextCreate(CurrentMemoryContext, "mig_wait",
									ALLOCSET_SMALL_SIZES);
	for (;;)
	{
		long		sleep_ms = 1000;

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
		if (timeout_ms >= 0)
		{
			long		waited = (long) ((GetCurrentTimestamp() - start) / 1000);

			if (waited >= timeout_ms)
				break;
			sleep_ms = Min(sleep_ms, timeout_ms - waited);
		}
		InvalidateCatalogSnapshot();
		if (release_xmin)
			MyProc->xmin = InvalidTransactionId;
		(void) ConditionVariableTimedSleep(&MigShared->job_cv, Max(sleep_ms, 1),
										   MigWaitEvent(MIG_WAIT_JOB_CHANGE));
	}
	ConditionVariableCancelSleep();
	state = MemoryContextStrdup(callerctx, state);
	MemoryContextDelete(loopctx);
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
	const char *cols[K_COUNT];
	Oid			types[K_COUNT];
	Datum		values[K_COUNT];
	bool		nulls[K_COUNT];
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
	for (int k = 0; k < K_COUNT; k++)
	{
		KnobValue	v;
		int			argno = 1 + k;
		const KnobSpec *spec = &knobs[k];

		if (argno >= PG_NARGS() || PG_ARGISNULL(argno))
			continue;
		CheckKnob(k, PG_GETARG_DATUM(argno), NULL, &v);
		cols[n] = spec->name;
		nulls[n] = v.off;
		values[n] = v.datum;
		switch (spec->kind)
		{
			case KK_INT:
				types[n] = INT4OID;
				break;
			case KK_BIGINT:
				types[n] = INT8OID;
				break;
			case KK_INTERVAL:
				types[n] = INTERVALOID;
				break;
			case KK_FLOAT:
				types[n] = FLOAT8OID;
				break;
			case KK_TEXT:
				types[n] = TEXTOID;
				break;
			case KK_TEXT_ARRAY:
				types[n] = TEXTARRAYOID;
				break;
			case KK_BOOL:
				types[n] = BOOLOID;
				break;
		}
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
 * MigReadKnobArgs checks the knob arguments of a start function, which come
 * in the order of mig_start_backfill from argument first_argno on, and
 * stores them (or their defaults) in job.  mig_start_backfill and
 * mig_start_delete share it; the schema-step kinds pass PG_NARGS() to get
 * every default, then MigReadKnobArg for the few knobs they take.
 */
void
MigReadKnobArgs(FunctionCallInfo fcinfo, int first_argno, MigJob *job)
{
	for (int k = 0; k < K_COUNT; k++)
	{
		KnobValue	v;
		int			argno = first_argno + k;

		if (k < K_START_RUN && argno < PG_NARGS() && !PG_ARGISNULL(argno))
			CheckKnob(k, PG_GETARG_DATUM(argno), NULL, &v);
		else
			DefaultKnob(k, &v);
		ApplyKnob(job, k, &v);
	}
}

/*
 * MigReadKnobArg checks argument argno as the knob of that name and stores
 * it in job; a NULL argument leaves the job's value alone.
 */
void
MigReadKnobArg(FunctionCallInfo fcinfo, int argno, const char *name, MigJob *job)
{
	for (int k = 0; k < K_COUNT; k++)
	{
		KnobValue	v;

		if (strcmp(knobs[k].name, name) != 0)
			continue;
		if (argno < PG_NARGS() && !PG_ARGISNULL(argno))
		{
			CheckKnob(k, PG_GETARG_DATUM(argno), NULL, &v);
			ApplyKnob(job, k, &v);
		}
		return;
	}
	elog(ERROR, "unknown pg_mig knob \"%s\"", name);
}

/* MigCheckOwnerCanLogin: CheckOwnerCanRun for the other start functions */
void
MigCheckOwnerCanLogin(Oid owner)
{
	CheckOwnerCanRun(owner);
}

/*
 * MigCheckAppLatencySignal refuses max_app_latency where its signal is
 * missing: the pacer (pace.c) reads the running time of other sessions'
 * statements from their activity in shared memory, which is there only
 * with track_activities on.
 */
void
MigCheckAppLatencySignal(void)
{
	const char *reset = GetConfigOptionResetString("track_activities");

	if (!pgstat_track_activities || reset == NULL || strcmp(reset, "on") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("max_app_latency needs track_activities"),
				 errdetail("pg_mig measures the application's latency from the running time of the statements of other sessions, which the server records only with track_activities on."),
				 errhint("Set track_activities = on in postgresql.conf and reload, or start the job without max_app_latency.")));
}
