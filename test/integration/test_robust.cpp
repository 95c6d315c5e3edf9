// test_robust.cpp -- the worker and the launcher under hostile conditions
// (issue 11): DDL that changes a running job's key, job control holding the
// job row, a role that may no longer connect, a stored setting that no
// longer applies, a database whose lock is held, one role with many jobs,
// table statistics while a job runs, and the launcher's memory.
//
// This binary's sandbox runs 3 workers (so the per-role limit defaults to
// 1) and a 1 s naptime (so scans are frequent and a throttled job gives its
// worker back after 1 s).
#include "fixture.hpp"
#include "harness.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <regex>
#include <sstream>
#include <thread>

using namespace pgmig_test;

namespace {

const bool kConf = sandbox_conf("fsync = off\n"
                                "pg_mig.max_workers = 3\n"
                                "pg_mig.naptime = 1\n");

void MakeTable(Conn& c, const std::string& name, int rows, const std::string& key_type = "int")
{
    c.exec("CREATE EXTENSION IF NOT EXISTS pg_mig");
    c.exec("DROP TABLE IF EXISTS " + name);
    c.exec("CREATE TABLE " + name + " (id " + key_type +
           " PRIMARY KEY, n int NOT NULL DEFAULT 0, v text)");
    c.exec("INSERT INTO " + name + " (id) SELECT g FROM generate_series(1, $1) g", {S(rows)});
    c.exec("ANALYZE " + name);
}

std::optional<std::string> Col(Conn& c, const std::string& col, long long job)
{
    return c.scalar("SELECT " + col + "::text FROM mig_jobs WHERE job_id = $1", {S(job)});
}

long long ColInt(Conn& c, const std::string& col, long long job)
{
    auto v = Col(c, col, job);
    return v ? std::stoll(*v) : -1;
}

std::string State(Conn& c, long long job) { return Col(c, "state", job).value_or("?"); }

std::string PostmasterStart(Conn& c) { return *c.scalar("SELECT pg_postmaster_start_time()::text"); }

// the number of times text occurs in the primary's log
long long LogCount(const std::string& text)
{
    std::string log = Sandbox::get().primary_log();
    long long n = 0;
    for (size_t at = log.find(text); at != std::string::npos; at = log.find(text, at + 1)) n++;
    return n;
}

void Reload(Conn& c, const std::string& setting, const std::optional<std::string>& value)
{
    if (value)
        c.exec("ALTER SYSTEM SET " + setting + " = '" + *value + "'");
    else
        c.exec("ALTER SYSTEM RESET " + setting);
    c.exec("SELECT pg_reload_conf()");
    // the launcher reads it at its next iteration (at most 0.5 s)
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
}

void CancelUnfinished(Conn& c)
{
    c.exec("SELECT mig_cancel(job_id) FROM mig_jobs WHERE state IN ('queued', 'running', 'paused', 'failed')");
    wait_for([&] { return c.scalar_int("SELECT count(*) FROM mig_jobs WHERE worker_pid IS NOT NULL") == 0; },
             60, "every worker to exit");
}

}  // namespace

// Item 3: kept chunk statements fix the key's type; a key of another type
// after ALTER TABLE ... TYPE must fail the job, not crash the server.
TEST(Robust, KeyTypeChangeFailsTheJobWithoutACrash)
{
    Conn c = primary_as();
    std::string started = PostmasterStart(c);
    MakeTable(c, "r_nk", 20000, "numeric");
    long long job = c.scalar_int(
        "SELECT mig_start_backfill('r_nk', 'n = n + 1', batch_size => 100,"
        " chunk_time => NULL, sleep => '20ms')");
    wait_for([&] { return ColInt(c, "rows_done", job) > 0; }, 60, "progress");
    c.exec("SET lock_timeout = '20s'");
    c.exec("ALTER TABLE r_nk ALTER COLUMN id TYPE bigint");
    EXPECT_EQ("failed", wait_job(c, job, 60));
    auto err = Col(c, "last_error", job);
    ASSERT_TRUE(err.has_value());
    EXPECT_NE(std::string::npos, err->find("key column \"id\"")) << *err;
    EXPECT_NE(std::string::npos, err->find("type")) << *err;
    Conn fresh = primary_as();
    EXPECT_EQ(started, PostmasterStart(fresh)) << "the server restarted";
    // consistent up to the last committed chunk, nothing done twice
    EXPECT_EQ(ColInt(fresh, "rows_done", job), fresh.scalar_int("SELECT count(*) FROM r_nk WHERE n = 1"));
    EXPECT_EQ(0, fresh.scalar_int("SELECT count(*) FROM r_nk WHERE n > 1"));

    // a collation change of a text key fails the job too
    fresh.exec("DROP TABLE IF EXISTS r_coll");
    fresh.exec("CREATE TABLE r_coll (id text COLLATE \"C\" PRIMARY KEY, n int NOT NULL DEFAULT 0)");
    fresh.exec("INSERT INTO r_coll (id) SELECT lpad(g::text, 6, '0') FROM generate_series(1, 20000) g");
    job = fresh.scalar_int(
        "SELECT mig_start_backfill('r_coll', 'n = n + 1', batch_size => 100,"
        " chunk_time => NULL, sleep => '20ms')");
    wait_for([&] { return ColInt(fresh, "rows_done", job) > 0; }, 60, "progress");
    fresh.exec("SET lock_timeout = '20s'");
    fresh.exec("ALTER TABLE r_coll ALTER COLUMN id TYPE text COLLATE \"POSIX\"");
    EXPECT_EQ("failed", wait_job(fresh, job, 60));
    err = Col(fresh, "last_error", job);
    ASSERT_TRUE(err.has_value());
    EXPECT_NE(std::string::npos, err->find("collation")) << *err;
    EXPECT_EQ(started, PostmasterStart(fresh)) << "the server restarted";
}

// Item 3: the other changes that make kept plans wrong fail the job
// cleanly too: a dropped key index, a dropped assigned column, a renamed
// table; a REINDEX CONCURRENTLY of the key's index does not.
TEST(Robust, DroppedIndexOrColumnAndRenamedTableFailCleanly)
{
    Conn c = primary_as();
    std::string started = PostmasterStart(c);
    c.exec("SET lock_timeout = '20s'");

    MakeTable(c, "r_reindex", 20000);
    long long job = c.scalar_int(
        "SELECT mig_start_backfill('r_reindex', 'n = n + 1', batch_size => 200,"
        " chunk_time => NULL, sleep => '20ms')");
    wait_for([&] { return ColInt(c, "rows_done", job) > 0; }, 60, "progress");
    c.exec("REINDEX INDEX CONCURRENTLY r_reindex_pkey");
    EXPECT_EQ("succeeded", wait_job(c, job, 120)) << Col(c, "last_error", job).value_or("");
    EXPECT_EQ(20000, c.scalar_int("SELECT count(*) FROM r_reindex WHERE n = 1"));

    c.exec("DROP TABLE IF EXISTS r_uniq");
    c.exec("CREATE TABLE r_uniq (id int NOT NULL, n int NOT NULL DEFAULT 0)");
    c.exec("CREATE UNIQUE INDEX r_uniq_id ON r_uniq (id)");
    c.exec("INSERT INTO r_uniq (id) SELECT g FROM generate_series(1, 20000) g");
    job = c.scalar_int(
        "SELECT mig_start_backfill('r_uniq', 'n = n + 1', batch_size => 100,"
        " chunk_time => NULL, sleep => '20ms')");
    wait_for([&] { return ColInt(c, "rows_done", job) > 0; }, 60, "progress");
    c.exec("DROP INDEX r_uniq_id");
    EXPECT_EQ("failed", wait_job(c, job, 60));
    auto err = Col(c, "last_error", job);
    ASSERT_TRUE(err.has_value());
    EXPECT_NE(std::string::npos, err->find("unique index")) << *err;

    MakeTable(c, "r_dropcol", 20000);
    job = c.scalar_int(
        "SELECT mig_start_backfill('r_dropcol', $$v = 'x'$$, batch_size => 100,"
        " chunk_time => NULL, sleep => '20ms')");
    wait_for([&] { return ColInt(c, "rows_done", job) > 0; }, 60, "progress");
    c.exec("ALTER TABLE r_dropcol DROP COLUMN v");
    EXPECT_EQ("failed", wait_job(c, job, 60));
    EXPECT_TRUE(Col(c, "last_error", job).has_value());

    MakeTable(c, "r_rename", 20000);
    job = c.scalar_int(
        "SELECT mig_start_backfill('r_rename', 'n = n + 1', batch_size => 100,"
        " chunk_time => NULL, sleep => '20ms')");
    wait_for([&] { return ColInt(c, "rows_done", job) > 0; }, 60, "progress");
    c.exec("ALTER TABLE r_rename RENAME TO r_renamed");
    EXPECT_EQ("failed", wait_job(c, job, 60));
    err = Col(c, "last_error", job);
    ASSERT_TRUE(err.has_value());
    EXPECT_NE(std::string::npos, err->find("r_rename")) << *err;
    EXPECT_EQ(started, PostmasterStart(c)) << "the server restarted";
}

// Item 13: the worker reports table statistics while it runs, so that
// autovacuum sees the job's dead rows.
TEST(Robust, RunningJobReportsTableStatistics)
{
    Conn c = primary_as();
    MakeTable(c, "r_stats", 20000);
    long long job = c.scalar_int(
        "SELECT mig_start_backfill('r_stats', 'n = n + 1', batch_size => 100,"
        " chunk_time => NULL, sleep => '50ms')");
    bool seen_running = false;
    wait_for(
        [&] {
            long long upd = c.scalar_int(
                "SELECT n_tup_upd FROM pg_stat_user_tables WHERE relid = 'r_stats'::regclass");
            std::string state = State(c, job);
            if (upd > 0 && state == "running") seen_running = true;
            return seen_running || (state != "running" && state != "queued");
        },
        120, "updates in pg_stat_user_tables");
    EXPECT_TRUE(seen_running) << "no statistics while the job ran";
    EXPECT_EQ("succeeded", wait_job(c, job, 120));
}

// Item 15: job control holding the job row (an open transaction that
// called mig_pause, then rolled back) is waited for: no retry, no smaller
// batch, no new worker.
TEST(Robust, LockedJobRowIsWaitedForNotRetried)
{
    Conn c = primary_as();
    MakeTable(c, "r_rowlock", 20000);
    long long job = c.scalar_int(
        "SELECT mig_start_backfill('r_rowlock', 'n = n + 1', batch_size => 200,"
        " chunk_time => NULL, sleep => '20ms', lock_timeout => '100ms')");
    wait_for([&] { return ColInt(c, "rows_done", job) > 0; }, 60, "progress");
    long long pid = ColInt(c, "worker_pid", job);
    ASSERT_GT(pid, 0);
    Conn holder = primary_as();
    holder.exec("BEGIN");
    holder.exec("SELECT mig_pause($1)", {S(job)});
    // the worker waits for the job row ...
    wait_for(
        [&] {
            return c.scalar_int("SELECT count(*) FROM pg_stat_activity WHERE pid = $1"
                                " AND wait_event_type = 'Lock'", {S(pid)}) > 0;
        },
        30, "the worker to wait for the job row");
    // ... for much longer than its lock_timeout
    std::this_thread::sleep_for(std::chrono::seconds(2));
    holder.exec("ROLLBACK");
    EXPECT_EQ("succeeded", wait_job(c, job, 120));
    EXPECT_EQ(20000, c.scalar_int("SELECT count(*) FROM r_rowlock WHERE n = 1"));
    EXPECT_EQ(0, job_events(c, job, "retried")) << "a wait for the job row is not a chunk failure";
    EXPECT_EQ(1, job_events(c, job, "started")) << "the worker was restarted";
    EXPECT_EQ(200, ColInt(c, "batch_size", job)) << "the batch was halved";
    EXPECT_EQ(0, ColInt(c, "retries", job));

    // mig_pause that commits while the worker waits: the job is paused
    job = c.scalar_int(
        "SELECT mig_start_backfill('r_rowlock', 'n = n + 1', batch_size => 200,"
        " chunk_time => NULL, sleep => '20ms', lock_timeout => '100ms')");
    wait_for([&] { return ColInt(c, "rows_done", job) > 0; }, 60, "progress");
    holder.exec("BEGIN");
    holder.exec("SELECT mig_pause($1)", {S(job)});
    std::this_thread::sleep_for(std::chrono::seconds(1));
    holder.exec("COMMIT");
    wait_for([&] { return ColInt(c, "worker_pid", job) < 0; }, 30, "the paused worker to exit");
    EXPECT_EQ("paused", State(c, job));
    EXPECT_EQ(0, job_events(c, job, "retried"));
    c.exec("SELECT mig_cancel($1)", {S(job)});
}

// Item 15: an owner that may no longer connect to the database: the job
// fails with a reason instead of a worker that dies at connect forever.
TEST(Robust, RevokedConnectFailsTheJob)
{
    Conn c = primary_as();
    c.exec("DROP DATABASE IF EXISTS r_conn");
    c.exec("CREATE DATABASE r_conn");
    c.exec("DROP ROLE IF EXISTS r_carol");
    c.exec("CREATE ROLE r_carol LOGIN");
    Conn d = primary_as("r_conn");
    MakeTable(d, "r_conn_t", 20000);
    d.exec("GRANT SELECT, UPDATE ON r_conn_t TO r_carol");
    Conn carol = primary_as("r_conn", "r_carol");
    long long job = carol.scalar_int(
        "SELECT mig_start_backfill('r_conn_t', 'n = n + 1', batch_size => 100,"
        " chunk_time => NULL, sleep => '20ms')");
    wait_for([&] { return ColInt(carol, "rows_done", job) > 0; }, 60, "progress");
    carol.exec("SELECT mig_pause($1)", {S(job)});
    wait_for([&] { return ColInt(carol, "worker_pid", job) < 0; }, 30, "the paused worker to exit");
    c.exec("REVOKE CONNECT ON DATABASE r_conn FROM PUBLIC");
    carol.exec("SELECT mig_resume($1)", {S(job)});  // her session is still connected
    EXPECT_EQ("failed", wait_job(carol, job, 60));
    auto err = Col(carol, "last_error", job);
    ASSERT_TRUE(err.has_value());
    EXPECT_NE(std::string::npos, err->find("connect")) << *err;
    // no restart loop: the worker tried to connect once or twice, not forever
    long long denied = LogCount("permission denied for database \"r_conn\"");
    std::this_thread::sleep_for(std::chrono::seconds(5));  // a few naptimes
    EXPECT_EQ(denied, LogCount("permission denied for database \"r_conn\""));
    EXPECT_LE(denied, 3);
    EXPECT_EQ("failed", State(carol, job));
    carol = primary_as();
    d = primary_as();
    c.exec("DROP DATABASE r_conn WITH (FORCE)");
    c.exec("DROP ROLE r_carol");
}

// Item 15: a stored setting that no longer applies fails the job with the
// error (the job tables are written directly here, as only a superuser
// can, to get a setting no caller could store).
TEST(Robust, BadStoredSettingFailsTheJob)
{
    Conn c = primary_as();
    MakeTable(c, "r_setting", 20000);
    long long job = c.scalar_int(
        "SELECT mig_start_backfill('r_setting', 'n = n + 1', batch_size => 100,"
        " chunk_time => NULL, sleep => '20ms')");
    wait_for([&] { return ColInt(c, "rows_done", job) > 0; }, 60, "progress");
    c.exec("SELECT mig_pause($1)", {S(job)});
    wait_for([&] { return ColInt(c, "worker_pid", job) < 0; }, 30, "the paused worker to exit");
    c.exec("BEGIN");
    c.exec("ALTER TABLE mig_job DISABLE TRIGGER USER");
    c.exec("UPDATE mig_job SET settings = ARRAY['TimeZone=No/Such_Zone'] WHERE job_id = $1", {S(job)});
    c.exec("ALTER TABLE mig_job ENABLE TRIGGER USER");
    c.exec("COMMIT");
    c.exec("SELECT mig_resume($1)", {S(job)});
    EXPECT_EQ("failed", wait_job(c, job, 60));
    auto err = Col(c, "last_error", job);
    ASSERT_TRUE(err.has_value());
    EXPECT_NE(std::string::npos, err->find("TimeZone")) << *err;
    EXPECT_EQ(1, job_events(c, job, "failed"));
}

// Item 9: a lock held on one database (an open ALTER DATABASE ... RENAME)
// does not hold up the scans of the others: a job of another database
// whose worker died is started again.
TEST(Robust, LockedDatabaseDoesNotHoldUpTheScans)
{
    Conn c = primary_as();
    c.exec("DROP DATABASE IF EXISTS r_locked");
    c.exec("DROP DATABASE IF EXISTS r_locked2");
    c.exec("CREATE DATABASE r_locked");
    MakeTable(c, "r_scan", 30000);
    long long job = c.scalar_int(
        "SELECT mig_start_backfill('r_scan', 'n = n + 1', batch_size => 100,"
        " chunk_time => NULL, sleep => '50ms')");
    wait_for([&] { return ColInt(c, "rows_done", job) > 0; }, 60, "progress");

    Conn locker = primary_as();
    locker.exec("BEGIN");
    locker.exec("ALTER DATABASE r_locked RENAME TO r_locked2");
    // a scan of r_locked waits for its lock while connecting (naptime is 1 s;
    // a process that is still connecting is in pg_locks, not pg_stat_activity)
    wait_for(
        [&] {
            return c.scalar_int("SELECT count(*) FROM pg_locks WHERE locktype = 'object' AND"
                                " classid = 'pg_database'::regclass AND NOT granted AND"
                                " objid = (SELECT oid FROM pg_database WHERE datname = 'r_locked')") > 0;
        },
        30, "a scan waiting for the locked database");
    long long pid = ColInt(c, "worker_pid", job);
    ASSERT_GT(pid, 0);
    c.exec("SELECT pg_terminate_backend($1)", {S(pid)});
    // the job's database is scanned and its worker started again
    wait_for(
        [&] {
            long long now = ColInt(c, "worker_pid", job);
            return (now > 0 && now != pid) || State(c, job) == "succeeded";
        },
        90, "a new worker for the job");
    EXPECT_EQ("succeeded", wait_job(c, job, 120));
    EXPECT_EQ(30000, c.scalar_int("SELECT count(*) FROM r_scan WHERE n = 1"));
    locker.exec("ROLLBACK");
    // the launcher tried the locked database again rather than forgetting it
    EXPECT_GE(LogCount("did not finish; it is tried again"), 1);
    c.exec("DROP DATABASE r_locked");
}

// Item 8: pg_mig.max_workers_per_role (default half of pg_mig.max_workers,
// here 1) keeps one role from taking every worker.
TEST(Robust, MaxWorkersPerRole)
{
    Conn c = primary_as();
    EXPECT_EQ("1", *c.scalar("SHOW pg_mig.max_workers_per_role"));
    c.exec("DROP ROLE IF EXISTS r_alice");
    c.exec("CREATE ROLE r_alice LOGIN");
    for (int i = 0; i < 2; i++) {
        MakeTable(c, "r_role" + S(i), 20000);
        c.exec("GRANT SELECT, UPDATE ON r_role" + S(i) + " TO r_alice");
    }
    MakeTable(c, "r_role_pg", 5000);
    Conn alice = primary_as("postgres", "r_alice");
    std::vector<long long> jobs;
    for (int i = 0; i < 2; i++)
        jobs.push_back(alice.scalar_int("SELECT mig_start_backfill('r_role" + S(i) +
                                        "', 'n = n + 1', batch_size => 100, chunk_time => NULL,"
                                        " sleep => '50ms')"));
    wait_for([&] { return ColInt(c, "rows_done", jobs[0]) > 0 || ColInt(c, "rows_done", jobs[1]) > 0; },
             60, "one of alice's jobs to run");
    wait_for(
        [&] {
            return c.scalar_int("SELECT count(*) FROM mig_jobs WHERE owner = 'r_alice' AND state = 'queued'"
                                " AND throttled = 'waiting: role r_alice already runs 1 worker"
                                " (pg_mig.max_workers_per_role = 1)'") == 1;
        },
        30, "alice's second job to wait for her limit");
    EXPECT_EQ(1, c.scalar_int("SELECT count(*) FROM mig_jobs WHERE owner = 'r_alice' AND worker_pid IS NOT NULL"));
    // another role is not held up by alice's limit
    long long pg_job = c.scalar_int("SELECT mig_start_backfill('r_role_pg', 'n = n + 1', batch_size => 500)");
    EXPECT_EQ("succeeded", wait_job(c, pg_job, 60));
    EXPECT_EQ(1, c.scalar_int("SELECT count(*) FROM mig_jobs WHERE owner = 'r_alice' AND state = 'queued'"));

    // a higher limit, on reload, lets her second job run
    Reload(c, "pg_mig.max_workers_per_role", "2");
    wait_for([&] { return c.scalar_int("SELECT count(*) FROM mig_jobs WHERE owner = 'r_alice' AND worker_pid IS NOT NULL") == 2; },
             30, "both of alice's jobs to run");
    alice.exec("SELECT mig_set(job_id, sleep => '0') FROM mig_jobs WHERE owner = 'r_alice' AND state = 'running'");
    for (long long j : jobs) EXPECT_EQ("succeeded", wait_job(c, j, 120));
    Reload(c, "pg_mig.max_workers_per_role", std::nullopt);
}

// Item 8: a job throttled for long (here: longer than the 1 s naptime)
// gives its worker to a queued job of another role that waits for one.
TEST(Robust, ThrottledJobGivesItsWorkerBack)
{
    Conn c = primary_as();
    Reload(c, "pg_mig.max_workers_per_role", "2");
    c.exec("DROP ROLE IF EXISTS r_dave");
    c.exec("DROP ROLE IF EXISTS r_erin");
    c.exec("CREATE ROLE r_dave LOGIN");
    c.exec("CREATE ROLE r_erin LOGIN");
    std::vector<long long> throttled;
    for (int i = 0; i < 3; i++) {
        MakeTable(c, "r_give" + S(i), 5000);
        c.exec("GRANT SELECT, UPDATE ON r_give" + S(i) + " TO r_dave");
    }
    MakeTable(c, "r_give_erin", 5000);
    c.exec("GRANT SELECT, UPDATE ON r_give_erin TO r_erin");
    Conn dave = primary_as("postgres", "r_dave");
    Conn erin = primary_as("postgres", "r_erin");
    // every worker: two throttled jobs of dave's, one of postgres's
    for (int i = 0; i < 3; i++) {
        Conn& who = i < 2 ? dave : c;
        throttled.push_back(who.scalar_int("SELECT mig_start_backfill('r_give" + S(i) +
                                           "', 'n = n + 1', throttle_query => 'SELECT true')"));
    }
    wait_for([&] { return c.scalar_int("SELECT count(*) FROM mig_jobs WHERE state = 'running' AND throttled LIKE 'throttle_query returned true%'") == 3; },
             60, "three throttled jobs");
    long long job = erin.scalar_int("SELECT mig_start_backfill('r_give_erin', 'n = n + 1')");
    EXPECT_EQ("succeeded", wait_job(c, job, 60)) << "erin's job never got a worker";
    EXPECT_EQ(5000, c.scalar_int("SELECT count(*) FROM r_give_erin WHERE n = 1"));
    EXPECT_GE(c.scalar_int("SELECT count(*) FROM mig_job_events WHERE event = 'yielded' AND detail LIKE"
                           " 'gave its worker to job " + S(job) + " of another role after % s throttled: throttle_query returned true%'"),
              1);
    for (long long j : throttled) {
        std::string st = State(c, j);
        EXPECT_TRUE(st == "running" || st == "queued") << st;
    }
    // once unthrottled, every job ends
    for (int i = 0; i < 3; i++) {
        Conn& who = i < 2 ? dave : c;
        who.exec("SELECT mig_set($1, throttle_query => '')", {S(throttled[i])});
    }
    for (long long j : throttled) EXPECT_EQ("succeeded", wait_job(c, j, 120));
    Reload(c, "pg_mig.max_workers_per_role", std::nullopt);
}

// Item 16: the launcher's memory stays flat over many iterations with many
// waiting jobs (each gets a note every iteration).  The launcher wakes at
// least every 0.5 s, so 20 s are at least 40 iterations over 30 waiting
// jobs: 1,200 notes, about 150 kB if each were kept.
TEST(Robust, LauncherMemoryStaysFlat)
{
    Conn c = primary_as();
    c.exec("DROP ROLE IF EXISTS r_frank");
    c.exec("CREATE ROLE r_frank LOGIN");
    Conn frank = primary_as("postgres", "r_frank");
    std::vector<long long> jobs;
    for (int i = 0; i < 31; i++) {
        MakeTable(c, "r_mem" + S(i), 10);
        c.exec("GRANT SELECT, UPDATE ON r_mem" + S(i) + " TO r_frank");
        jobs.push_back(frank.scalar_int("SELECT mig_start_backfill('r_mem" + S(i) +
                                        "', 'n = n + 1', throttle_query => 'SELECT true')"));
    }
    // 30 wait for frank's per-role limit (28 for pg_mig.max_workers without one)
    wait_for([&] { return c.scalar_int("SELECT count(*) FROM mig_jobs WHERE owner = 'r_frank' AND state = 'queued'"
                                       " AND throttled LIKE 'waiting%'") >= 28; },
             60, "waiting jobs");
    long long pid = c.scalar_int("SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_mig launcher'");
    auto total = [&]() -> long long {
        std::string marker = "[" + S(pid) + "] pg_mig launcher LOG:  Grand total: ";
        size_t before = Sandbox::get().primary_log().size();
        c.exec("SELECT pg_log_backend_memory_contexts($1)", {S(pid)});
        long long value = -1;
        wait_for(
            [&] {
                std::string log = Sandbox::get().primary_log();
                size_t at = log.find(marker, before);
                if (at == std::string::npos) return false;
                value = std::stoll(log.substr(at + marker.size()));
                return true;
            },
            30, "the launcher's memory report");
        return value;
    };
    long long first = total();
    std::this_thread::sleep_for(std::chrono::seconds(20));
    long long last = total();
    std::printf("launcher memory: %lld bytes, after 20 s with 30 waiting jobs %lld bytes\n", first, last);
    EXPECT_LT(last, first + 64 * 1024) << "the launcher's memory grows with its iterations";
    CancelUnfinished(c);
}

// A scan that finds pg_mig in its database while DROP EXTENSION commits
// must not crash the server.  The scan looked for the extension, then read
// its version, and compared that with the library's: dropped in between,
// the version was NULL and the comparison took the server down (seen as
// "pg_mig scan ... terminated by signal 11" in the isolation suite's
// teardowns).  The window is a few instructions wide, so gdb holds it open:
// attached to the postmaster, it follows the next process forked (a scan:
// naptime is 1 s here and autovacuum is off for the test), stops it where
// it reads the version, drops the extension of that scan's database from
// another session, and lets the scan go on.  A fork that is not a scan of
// a database with pg_mig ends without stopping there: gdb tries again.
TEST(Robust, DropExtensionWhileAScanLooksDoesNotCrashTheServer)
{
    Conn c = primary_as();
    c.exec("CREATE EXTENSION IF NOT EXISTS pg_mig");
    Reload(c, "autovacuum", "off");
    struct Reset {
        ~Reset()
        {
            Conn r = primary_as();
            Reload(r, "autovacuum", std::nullopt);
            r.exec("CREATE EXTENSION IF NOT EXISTS pg_mig");
        }
    } reset;
    std::string checkpointer = checkpointer_pid();
    long long crashes = LogCount("terminated by signal");
    std::string postmaster;
    {
        std::ifstream stat("/proc/" + checkpointer + "/stat");
        std::string pid, comm, state;
        stat >> pid >> comm >> state >> postmaster;
    }
    ASSERT_FALSE(postmaster.empty());
    const Sandbox& sb = Sandbox::get();
    char script_path[] = "/tmp/pgmig-gdb.XXXXXX";
    int fd = mkstemp(script_path);
    ASSERT_GE(fd, 0);
    std::string psql = "psql -X -h " + sb.dir + " -p " + S(sb.primary_port) + " -U postgres";
    std::string script =
        "set pagination off\n"
        "set sysroot /proc/" + postmaster + "/root\n"
        "handle SIGUSR1 nostop noprint pass\n"
        "handle SIGUSR2 nostop noprint pass\n"
        "handle SIGCHLD nostop noprint pass\n"
        "handle SIGHUP nostop noprint pass\n"
        "handle SIGPIPE nostop noprint pass\n"
        "handle SIGALRM nostop noprint pass\n"
        "handle SIGTERM nostop noprint pass\n"
        "set follow-fork-mode child\n"
        "set detach-on-fork on\n"
        "break MigInstalledVersion\n"
        "commands 1\n"
        "  silent\n"
        // casts: a server without debug information has no types for them
        "  printf \"stopped in the scan of database %u\\n\", *(unsigned int *) &MyDatabaseId\n"
        "  eval \"shell " + psql + " -d %s -c 'DROP EXTENSION pg_mig CASCADE'\","
        " ((char *(*)(unsigned int)) get_database_name)(*(unsigned int *) &MyDatabaseId)\n"
        "  continue\n"
        "end\n"
        "continue\n"
        "printf \"the process stopped\\n\"\n"
        "bt 4\n";
    ASSERT_EQ(static_cast<ssize_t>(script.size()), write(fd, script.data(), script.size()));
    close(fd);
    CmdResult r{};
    for (int attempt = 0; attempt < 30; attempt++) {
        r = run_command({"gdb", "-q", "-batch", "-p", postmaster, "-x", script_path}, {}, 60);
        if (r.out.find("stopped in the scan") != std::string::npos) break;
    }
    unlink(script_path);
    std::cout << r.out << r.err;
    ASSERT_NE(std::string::npos, r.out.find("stopped in the scan")) << "gdb never caught a scan";
    EXPECT_EQ(std::string::npos, r.out.find("SIGSEGV")) << r.out;
    // the scan ended by itself; the server did not restart
    EXPECT_EQ(crashes, LogCount("terminated by signal"));
    EXPECT_EQ(checkpointer, checkpointer_pid());
    EXPECT_EQ(1, c.scalar_int("SELECT 1"));
}

// A worker of a job whose extension is dropped and created again stops:
// it must not take the new extension's job of the same id (job ids start
// at 1 again) for its own.  It did: the worker of a backfill of rb_a,
// alive across DROP EXTENSION pg_mig CASCADE and CREATE EXTENSION, went on
// walking rb_a under the new job 1 (a backfill of rb_b): rb_a's rows it
// had done were changed twice, rb_b was not changed at all, and the new
// job said succeeded.
TEST(Robust, WorkerOfADroppedExtensionLeavesTheNewOneAlone)
{
    Conn c = primary_as();
    c.exec("DROP TABLE IF EXISTS rb_a, rb_b");
    MakeTable(c, "rb_a", 20000);
    MakeTable(c, "rb_b", 20000);
    c.exec("DROP EXTENSION pg_mig CASCADE");
    c.exec("CREATE EXTENSION pg_mig");
    long long first = c.scalar_int("SELECT mig_start_backfill('rb_a', 'n = n + 1', batch_size => 100,"
                                   " chunk_time => NULL, sleep => '100ms')");
    ASSERT_EQ(1, first);
    wait_for([&] { return ColInt(c, "rows_done", first) > 500; }, 60, "the first job's walk");
    long long pid = ColInt(c, "worker_pid", first);
    ASSERT_GT(pid, 0);
    c.exec("DROP EXTENSION pg_mig CASCADE");
    c.exec("CREATE EXTENSION pg_mig");
    long long second = c.scalar_int("SELECT mig_start_backfill('rb_b', 'n = n + 1', batch_size => 1000,"
                                    " chunk_time => NULL)");
    ASSERT_EQ(1, second);
    EXPECT_EQ("succeeded", wait_job(c, second, 120));
    // the old worker is gone; no row of rb_a changed twice, every row of rb_b once
    wait_for([&] { return c.scalar_int("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", {S(pid)}) == 0; },
             60, "the first job's worker to stop");
    EXPECT_EQ(0, c.scalar_int("SELECT count(*) FROM rb_a WHERE n > 1"));
    EXPECT_EQ(20000, c.scalar_int("SELECT count(*) FROM rb_b WHERE n = 1"));
    EXPECT_EQ(20000, c.scalar_int("SELECT rows_done FROM mig_jobs WHERE job_id = 1"));
    c.exec("DROP TABLE rb_a, rb_b");
}

// A database, a role or the whole server whose transactions default to
// read-only (ALTER DATABASE shop SET default_transaction_read_only = on, a
// usual way to freeze a database before a cut-over; ALTER SYSTEM and a
// reload for the server): pg_mig writes nothing there, and its jobs are
// held with the reason in mig_jobs.throttled until the setting is off
// again.  Before, the scan of such a database failed at its first write,
// again every 10 s, and the job said what it said before; a worker whose
// writes were refused could not record that either, died and was started
// again, and the job said nothing.
TEST(Robust, AReadOnlyDefaultHoldsTheJobsAndSaysWhere)
{
    Conn c = primary_as();
    c.exec("DROP DATABASE IF EXISTS r_frozen");
    c.exec("CREATE DATABASE r_frozen");
    c.exec("DROP ROLE IF EXISTS r_frozen_owner");
    c.exec("CREATE ROLE r_frozen_owner LOGIN");
    Conn d = primary_as("r_frozen");
    // these sessions go on writing (a session's own setting wins)
    c.exec("SET default_transaction_read_only = off");
    d.exec("SET default_transaction_read_only = off");
    MakeTable(d, "r_frozen_t", 20000);
    d.exec("ALTER TABLE r_frozen_t OWNER TO r_frozen_owner");
    d.exec("CREATE TABLE r_hold (x int)");
    d.exec("GRANT SELECT ON r_hold TO r_frozen_owner");
    d.exec("INSERT INTO r_hold VALUES (1)");
    Conn owner = primary_as("r_frozen", "r_frozen_owner");
    long long job = owner.scalar_int("SELECT mig_start_backfill('r_frozen_t', 'n = n + 1', batch_size => 100,"
                                    " chunk_time => NULL, sleep => '20ms',"
                                    " throttle_query => 'SELECT EXISTS (SELECT FROM public.r_hold)')");
    auto throttled = [&] { return Col(d, "throttled", job).value_or(""); };
    wait_for([&] { return throttled() == "throttle_query returned true"; }, 60, "the job to throttle");
    long long refused = LogCount("in a read-only transaction");

    struct Case {
        std::string freeze, thaw, where;
        bool reconnect;  // a database's or role's setting reaches new sessions only
    };
    const std::vector<Case> cases = {
        {"ALTER DATABASE r_frozen SET default_transaction_read_only = on",
         "ALTER DATABASE r_frozen RESET default_transaction_read_only", "for database \"r_frozen\"", true},
        {"ALTER ROLE r_frozen_owner SET default_transaction_read_only = on",
         "ALTER ROLE r_frozen_owner RESET default_transaction_read_only", "for role \"r_frozen_owner\"", true},
        {"ALTER ROLE r_frozen_owner IN DATABASE r_frozen SET default_transaction_read_only = on",
         "ALTER ROLE r_frozen_owner IN DATABASE r_frozen RESET default_transaction_read_only",
         "for role \"r_frozen_owner\" in database \"r_frozen\"", true},
        {"ALTER SYSTEM SET default_transaction_read_only = on",
         "ALTER SYSTEM RESET default_transaction_read_only", "in the server's configuration", false},
    };
    for (const Case& k : cases) {
        SCOPED_TRACE(k.freeze);
        c.exec(k.freeze);
        c.exec("SELECT pg_reload_conf()");
        if (k.reconnect)
            c.exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
                   {"pg_mig job " + S(job)});
        d.exec("DELETE FROM r_hold");  // the throttle lets go
        std::string expected = "held: default_transaction_read_only is on " + k.where + "; the job goes on once it is off";
        wait_for([&] { return throttled() == expected; }, 60, "the job to be held, and say why");
        EXPECT_EQ("running", State(d, job));
        // no worker is started over and over to find it read-only
        long long left = LogCount("pg_mig job " + S(job) + " waits: ");
        std::this_thread::sleep_for(std::chrono::seconds(3));  // a few naptimes
        EXPECT_EQ(expected, throttled());
        EXPECT_EQ(left, LogCount("pg_mig job " + S(job) + " waits: "));
        EXPECT_EQ(0, ColInt(d, "rows_done", job));
        EXPECT_EQ(0, d.scalar_int("SELECT count(*) FROM r_frozen_t WHERE n <> 0"));
        EXPECT_EQ(refused, LogCount("in a read-only transaction")) << "pg_mig tried to write";
        // thawed, the job runs again (and is throttled again)
        d.exec("INSERT INTO r_hold VALUES (1)");
        c.exec(k.thaw);
        c.exec("SELECT pg_reload_conf()");
        wait_for([&] { return throttled() == "throttle_query returned true"; }, 60, "the job to run again");
    }
    d.exec("DELETE FROM r_hold");
    EXPECT_EQ("succeeded", wait_job(d, job, 120));
    EXPECT_EQ(20000, d.scalar_int("SELECT count(*) FROM r_frozen_t WHERE n = 1"));
    EXPECT_EQ(0, job_events(d, job, "failed"));
    owner = primary_as();
    d = primary_as();
    c.exec("DROP DATABASE r_frozen WITH (FORCE)");
    c.exec("DROP ROLE r_frozen_owner");
}
