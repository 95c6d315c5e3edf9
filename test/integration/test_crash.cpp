// test_crash.cpp -- exactly once across crashes, and resume by itself.
//
// A set clause that is not idempotent (n = n + 1, no where clause) runs on
// 300,000 rows while the test kills the worker with SIGKILL (a crash of the
// whole server), stops the primary with -m immediate, and restarts it with
// -m fast, at random moments.  Afterwards every row must have n = 1 on the
// primary and on the standby: no row changed twice, none skipped.

#include "fixture.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <random>
#include <thread>

using namespace pgmig_test;

TEST(Crash, ExactlyOnceAcrossKillsAndRestarts)
{
    const int rows = 300000;
    long long job;
    {
        Conn c = pg_mig_primary();
        create_table(c, "crash_t", "id bigint PRIMARY KEY, n int NOT NULL DEFAULT 0, pad text",
                     "g, 0, repeat('x', 20)", rows);
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
        long long target = job_rows_done(job) + 6000 + (rng() % 30000);
        if (target >= rows - 20000) break;
        wait_for([&] { return job_rows_done(job) >= target; }, 180, "job progress before a crash");
        std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 60));
        std::string k = kind;
        if (k == "kill -9 worker")
            kill_worker(job);
        else if (k == "stop -m immediate")
            crash_primary();
        else
            restart_primary();
        ++crashes;
        long long now = job_rows_done(job);
        EXPECT_GE(now, last) << "checkpoint went backwards after " << kind;
        last = now;
        // it resumes by itself: the launcher restarts the job's worker
        worker_pid(job);
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
    wait_standby();
    Conn s(Sandbox::get().conninfo("postgres", true));
    EXPECT_EQ(rows, s.scalar_int("SELECT count(*) FROM crash_t WHERE n = 1"));
}

TEST(Crash, PausedJobStaysPausedAndQueuedJobRunsAfterRestart)
{
    Conn c = pg_mig_primary();
    create_table(c, "crash_p", "id int PRIMARY KEY, n int NOT NULL DEFAULT 0", "g, 0", 20000);
    create_table(c, "crash_q", "id int PRIMARY KEY, n int NOT NULL DEFAULT 0", "g, 0", 20000);
    long long paused = c.scalar_int(
        "SELECT mig_start_backfill('crash_p', 'n = n + 1', batch_size => 100, chunk_time => NULL,"
        " sleep => '20ms')");
    wait_for([&] { return job_rows_done(paused) > 0; }, 60, "paused job progress");
    c.exec("SELECT mig_pause($1)", {std::to_string(paused)});
    long long done_at_pause = job_rows_done(paused);

    // a job queued in a transaction that commits just before a crash
    long long queued = c.scalar_int(
        "SELECT mig_start_backfill('crash_q', 'n = n + 1', batch_size => 1000, chunk_time => NULL)");
    crash_primary();

    Conn c2(Sandbox::get().conninfo());
    EXPECT_EQ("succeeded", wait_job(c2, queued, 120));
    EXPECT_EQ(20000, c2.scalar_int("SELECT count(*) FROM crash_q WHERE n = 1"));
    std::this_thread::sleep_for(std::chrono::seconds(2));
    EXPECT_EQ("paused", *c2.scalar("SELECT state FROM mig_jobs WHERE job_id = $1",
                                   {std::to_string(paused)}));
    EXPECT_EQ(done_at_pause, job_rows_done(paused));
    c2.exec("SELECT mig_resume($1)", {std::to_string(paused)});
    EXPECT_EQ("succeeded", wait_job(c2, paused, 120));
    EXPECT_EQ(20000, c2.scalar_int("SELECT count(*) FROM crash_p WHERE n = 1"));
}

// A failover to the standby in the middle of a walk: the primary dies, the
// standby is promoted, and the job goes on there by itself (its launcher
// starts once recovery ends), from the checkpoint that reached the standby:
// every row changed exactly once, also on the new standby made afterwards.
// The job's history (mig_job_timeline) has its samples from before the
// failover and from after it, its rows growing to the total.
// Last in this file: from here on the sandbox's primary is the promoted one.
TEST(Crash, JobFinishesOnThePromotedStandby)
{
    const int rows = 120000;
    long long job;
    long long samples_before;
    {
        Conn c = pg_mig_primary();
        // a sample every 200 ms on the primary (the promoted standby keeps
        // its default: there the forced samples, where the worker starts
        // and where the walk ends)
        c.exec("ALTER SYSTEM SET pg_mig.timeline_interval = '200ms'");
        c.exec("SELECT pg_reload_conf()");
        create_table(c, "crash_fo", "id bigint PRIMARY KEY, n int NOT NULL DEFAULT 0", "g, 0", rows);
        job = c.scalar_int(
            "SELECT mig_start_backfill('crash_fo', 'n = n + 1', batch_size => 1000,"
            " chunk_time => NULL, sleep => '10ms')");
    }
    wait_for([&] { return job_rows_done(job) >= 20000; }, 180, "job progress before the failover");
    {
        Conn c = pg_mig_primary();
        samples_before = c.scalar_int("SELECT count(*) FROM mig_job_timeline($1)", {std::to_string(job)});
        c.exec("ALTER SYSTEM RESET pg_mig.timeline_interval");
        c.exec("SELECT pg_reload_conf()");
    }
    EXPECT_GE(samples_before, 3);
    failover_to_standby();

    Conn c(Sandbox::get().conninfo());
    EXPECT_EQ("t", *c.scalar("SELECT NOT pg_is_in_recovery()"));
    EXPECT_EQ("succeeded", wait_job(c, job, 300));
    {
        // the history across the failover: the samples that reached the
        // standby before it, and at least the two the promoted standby's
        // worker forces (where it starts, where the walk ends)
        auto t = c.rows("SELECT rows_done, (at < (SELECT max(at) FROM mig_job_events"
                        "                     WHERE job_id = $1 AND event = 'started'))::int"
                        " FROM mig_job_timeline($1)",
                        {std::to_string(job)});
        long long before = 0, after = 0;
        for (size_t i = 0; i < t.size(); i++) {
            (*t[i][1] == "1" ? before : after)++;
            if (i > 0) {
                EXPECT_GE(std::stoll(*t[i][0]), std::stoll(*t[i - 1][0])) << i;
            }
        }
        EXPECT_GE(before, samples_before) << "the samples from before the failover";
        EXPECT_GE(after, 2) << "the samples of the promoted standby's worker";
        ASSERT_FALSE(t.empty());
        EXPECT_EQ(rows, std::stoll(*t.back()[0]));
    }
    EXPECT_EQ(rows, c.scalar_int("SELECT count(*) FROM crash_fo WHERE n = 1"));
    EXPECT_EQ(0, c.scalar_int("SELECT count(*) FROM crash_fo WHERE n <> 1"));
    EXPECT_EQ(rows, c.scalar_int("SELECT rows_done FROM mig_jobs WHERE job_id = $1",
                                 {std::to_string(job)}));
    c.exec("CHECKPOINT");
    wait_standby();
    Conn s(Sandbox::get().conninfo("postgres", true));
    EXPECT_EQ(rows, s.scalar_int("SELECT count(*) FROM crash_fo WHERE n = 1"));
}
