// test_undo.cpp -- undo of a backfill (issue 14): keep_old_values, mig_revert,
// mig_forget, across crashes, with the standby, for every key kind, and
// through migctl.
//
// An overwriting backfill (the old values are gone without the kept ones)
// keeps its old values while its worker is killed; the application then
// changes and deletes a few rows; the revert is interrupted by
// pg_terminate_backend of its worker and by a crash of the primary
// (stop -m immediate).  Afterwards every row the application left alone is
// again exactly as in a copy taken before the backfill, the others hold the
// application's values and are counted in the event 'conflicts', the kept
// rows were one per changed row, and the standby has the same table.

#include "fixture.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <thread>

using namespace pgmig_test;

namespace {

// Checksum of a table, in key order, the same on primary and standby.
const char* kChecksum = "SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) FROM %s t";

std::string Checksum(Conn& c, const std::string& table)
{
    char sql[256];
    std::snprintf(sql, sizeof sql, kChecksum, table.c_str());
    return *c.scalar(sql);
}

}  // namespace

TEST(Undo, RevertExactlyOnceAcrossKillAndCrash)
{
    const int rows = 60000;
    Conn c = pg_mig_primary();
    create_table(c, "undo_t", "id bigint PRIMARY KEY, price numeric(12,2), label text, flags int[], doc jsonb, pad text",
                 "g, g * 0.25, 'l' || g, ARRAY[g % 7],"
                 " CASE WHEN g % 11 = 0 THEN NULL ELSE jsonb_build_object('g', g) END, repeat('p', 30)",
                 rows);
    c.exec("CREATE TABLE undo_before AS SELECT * FROM undo_t");
    c.exec("VACUUM ANALYZE undo_t");
    long long changing = c.scalar_int("SELECT count(*) FROM undo_t WHERE id % 10 <> 0");

    // the backfill overwrites four columns of every row but each tenth; its
    // worker is killed (a crash of the server) half way
    long long job = c.scalar_int(
        "SELECT mig_start_backfill('undo_t', $$price = price * 3 + 1, label = upper(label) || '!',"
        " flags = flags || 99, doc = NULL$$, 'id % 10 <> 0', batch_size => 700, chunk_time => NULL,"
        " sleep => '10ms', keep_old_values => true)");
    wait_for([&] { return job_rows_done(job) >= 15000; }, 120, "backfill progress");
    kill_worker(job);
    Conn c2(Sandbox::get().conninfo());
    ASSERT_EQ("succeeded", wait_job(c2, job, 300));
    std::string kept = "mig_kept.mig_kept_" + S(job);
    // one kept row per changed row (the primary key forbids two), exactly once
    EXPECT_EQ(changing, c2.scalar_int("SELECT rows_done FROM mig_jobs WHERE job_id = $1", {S(job)}));
    EXPECT_EQ(changing, c2.scalar_int("SELECT count(*) FROM " + kept));
    EXPECT_EQ(0, c2.scalar_int("SELECT count(*) FROM " + kept + " k JOIN undo_before b USING (id)"
                               " WHERE (k.mig_old_1, k.mig_old_2, k.mig_old_3, k.mig_old_4::text)"
                               " IS DISTINCT FROM (b.price, b.label, b.flags, b.doc::text)"));
    long long kept_bytes = c2.scalar_int("SELECT kept_bytes FROM mig_jobs WHERE job_id = $1", {S(job)});
    EXPECT_EQ(kept_bytes, c2.scalar_int("SELECT pg_total_relation_size($1::regclass)", {kept}));
    EXPECT_GT(kept_bytes, 0);

    // the application changes 40 rows and deletes 5 of those the backfill changed
    c2.exec("UPDATE undo_t SET price = -1 WHERE id % 1500 = 1");
    c2.exec("UPDATE undo_t SET doc = '{\"app\": 1}' WHERE id IN (3, 4, 5)");
    c2.exec("DELETE FROM undo_t WHERE id IN (7, 8, 9, 11, 12)");
    long long app_changed = c2.scalar_int(
        "SELECT count(*) FROM undo_before WHERE id % 10 <> 0 AND (id % 1500 = 1 OR id IN (3, 4, 5, 7, 8, 9, 11, 12))");

    // the revert: its worker is terminated, then the primary crashes
    long long rev = c2.scalar_int(
        "SELECT mig_revert($1, batch_size => 600, chunk_time => NULL, sleep => '10ms')", {S(job)});
    wait_for([&] { return job_rows_done(rev) >= 10000; }, 120, "revert progress");
    long long pid = worker_pid(rev);
    c2.exec("SELECT pg_terminate_backend($1)", {S(pid)});
    wait_for([&] { return job_rows_done(rev) >= 25000; }, 120, "revert progress after the terminate");
    // slower from here, so the crash finds the revert running however slow
    // this test's polling is under load (about 50 chunks are left)
    c2.exec("SELECT mig_set($1, sleep => '200ms')", {S(rev)});
    ASSERT_LT(job_rows_done(rev), changing - app_changed) << "the revert ended before the crash";
    crash_primary();
    Conn c3(Sandbox::get().conninfo());
    ASSERT_EQ("succeeded", wait_job(c3, rev, 300));
    EXPECT_GE(c3.scalar_int("SELECT count(*) FROM mig_job_events WHERE job_id = $1 AND event = 'started'",
                            {S(rev)}),
              3);

    // every row the application left alone is back, byte for byte
    EXPECT_EQ(0, c3.scalar_int("SELECT count(*) FROM undo_before b LEFT JOIN undo_t t USING (id)"
                               " WHERE NOT (b.id % 1500 = 1 OR b.id IN (3, 4, 5, 7, 8, 9, 11, 12))"
                               " AND (t.id IS NULL OR (t.price, t.label, t.flags, t.doc::text, t.pad)"
                               " IS DISTINCT FROM (b.price, b.label, b.flags, b.doc::text, b.pad))"));
    // the others keep the application's values and are counted
    EXPECT_EQ(0, c3.scalar_int("SELECT count(*) FROM undo_t WHERE id % 1500 = 1 AND id % 10 <> 0 AND price <> -1"));
    EXPECT_EQ(3, c3.scalar_int("SELECT count(*) FROM undo_t WHERE doc = '{\"app\": 1}'"));
    EXPECT_EQ(changing - app_changed, c3.scalar_int("SELECT rows_done FROM mig_jobs WHERE job_id = $1", {S(rev)}));
    std::string conflicts = *c3.scalar(
        "SELECT detail FROM mig_job_events WHERE job_id = $1 AND event = 'conflicts'", {S(rev)});
    EXPECT_EQ(0u, conflicts.find(S(app_changed) + " rows changed since job " + S(job))) << conflicts;
    EXPECT_NE(std::string::npos, conflicts.find("keys 1, 3, 4, 5, 7")) << conflicts;

    // forget frees the space at once
    c3.exec("SELECT mig_forget($1)", {S(job)});
    EXPECT_FALSE(c3.scalar("SELECT to_regclass($1)::text", {kept}).has_value());
    EXPECT_FALSE(c3.scalar("SELECT kept_bytes::text FROM mig_jobs WHERE job_id = $1", {S(job)}).has_value());

    // the standby ends identical
    c3.exec("CHECKPOINT");
    wait_standby();
    Conn s(Sandbox::get().conninfo("postgres", true));
    EXPECT_EQ(Checksum(c3, "undo_t"), Checksum(s, "undo_t"));
    EXPECT_FALSE(s.scalar("SELECT to_regclass($1)::text", {kept}).has_value());
}

// Every key kind of the walk: text, uuid, composite, and a partitioned table
// (one kept table for all partitions; its key is unique over them).
TEST(Undo, EveryKeyKind)
{
    Conn c = pg_mig_primary();
    create_table(c, "uk_text", "code text PRIMARY KEY, v int, note text", "'code-' || g, g, 'n' || g", 3000);
    create_table(c, "uk_uuid", "id uuid PRIMARY KEY, v int, note text", "md5(g::text)::uuid, g, 'n' || g", 3000);
    create_table(c, "uk_comp", "a int, b text, v int, note text, PRIMARY KEY (a, b)",
                 "g % 7, 'b' || g, g, 'n' || g", 3000);
    c.exec("CREATE TABLE uk_part (region text, id int, v int, note text, PRIMARY KEY (region, id))"
           " PARTITION BY LIST (region)");
    c.exec("CREATE TABLE uk_part_eu PARTITION OF uk_part FOR VALUES IN ('eu')");
    c.exec("CREATE TABLE uk_part_us PARTITION OF uk_part FOR VALUES IN ('us')");
    c.exec("CREATE TABLE uk_part_other PARTITION OF uk_part DEFAULT");
    c.exec("INSERT INTO uk_part SELECT (ARRAY['eu', 'us', 'ap'])[g % 3 + 1], g, g, 'n' || g"
           " FROM generate_series(1, 3000) g");
    for (const std::string t : {"uk_text", "uk_uuid", "uk_comp", "uk_part"}) {
        SCOPED_TRACE(t);
        std::string before = Checksum(c, t);
        long long job = c.scalar_int("SELECT mig_start_backfill('" + t +
                                     "', 'v = v * 100, note = NULL', 'v % 3 <> 0', batch_size => 250,"
                                     " chunk_time => NULL, keep_old_values => true)");
        ASSERT_EQ("succeeded", wait_job(c, job, 120));
        EXPECT_EQ(2000, c.scalar_int("SELECT count(*) FROM mig_kept.mig_kept_" + S(job)));
        EXPECT_NE(before, Checksum(c, t));
        long long rev = c.scalar_int("SELECT mig_revert($1, batch_size => 300, chunk_time => NULL)", {S(job)});
        ASSERT_EQ("succeeded", wait_job(c, rev, 120));
        EXPECT_EQ(before, Checksum(c, t));
        EXPECT_EQ(2000, c.scalar_int("SELECT rows_done FROM mig_jobs WHERE job_id = $1", {S(rev)}));
        c.exec("SELECT mig_forget($1)", {S(job)});
    }
    c.exec("CHECKPOINT");
    wait_standby();
    Conn s(Sandbox::get().conninfo("postgres", true));
    for (const std::string t : {"uk_text", "uk_uuid", "uk_comp", "uk_part"})
        EXPECT_EQ(Checksum(c, t), Checksum(s, t)) << t;
}

// migctl start --keep-old-values, revert --wait, forget, status: exit codes.
TEST(Undo, Migctl)
{
    Conn c = pg_mig_primary();
    create_table(c, "uc", "id int PRIMARY KEY, v int", "g, g", 5000);

    auto start = migctl({"start", "--table", "uc", "--set", "v = -v", "--batch-size", "500", "--chunk-time", "0",
                         "--keep-old-values"});
    ASSERT_EQ(0, start.exit_code) << start.out << start.err;
    long long job = std::stoll(start.out);  // the bare id without --wait
    auto waited_start = migctl({"wait", S(job)});
    ASSERT_EQ(0, waited_start.exit_code) << waited_start.out << waited_start.err;
    auto status = migctl({"status", S(job)});
    EXPECT_EQ(0, status.exit_code) << status.err;
    EXPECT_NE(std::string::npos, status.out.find("KEPT")) << status.out;
    // the kept table's size, in whole kB (its pages are 8 kB each)
    long long kept_kb = c.scalar_int("SELECT kept_bytes / 1024 FROM mig_jobs WHERE job_id = $1", {S(job)});
    ASSERT_GT(kept_kb, 10);
    ASSERT_LT(kept_kb, 1024);
    EXPECT_NE(std::string::npos, status.out.find(" " + S(kept_kb) + " kB\n")) << status.out;
    auto json = migctl({"status", S(job), "--json"});
    EXPECT_NE(std::string::npos, json.out.find("\"kept_bytes\": ")) << json.out;
    EXPECT_EQ(std::string::npos, json.out.find("\"kept_bytes\": null")) << json.out;

    // usage errors: no job, a bad knob
    EXPECT_EQ(2, migctl({"revert"}).exit_code);
    EXPECT_EQ(2, migctl({"revert", S(job), "--sleep", "soon"}).exit_code);
    // a refused revert: a job without kept values
    long long plain = c.scalar_int("SELECT mig_start_backfill('uc', 'v = v', batch_size => 5000)");
    ASSERT_EQ("succeeded", wait_job(c, plain, 60));
    // KEPT and kept_bytes only for a backfill that kept its old values
    auto plain_status = migctl({"status", S(plain)});
    EXPECT_EQ(std::string::npos, plain_status.out.find("KEPT")) << plain_status.out;
    EXPECT_EQ(std::string::npos, migctl({"status", S(plain), "--json"}).out.find("kept_bytes"));
    auto refused = migctl({"revert", S(plain)});
    EXPECT_EQ(2, refused.exit_code);
    EXPECT_NE(std::string::npos, refused.err.find("kept no old values")) << refused.err;

    auto rev = migctl({"revert", S(job), "--batch-size", "700", "--wait"});
    EXPECT_EQ(0, rev.exit_code) << rev.out << rev.err;
    EXPECT_EQ(0u, rev.out.find("started job ")) << rev.out;
    EXPECT_EQ(0, c.scalar_int("SELECT count(*) FROM uc WHERE v <> id"));
    // reverted once
    EXPECT_EQ(2, migctl({"revert", S(job)}).exit_code);

    auto forget = migctl({"forget", S(job)});
    EXPECT_EQ(0, forget.exit_code) << forget.err;
    EXPECT_EQ(0u, forget.out.find("job " + S(job) + ": kept values dropped (")) << forget.out;
    EXPECT_FALSE(c.scalar("SELECT to_regclass('mig_kept.mig_kept_' || $1)::text", {S(job)}).has_value());
    auto again = migctl({"forget", S(job)});
    EXPECT_EQ(2, again.exit_code);
    EXPECT_NE(std::string::npos, again.err.find("forgotten")) << again.err;

    // a revert cancelled while it runs ends --wait with exit code 1
    c.exec("UPDATE uc SET v = id");
    long long job2 = c.scalar_int("SELECT mig_start_backfill('uc', 'v = v + 1', batch_size => 100,"
                                  " chunk_time => NULL, keep_old_values => true)");
    ASSERT_EQ("succeeded", wait_job(c, job2, 60));
    long long rev2 = c.scalar_int("SELECT mig_revert($1, batch_size => 50, chunk_time => NULL, sleep => '200ms')",
                                  {S(job2)});
    std::thread canceller([&] {
        Conn cc(Sandbox::get().conninfo());
        wait_for([&] { return cc.scalar_int("SELECT rows_done FROM mig_jobs WHERE job_id = $1", {S(rev2)}) > 0; },
                 60, "revert progress");
        cc.exec("SELECT mig_cancel($1)", {S(rev2)});
    });
    auto waited = migctl({"wait", S(rev2)});
    canceller.join();
    EXPECT_EQ(1, waited.exit_code) << waited.out << waited.err;
    // and the backfill can be reverted again: the rest is written back
    auto rev3 = migctl({"revert", S(job2), "--batch-size", "1000", "--wait"});
    EXPECT_EQ(0, rev3.exit_code) << rev3.out << rev3.err;
    EXPECT_EQ(0, c.scalar_int("SELECT count(*) FROM uc WHERE v <> id"));
}

// The kept old value is the value the chunk overwrote, even when another
// transaction changed the row after the chunk's snapshot was taken: the
// chunk's UPDATE waits for that transaction, finds the row no longer as it
// read it, and the chunk is retried (mig_kept_check) and keeps what the
// application committed; the revert then brings back the application's
// value, not the one from before it.
TEST(Undo, KeepsTheValueItOverwrote)
{
    Conn c = pg_mig_primary();
    create_table(c, "uo", "id int PRIMARY KEY, v int", "g, g", 100);

    Conn app(Sandbox::get().conninfo());
    app.exec("BEGIN");
    app.exec("UPDATE uo SET v = 777 WHERE id = 5");
    long long job = c.scalar_int("SELECT mig_start_backfill('uo', 'v = v * 10', batch_size => 1000,"
                                 " chunk_time => NULL, lock_timeout => '60s', keep_old_values => true)");
    // the chunk waits for the application's row lock (blocked by the
    // application's backend itself: a wait for the job row, which a scan
    // may hold for a moment, would let the chunk start after the commit)
    std::string app_pid = *app.scalar("SELECT pg_backend_pid()::text");
    wait_for(
        [&] {
            return c.scalar_int("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_mig worker'"
                                " AND application_name = $1 AND wait_event_type = 'Lock'"
                                " AND $2::int = ANY (pg_blocking_pids(pid))",
                                {"pg_mig job " + S(job), app_pid}) == 1;
        },
        60, "the chunk to wait for the application's row lock");
    app.exec("COMMIT");
    ASSERT_EQ("succeeded", wait_job(c, job, 60));
    EXPECT_EQ(7770, c.scalar_int("SELECT v FROM uo WHERE id = 5"));
    EXPECT_EQ(777, c.scalar_int("SELECT mig_old_1 FROM mig_kept.mig_kept_" + S(job) + " WHERE id = 5"));
    EXPECT_EQ(7770, c.scalar_int("SELECT mig_new_1 FROM mig_kept.mig_kept_" + S(job) + " WHERE id = 5"));
    EXPECT_EQ(100, c.scalar_int("SELECT count(*) FROM mig_kept.mig_kept_" + S(job)));
    // the chunk found row 5 changed under it and was retried with a new snapshot
    EXPECT_GE(c.scalar_int("SELECT count(*) FROM mig_job_events WHERE job_id = $1 AND event = 'retried'"
                           " AND detail LIKE '%changed while it ran%'",
                           {S(job)}),
              1);

    long long rev = c.scalar_int("SELECT mig_revert($1)", {S(job)});
    ASSERT_EQ("succeeded", wait_job(c, rev, 60));
    EXPECT_EQ(777, c.scalar_int("SELECT v FROM uo WHERE id = 5"));
    EXPECT_EQ(99, c.scalar_int("SELECT count(*) FROM uo WHERE v = id"));
}

// A revert is a walk like any other: it pauses after a chunk, stays paused
// and goes on from its checkpoint when resumed, every row written back once.
TEST(Undo, RevertPausesAndResumes)
{
    Conn c = pg_mig_primary();
    create_table(c, "up", "id int PRIMARY KEY, v int, w text", "g, g, 'w' || g", 4000);
    long long job = c.scalar_int("SELECT mig_start_backfill('up', 'v = -v, w = w || w', batch_size => 1000,"
                                 " chunk_time => NULL, keep_old_values => true)");
    ASSERT_EQ("succeeded", wait_job(c, job, 60));
    long long rev = c.scalar_int(
        "SELECT mig_revert($1, batch_size => 100, chunk_time => NULL, sleep => '50ms')", {S(job)});
    wait_for([&] { return job_rows_done(rev) >= 300; }, 60, "revert progress");
    c.exec("SELECT mig_pause($1)", {S(rev)});
    wait_for([&] { return !c.scalar("SELECT worker_pid::text FROM mig_jobs WHERE job_id = $1", {S(rev)}); }, 60,
             "the paused revert's worker to end");
    long long at_pause = job_rows_done(rev);
    EXPECT_LT(at_pause, 4000);
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    EXPECT_EQ("paused", *c.scalar("SELECT state FROM mig_jobs WHERE job_id = $1", {S(rev)}));
    EXPECT_EQ(at_pause, job_rows_done(rev));
    EXPECT_EQ(at_pause, c.scalar_int("SELECT count(*) FROM up WHERE v = id"));
    c.exec("SELECT mig_resume($1)", {S(rev)});
    ASSERT_EQ("succeeded", wait_job(c, rev, 120));
    EXPECT_EQ(4000, job_rows_done(rev));
    EXPECT_EQ(4000, c.scalar_int("SELECT count(*) FROM up WHERE v = id AND w = 'w' || id"));
    EXPECT_GE(c.scalar_int("SELECT count(*) FROM mig_job_events WHERE job_id = $1 AND event = 'started'", {S(rev)}),
              2);
}
