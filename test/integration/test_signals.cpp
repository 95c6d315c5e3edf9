// test_signals.cpp -- the PostgreSQL-native health signals that need a server
// set up for them: autovacuum running on the target table, and a WAL
// archiving backlog.  This binary's sandbox archives through a command that
// fails until the test creates a file, and runs autovacuum every second.
#include "fixture.hpp"
#include "harness.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

using namespace pgmig_test;

namespace {

// Before main: the harness replaces @BASE@ with this binary's temp directory.
const bool kConf = sandbox_conf("fsync = off\n"
                                "autovacuum_naptime = 1s\n"
                                "archive_mode = on\n"
                                "archive_command = 'test -f @BASE@/archive_ok'\n");

long long ReadyFiles(Conn& c)
{
    return c.scalar_int("SELECT count(*) FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'");
}

}  // namespace

TEST(Signals, ArchiveBacklogHoldsTheJobUntilArchivingCatchesUp)
{
    Conn c(Sandbox::get().conninfo());
    c.exec("CREATE EXTENSION IF NOT EXISTS pg_mig");
    c.exec("CREATE TABLE arch_t (id int PRIMARY KEY, n int NOT NULL DEFAULT 0)");
    c.exec("INSERT INTO arch_t (id) SELECT g FROM generate_series(1, 20000) g");
    // the archive command fails: every finished segment stays .ready
    c.exec("CREATE TABLE wal_filler (x int)");
    for (int i = 0; i < 10 && ReadyFiles(c) < 3; i++) {
        c.exec("INSERT INTO wal_filler VALUES (1)");
        c.exec("SELECT pg_switch_wal()");
    }
    long long ready = ReadyFiles(c);
    ASSERT_GE(ready, 3);

    long long job = c.scalar_int(
        "SELECT mig_start_backfill('arch_t', 'n = n + 1', batch_size => 1000, chunk_time => NULL,"
        " max_archive_backlog => 2)");
    wait_for([&] { return job_throttled(c, job).has_value(); }, 60, "the job to throttle");
    std::string reason = *job_throttled(c, job);
    EXPECT_EQ(S(ready) + " WAL files wait to be archived (max_archive_backlog 2); check archive_command", reason);
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    EXPECT_EQ(0, job_rows_done(c, job)) << "no chunk may start while the archive is behind";
    EXPECT_EQ("running", *c.scalar("SELECT state FROM mig_jobs WHERE job_id = $1", {S(job)}));

    // archiving works again; a new segment wakes the archiver at once
    std::string flag = Sandbox::get().base + "/archive_ok";
    std::FILE* f = std::fopen(flag.c_str(), "w");
    ASSERT_NE(nullptr, f);
    std::fclose(f);
    c.exec("INSERT INTO wal_filler VALUES (2)");
    c.exec("SELECT pg_switch_wal()");
    EXPECT_EQ("succeeded", wait_job(c, job, 180));
    EXPECT_EQ(20000, c.scalar_int("SELECT count(*) FROM arch_t WHERE n = 1"));
    EXPECT_EQ(1, c.scalar_int("SELECT count(*) FROM mig_job_events WHERE job_id = $1"
                              " AND event = 'throttled' AND detail LIKE '% WAL files wait to be archived%'",
                              {S(job)}));
    EXPECT_EQ(1, c.scalar_int("SELECT count(*) FROM mig_job_events WHERE job_id = $1"
                              " AND event = 'unthrottled'",
                              {S(job)}));
}

TEST(Signals, AutovacuumOnTheTableHoldsTheJob)
{
    Conn c(Sandbox::get().conninfo());
    c.exec("CREATE EXTENSION IF NOT EXISTS pg_mig");
    // an autovacuum that crawls: one unit of cost, then 100 ms of sleep
    c.exec("CREATE TABLE av_t (id int PRIMARY KEY, n int NOT NULL DEFAULT 0, pad text)"
           " WITH (autovacuum_vacuum_cost_delay = 100, autovacuum_vacuum_cost_limit = 1,"
           "       autovacuum_vacuum_threshold = 0, autovacuum_vacuum_scale_factor = 0)");
    c.exec("INSERT INTO av_t (id, pad) SELECT g, repeat('a', 50) FROM generate_series(1, 30000) g");
    c.exec("UPDATE av_t SET pad = repeat('b', 50)");
    wait_for([&] { return c.scalar_int("SELECT count(*) FROM pg_stat_progress_vacuum"
                                       " WHERE relid = 'av_t'::regclass") == 1; },
             60, "autovacuum to start on av_t");

    // a job that ignores autovacuum runs (it is off by default) ...
    long long free_job = c.scalar_int(
        "SELECT mig_start_backfill('av_t', 'n = 1', where_clause => 'id <= 1000',"
        " batch_size => 500, chunk_time => NULL)");
    EXPECT_EQ("succeeded", wait_job(c, free_job, 60));

    // ... one that respects it waits, and says why
    long long job = c.scalar_int(
        "SELECT mig_start_backfill('av_t', 'n = n + 1', batch_size => 1000, chunk_time => NULL,"
        " throttle_on_autovacuum => true)");
    wait_for([&] { return job_throttled(c, job).has_value(); }, 60, "the job to throttle");
    EXPECT_EQ("autovacuum running on public.av_t", *job_throttled(c, job));
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    EXPECT_EQ(0, job_rows_done(c, job));
    ASSERT_EQ(1, c.scalar_int("SELECT count(*) FROM pg_stat_progress_vacuum WHERE relid = 'av_t'::regclass"))
        << "autovacuum ended before the test could release the job; it must crawl for longer";

    // the DDL's lock wait makes autovacuum cancel itself (after deadlock_timeout)
    c.exec("ALTER TABLE av_t SET (autovacuum_enabled = false)");
    EXPECT_EQ("succeeded", wait_job(c, job, 120));
    EXPECT_EQ(30000, c.scalar_int("SELECT count(*) FROM av_t WHERE n = CASE WHEN id <= 1000 THEN 2 ELSE 1 END"));
    EXPECT_EQ(1, c.scalar_int("SELECT count(*) FROM mig_job_events WHERE job_id = $1"
                              " AND event = 'throttled' AND detail LIKE 'autovacuum running on%'",
                              {S(job)}));
}
