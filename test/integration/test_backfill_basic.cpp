// test_backfill_basic.cpp -- the first slice end to end: 100,000 rows
// backfilled by the worker, every row checked on the primary and the standby.
#include "harness.hpp"

#include <gtest/gtest.h>

using namespace pgmig_test;

TEST(BackfillBasic, EveryRowOnPrimaryAndStandby)
{
    Conn c(Sandbox::get().conninfo());
    c.exec("CREATE EXTENSION pg_mig");
    c.exec("CREATE TABLE orders (id bigint PRIMARY KEY, amount int, tracking_id text)");
    c.exec("INSERT INTO orders SELECT g, g % 100, NULL FROM generate_series(1, 100000) g");
    long long job = c.scalar_int(
        "SELECT mig_start_backfill('orders', $$tracking_id = 'TRK-' || id$$,"
        " where_clause => 'tracking_id IS NULL', batch_size => 5000)");
    bool saw_running = false;
    wait_for(
        [&] {
            auto st = c.scalar("SELECT state FROM mig_jobs WHERE job_id = $1", {std::to_string(job)});
            if (st == "running") saw_running = true;
            return st == "succeeded" || st == "failed" || st == "cancelled";
        },
        120, "the job");
    EXPECT_EQ("succeeded", *c.scalar("SELECT state FROM mig_jobs WHERE job_id = $1", {std::to_string(job)}));
    // the worker records running before it finishes; seen either live or in the history
    EXPECT_TRUE(saw_running || c.scalar_int("SELECT count(*) FROM mig_job_events WHERE job_id = $1"
                                            " AND event = 'started'", {std::to_string(job)}) == 1);
    long long wrong = c.scalar_int("SELECT count(*) FROM orders WHERE tracking_id IS DISTINCT FROM 'TRK-' || id");
    EXPECT_EQ(0, wrong);
    if (wrong != 0) {
        // say which keys and what the job recorded, to tell a skipped chunk from a visibility race
        for (auto& r : c.rows("SELECT min(id)::text, max(id)::text, count(*)::text, now()::text FROM orders"
                              " WHERE tracking_id IS DISTINCT FROM 'TRK-' || id"))
            ADD_FAILURE() << "unchanged keys " << *r[0] << ".." << *r[1] << " (" << *r[2] << ") at " << *r[3];
        for (auto& r : c.rows("SELECT event, coalesce(detail, ''), at::text FROM mig_job_events ORDER BY event_id"))
            ADD_FAILURE() << "event " << *r[0] << " " << *r[1] << " at " << *r[2];
    }
    EXPECT_EQ(100000, c.scalar_int("SELECT rows_done FROM mig_jobs WHERE job_id = $1", {std::to_string(job)}));
    auto events = c.rows("SELECT event, coalesce(detail, '') FROM mig_job_events WHERE job_id = $1"
                         " ORDER BY event_id", {std::to_string(job)});
    // 0.4: a walk with a where clause is verified before it succeeds
    ASSERT_EQ(4u, events.size());
    EXPECT_EQ("queued", *events[0][0]);
    EXPECT_EQ("started", *events[1][0]);
    EXPECT_EQ("verified", *events[2][0]);
    EXPECT_EQ("0 rows left", *events[2][1]);
    EXPECT_EQ("succeeded", *events[3][0]);

    // the insert position, not pg_current_wal_lsn (the write position): the
    // worker commits with synchronous_commit = off, so its last commits may
    // not be written yet, and a standby replaying up to the write position
    // would miss them
    std::string lsn = *c.scalar("SELECT pg_current_wal_insert_lsn()::text");
    Conn s(Sandbox::get().conninfo("postgres", true));
    wait_for([&] { return s.scalar_int("SELECT (pg_last_wal_replay_lsn() >= $1::pg_lsn)::int", {lsn}) == 1; },
             60, "standby replay");
    EXPECT_EQ(0, s.scalar_int("SELECT count(*) FROM orders WHERE tracking_id IS DISTINCT FROM 'TRK-' || id"));
}
