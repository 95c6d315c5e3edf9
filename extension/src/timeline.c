/*-------------------------------------------------------------------------
 *
 * timeline.c
 *	  What a job's figures are made of: the rate window, the time a job
 *	  waited on a health signal, and the samples of its history.
 *
 * The *rate window*: the checkpoint keeps two anchors (time, rows, keys)
 * on the job's row (a lane's row for a lane); anchor 0 is set when the
 * worker takes up the job, and every checkpoint at least
 * MIG_RATE_WINDOW_S after anchor 1 moves anchor 1 to anchor 0 and itself
 * to now (MIG_RATE_ANCHOR_SET, in the checkpoint's UPDATE).  mig_jobs
 * divides what was done since anchor 0 by the time since then, when it is
 * read: sleeps, throttled time and waits are in the rate, and it falls
 * while the job cannot move.
 *
 * *Stalled*: the worker waits on a health signal instead of running a
 * chunk.  It records since when (stalled_since: mig_jobs shows no ETA
 * then) and, when the wait ends, adds its length to throttled_ms.
 *
 * A *sample*: one row of mig_job_sample, the job's (a lane's) counters,
 * the replica lag and the throttle reason at one moment, written in the
 * transaction of a checkpoint or of a throttled step, at most one per
 * pg_mig.timeline_interval, or per a tenth of a percent of the job's age
 * once that is longer; a lane keeps at most MIG_MAX_SAMPLES, the older
 * half thinned out to every other sample when it has more.
 *
 * The *sampler's cost*: a worker adds up the time it spends taking
 * samples (not the check whether one is due, a clock reading and a
 * comparison per step, which would cost less than timing it) and the WAL
 * its samples write, and logs the sums at DEBUG1 with every forced
 * sample (where it takes up the job, where the walk ends): the last such
 * line of a worker is its total.  The CPU time beside the time: on a busy
 * machine the time includes the waits for a CPU.  For the benchmark
 * (bench/, the sampling part), which sets log_min_messages = debug1 for it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/instrument.h"
#include "executor/spi.h"
#include "portability/instr_time.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/pg_rusage.h"
#include "utils/timestamp.h"

#include "pg_mig.h"

#define MIG_MAX_SAMPLES			1000

int			mig_timeline_interval_ms = 10000;

/* the worker's samples: when the last one was taken, how many there are */
static TimestampTz last_sample_at;
static TimestampTz first_sample_at;
static int	nsamples = -1;		/* -1: not counted yet */

/* what the worker's sampling cost since it took up the job */
static struct
{
	instr_time	spent;			/* time taking samples */
	double		cpu_ms;			/* CPU time (user + system) taking them */
	int64		wal_bytes;		/* WAL written by the samples */
	int64		calls;			/* calls of MigRecordSample (checks) */
	int64		written;		/* samples recorded */
	TimestampTz since;			/* when the worker took up the job */
}			cost;

/*
 * MigResetRate starts the rate window of a job (lane > 0: of a lane) now,
 * from its counters as stored, and forgets a wait that ended with the last
 * worker.  Called when a worker takes up the job.  Caller is in a
 * transaction.
 */
void
MigResetRate(int64 job_id, int lane)
{
	MigStoreContext sc;
	char	   *sql;
	Oid			types[2] = {INT8OID, INT4OID};
	Datum		values[2] = {Int64GetDatum(job_id), Int32GetDatum(lane)};

	sql = psprintf("UPDATE %s SET rate_at0 = clock_timestamp(), rate_rows0 = rows_done,"
				   " rate_keys0 = keys_done, rate_at1 = NULL, rate_rows1 = NULL,"
				   " rate_keys1 = NULL, stalled_since = NULL"
				   " WHERE job_id = $1%s",
				   MigQualifiedTable(lane > 0 ? MIG_LANE_TABLE : MIG_JOB_TABLE),
				   lane > 0 ? " AND lane = $2" : "");
	MigStoreEnter(&sc);
	if (SPI_execute_with_args(sql, lane > 0 ? 2 : 1, types, values, NULL, false, 0)
		!= SPI_OK_UPDATE)
		elog(ERROR, "could not start the rate window of pg_mig job " INT64_FORMAT, job_id);
	MigStoreLeave(&sc);

	/* a new worker counts its samples and their cost afresh */
	nsamples = -1;
	last_sample_at = 0;
	memset(&cost, 0, sizeof(cost));
	cost.since = GetCurrentTimestamp();
}

/*
 * UpdateJobOrLane runs "UPDATE <job or lane table> SET set" on the job's
 * row (lane 0) or its lane's; set may use $3, the bigint arg.  what names
 * the update in an error.  Caller is in a transaction.
 */
static void
UpdateJobOrLane(int64 job_id, int lane, const char *set, int64 arg, const char *what)
{
	MigStoreContext sc;
	char	   *sql;
	Oid			types[3] = {INT8OID, INT4OID, INT8OID};
	Datum		values[3] = {Int64GetDatum(job_id), Int32GetDatum(lane), Int64GetDatum(arg)};

	sql = psprintf("UPDATE %s SET %s WHERE job_id = $1 AND (%s)",
				   MigQualifiedTable(lane > 0 ? MIG_LANE_TABLE : MIG_JOB_TABLE), set,
				   lane > 0 ? "lane = $2" : "$2 = 0");
	MigStoreEnter(&sc);
	if (SPI_execute_with_args(sql, 3, types, values, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not record the %s of pg_mig job " INT64_FORMAT, what, job_id);
	MigStoreLeave(&sc);
}

/*
 * MigSetStalled records that the job (lane) began to wait on a health
 * signal (stalled true) or ended its wait: then the wait's length is added
 * to throttled_ms.  Caller is in a transaction.
 */
void
MigSetStalled(int64 job_id, int lane, bool stalled)
{
	UpdateJobOrLane(job_id, lane,
					stalled ? "stalled_since = COALESCE(stalled_since, clock_timestamp())"
					: MIG_STALL_END_SET, 0, "wait");
}

/*
 * MigAddThrottledMs adds ms to the job's (lane's) throttled time: a span in
 * which it ran slower than its free pace without stopping (pacing).
 * Caller is in a transaction.
 */
void
MigAddThrottledMs(int64 job_id, int lane, int64 ms)
{
	UpdateJobOrLane(job_id, lane, "throttled_ms = throttled_ms + $3", ms, "pacing");
}

/*
 * SampleDue says whether a sample is due at now: always with force, else
 * pg_mig.timeline_interval after the last one, or a thousandth of the
 * job's age once that is longer.
 */
static bool
SampleDue(TimestampTz now, bool force)
{
	long		interval_ms = mig_timeline_interval_ms;

	/* coarser as the job ages: a tenth of a percent of its age at least */
	if (first_sample_at != 0)
		interval_ms = Max(interval_ms,
						  TimestampDifferenceMilliseconds(first_sample_at, now) / 1000);
	return force || last_sample_at == 0 ||
		TimestampDifferenceExceeds(last_sample_at, now, (int) Min(interval_ms, INT_MAX));
}

/*
 * RecordSample records a sample of the job (lane) taken at now: see
 * MigRecordSample.
 */
static void
RecordSample(const MigJob *job, int lane, const char *throttled, TimestampTz now)
{
	MigStoreContext sc;
	const char *table = MigQualifiedTable(MIG_SAMPLE_TABLE);
	char	   *sql;
	int64		lag_bytes;
	int64		lag_ms;
	Oid			types[11] = {INT8OID, INT4OID, INT8OID, INT8OID, INT8OID, INT4OID,
	INT8OID, INT8OID, TEXTOID, OIDOID, INT8OID};
	Datum		values[11];
	char		nulls[11] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};

	MigReadLag(job, &lag_bytes, &lag_ms);
	values[0] = Int64GetDatum(job->job_id);
	values[1] = Int32GetDatum(lane);
	values[2] = Int64GetDatum(job->rows_done);
	values[3] = Int64GetDatum(job->keys_done);
	values[4] = Int64GetDatum(job->wal_bytes);
	values[5] = Int32GetDatum(job->current_batch > 0 ? job->current_batch : job->batch_size);
	values[6] = Int64GetDatum(lag_bytes);
	nulls[6] = lag_bytes < 0 ? 'n' : ' ';
	values[7] = Int64GetDatum(lag_ms);
	nulls[7] = lag_ms < 0 ? 'n' : ' ';
	if (throttled)
		values[8] = CStringGetTextDatum(throttled);
	else
		nulls[8] = 'n';
	values[9] = ObjectIdGetDatum(job->relid);
	/*
	 * The table's size needs its ACCESS SHARE lock: taken only if no one
	 * holds it against us (a sample never waits behind an ALTER TABLE, nor
	 * makes a job wait at its start), else the size is left out.
	 */
	if (!ConditionalLockRelationOid(job->relid, AccessShareLock))
		nulls[9] = 'n';
	values[10] = Int64GetDatum(0);

	MigStoreEnter(&sc);
	if (nsamples < 0)
	{
		/* a worker's first sample: how many the lane has, since when */
		sql = psprintf("SELECT count(*), min(at) FROM %s WHERE job_id = $1 AND lane = $2",
					   table);
		if (SPI_execute_with_args(sql, 2, types, values, NULL, true, 0) != SPI_OK_SELECT ||
			SPI_processed != 1)
			elog(ERROR, "could not count the samples of pg_mig job " INT64_FORMAT, job->job_id);
		nsamples = (int) MigInt64Column(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, INT8OID);
		{
			bool		isnull;
			Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);

			first_sample_at = isnull ? now : DatumGetTimestampTz(d);
		}
	}
	sql = psprintf("INSERT INTO %s (job_id, lane, at, rows_done, keys_done, wal_bytes,"
				   " batch_size, lag_bytes, lag, throttled, table_bytes)"
				   " VALUES ($1, $2, clock_timestamp(), $3, $4, $5, $6, $7,"
				   " $8 * interval '1 millisecond', $9,"
				   " (SELECT pg_total_relation_size(c.oid) FROM pg_class c WHERE c.oid = $10))"
				   " ON CONFLICT DO NOTHING",
				   table);
	if (SPI_execute_with_args(sql, 10, types, values, nulls, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not record a sample of pg_mig job " INT64_FORMAT, job->job_id);
	nsamples++;
	if (nsamples > MIG_MAX_SAMPLES)
	{
		/* thin the older half out to every other sample */
		sql = psprintf("DELETE FROM %s s USING (SELECT at, row_number() OVER (ORDER BY at) AS n"
					   "  FROM %s WHERE job_id = $1 AND lane = $2) o"
					   " WHERE s.job_id = $1 AND s.lane = $2 AND s.at = o.at"
					   "   AND o.n > 1 AND o.n <= $11 AND o.n %% 2 = 0",
					   table, table);
		values[10] = Int64GetDatum(MIG_MAX_SAMPLES / 2);
		if (SPI_execute_with_args(sql, 11, types, values, nulls, false, 0) != SPI_OK_DELETE)
			elog(ERROR, "could not thin the samples of pg_mig job " INT64_FORMAT, job->job_id);
		nsamples -= (int) SPI_processed;
	}
	MigStoreLeave(&sc);
	last_sample_at = now;
}

/*
 * MigRecordSample adds a sample of the job (lane) to its history if one
 * is due, or always with force (the first and the last of a walk).  job
 * holds the counters after the step (a lane's, see MigApplyLane);
 * throttled is why the step waited, NULL if it ran a chunk.  Adds what a
 * sample cost to the worker's sums, and logs them with a forced sample
 * (see the header).  Caller is in the step's transaction.
 */
void
MigRecordSample(const MigJob *job, int lane, const char *throttled, bool force)
{
	instr_time	start;
	instr_time	spent;
	PGRUsage	ru0;
	PGRUsage	ru1;
	int64		wal_before = pgWalUsage.wal_bytes;
	TimestampTz now = GetCurrentTimestamp();

	cost.calls++;
	if (!SampleDue(now, force))
		return;
	pg_rusage_init(&ru0);
	INSTR_TIME_SET_CURRENT(start);
	RecordSample(job, lane, throttled, now);
	cost.written++;
	INSTR_TIME_SET_CURRENT(spent);
	pg_rusage_init(&ru1);
	INSTR_TIME_SUBTRACT(spent, start);
	INSTR_TIME_ADD(cost.spent, spent);
	cost.cpu_ms += (ru1.ru.ru_utime.tv_sec - ru0.ru.ru_utime.tv_sec +
					ru1.ru.ru_stime.tv_sec - ru0.ru.ru_stime.tv_sec) * 1000.0 +
		(ru1.ru.ru_utime.tv_usec - ru0.ru.ru_utime.tv_usec +
		 ru1.ru.ru_stime.tv_usec - ru0.ru.ru_stime.tv_usec) / 1000.0;
	cost.wal_bytes += pgWalUsage.wal_bytes - wal_before;
	if (force)
		elog(DEBUG1, "pg_mig job " INT64_FORMAT " lane %d: " INT64_FORMAT " timeline samples ("
			 INT64_FORMAT " calls) took %.3f ms (%.3f ms of CPU) and " INT64_FORMAT
			 " bytes of WAL in " INT64_FORMAT " ms on the job",
			 job->job_id, lane, cost.written, cost.calls,
			 INSTR_TIME_GET_MILLISEC(cost.spent), cost.cpu_ms, cost.wal_bytes,
			 (int64) (cost.since != 0 ?
					  TimestampDifferenceMilliseconds(cost.since, GetCurrentTimestamp()) : 0));
}
