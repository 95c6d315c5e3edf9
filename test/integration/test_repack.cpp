// test_repack.cpp -- mig_repack (kind_repack.c) against the sandbox primary
// + standby: on PostgreSQL 19, a table bloated by a full backfill is
// rewritten with REPACK (CONCURRENTLY) while an application writes, and
// shrinks back to about its size before the backfill; the standby matches;
// its final lock upgrade waits at most lock_timeout and is retried (a retry
// copies the table again, and says so); a wait for an older transaction
// blocks nobody and never fails it; a kill of the worker during the copy
// leaves the table intact and the job goes on.  Before 19 it is refused at
// start with feature_not_supported and a hint.
#include "fixture.hpp"

#include <gtest/gtest.h>

#include <regex>

using namespace pgmig_test;

namespace {

std::string Id(long long v) { return std::to_string(v); }

bool HasRepack() { return Sandbox::get().pg_major >= 19; }

// a table of rows, loaded, vacuumed, then bloated by a backfill of every
// row with vacuum_every => 0 (about twice its size); returns its heap size
// before the backfill
long long BloatedTable(Conn& c, const std::string& name, int rows)
{
    create_table(c, name, "id int PRIMARY KEY, note text NOT NULL, w int NOT NULL DEFAULT 0, tracking_id text",
                 "g, md5(g::text), 0, NULL", rows);
    c.exec("ALTER TABLE " + name + " SET (autovacuum_enabled = false)");
    c.exec("VACUUM ANALYZE " + name);
    long long before = c.scalar_int("SELECT pg_relation_size('" + name + "')");
    long long job = c.scalar_int("SELECT mig_start_backfill('" + name + "', $$tracking_id = 'TRK-' || id$$,"
                                 " batch_size => 5000, chunk_time => NULL, vacuum_every => 0)");
    EXPECT_EQ("succeeded", wait_job(c, job, 300));
    EXPECT_GT(c.scalar_int("SELECT pg_relation_size('" + name + "')"), before * 3 / 2);
    return before;
}

std::string Checksum(Conn& c, const std::string& table)
{
    return *c.scalar("SELECT count(*) || ':' || sum(hashtext(id || note || tracking_id)) FROM " + table);
}

}  // namespace

TEST(Repack, RefusedBefore19WithAHint)
{
    if (HasRepack()) GTEST_SKIP() << "PostgreSQL 19 has REPACK";
    Conn c = pg_mig_primary();
    create_table(c, "rref", "id int PRIMARY KEY, v int", "g, g", 100);
    try {
        c.exec("SELECT mig_repack('rref')");
        FAIL() << "mig_repack started on PostgreSQL " << Sandbox::get().pg_major;
    } catch (const PgError& e) {
        EXPECT_EQ("0A000", e.sqlstate);
        EXPECT_NE(std::string::npos, e.hint.find("pg_repack")) << e.hint;
    }
    EXPECT_EQ(0, c.scalar_int("SELECT count(*) FROM mig_jobs WHERE kind = 'repack'"));
}

TEST(Repack, ShrinksABloatedTableWhileTheAppWritesAndTheStandbyMatches)
{
    if (!HasRepack()) GTEST_SKIP() << "REPACK (CONCURRENTLY) is PostgreSQL 19's";
    const int rows = 100000;
    Conn c = pg_mig_primary();
    long long before = BloatedTable(c, "rbloat", rows);
    long long bloated = c.scalar_int("SELECT pg_relation_size('rbloat')");

    AppWriter app("rbloat", rows);
    wait_for([&] { return app.done() > 50; }, 60, "the application to write");
    long long job = c.scalar_int("SELECT mig_repack('rbloat', lock_timeout => '1s', max_retries => 20)");
    wait_for([&] { return c.scalar("SELECT step FROM mig_jobs WHERE job_id = $1", {Id(job)}).has_value(); }, 120,
             "the repack to start");
    EXPECT_NE(std::string::npos,
              c.scalar("SELECT step FROM mig_jobs WHERE job_id = $1", {Id(job)}).value_or("").find("repacking table"));
    long long at_start = app.done();
    EXPECT_EQ("succeeded", wait_job(c, job, 600));
    long long at_end = app.done();
    app.stop();
    // the writers kept committing while it ran
    EXPECT_GT(at_end, at_start);

    long long after = c.scalar_int("SELECT pg_relation_size('rbloat')");
    EXPECT_LT(after, bloated * 3 / 4) << "before " << before << ", bloated " << bloated;
    EXPECT_LT(after, before * 5 / 4) << "before " << before << ", bloated " << bloated;
    EXPECT_EQ(rows, c.scalar_int("SELECT count(*) FROM rbloat"));
    EXPECT_EQ(0, c.scalar_int("SELECT count(*) FROM rbloat WHERE tracking_id IS DISTINCT FROM 'TRK-' || id"));
    EXPECT_EQ("{repack}", *c.scalar("SELECT steps_done::text FROM mig_job WHERE job_id = $1", {Id(job)}));
    EXPECT_EQ("repack", *c.scalar("SELECT kind FROM mig_jobs WHERE job_id = $1", {Id(job)}));
    // REPACK's own replication slot is gone
    EXPECT_EQ(0, c.scalar_int("SELECT count(*) FROM pg_replication_slots WHERE slot_type = 'logical'"));

    wait_standby();
    Conn s(Sandbox::get().conninfo("postgres", true));
    EXPECT_EQ(Checksum(c, "rbloat"), Checksum(s, "rbloat"));
    // the standby's copy is the new, small file too (its size may differ
    // from the primary's by pages the primary extended the file by and has
    // not written yet: those are not WAL-logged)
    EXPECT_LT(s.scalar_int("SELECT pg_relation_size('rbloat')"), bloated * 3 / 4);
}

// a session that holds the table (ACCESS SHARE, no xid) makes the final
// upgrade to ACCESS EXCLUSIVE wait: after lock_timeout the attempt is rolled
// back, the event says the copy is done again, and the retry first waits
// for the holder's transaction (queueing behind nobody); with the holder
// gone it succeeds
TEST(Repack, TheFinalLockWaitsAtMostLockTimeoutAndIsRetried)
{
    if (!HasRepack()) GTEST_SKIP() << "REPACK (CONCURRENTLY) is PostgreSQL 19's";
    Conn c = pg_mig_primary();
    create_table(c, "rlock", "id int PRIMARY KEY, note text NOT NULL, w int NOT NULL DEFAULT 0", "g, md5(g::text), 0",
                 20000);
    Conn holder(Sandbox::get().conninfo());
    std::string holder_pid = *holder.scalar("SELECT pg_backend_pid()::text");
    holder.exec("BEGIN");
    holder.exec("SELECT count(*) FROM rlock");
    AppWriter app("rlock", 20000);
    long long job = c.scalar_int("SELECT mig_repack('rlock', lock_timeout => '200ms', max_retries => 1000)");
    wait_for([&] { return job_events(c, job, "retried") >= 1
                       && c.scalar("SELECT step FROM mig_jobs WHERE job_id = $1", {Id(job)}).value_or("")
                                  .find("waits for pid " + holder_pid + " (virtualxid lock)") != std::string::npos; },
             300, "the repack to retry, then wait for the holder");
    std::string detail = c.scalar("SELECT detail FROM mig_job_events WHERE job_id = $1 AND event = 'retried'"
                                  " ORDER BY event_id LIMIT 1",
                                  {Id(job)})
                             .value_or("");
    EXPECT_NE(std::string::npos, detail.find("longer than lock_timeout")) << detail;
    EXPECT_NE(std::string::npos, detail.find("copies the table again")) << detail;
    EXPECT_NE(std::string::npos, c.scalar("SELECT step FROM mig_jobs WHERE job_id = $1", {Id(job)})
                                     .value_or("")
                                     .find("a retry copies the table again"));
    // the application was never held up for long: it goes on while the
    // worker waits, and one attempt was spent
    long long before = app.done();
    wait_for([&] { return app.done() > before + 20; }, 60, "the application to go on");
    EXPECT_EQ(1, job_events(c, job, "retried"));
    holder.exec("COMMIT");
    EXPECT_EQ("succeeded", wait_job(c, job, 300));
    app.stop();
    EXPECT_EQ(20000, c.scalar_int("SELECT count(*) FROM rlock"));
}

// while REPACK waits for its final lock (a session holds the table), the
// job's step says in words which phase it is in (pg_stat_progress_repack)
// and for whom it waits, progress says how much of the table it copied, and
// REPACK's own replication slot is there but is no replica pg_mig waits for
// (mig_replicas leaves it out: a job's lag wait does not count it)
TEST(Repack, ProgressAndStepInWordsAndItsOwnSlotIsNoReplica)
{
    if (!HasRepack()) GTEST_SKIP() << "REPACK (CONCURRENTLY) is PostgreSQL 19's";
    Conn c = pg_mig_primary();
    create_table(c, "rprog", "id int PRIMARY KEY, note text NOT NULL, w int NOT NULL DEFAULT 0", "g, md5(g::text), 0",
                 20000);
    Conn holder(Sandbox::get().conninfo());
    holder.exec("BEGIN");
    holder.exec("SELECT count(*) FROM rprog");
    long long job = c.scalar_int("SELECT mig_repack('rprog', lock_timeout => '10min')");
    std::string step;
    wait_for([&] {
        step = c.scalar("SELECT step FROM mig_jobs WHERE job_id = $1", {Id(job)}).value_or("");
        return step.find("; waits for pid") != std::string::npos;
    }, 300, "the repack to wait for its final lock");
    // e.g. "repacking table public.rprog concurrently (...): applying the changes
    // made meanwhile; waits for pid 123 (relation lock) since ..."
    EXPECT_TRUE(std::regex_search(step, std::regex(R"(^repacking table public\.rprog concurrently \(.*\): )"
                                                   R"((applying the changes made meanwhile|swapping in the new files)"
                                                   R"( \(ACCESS EXCLUSIVE\)); waits for pid [0-9]+ \(relation lock\))")))
        << step;
    // the whole table was copied
    EXPECT_EQ("1", *c.scalar("SELECT progress FROM mig_jobs WHERE job_id = $1", {Id(job)}));
    // REPACK's slot is there, and pg_mig does not take it for a replica
    EXPECT_EQ(1, c.scalar_int("SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'pg\\_repack\\_%'"));
    EXPECT_EQ(0, c.scalar_int("SELECT count(*) FROM mig_replicas() WHERE name LIKE '%pg\\_repack\\_%'"));
    holder.exec("COMMIT");
    EXPECT_EQ("succeeded", wait_job(c, job, 300));
    EXPECT_EQ("1", *c.scalar("SELECT progress FROM mig_jobs WHERE job_id = $1", {Id(job)}));
}

// before it starts, the repack waits while a replica lags more than
// max_lag_bytes (throttled says who), and a pause there holds it: nothing
// is copied until it is resumed
TEST(Repack, WaitsWhileAReplicaLagsAndAPauseBeforeItStartsHoldsIt)
{
    if (!HasRepack()) GTEST_SKIP() << "REPACK (CONCURRENTLY) is PostgreSQL 19's";
    Conn c = pg_mig_primary();
    Conn standby(Sandbox::get().conninfo("postgres", true));
    create_table(c, "rlag", "id int PRIMARY KEY, note text NOT NULL", "g, md5(g::text)", 5000);
    long long relfilenode = c.scalar_int("SELECT relfilenode FROM pg_class WHERE relname = 'rlag'");
    wait_standby();
    standby.exec("SELECT pg_wal_replay_pause()");
    create_table(c, "rlag_filler", "id int, note text", "g, md5(g::text)", 100000);
    long long job = c.scalar_int("SELECT mig_repack('rlag', max_lag_bytes => 1048576)");
    wait_for([&] {
        return c.scalar("SELECT throttled FROM mig_jobs WHERE job_id = $1", {Id(job)})
                   .value_or("")
                   .find("standby1") != std::string::npos;
    }, 120, "the repack to wait for the standby");
    EXPECT_EQ("running", *c.scalar("SELECT state FROM mig_jobs WHERE job_id = $1", {Id(job)}));
    EXPECT_EQ(0, c.scalar_int("SELECT count(*) FROM pg_stat_progress_repack"));
    c.exec("SELECT mig_pause($1)", {Id(job)});
    EXPECT_EQ("paused", *c.scalar("SELECT state FROM mig_jobs WHERE job_id = $1", {Id(job)}));
    standby.exec("SELECT pg_wal_replay_resume()");
    wait_standby();
    // the lag is gone, the job stays paused and copies nothing
    Conn sleeper(Sandbox::get().conninfo());
    sleeper.exec("SELECT pg_sleep(1)");
    EXPECT_EQ("paused", *c.scalar("SELECT state FROM mig_jobs WHERE job_id = $1", {Id(job)}));
    EXPECT_EQ(relfilenode, c.scalar_int("SELECT relfilenode FROM pg_class WHERE relname = 'rlag'"));
    c.exec("SELECT mig_resume($1)", {Id(job)});
    EXPECT_EQ("succeeded", wait_job(c, job, 300));
    EXPECT_NE(relfilenode, c.scalar_int("SELECT relfilenode FROM pg_class WHERE relname = 'rlag'"));
    EXPECT_EQ(5000, c.scalar_int("SELECT count(*) FROM rlag"));
}

// a transaction with an xid open when the repack starts: REPACK waits for
// it before it can decode the table's changes; that wait blocks nobody, and
// with max_retries => 0 it must not fail the job
TEST(Repack, AWaitForAnOlderTransactionNeverFailsIt)
{
    if (!HasRepack()) GTEST_SKIP() << "REPACK (CONCURRENTLY) is PostgreSQL 19's";
    Conn c = pg_mig_primary();
    create_table(c, "rold", "id int PRIMARY KEY, note text NOT NULL", "g, md5(g::text)", 5000);
    c.exec("CREATE TABLE rold_other (x int)");
    Conn holder(Sandbox::get().conninfo());
    holder.exec("BEGIN");
    holder.exec("INSERT INTO rold_other VALUES (1)");
    long long job = c.scalar_int("SELECT mig_repack('rold', lock_timeout => '100ms', max_retries => 0)");
    // it waits longer than lock_timeout, running, not failed
    wait_for([&] { return c.scalar("SELECT step FROM mig_jobs WHERE job_id = $1", {Id(job)}).has_value(); }, 120,
             "the repack to start");
    Conn waiter(Sandbox::get().conninfo());
    waiter.exec("SELECT pg_sleep(2)");
    EXPECT_EQ("running", *c.scalar("SELECT state FROM mig_jobs WHERE job_id = $1", {Id(job)}));
    holder.exec("COMMIT");
    EXPECT_EQ("succeeded", wait_job(c, job, 300));
    EXPECT_EQ(0, job_events(c, job, "retried"));
}

// SIGKILL of the worker while it copies: the server restarts, the table is
// intact (the copy was not committed), and the job starts the repack again
// and succeeds, with a second 'started' event that says so
TEST(Repack, AKillDuringTheCopyLeavesTheTableIntactAndTheJobGoesOn)
{
    if (!HasRepack()) GTEST_SKIP() << "REPACK (CONCURRENTLY) is PostgreSQL 19's";
    const int rows = 200000;
    Conn c = pg_mig_primary();
    BloatedTable(c, "rkill", rows);
    std::string sum = Checksum(c, "rkill");
    long long relfilenode = c.scalar_int("SELECT relfilenode FROM pg_class WHERE relname = 'rkill'");
    long long job = c.scalar_int("SELECT mig_repack('rkill', lock_timeout => '1s')");
    wait_for([&] { return c.scalar_int("SELECT count(*) FROM pg_stat_progress_repack") > 0; }, 120,
             "the repack to be under way");
    kill_worker(job);
    Conn c2(Sandbox::get().conninfo());
    EXPECT_EQ(sum, Checksum(c2, "rkill"));
    EXPECT_EQ("succeeded", wait_job(c2, job, 600));
    EXPECT_GE(job_events(c2, job, "started"), 2);
    // the event of the second start says what it takes up: the repack again
    std::string resumed = c2.scalar("SELECT detail FROM mig_job_events WHERE job_id = $1 AND event = 'started'"
                                    " ORDER BY event_id DESC LIMIT 1",
                                    {Id(job)})
                              .value_or("");
    EXPECT_EQ(0u, resumed.find("resumed at step repack, 0 of 1 done: repacking table public.rkill concurrently")) << resumed;
    EXPECT_EQ(sum, Checksum(c2, "rkill"));
    EXPECT_NE(relfilenode, c2.scalar_int("SELECT relfilenode FROM pg_class WHERE relname = 'rkill'"));
    EXPECT_EQ(0, c2.scalar_int("SELECT count(*) FROM pg_replication_slots WHERE slot_type = 'logical'"));
    wait_standby();
    Conn s(Sandbox::get().conninfo("postgres", true));
    EXPECT_EQ(sum, Checksum(s, "rkill"));
}

// mig_cancel while REPACK copies: the statement is interrupted (within
// about a second), the job ends cancelled, the table is the one it was
TEST(Repack, CancelInterruptsTheCopyAndLeavesTheTableAsItWas)
{
    if (!HasRepack()) GTEST_SKIP() << "REPACK (CONCURRENTLY) is PostgreSQL 19's";
    Conn c = pg_mig_primary();
    BloatedTable(c, "rcancel", 200000);
    std::string sum = Checksum(c, "rcancel");
    long long relfilenode = c.scalar_int("SELECT relfilenode FROM pg_class WHERE relname = 'rcancel'");
    long long job = c.scalar_int("SELECT mig_repack('rcancel')");
    wait_for([&] { return c.scalar_int("SELECT count(*) FROM pg_stat_progress_repack") > 0; }, 120,
             "the repack to be under way");
    c.exec("SELECT mig_cancel($1)", {Id(job)});
    EXPECT_EQ("cancelled", wait_job(c, job, 120));
    wait_for([&] { return c.scalar_int("SELECT count(*) FROM pg_stat_progress_repack") == 0; }, 60,
             "the REPACK to stop");
    EXPECT_EQ(sum, Checksum(c, "rcancel"));
    EXPECT_EQ(relfilenode, c.scalar_int("SELECT relfilenode FROM pg_class WHERE relname = 'rcancel'"));
    EXPECT_EQ(0, c.scalar_int("SELECT count(*) FROM pg_replication_slots WHERE slot_type = 'logical'"));
}

TEST(Repack, MigctlRepackStartsItOrSaysWhyNot)
{
    Conn c = pg_mig_primary();
    create_table(c, "rctl", "id int PRIMARY KEY, v int", "g, g", 1000);
    auto r = migctl({"repack", "--table", "rctl", "--lock-timeout", "2s", "--wait"}, 300);
    if (HasRepack()) {
        EXPECT_EQ(0, r.exit_code) << r.out << r.err;
        EXPECT_EQ(0u, r.out.rfind("started job ", 0)) << r.out;
    } else {
        EXPECT_EQ(2, r.exit_code) << r.out << r.err;
        EXPECT_NE(std::string::npos, r.err.find("PostgreSQL 19")) << r.err;
        EXPECT_NE(std::string::npos, r.err.find("pg_repack")) << r.err;
    }
    auto u = migctl({"repack"});
    EXPECT_EQ(2, u.exit_code) << u.err;
    EXPECT_NE(std::string::npos, u.err.find("repack needs --table")) << u.err;
}
