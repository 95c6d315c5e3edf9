// test_bloat.cpp -- bloat control (vacuum.c): a backfill with vacuum_every
// keeps the table small because its worker vacuums behind the walk, and its
// events count every VACUUM; off, it does not vacuum and the table doubles;
// mig_set changes it while the job runs; a job owner who may not vacuum the
// table gets one 'vacuum_skipped' event and the job succeeds; a VACUUM that
// could free nothing (an older snapshot holds the rows) is put off and says
// who holds it; with lanes only lane 1 vacuums; the default comes from
// pg_mig.default_vacuum_every.  The tables have autovacuum off, so every
// VACUUM of them is the worker's.
#include "fixture.hpp"
#include "harness.hpp"

#include <gtest/gtest.h>

#include <cstdio>

using namespace pgmig_test;

namespace {

// prepared transactions (PREPARE TRANSACTION) can be made here
const bool kConf = sandbox_conf("fsync = off\nmax_prepared_transactions = 2\n");

const long long kRows = 200000;

Conn& Db()
{
    static Conn c = [] {
        Conn conn(Sandbox::get().conninfo());
        conn.exec("CREATE EXTENSION pg_mig");
        return conn;
    }();
    return c;
}

// a table of kRows full pages (fillfactor 100), loaded and vacuumed, like
// bench/bloat.sh's; returns its heap size
long long MakeTable(Conn& c, const std::string& name)
{
    c.exec("CREATE TABLE " + name + " (id bigint PRIMARY KEY, customer_id int NOT NULL,"
           " status text NOT NULL, note text, tracking_id text) WITH (autovacuum_enabled = false)");
    c.exec("INSERT INTO " + name + " (id, customer_id, status, note)"
           " SELECT g, g % 1000, 'new', md5(g::text) FROM generate_series(1, " + std::to_string(kRows) + ") g");
    c.exec("VACUUM ANALYZE " + name);
    return c.scalar_int("SELECT pg_relation_size('" + name + "')");
}

long long Backfill(Conn& c, const std::string& table, const std::string& extra)
{
    return c.scalar_int("SELECT mig_start_backfill('" + table + "', $$tracking_id = 'TRK-' || id$$,"
                        " where_clause => 'tracking_id IS NULL', batch_size => 5000, chunk_time => NULL" +
                        extra + ")");
}

// VACUUMs of the table so far (the load's own VACUUM ANALYZE counts one)
long long Vacuums(Conn& c, const std::string& table)
{
    return c.scalar_int("SELECT vacuum_count FROM pg_stat_user_tables WHERE relname = $1", {table});
}

// VACUUMs the job's 'vacuumed' events count ("[lane 1: ]N VACUUMs of ...")
long long VacuumsRecorded(Conn& c, long long job)
{
    return c.scalar_int("SELECT coalesce(sum(substring(detail FROM '^(?:lane 1: )?(\\d+) VACUUM')::int), 0)"
                        " FROM mig_job_events WHERE job_id = $1 AND event = 'vacuumed'",
                        {std::to_string(job)});
}

void ExpectAllDone(Conn& c, const std::string& table)
{
    EXPECT_EQ(0, c.scalar_int("SELECT count(*) FROM " + table + " WHERE tracking_id IS DISTINCT FROM 'TRK-' || id"));
}

}  // namespace

// the same backfill of every row of the same data, with and without
// vacuum_every: with it, later chunks reuse the space freed behind the walk
TEST(Bloat, VacuumEveryKeepsTheTableSmall)
{
    Conn& c = Db();
    long long before_on = MakeTable(c, "bloat_on");
    long long before_off = MakeTable(c, "bloat_off");
    ASSERT_EQ(before_on, before_off);

    long long on = Backfill(c, "bloat_on", ", vacuum_every => 10000");
    ASSERT_EQ("succeeded", wait_job(c, on, 300));
    long long off = Backfill(c, "bloat_off", ", vacuum_every => 0");
    ASSERT_EQ("succeeded", wait_job(c, off, 300));
    ExpectAllDone(c, "bloat_on");
    ExpectAllDone(c, "bloat_off");

    long long after_on = c.scalar_int("SELECT pg_relation_size('bloat_on')");
    long long after_off = c.scalar_int("SELECT pg_relation_size('bloat_off')");
    // one UPDATE of every row (and a backfill without VACUUMs) doubles the
    // heap; the worker's VACUUMs every 10,000 of 200,000 rows keep it within
    // about 1.15x
    EXPECT_LE(after_on * 10, before_on * 13) << after_on << " bytes after, " << before_on << " before";
    EXPECT_GE(after_off * 10, before_off * 18) << after_off << " bytes after, " << before_off << " before";
    EXPECT_LT(after_on, after_off);

    // the VACUUMs are the worker's, recorded (the first at once), and none without
    EXPECT_GE(job_events(c, on, "vacuumed"), 1);
    EXPECT_EQ(1, c.scalar_int("SELECT count(*) FROM mig_job_events WHERE job_id = $1 AND event = 'vacuumed'"
                              " AND detail LIKE '1 VACUUM of bloat_on in % s, WAL % MB, every 10000 rows;"
                              " the table has % pages'",
                              {std::to_string(on)}));
    EXPECT_GE(Vacuums(c, "bloat_on"), 2);
    // and together the events count every VACUUM: those of the job's last
    // minute too (they were not recorded)
    EXPECT_EQ(Vacuums(c, "bloat_on") - 1, VacuumsRecorded(c, on));
    EXPECT_EQ(0, job_events(c, off, "vacuumed"));
    EXPECT_EQ(1, Vacuums(c, "bloat_off"));
    EXPECT_EQ(10000, c.scalar_int("SELECT vacuum_every FROM mig_job WHERE job_id = $1", {std::to_string(on)}));
    // how much it grew, for the log
    std::printf("heap: %lld -> %lld bytes with vacuum_every, -> %lld without\n", before_on, after_on, after_off);
    EXPECT_FALSE(c.scalar("SELECT vacuum_every FROM mig_job WHERE job_id = $1", {std::to_string(off)}).has_value());
}

// mig_set(vacuum_every => n) turns it on for a job started without it
TEST(Bloat, MigSetTurnsItOn)
{
    Conn& c = Db();
    MakeTable(c, "bloat_set");
    long long job = Backfill(c, "bloat_set", ", vacuum_every => 0, sleep => '20ms'");
    const std::string id = std::to_string(job);
    wait_for([&] { return job_rows_done(c, job) > 0; }, 60, "the job's first chunk");
    c.exec("SELECT mig_pause($1)", {id});
    ASSERT_EQ("paused", c.scalar("SELECT state FROM mig_jobs WHERE job_id = $1", {id}).value_or("?"));
    long long done = job_rows_done(c, job);
    ASSERT_LT(done, kRows - 40000) << "the job went too far before the pause";
    EXPECT_EQ(0, job_events(c, job, "vacuumed"));
    EXPECT_EQ(1, Vacuums(c, "bloat_set"));

    c.exec("SELECT mig_set($1, vacuum_every => 10000)", {id});
    EXPECT_EQ(10000, c.scalar_int("SELECT vacuum_every FROM mig_job WHERE job_id = $1", {id}));
    c.exec("SELECT mig_resume($1)", {id});
    // paused again after a few VACUUMs: its events count them all
    wait_for([&] { return Vacuums(c, "bloat_set") >= 4 || job_rows_done(c, job) == kRows; },
             120, "three VACUUMs");
    c.exec("SELECT mig_pause($1)", {id});
    wait_for([&] { return c.scalar_int("SELECT count(*) FROM mig_worker_status() WHERE job_id = $1", {id}) == 0; },
             60, "the paused job's worker to leave");
    EXPECT_EQ(Vacuums(c, "bloat_set") - 1, VacuumsRecorded(c, job));
    c.exec("SELECT mig_resume($1)", {id});
    ASSERT_EQ("succeeded", wait_job(c, job, 300));
    ExpectAllDone(c, "bloat_set");
    EXPECT_GE(job_events(c, job, "vacuumed"), 1);
    EXPECT_GE(Vacuums(c, "bloat_set"), 2);
    EXPECT_EQ(Vacuums(c, "bloat_set") - 1, VacuumsRecorded(c, job));
}

// a job owner with UPDATE on the table but no right to VACUUM it: one
// recorded event, no VACUUM, and the job succeeds
TEST(Bloat, OwnerWhoMayNotVacuumGetsOneEventAndTheJobSucceeds)
{
    Conn& c = Db();
    long long before = MakeTable(c, "bloat_notmine");
    c.exec("CREATE ROLE bloat_writer LOGIN");
    c.exec("GRANT SELECT, UPDATE ON bloat_notmine TO bloat_writer");
    long long job;
    {
        Conn writer(Sandbox::get().conninfo("postgres", false, "bloat_writer"));
        job = Backfill(writer, "bloat_notmine", ", vacuum_every => 10000");
    }
    ASSERT_EQ("succeeded", wait_job(c, job, 300));
    ExpectAllDone(c, "bloat_notmine");
    EXPECT_EQ(1, job_events(c, job, "vacuum_skipped"));
    EXPECT_EQ(1, c.scalar_int("SELECT count(*) FROM mig_job_events WHERE job_id = $1 AND event = 'vacuum_skipped'"
                              " AND detail LIKE 'role \"bloat_writer\" may not vacuum table \"bloat_notmine\", %'",
                              {std::to_string(job)}));
    EXPECT_EQ(0, job_events(c, job, "vacuumed"));
    EXPECT_EQ(0, job_events(c, job, "vacuum_failed"));
    EXPECT_EQ(1, Vacuums(c, "bloat_notmine"));
    // so nothing reclaimed the space behind the walk
    EXPECT_GE(c.scalar_int("SELECT pg_relation_size('bloat_notmine')") * 10, before * 18);
    // VACUUM's own "skipping" warning never came: the worker asked first
    EXPECT_EQ(std::string::npos, Sandbox::get().primary_log().find("skipping \"bloat_notmine\""));
    EXPECT_EQ(std::string::npos, Sandbox::get().primary_log().find("permission denied to vacuum \"bloat_notmine\""));
}

// a VACUUM that cannot get its lock waits no longer than lock_timeout, is
// not a failure, and is tried again after the next chunk: the chunks go on
// (their lock does not conflict with the one VACUUM waits for), and once the
// lock is free the VACUUMs run
TEST(Bloat, VacuumThatCannotLockIsTriedAgainAndNeverFailsTheJob)
{
    Conn& c = Db();
    MakeTable(c, "bloat_locked");
    Conn holder(Sandbox::get().conninfo());
    holder.exec("BEGIN");
    holder.exec("LOCK TABLE bloat_locked IN SHARE UPDATE EXCLUSIVE MODE");
    long long job = Backfill(c, "bloat_locked", ", vacuum_every => 20000, lock_timeout => '100ms', sleep => '50ms'");
    const std::string id = std::to_string(job);
    wait_for([&] { return job_rows_done(c, job) >= 60000; }, 120, "60,000 rows while the lock is held");
    EXPECT_EQ(0, job_events(c, job, "vacuumed"));
    EXPECT_EQ(1, Vacuums(c, "bloat_locked"));
    EXPECT_EQ("running", c.scalar("SELECT state FROM mig_jobs WHERE job_id = $1", {id}).value_or("?"));
    holder.exec("COMMIT");
    ASSERT_EQ("succeeded", wait_job(c, job, 300));
    ExpectAllDone(c, "bloat_locked");
    EXPECT_EQ(0, job_events(c, job, "vacuum_failed"));
    EXPECT_EQ(0, job_events(c, job, "retried"));
    EXPECT_GE(job_events(c, job, "vacuumed"), 1);
    EXPECT_GE(Vacuums(c, "bloat_locked"), 2);
}

// A VACUUM removes a dead row version only once no snapshot may still see
// it: while a transaction that began before the walk's chunks lives (a
// report in REPEATABLE READ, a pg_dump, a session idle in transaction), the
// worker's VACUUMs freed nothing, the table doubled anyway, and each read
// again every page the walk had passed, for nothing, while the 'vacuumed'
// events said all was well. Now the worker puts the VACUUM off while the
// xmin horizon is older than every chunk since the last one, says once
// who holds it, and vacuums as soon as it moves on.
TEST(Bloat, AVacuumThatCouldFreeNothingIsPutOffAndSaysWhoHoldsItBack)
{
    Conn& c = Db();
    c.exec("DROP TABLE IF EXISTS bloat_report");
    c.exec("CREATE TABLE bloat_report (n int)");
    for (bool prepared : {false, true}) {
        SCOPED_TRACE(prepared ? "a prepared transaction" : "a snapshot");
        const std::string table = prepared ? "bloat_held_2pc" : "bloat_held";
        MakeTable(c, table);
        Conn holder(Sandbox::get().conninfo());
        std::string who;
        if (prepared) {
            // a two-phase commit's first phase, and no second
            holder.exec("BEGIN");
            holder.exec("INSERT INTO bloat_report VALUES (1)");
            holder.exec("PREPARE TRANSACTION 'bloat_2pc'");
            who = "the prepared transaction 'bloat_2pc'";
        } else {
            who = "the snapshot of pid " + *holder.scalar("SELECT pg_backend_pid()::text");
            holder.exec("BEGIN ISOLATION LEVEL REPEATABLE READ");
            holder.exec("SELECT count(*) FROM bloat_report");  // a snapshot, on another table
        }
        long long job = Backfill(c, table, ", vacuum_every => 20000, sleep => '50ms'");
        const std::string id = std::to_string(job);
        wait_for([&] { return job_rows_done(c, job) >= 80000; }, 120, "80,000 rows while the horizon is held");
        EXPECT_EQ(1, Vacuums(c, table));  // the load's own
        EXPECT_EQ(0, job_events(c, job, "vacuumed"));
        EXPECT_EQ(1, job_events(c, job, "vacuum_held"));
        std::string held = c.scalar("SELECT detail FROM mig_job_events WHERE job_id = $1 AND event = 'vacuum_held'",
                                    {id}).value_or("");
        EXPECT_NE(std::string::npos, held.find("while " + who + " holds back the xmin horizon")) << held;
        EXPECT_EQ("running", c.scalar("SELECT state FROM mig_jobs WHERE job_id = $1", {id}).value_or("?"));
        c.exec(prepared ? "COMMIT PREPARED 'bloat_2pc'" : "SELECT 1");
        if (!prepared)
            holder.exec("COMMIT");
        // the next VACUUM runs, and says so at once
        wait_for([&] { return job_events(c, job, "vacuumed") >= 1 || job_rows_done(c, job) >= kRows; },
                 120, "a VACUUM once the horizon moves on");
        EXPECT_GE(Vacuums(c, table), 2);
        ASSERT_EQ("succeeded", wait_job(c, job, 300));
        ExpectAllDone(c, table);
        EXPECT_EQ(1, job_events(c, job, "vacuum_held"));
        EXPECT_GE(job_events(c, job, "vacuumed"), 1);
    }
}

// with two lanes, lane 1 vacuums (every vacuum_every / 2 of its rows), lane 2 never
TEST(Bloat, OnlyLaneOneVacuums)
{
    Conn& c = Db();
    long long before = MakeTable(c, "bloat_lanes");
    long long job = Backfill(c, "bloat_lanes", ", parallel => 2, vacuum_every => 20000");
    ASSERT_EQ("succeeded", wait_job(c, job, 300));
    ExpectAllDone(c, "bloat_lanes");
    const std::string id = std::to_string(job);
    EXPECT_GE(c.scalar_int("SELECT count(*) FROM mig_job_events WHERE job_id = $1 AND event = 'vacuumed'"
                           " AND detail LIKE 'lane 1: % every 10000 rows;%'",
                           {id}),
              1);
    EXPECT_EQ(0, c.scalar_int("SELECT count(*) FROM mig_job_events WHERE job_id = $1 AND event = 'vacuumed'"
                              " AND detail NOT LIKE 'lane 1: %'",
                              {id}));
    EXPECT_LT(c.scalar_int("SELECT pg_relation_size('bloat_lanes')") * 10, before * 18);
    EXPECT_EQ(Vacuums(c, "bloat_lanes") - 1, VacuumsRecorded(c, job));
}

// the default: automatic (a tenth of the table's estimated rows, at
// least 100,000), or pg_mig.default_vacuum_every's number, or off
TEST(Bloat, DefaultComesFromTheSetting)
{
    Conn& c = Db();
    c.exec("CREATE TABLE bloat_default (id bigint PRIMARY KEY, v int)");
    c.exec("INSERT INTO bloat_default SELECT g, 0 FROM generate_series(1, 1000) g");
    c.exec("ANALYZE bloat_default");
    auto start = [&](const std::string& setting) {
        Conn s(Sandbox::get().conninfo());
        if (!setting.empty()) s.exec("SET pg_mig.default_vacuum_every = " + setting);
        long long job = s.scalar_int("SELECT mig_start_backfill('bloat_default', 'v = v + 1')");
        EXPECT_EQ("succeeded", wait_job(s, job, 120));
        return s.scalar("SELECT vacuum_every::text FROM mig_job WHERE job_id = $1", {std::to_string(job)});
    };
    EXPECT_EQ("-1", *c.scalar("SHOW pg_mig.default_vacuum_every"));
    EXPECT_EQ("100000", start("").value_or("NULL"));
    EXPECT_EQ("5000", start("5000").value_or("NULL"));
    EXPECT_EQ("NULL", start("0").value_or("NULL"));
    long long given = c.scalar_int("SELECT mig_start_backfill('bloat_default', 'v = v + 1', vacuum_every => 777)");
    EXPECT_EQ("succeeded", wait_job(c, given, 120));
    EXPECT_EQ(777, c.scalar_int("SELECT vacuum_every FROM mig_job WHERE job_id = $1", {std::to_string(given)}));
    EXPECT_THROW(c.exec("SET pg_mig.default_vacuum_every = -2"), PgError);
}
