// test_lanes.cpp -- parallel lanes (parallel => n) end to end, on the
// sandbox's primary and streaming standby.
//
// Every case runs a set clause that is not idempotent (n = n + 1 on a table
// where n starts at 0) and ends by checking that every row changed exactly
// once, on the primary and on the standby: lanes that overlapped, left a
// gap, or redid a chunk after a kill or a crash would leave an n <> 1.
// No timing assertions: every wait polls for a state, with a generous
// timeout.

#include "fixture.hpp"
#include "harness.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <set>
#include <thread>

using namespace pgmig_test;

namespace {

// eight workers, so that four lanes of a job (and the per-role limit, half
// of it) leave room; the launcher looks for jobs to restart every second
const bool kConf = sandbox_conf(kWorkersConf);

void MakeTable(Conn& c, const std::string& name, int rows)
{
    c.exec("CREATE EXTENSION IF NOT EXISTS pg_mig");
    c.exec("CREATE TABLE " + name + " (id bigint PRIMARY KEY, n int NOT NULL DEFAULT 0, pad text)");
    c.exec("INSERT INTO " + name + " (id, pad) SELECT g, repeat('p', 40) FROM generate_series(1, $1) g",
           {S(rows)});
    c.exec("VACUUM ANALYZE " + name);
}

// ExactlyOnce: every row of the table has n = 1, on the primary and on the
// standby
void ExpectExactlyOnce(const std::string& table, long long rows)
{
    Conn c(Sandbox::get().conninfo());
    Conn s(Sandbox::get().conninfo("postgres", true));
    EXPECT_EQ(rows, c.scalar_int("SELECT count(*) FROM " + table));
    EXPECT_EQ(0, c.scalar_int("SELECT count(*) FROM " + table + " WHERE n <> 1"));
    wait_standby();
    EXPECT_EQ(rows, s.scalar_int("SELECT count(*) FROM " + table));
    EXPECT_EQ(0, s.scalar_int("SELECT count(*) FROM " + table + " WHERE n <> 1"));
}

// lane count of a job, and how many of its lanes have a worker
long long Lanes(Conn& c, long long job)
{
    return c.scalar_int("SELECT count(*) FROM mig_job_lanes WHERE job_id = $1", {S(job)});
}
long long LaneWorkers(Conn& c, long long job)
{
    return c.scalar_int("SELECT count(worker_pid) FROM mig_job_lanes WHERE job_id = $1", {S(job)});
}

// the lanes' rows_done, in lane order, as one string
std::string LaneRows(Conn& c, long long job)
{
    return *c.scalar("SELECT string_agg(rows_done::text, ',' ORDER BY lane) FROM mig_job_lanes"
                     " WHERE job_id = $1", {S(job)});
}

// ExpectLanesCover: lanes 1..n cover the key range of the table with no gap
// and no overlap (lane 1 from the first key, lane n to the upper key, the
// lower key of lane k+1 the upper key of lane k), each lane changed exactly
// the rows of its range, and mig_jobs shows the lanes' sums.
void ExpectLanesCover(Conn& c, long long job, int n, const std::string& table, long long rows)
{
    auto r = c.rows("SELECT lane, lower_key[1], upper_key[1], rows_done, keys_done, state"
                    " FROM mig_job_lanes WHERE job_id = $1 ORDER BY lane", {S(job)});
    ASSERT_EQ(static_cast<size_t>(n), r.size());
    long long sum_rows = 0, sum_keys = 0;
    for (int k = 0; k < n; k++) {
        SCOPED_TRACE("lane " + S(k + 1));
        EXPECT_EQ(S(k + 1), *r[k][0]);
        EXPECT_EQ("done", r[k][5].value_or("?"));
        if (k == 0)
            EXPECT_FALSE(r[k][1].has_value()) << "lane 1 starts at the first key";
        else
            EXPECT_EQ(r[k - 1][2], r[k][1]) << "lane " << k + 1 << " starts where lane " << k << " ends";
        if (k == n - 1)
            EXPECT_FALSE(r[k][2].has_value()) << "the last lane ends at the upper key";
        else
            ASSERT_TRUE(r[k][2].has_value());
        // the rows of the lane's range (lower, upper]: exactly its rows_done
        long long in_range = c.scalar_int(
            "SELECT count(*) FROM " + table + " WHERE ($1::bigint IS NULL OR id > $1::bigint)"
            " AND ($2::bigint IS NULL OR id <= $2::bigint)",
            {r[k][1], r[k][2]});
        EXPECT_EQ(in_range, std::stoll(*r[k][3]));
        // about equal lanes: none is empty on an evenly filled table
        EXPECT_GT(std::stoll(*r[k][3]), 0);
        sum_rows += std::stoll(*r[k][3]);
        sum_keys += std::stoll(*r[k][4]);
    }
    EXPECT_EQ(rows, sum_rows);
    auto j = c.rows("SELECT rows_done, keys_done, chunks_done, wal_bytes FROM mig_jobs WHERE job_id = $1",
                    {S(job)});
    ASSERT_EQ(1u, j.size()) << "one row per job in mig_jobs";
    EXPECT_EQ(sum_rows, std::stoll(*j[0][0]));
    EXPECT_EQ(sum_keys, std::stoll(*j[0][1]));
    EXPECT_EQ(c.scalar_int("SELECT sum(chunks_done) FROM mig_job_lanes WHERE job_id = $1", {S(job)}),
              std::stoll(*j[0][2]));
    EXPECT_EQ(c.scalar_int("SELECT sum(wal_bytes) FROM mig_job_lanes WHERE job_id = $1", {S(job)}),
              std::stoll(*j[0][3]));
}

long long RowsDone(long long job) { return job_rows_done(job); }

// FinishSooner: once what a case is about has happened, the rest of its
// walk runs with no pause between chunks and in larger ones (mig_set
// reaches every lane; extra: more knobs, e.g. ", max_lag_bytes => ...").
// The case's end checks (every row once, the lanes cover the range) are the
// same whatever the chunks' size.  A job that ended first is left as it is.
void FinishSooner(long long job, const std::string& extra = "")
{
    Conn c(Sandbox::get().conninfo());
    try {
        c.exec("SELECT mig_set($1, batch_size => 5000, sleep => '0'" + extra + ")", {S(job)});
    } catch (const PgError&) {
        auto st = try_scalar("SELECT state FROM mig_jobs WHERE job_id = $1", {S(job)});
        if (!st || (*st != "succeeded" && *st != "failed" && *st != "cancelled")) throw;
    }
}

// every lane not done has a worker again (or the job ended)
void WaitLanesRunning(long long job)
{
    wait_for(
        [&] {
            auto v = try_scalar("SELECT count(*) FILTER (WHERE state <> 'done' AND worker_pid IS NULL)"
                               " FROM mig_job_lanes WHERE job_id = $1",
                               {S(job)});
            auto st = try_scalar("SELECT state FROM mig_jobs WHERE job_id = $1", {S(job)});
            return (v && *v == "0") || (st && *st == "succeeded");
        },
        120, "every lane of the job to have its worker again");
}

// CrashLanes: a job of n lanes through kills of one lane's worker, of every
// lane's worker (pg_terminate_backend), a kill -9 of a lane's worker (a
// crash of the server) and an immediate stop; it resumes by itself, every
// row exactly once
void CrashLanes(const std::string& table, int n)
{
    const int rows = 200000;
    long long job;
    {
        Conn c(Sandbox::get().conninfo());
        MakeTable(c, table, rows);
        job = c.scalar_int("SELECT mig_start_backfill($1::regclass, 'n = n + 1', batch_size => 200,"
                           " chunk_time => NULL, sleep => '100ms', parallel => $2)",
                           {table, S(n)});
    }
    const char* kinds[] = {"terminate one lane", "terminate every lane", "kill -9 a lane's worker",
                           "stop -m immediate"};
    int done = 0;
    long long last = -1;
    for (const char* kind : kinds) {
        SCOPED_TRACE(kind);
        std::string k = kind;
        long long target = RowsDone(job) + 3000;
        if (target >= rows - 20000) break;
        wait_for([&] { return RowsDone(job) >= target; }, 180, "job progress before a kill");
        WaitLanesRunning(job);
        Conn c(Sandbox::get().conninfo());
        if (k == "terminate one lane" || k == "terminate every lane") {
            auto pids = c.rows("SELECT worker_pid FROM mig_job_lanes WHERE job_id = $1"
                               " AND worker_pid IS NOT NULL ORDER BY lane", {S(job)});
            ASSERT_FALSE(pids.empty());
            std::set<std::string> killed;
            for (auto& p : pids) {
                c.exec("SELECT pg_terminate_backend($1::int)", {p[0]});
                killed.insert(*p[0]);
                if (k == "terminate one lane") break;
            }
            // the launcher gives the lanes new workers
            wait_for(
                [&] {
                    auto now = c.rows("SELECT worker_pid, state FROM mig_job_lanes WHERE job_id = $1",
                                      {S(job)});
                    for (auto& p : now)
                        if ((p[0] && killed.count(*p[0])) || (!p[0] && *p[1] != "done")) return false;
                    return true;
                },
                120, "new workers for the terminated lanes");
        } else {
            if (k == "kill -9 a lane's worker") {
                std::string checkpointer = checkpointer_pid();
                long long pid = c.scalar_int("SELECT worker_pid FROM mig_job_lanes WHERE job_id = $1"
                                             " AND worker_pid IS NOT NULL ORDER BY lane DESC LIMIT 1",
                                             {S(job)});
                ASSERT_EQ(0, ::kill(static_cast<pid_t>(pid), SIGKILL)) << "kill " << pid;
                wait_primary_restarted(checkpointer);
            } else {
                crash_primary();
            }
            // it resumes by itself: the launcher gives every lane a worker
            WaitLanesRunning(job);
        }
        long long now = RowsDone(job);
        EXPECT_GE(now, last) << "the checkpoints went backwards after " << kind;
        last = now;
        ++done;
    }
    EXPECT_EQ(4, done) << "the job ended before every kind of kill was made";
    FinishSooner(job);

    Conn c(Sandbox::get().conninfo());
    EXPECT_EQ("succeeded", wait_job(c, job, 600));
    ExpectLanesCover(c, job, n, table, rows);
    ExpectExactlyOnce(table, rows);
}

}  // namespace

// (a) two and four lanes: every row once, the lanes cover the range
TEST(Lanes, BackfillInTwoAndFourLanes)
{
    for (int n : {2, 4}) {
        SCOPED_TRACE("parallel " + S(n));
        const int rows = 60000;
        std::string table = "ln_fill" + S(n);
        Conn c(Sandbox::get().conninfo());
        MakeTable(c, table, rows);
        long long job = c.scalar_int("SELECT mig_start_backfill($1::regclass, 'n = n + 1',"
                                     " batch_size => 2000, chunk_time => NULL, parallel => $2)",
                                     {table, S(n)});
        EXPECT_EQ(n, Lanes(c, job));
        EXPECT_EQ("succeeded", wait_job(c, job, 300));
        // a lane's worker may still be on its way out when the job shows
        // succeeded: it leaves soon after
        wait_for([&] { return LaneWorkers(c, job) == 0; }, 60, "every lane's worker to end");
        ExpectLanesCover(c, job, n, table, rows);
        EXPECT_EQ(rows, job_rows_done(c, job));
        ExpectExactlyOnce(table, rows);
        // one 'started' event per lane, naming it
        EXPECT_EQ(n, c.scalar_int("SELECT count(*) FROM mig_job_events WHERE job_id = $1"
                                  " AND event = 'started' AND detail LIKE 'lane %'",
                                  {S(job)}));
    }
}

// every lane gets its worker when the job starts, not at the launcher's
// next look for jobs (pg_mig.naptime, an hour here)
TEST(Lanes, EveryLaneStartsAtOnce)
{
    Conn c(Sandbox::get().conninfo());
    MakeTable(c, "ln_start", 40000);
    struct Reset {
        ~Reset()
        {
            Conn r(Sandbox::get().conninfo());
            r.exec("ALTER SYSTEM RESET pg_mig.naptime");
            r.exec("SELECT pg_reload_conf()");
        }
    } reset;
    c.exec("ALTER SYSTEM SET pg_mig.naptime = '1h'");
    c.exec("SELECT pg_reload_conf()");
    wait_for([&] { return Conn(Sandbox::get().conninfo()).scalar("SHOW pg_mig.naptime") == "1h"; }, 60,
             "the reload");
    // (the launcher looks for jobs once after a reload: let that pass)
    std::this_thread::sleep_for(std::chrono::seconds(3));
    long long job = c.scalar_int("SELECT mig_start_backfill('ln_start', 'n = n + 1', batch_size => 100,"
                                 " chunk_time => NULL, sleep => '100ms', parallel => 4)");
    wait_for([&] { return LaneWorkers(c, job) == 4; }, 60, "a worker for every lane");
    c.exec("SELECT mig_cancel($1)", {S(job)});
    EXPECT_EQ("cancelled", wait_job(c, job, 60));
}

// a lane (re)starts while the other lanes' chunks hold the job row FOR
// SHARE, as they do back to back: a FOR UPDATE of the row, or an UPDATE, at
// its start would wait behind them (new share lockers do not queue behind
// it).  Here a session holds the row FOR SHARE the whole time.
TEST(Lanes, ALaneStartsUnderTheOtherLanesShareLocks)
{
    Conn c(Sandbox::get().conninfo());
    MakeTable(c, "ln_share", 40000);
    long long job = c.scalar_int("SELECT mig_start_backfill('ln_share', 'n = n + 1', batch_size => 100,"
                                 " chunk_time => NULL, sleep => '50ms', parallel => 2)");
    wait_for([&] { return c.scalar_int("SELECT count(*) FROM mig_job_lanes WHERE job_id = $1"
                                       " AND rows_done > 0 AND worker_pid IS NOT NULL", {S(job)}) == 2; },
             60, "both lanes to run");
    EXPECT_EQ("running", *c.scalar("SELECT state FROM mig_jobs WHERE job_id = $1", {S(job)}));
    Conn holder(Sandbox::get().conninfo());
    holder.exec("BEGIN");
    holder.exec("SELECT FROM mig_job WHERE job_id = $1 FOR SHARE", {S(job)});
    std::string pid = *c.scalar("SELECT worker_pid::text FROM mig_job_lanes WHERE job_id = $1 AND lane = 2",
                                {S(job)});
    long long before = c.scalar_int("SELECT rows_done FROM mig_job_lanes WHERE job_id = $1 AND lane = 2", {S(job)});
    c.exec("SELECT pg_terminate_backend($1::int)", {pid});
    // a new worker for lane 2 starts its walk and goes on, the share lock
    // held all along
    wait_for([&] { return c.scalar_int("SELECT count(*) FROM mig_job_lanes WHERE job_id = $1 AND lane = 2"
                                       " AND worker_pid IS NOT NULL AND worker_pid <> $2::int"
                                       " AND rows_done > $3::bigint", {S(job), pid, S(before)}) == 1; },
             120, "lane 2 to go on under the other lanes' share locks");
    EXPECT_EQ(1, c.scalar_int("SELECT count(*) FROM mig_job_events WHERE job_id = $1 AND event = 'started'"
                              " AND detail LIKE 'lane 2: resumed from the checkpoint%'", {S(job)}))
        << *c.scalar("SELECT string_agg(event || ': ' || coalesce(detail, ''), E'\\n' ORDER BY event_id)"
                     " FROM mig_job_events WHERE job_id = $1", {S(job)});
    holder.exec("COMMIT");
    FinishSooner(job);
    EXPECT_EQ("succeeded", wait_job(c, job, 300));
    ExpectLanesCover(c, job, 2, "ln_share", 40000);
    ExpectExactlyOnce("ln_share", 40000);
}

TEST(Lanes, DeleteInFourLanes)
{
    const int rows = 60000;
    Conn c(Sandbox::get().conninfo());
    MakeTable(c, "ln_del", rows);
    long long job = c.scalar_int("SELECT mig_start_delete('ln_del', 'id % 3 = 0', batch_size => 2000,"
                                 " chunk_time => NULL, parallel => 4)");
    EXPECT_EQ("succeeded", wait_job(c, job, 300));
    EXPECT_EQ(rows / 3, job_rows_done(c, job));
    EXPECT_EQ(rows / 3, c.scalar_int("SELECT sum(rows_done) FROM mig_job_lanes WHERE job_id = $1", {S(job)}));
    EXPECT_EQ(0, c.scalar_int("SELECT count(*) FROM mig_job_lanes WHERE job_id = $1 AND rows_done = 0",
                              {S(job)}));
    Conn s(Sandbox::get().conninfo("postgres", true));
    wait_standby();
    for (Conn* x : {&c, &s}) {
        EXPECT_EQ(rows - rows / 3, x->scalar_int("SELECT count(*) FROM ln_del"));
        EXPECT_EQ(0, x->scalar_int("SELECT count(*) FROM ln_del WHERE id % 3 = 0"));
    }
}

TEST(Lanes, RefusedWherePointless)
{
    Conn c(Sandbox::get().conninfo());
    c.exec("CREATE EXTENSION IF NOT EXISTS pg_mig");
    c.exec("CREATE TABLE ln_part (id int PRIMARY KEY, n int NOT NULL DEFAULT 0) PARTITION BY RANGE (id)");
    c.exec("CREATE TABLE ln_part_1 PARTITION OF ln_part FOR VALUES FROM (0) TO (100)");
    c.exec("CREATE TABLE ln_part_2 PARTITION OF ln_part FOR VALUES FROM (100) TO (200)");
    try {
        c.exec("SELECT mig_start_backfill('ln_part', 'n = n + 1', parallel => 2)");
        ADD_FAILURE() << "a partitioned table in lanes was accepted";
    } catch (const PgError& e) {
        EXPECT_EQ("0A000", e.sqlstate) << e.what();
        EXPECT_NE(std::string::npos, e.hint.find("parallel => 1")) << e.hint;
    }
    for (const char* bad : {"0", "33"}) {
        try {
            c.exec(std::string("SELECT mig_start_backfill('ln_part_1', 'n = n + 1', parallel => ") + bad + ")");
            ADD_FAILURE() << "parallel " << bad << " was accepted";
        } catch (const PgError& e) {
            EXPECT_EQ("22023", e.sqlstate) << e.what();
        }
    }
}

// (b) kills and crashes with two and four lanes
TEST(Lanes, ExactlyOnceAcrossKillsAndCrashesInFourLanes) { CrashLanes("ln_crash4", 4); }
TEST(Lanes, ExactlyOnceAcrossKillsAndCrashesInTwoLanes) { CrashLanes("ln_crash2", 2); }

// (c) pause, set, resume and cancel reach every lane
TEST(Lanes, PauseSetResumeCancelReachEveryLane)
{
    const int rows = 200000;
    Conn c(Sandbox::get().conninfo());
    MakeTable(c, "ln_ctl", rows);
    long long job = c.scalar_int("SELECT mig_start_backfill('ln_ctl', 'n = n + 1', batch_size => 300,"
                                 " chunk_time => NULL, sleep => '30ms', parallel => 4)");
    wait_for([&] { return c.scalar_int("SELECT count(*) FROM mig_job_lanes WHERE job_id = $1"
                                       " AND rows_done > 0 AND worker_pid IS NOT NULL", {S(job)}) == 4; },
             120, "every lane to run");

    // pause: no lane has a worker, no lane advances
    c.exec("SELECT mig_pause($1)", {S(job)});
    EXPECT_EQ("paused", *c.scalar("SELECT state FROM mig_jobs WHERE job_id = $1", {S(job)}));
    wait_for([&] { return LaneWorkers(c, job) == 0; }, 120, "every lane's worker to stop");
    EXPECT_EQ(0, c.scalar_int("SELECT count(*) FROM mig_job_lanes WHERE job_id = $1 AND state <> 'paused'",
                              {S(job)}));
    std::string at_pause = LaneRows(c, job);
    std::this_thread::sleep_for(std::chrono::seconds(3));
    EXPECT_EQ(at_pause, LaneRows(c, job)) << "a lane went on while paused";
    EXPECT_EQ(0, LaneWorkers(c, job));

    // resume: every lane goes on; set: every lane takes the new batch size
    c.exec("SELECT mig_resume($1)", {S(job)});
    wait_for([&] { return LaneWorkers(c, job) == 4; }, 120, "every lane's worker after resume");
    c.exec("SELECT mig_set($1, batch_size => 411)", {S(job)});
    wait_for([&] { return c.scalar_int("SELECT count(*) FROM mig_job_lanes WHERE job_id = $1"
                                       " AND batch_size = 411", {S(job)}) == 4; },
             120, "every lane to take the new batch size");
    EXPECT_EQ(411, c.scalar_int("SELECT batch_size FROM mig_jobs WHERE job_id = $1", {S(job)}));
    // each lane went on from where it was paused
    auto before = c.rows("SELECT unnest(string_to_array($1, ','))::bigint", {at_pause});
    auto after = c.rows("SELECT rows_done FROM mig_job_lanes WHERE job_id = $1 ORDER BY lane", {S(job)});
    ASSERT_EQ(before.size(), after.size());
    for (size_t i = 0; i < after.size(); i++) EXPECT_GT(std::stoll(*after[i][0]), std::stoll(*before[i][0]));

    // cancel ends every lane
    c.exec("SELECT mig_cancel($1)", {S(job)});
    wait_for([&] { return LaneWorkers(c, job) == 0; }, 120, "every lane's worker to end after cancel");
    EXPECT_EQ("cancelled", *c.scalar("SELECT state FROM mig_jobs WHERE job_id = $1", {S(job)}));
    std::string at_cancel = LaneRows(c, job);
    std::this_thread::sleep_for(std::chrono::seconds(2));
    EXPECT_EQ(at_cancel, LaneRows(c, job));
    // what was done is done once: the rows changed are the lanes' sums
    long long changed = c.scalar_int("SELECT count(*) FROM ln_ctl WHERE n = 1");
    EXPECT_EQ(changed, job_rows_done(c, job));
    EXPECT_EQ(0, c.scalar_int("SELECT count(*) FROM ln_ctl WHERE n > 1"));
    EXPECT_LT(changed, rows);
}

// (d) a lane that fails fails the job; resume goes on in every lane
// (c') job control does not wait behind lanes whose chunks overlap: a
// share lock does not queue behind a waiting FOR UPDATE, so with no pause
// between chunks the lanes' share locks on the job row could keep mig_set
// and mig_pause out for as long as the job runs.  Each call must return
// within its statement_timeout (a generous bound: a failure is a wait
// without end, not a slow call).
TEST(Lanes, JobControlGetsThroughOverlappingChunks)
{
    const int rows = 200000;
    Conn c(Sandbox::get().conninfo());
    MakeTable(c, "ln_busy", rows);
    // 0.2 ms a row or more while ln_busy_slow has a row: every chunk holds
    // the job row for 100 ms or more, and the job runs for 10 s or more;
    // without the turn-taking a mig_set waited until the job had ended.
    // Once job control is through, the row goes and the rest runs at speed.
    c.exec("CREATE TABLE ln_busy_slow ()");
    c.exec("INSERT INTO ln_busy_slow DEFAULT VALUES");
    long long job = c.scalar_int(
        "SELECT mig_start_backfill('ln_busy', 'n = n + 1 + CASE WHEN EXISTS (SELECT FROM ln_busy_slow)"
        " THEN 0 * length(pg_sleep(0.0002)::text) ELSE 0 END',"
        " batch_size => 500, chunk_time => NULL, vacuum_every => 0, parallel => 4)");
    wait_for([&] { return c.scalar_int("SELECT count(*) FROM mig_job_lanes WHERE job_id = $1"
                                       " AND rows_done > 0 AND worker_pid IS NOT NULL", {S(job)}) == 4; },
             120, "every lane to run");
    c.exec("SET statement_timeout = '20s'");
    for (int i = 1; i <= 10; i++)
        c.exec("SELECT mig_set($1, batch_size => $2)", {S(job), S(500 + i)});
    c.exec("SELECT mig_pause($1)", {S(job)});
    c.exec("RESET statement_timeout");
    EXPECT_EQ("paused", *c.scalar("SELECT state FROM mig_jobs WHERE job_id = $1", {S(job)}));
    wait_for([&] { return LaneWorkers(c, job) == 0; }, 120, "every lane's worker to stop");
    EXPECT_EQ(10, c.scalar_int("SELECT count(*) FROM mig_job_events WHERE job_id = $1 AND event = 'changed'",
                               {S(job)}));
    c.exec("DELETE FROM ln_busy_slow");
    c.exec("SELECT mig_resume($1)", {S(job)});
    FinishSooner(job);
    EXPECT_EQ("succeeded", wait_job(c, job, 900));
    ExpectExactlyOnce("ln_busy", rows);
}

TEST(Lanes, ALaneFailingFailsTheJobAndResumeGoesOn)
{
    const int rows = 120000;
    Conn c(Sandbox::get().conninfo());
    MakeTable(c, "ln_fail", rows);
    c.exec("CREATE TABLE ln_fail_cause (k int)");
    c.exec("INSERT INTO ln_fail_cause VALUES (1)");
    // the last lane's rows past its first few thousand fail while the cause
    // is there (division by zero: not a transient error, no retry)
    long long job = c.scalar_int(
        "SELECT mig_start_backfill('ln_fail', 'n = n + 1 + CASE WHEN id > ' || $1 ||"
        " ' AND EXISTS (SELECT FROM ln_fail_cause) THEN n / 0 ELSE 0 END',"
        " batch_size => 500, chunk_time => NULL, sleep => '20ms', parallel => 4)",
        {S(rows * 3 / 4 + 3000)});
    // the lanes that hold failing rows: the one with the first failing key
    // and any lane above it (the lanes' bounds come from a sample, so the
    // one that meets its first failing row first is not known in advance)
    std::string bad_lanes = "," + c.scalar(
        "SELECT string_agg(lane::text, ',') FROM mig_job_lanes WHERE job_id = $1"
        " AND (upper_key IS NULL OR upper_key[1]::bigint > $2)", {S(job), S(rows * 3 / 4 + 3001)}).value_or("") + ",";
    EXPECT_EQ("failed", wait_job(c, job, 300));
    std::string error = c.scalar("SELECT last_error FROM mig_jobs WHERE job_id = $1", {S(job)}).value_or("");
    ASSERT_EQ(0u, error.find("lane ")) << error;
    std::string bad_lane = error.substr(5, error.find(':') - 5);
    EXPECT_NE(std::string::npos, bad_lanes.find("," + bad_lane + ",")) << error << " not one of" << bad_lanes;
    EXPECT_NE(std::string::npos, error.find("division by zero")) << error;
    EXPECT_NE(std::string::npos,
              c.scalar("SELECT last_error FROM mig_job_lanes WHERE job_id = $1 AND lane = $2::int",
                       {S(job), bad_lane}).value_or("").find("division by zero"));
    // the other lanes stop at their next chunk, before they are done
    wait_for([&] { return LaneWorkers(c, job) == 0; }, 120, "every lane's worker to end");
    EXPECT_EQ(0, c.scalar_int("SELECT count(*) FROM mig_job_lanes WHERE job_id = $1 AND state <> 'failed'",
                              {S(job)}));
    std::string at_fail = LaneRows(c, job);
    std::this_thread::sleep_for(std::chrono::seconds(2));
    EXPECT_EQ(at_fail, LaneRows(c, job)) << "a lane went on after the job failed";
    EXPECT_EQ(0, LaneWorkers(c, job));
    EXPECT_LT(job_rows_done(c, job), rows);
    EXPECT_EQ(job_rows_done(c, job), c.scalar_int("SELECT count(*) FROM ln_fail WHERE n = 1"));

    // the cause fixed, resume goes on from every lane's checkpoint
    c.exec("DELETE FROM ln_fail_cause");
    c.exec("SELECT mig_resume($1)", {S(job)});
    FinishSooner(job);
    EXPECT_EQ("succeeded", wait_job(c, job, 300));
    ExpectLanesCover(c, job, 4, "ln_fail", rows);
    ExpectExactlyOnce("ln_fail", rows);
}

// (e) lanes beyond the free workers wait, with a reason, and run later
TEST(Lanes, LanesWaitForWorkersAndStillFinish)
{
    const int rows = 40000;
    Conn c(Sandbox::get().conninfo());
    MakeTable(c, "ln_wait", rows);
    struct Reset {
        ~Reset()
        {
            Conn r(Sandbox::get().conninfo());
            r.exec("ALTER SYSTEM RESET pg_mig.max_workers_per_role");
            r.exec("SELECT pg_reload_conf()");
        }
    } reset;
    c.exec("ALTER SYSTEM SET pg_mig.max_workers_per_role = 2");
    c.exec("SELECT pg_reload_conf()");
    wait_for([&] { return Conn(Sandbox::get().conninfo()).scalar("SHOW pg_mig.max_workers_per_role") == "2"; },
             60, "the reload");
    // the launcher reads the new limit at its next wakeup
    std::this_thread::sleep_for(std::chrono::seconds(2));
    long long job = c.scalar_int("SELECT mig_start_backfill('ln_wait', 'n = n + 1', batch_size => 200,"
                                 " chunk_time => NULL, sleep => '20ms', parallel => 4)");
    std::string throttled;
    wait_for(
        [&] {
            throttled = job_throttled(c, job).value_or("");
            return c.scalar_int("SELECT count(*) FROM mig_job_lanes WHERE job_id = $1"
                                " AND state = 'running'", {S(job)}) == 2 &&
                   c.scalar_int("SELECT count(*) FROM mig_job_lanes WHERE job_id = $1"
                                " AND state = 'waiting for a worker'", {S(job)}) == 2 &&
                   throttled.find("2 lanes: waiting") != std::string::npos;
        },
        120, "two lanes to run and two to wait");
    EXPECT_NE(std::string::npos, throttled.find("pg_mig.max_workers_per_role = 2")) << throttled;
    EXPECT_LE(LaneWorkers(c, job), 2);
    EXPECT_EQ("succeeded", wait_job(c, job, 600));
    ExpectLanesCover(c, job, 4, "ln_wait", rows);
    ExpectExactlyOnce("ln_wait", rows);
}

// (f) the lanes share the job's lag budget: n lanes lag no more than one
// walker would.  The lanes first grow their batches (chunk_time lets a
// batch grow by half each chunk) until the lag cap of a chunk stops them:
// one walker's chunk may write half of max_lag_bytes, each lane's chunk a
// 1/n share of that.  Then replay stops on the standby, and the lag grows
// until every lane waits.
TEST(Lanes, LanesShareTheLagBudget)
{
    const int rows = 400000;
    const long long limit = 2 * 1024 * 1024;
    Conn c(Sandbox::get().conninfo());
    Conn standby(Sandbox::get().conninfo("postgres", true));
    MakeTable(c, "ln_lag", rows);
    wait_standby();
    // vacuum_every => 0: lane 1's VACUUMs (vacuum.c) would slow lane 1 alone
    // and add WAL that no chunk cap bounds, both beside the point here
    long long job = c.scalar_int(
        "SELECT mig_start_backfill('ln_lag', 'n = n + 1', batch_size => 2000, chunk_time => '30s',"
        " max_lag_bytes => $1, parallel => 4, vacuum_every => 0)",
        {S(limit)});
    // three chunks a lane: 2000 x 1.5^2 = 4,500 keys, about 1.1 MB, past a
    // walker's cap here (1 MB), let alone a lane's share of it
    wait_for([&] { return c.scalar_int("SELECT count(*) FROM mig_job_lanes WHERE job_id = $1"
                                       " AND chunks_done >= 3", {S(job)}) == 4; },
             300, "every lane's batch to reach its cap");
    standby.exec("SELECT pg_wal_replay_pause()");
    wait_for([&] { return *standby.scalar("SELECT pg_get_wal_replay_pause_state()") == "paused"; }, 60,
             "replay to pause");
    std::string paused_at = *standby.scalar("SELECT pg_last_wal_replay_lsn()::text");
    try {
        wait_for([&] { return c.scalar_int("SELECT count(*) FROM mig_job_lanes WHERE job_id = $1"
                                           " AND (throttled LIKE '%behind%' OR throttled LIKE 'pacing to%' OR state = 'done')", {S(job)}) == 4; },
                 300, "every lane to throttle");
    } catch (...) {
        std::fprintf(stderr, "lanes: %s\n", c.scalar("SELECT string_agg(lane || ':' || state || ':' || coalesce(throttled, '-') || ':' || rows_done, E'\\n') FROM mig_job_lanes WHERE job_id = $1", {S(job)})->c_str());
        throw;
    }
    std::string reason = job_throttled(c, job).value_or("");
    // (a lane that is done does not wait: lanes need not keep pace with
    // each other, and one may be done before replay stops)
    EXPECT_NE(std::string::npos, reason.find("lane ")) << reason;
    EXPECT_TRUE(reason.find("max_lag_bytes 2 MB") != std::string::npos ||
                reason.find("pacing to replica lag budget 2 MB") != std::string::npos) << reason;
    long long held = job_rows_done(c, job);
    long long written = c.scalar_int("SELECT pg_current_wal_lsn() - $1::pg_lsn", {paused_at});
    RecordProperty("wal_written", std::to_string(written));
    // every lane checks the lag before its chunk, so when it crosses the
    // limit at most one chunk of each lane is under way: limit + 4 lanes x
    // limit / 8 = 1.5 x limit.  Slack: the job's own bookkeeping (lane and
    // job rows, events: a few kB a chunk) and the estimate of a chunk's WAL
    // from the chunk before it (more or fewer full page images): 512 kB.
    // Four lanes with a walker's cap each could write 3 x limit.
    EXPECT_LE(written, limit + limit / 2 + 512 * 1024) << "WAL written while replay was paused";
    // The mechanism behind it, lane by lane: the chunk size each lane uses
    // now, times the WAL its keys wrote on average, is its share of the
    // cap, limit / 2 / 4 lanes = 256 kB (a chunk of one walker, or of lanes
    // that did not share, would be 1 MB).  Slack 1.5 x: a chunk is sized
    // from the WAL per key of the chunk before it, the average here is over
    // all the lane's chunks (full page images vary).
    for (auto& l : c.rows("SELECT lane, batch_size, (wal_bytes::float8 / nullif(keys_done, 0))::bigint"
                          " FROM mig_job_lanes WHERE job_id = $1 ORDER BY lane", {S(job)})) {
        long long chunk_wal = std::stoll(*l[1]) * std::stoll(l[2].value_or("0"));
        std::fprintf(stderr, "lane %s: batch %s, %s WAL bytes a key: about %lld bytes a chunk\n", l[0]->c_str(),
                     l[1]->c_str(), l[2].value_or("?").c_str(), chunk_wal);
        EXPECT_LE(chunk_wal, limit / 2 / 4 * 3 / 2) << "lane " << *l[0];
        EXPECT_GT(chunk_wal, 0) << "lane " << *l[0];
    }
    std::fprintf(stderr, "WAL written while replay was paused: %lld (limit %lld)\n", written, limit);
    // (no lower bound: the primary sees the standby's replay position only
    // as often as the standby reports it, so the lanes may throttle early)
    EXPECT_LT(held, rows);
    standby.exec("SELECT pg_wal_replay_resume()");
    // the rest without the 2 MB cap, which kept every lane's chunks small
    FinishSooner(job, ", max_lag_bytes => 1073741824");
    EXPECT_EQ("succeeded", wait_job(c, job, 600));
    ExpectExactlyOnce("ln_lag", rows);
}

// ---- migctl: --parallel and --vacuum-every; status shows the lanes ----

namespace {

bool Has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

size_t Count(const std::string& text, const std::string& part)
{
    size_t n = 0;
    for (size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) n++;
    return n;
}

}  // namespace

TEST(LanesMigctl, StartSetStatusWithParallel)
{
    Conn c(Sandbox::get().conninfo());
    MakeTable(c, "ln_mc", 30000);
    auto r = migctl({"start", "--table", "ln_mc", "--set", "n = n + 1", "--parallel", "3", "--vacuum-every",
                     "5000", "--batch-size", "100", "--chunk-time", "0", "--sleep", "100ms"});
    ASSERT_EQ(0, r.exit_code) << r.err;
    long long job = std::stoll(r.out);
    EXPECT_EQ(3, c.scalar_int("SELECT parallel FROM mig_job WHERE job_id = $1", {S(job)}));
    EXPECT_EQ(5000, c.scalar_int("SELECT vacuum_every FROM mig_job WHERE job_id = $1", {S(job)}));
    EXPECT_EQ(3, Lanes(c, job));
    // a lane's worker shows before its first transaction marks it running
    wait_for(
        [&] {
            return LaneWorkers(c, job) == 3 &&
                   c.scalar_int("SELECT count(*) FROM mig_job_lanes WHERE job_id = $1 AND state = 'running'",
                                {S(job)}) == 3 &&
                   c.scalar("SELECT state FROM mig_jobs WHERE job_id = $1", {S(job)}) == "running";
        },
        60, "every lane to run");

    // the table: a LANES column; --json: the lanes of the job
    auto t = migctl({"status", S(job)});
    ASSERT_EQ(0, t.exit_code) << t.err;
    EXPECT_TRUE(Has(t.out, "LANES")) << t.out;
    EXPECT_TRUE(Has(t.out, "3/3 running")) << t.out;
    auto j = migctl({"status", S(job), "--json"});
    ASSERT_EQ(0, j.exit_code) << j.err;
    EXPECT_TRUE(Has(j.out, "\"parallel\": 3")) << j.out;
    EXPECT_TRUE(Has(j.out, "\"lanes\": [")) << j.out;
    EXPECT_EQ(3u, Count(j.out, "\"lane\": ")) << j.out;
    EXPECT_EQ(4u, Count(j.out, "\"state\": \"running\"")) << j.out;  // the job's and its lanes'
    EXPECT_TRUE(Has(j.out, "\"lower_key\": null")) << j.out;
    EXPECT_TRUE(Has(j.out, "\"worker_pid\": ")) << j.out;

    // set reaches the job: --vacuum-every 0 turns it off
    auto s = migctl({"set", S(job), "--vacuum-every", "0"});
    ASSERT_EQ(0, s.exit_code) << s.err;
    EXPECT_EQ(0, c.scalar_int("SELECT coalesce(vacuum_every, 0) FROM mig_job WHERE job_id = $1", {S(job)}));

    // a cancelled parallel job: its lanes, none done
    ASSERT_EQ(0, migctl({"cancel", S(job)}).exit_code);
    EXPECT_EQ("cancelled", wait_job(c, job, 60));
    wait_for([&] { return LaneWorkers(c, job) == 0; }, 60, "the lanes' workers to end");
    EXPECT_TRUE(Has(migctl({"status", S(job)}).out, "0/3 done"));

    // one walker: the output of 0.2 (no LANES column, no lanes in JSON)
    auto one = migctl({"start", "--table", "ln_mc", "--set", "n = n + 1", "--wait"});
    ASSERT_EQ(0, one.exit_code) << one.err;
    long long one_job = c.scalar_int("SELECT max(job_id) FROM mig_jobs");
    auto t1 = migctl({"status", S(one_job)});
    EXPECT_FALSE(Has(t1.out, "LANES")) << t1.out;
    auto j1 = migctl({"status", S(one_job), "--json"});
    EXPECT_FALSE(Has(j1.out, "lanes")) << j1.out;
    EXPECT_FALSE(Has(j1.out, "parallel")) << j1.out;
}

TEST(LanesMigctl, DeleteWithParallelAndBadValues)
{
    Conn c(Sandbox::get().conninfo());
    MakeTable(c, "ln_mcdel", 20000);
    auto r = migctl({"delete", "--table", "ln_mcdel", "--where", "id % 2 = 0", "--parallel", "2", "--wait"});
    ASSERT_EQ(0, r.exit_code) << r.err << r.out;
    EXPECT_TRUE(Has(r.out, "lanes 2/2")) << "the watch line names the lanes: " << r.out;
    long long job = c.scalar_int("SELECT max(job_id) FROM mig_jobs");
    EXPECT_EQ("succeeded", *c.scalar("SELECT state FROM mig_jobs WHERE job_id = $1", {S(job)}));
    EXPECT_EQ(2, c.scalar_int("SELECT parallel FROM mig_job WHERE job_id = $1", {S(job)}));
    EXPECT_EQ(2, Lanes(c, job));
    EXPECT_EQ(10000, c.scalar_int("SELECT count(*) FROM ln_mcdel"));
    EXPECT_EQ(0, c.scalar_int("SELECT count(*) FROM ln_mcdel WHERE id % 2 = 0"));
    EXPECT_TRUE(Has(migctl({"status", S(job)}).out, "2/2 done"));

    // bad values: usage errors before connecting (exit 2), or the server's
    for (auto bad : std::vector<std::vector<std::string>>{
             {"delete", "--table", "ln_mcdel", "--where", "true", "--parallel", "0"},
             {"delete", "--table", "ln_mcdel", "--where", "true", "--parallel", "x"},
             {"start", "--table", "ln_mcdel", "--set", "n = 1", "--parallel", "33"},
             {"start", "--table", "ln_mcdel", "--set", "n = 1", "--vacuum-every", "-5"}}) {
        auto b = migctl(bad);
        EXPECT_EQ(2, b.exit_code) << b.out << b.err;
        EXPECT_TRUE(Has(b.err, "--parallel") || Has(b.err, "--vacuum-every")) << b.err;
    }
    EXPECT_EQ(10000, c.scalar_int("SELECT count(*) FROM ln_mcdel"));
}

TEST(LanesMigctl, PlanShowsTheLanes)
{
    Conn c(Sandbox::get().conninfo());
    MakeTable(c, "ln_plan", 30000);
    auto p = migctl({"plan", "--table", "ln_plan", "--set", "n = n + 1", "--samples", "0", "--parallel", "3"});
    ASSERT_EQ(0, p.exit_code) << p.err;
    EXPECT_TRUE(Has(p.out, "lanes:")) << p.out;
    EXPECT_TRUE(Has(p.out, "lane 1, keys from the first key to (")) << p.out;
    EXPECT_TRUE(Has(p.out, "lane 3, keys after (")) << p.out;
    EXPECT_EQ(3u, Count(p.out, "           lane ")) << p.out;
    auto j = migctl({"plan", "--table", "ln_plan", "--set", "n = n + 1", "--samples", "0", "--parallel", "3",
                     "--json"});
    ASSERT_EQ(0, j.exit_code) << j.err;
    EXPECT_EQ(3u, Count(j.out, "\"lane\": \"lane ")) << j.out;
    // one walker: no lanes, as before
    auto one = migctl({"plan", "--table", "ln_plan", "--set", "n = n + 1", "--samples", "0", "--json"});
    ASSERT_EQ(0, one.exit_code) << one.err;
    EXPECT_FALSE(Has(one.out, "lanes")) << one.out;
    EXPECT_EQ(2, migctl({"plan", "--table", "ln_plan", "--set", "n = 1", "--parallel", "40"}).exit_code);
    // nothing was started
    EXPECT_EQ(0, c.scalar_int("SELECT count(*) FROM mig_jobs WHERE relation = 'ln_plan'::regclass"));
}
