// test_crash.cpp -- exactly once across crashes, and resume by itself.
//
// A set clause that is not idempotent (n = n + 1, no where clause) runs on
// 300,000 rows while the test kills the worker with SIGKILL (a crash of the
// whole server), stops the primary with -m immediate, and restarts it with
// -m fast, at random moments.  Afterwards every row must have n = 1 on the
// primary and on the standby: no row changed twice, none skipped.

#include "harness.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <random>
#include <thread>

using namespace pgmig_test;

namespace {

// TryScalar: one value from a new connection, or nothing while the server
// restarts (after a kill -9 the postmaster needs a moment to notice, so a
// query can succeed and the next one meet "the database system is in
// recovery mode").
std::optional<std::string> TryScalar(const std::string& sql, const Params& params = {})
{
    try {
        Conn c(Sandbox::get().conninfo());
        return c.scalar(sql, params);
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

// WaitScalar: the first value TryScalar gets.
std::string WaitScalar(const std::string& sql, const Params& params, const std::string& what)
{
    std::optional<std::string> v;
    wait_for([&] { return (v = TryScalar(sql, params)).has_value(); }, 120, what);
    return *v;
}

const char* kCheckpointerPid = "SELECT pid::text FROM pg_stat_activity WHERE backend_type = 'checkpointer'";

long long RowsDone(long long job)
{
    return std::stoll(WaitScalar("SELECT rows_done FROM mig_jobs WHERE job_id = $1", {std::to_string(job)},
                                 "the job's rows_done"));
}

// The checkpointer's pid: every kind of crash or restart made here replaces
// it (a crash of any backend makes the postmaster restart all its children).
std::string CheckpointerPid() { return WaitScalar(kCheckpointerPid, {}, "the checkpointer's pid"); }

// Waits until the primary has gone through the crash (a new checkpointer)
// and accepts connections again.  Without the first part a query can slip in
// before the postmaster notices the kill and the next meet recovery mode.
void WaitServerUp(const std::string& old_checkpointer)
{
    wait_for(
        [&] {
            auto v = TryScalar(kCheckpointerPid);
            return v && *v != old_checkpointer;
        },
        120, "the primary to restart after the crash");
}

long long WorkerPid(long long job)
{
    return std::stoll(WaitScalar("SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_mig worker'"
                                 " AND application_name = $1",
                                 {"pg_mig job " + std::to_string(job)}, "the job's worker to run"));
}

}  // namespace

TEST(Crash, ExactlyOnceAcrossKillsAndRestarts)
{
    const int rows = 300000;
    long long job;
    {
        Conn c(Sandbox::get().conninfo());
        c.exec("CREATE EXTENSION IF NOT EXISTS pg_mig");
        c.exec("CREATE TABLE crash_t (id bigint PRIMARY KEY, n int NOT NULL DEFAULT 0, pad text)");
        c.exec("INSERT INTO crash_t (id, pad) SELECT g, repeat('x', 20) FROM generate_series(1, $1) g",
               {std::to_string(rows)});
        c.exec("VACUUM ANALYZE crash_t");
        job = c.scalar_int(
            "SELECT mig_start_backfill('crash_t', 'n = n + 1', batch_size => 1500,"
            " chunk_time => NULL, sleep => '15ms')");
    }

    std::mt19937 rng(std::random_device{}());
    const char* kinds[] = {"kill -9 worker", "stop -m immediate", "restart -m fast",
                           "kill -9 worker"};
    long long last = -1;
    int crashes = 0;
    for (const char* kind : kinds) {
        // let the job make some progress, a random amount
        long long target = RowsDone(job) + 6000 + (rng() % 30000);
        if (target >= rows - 20000) break;
        wait_for([&] { return RowsDone(job) >= target; }, 180, "job progress before a crash");
        std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 60));
        std::string k = kind;
        std::string checkpointer = CheckpointerPid();
        if (k == "kill -9 worker") {
            long long pid = WorkerPid(job);
            ASSERT_EQ(0, ::kill(static_cast<pid_t>(pid), SIGKILL)) << "kill " << pid;
        } else if (k == "stop -m immediate") {
            ASSERT_EQ(0, Sandbox::get().ctl("primary", "stop -m immediate"));
            ASSERT_EQ(0, Sandbox::get().ctl("primary", "start"));
        } else {
            ASSERT_EQ(0, Sandbox::get().ctl("primary", "restart -m fast"));
        }
        ++crashes;
        WaitServerUp(checkpointer);
        long long now = RowsDone(job);
        EXPECT_GE(now, last) << "checkpoint went backwards after " << kind;
        last = now;
        // it resumes by itself: the launcher restarts the job's worker
        WorkerPid(job);
    }
    EXPECT_GE(crashes, 3) << "the job ended before three crashes could be made";

    Conn c(Sandbox::get().conninfo());
    EXPECT_EQ("succeeded", wait_job(c, job, 300));
    EXPECT_EQ(rows, c.scalar_int("SELECT count(*) FROM crash_t WHERE n = 1"));
    EXPECT_EQ(0, c.scalar_int("SELECT count(*) FROM crash_t WHERE n <> 1"));
    EXPECT_EQ(rows, c.scalar_int("SELECT rows_done FROM mig_jobs WHERE job_id = $1",
                                 {std::to_string(job)}));
    // one 'started' at first, one for each resume after a crash
    EXPECT_GE(c.scalar_int("SELECT count(*) FROM mig_job_events WHERE job_id = $1"
                           " AND event = 'started'",
                           {std::to_string(job)}),
              crashes + 1);

    // and the standby has exactly the same
    c.exec("CHECKPOINT");
    std::string lsn = *c.scalar("SELECT pg_current_wal_insert_lsn()::text");
    Conn s(Sandbox::get().conninfo("postgres", true));
    wait_for([&] { return s.scalar_int("SELECT (pg_last_wal_replay_lsn() >= $1::pg_lsn)::int", {lsn}) == 1; },
             120, "standby replay");
    EXPECT_EQ(rows, s.scalar_int("SELECT count(*) FROM crash_t WHERE n = 1"));
}

TEST(Crash, PausedJobStaysPausedAndQueuedJobRunsAfterRestart)
{
    Conn c(Sandbox::get().conninfo());
    c.exec("CREATE EXTENSION IF NOT EXISTS pg_mig");
    c.exec("CREATE TABLE crash_p (id int PRIMARY KEY, n int NOT NULL DEFAULT 0)");
    c.exec("INSERT INTO crash_p (id) SELECT g FROM generate_series(1, 20000) g");
    c.exec("CREATE TABLE crash_q (id int PRIMARY KEY, n int NOT NULL DEFAULT 0)");
    c.exec("INSERT INTO crash_q (id) SELECT g FROM generate_series(1, 20000) g");
    long long paused = c.scalar_int(
        "SELECT mig_start_backfill('crash_p', 'n = n + 1', batch_size => 100, chunk_time => NULL,"
        " sleep => '20ms')");
    wait_for([&] { return RowsDone(paused) > 0; }, 60, "paused job progress");
    c.exec("SELECT mig_pause($1)", {std::to_string(paused)});
    long long done_at_pause = RowsDone(paused);

    // a job queued in a transaction that commits just before a crash
    long long queued = c.scalar_int(
        "SELECT mig_start_backfill('crash_q', 'n = n + 1', batch_size => 1000, chunk_time => NULL)");
    std::string checkpointer = CheckpointerPid();
    ASSERT_EQ(0, Sandbox::get().ctl("primary", "stop -m immediate"));
    ASSERT_EQ(0, Sandbox::get().ctl("primary", "start"));
    WaitServerUp(checkpointer);

    Conn c2(Sandbox::get().conninfo());
    EXPECT_EQ("succeeded", wait_job(c2, queued, 120));
    EXPECT_EQ(20000, c2.scalar_int("SELECT count(*) FROM crash_q WHERE n = 1"));
    std::this_thread::sleep_for(std::chrono::seconds(2));
    EXPECT_EQ("paused", *c2.scalar("SELECT state FROM mig_jobs WHERE job_id = $1",
                                   {std::to_string(paused)}));
    EXPECT_EQ(done_at_pause, RowsDone(paused));
    c2.exec("SELECT mig_resume($1)", {std::to_string(paused)});
    EXPECT_EQ("succeeded", wait_job(c2, paused, 120));
    EXPECT_EQ(20000, c2.scalar_int("SELECT count(*) FROM crash_p WHERE n = 1"));
}
