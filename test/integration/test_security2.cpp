// test_security2.cpp -- security round two (issue 22), the cases that need
// workers and several sessions: announcements of job control that no other
// role can leave behind or use up, and a launcher that finds the jobs of
// every database, however many there are.  No timing assertions: every
// wait polls for a state, with a generous timeout.
#include "fixture.hpp"
#include "harness.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

using namespace pgmig_test;

namespace {

const bool kConf = sandbox_conf(kWorkersConf);

// a parallel job whose chunks overlap all the time (about 0.2 ms a row)
long long StartBusyParallelJob(Conn& c, const std::string& table, int rows)
{
    c.exec("CREATE EXTENSION IF NOT EXISTS pg_mig");
    c.exec("CREATE TABLE " + table + " (id bigint PRIMARY KEY, n int NOT NULL DEFAULT 0)");
    c.exec("INSERT INTO " + table + " (id) SELECT g FROM generate_series(1, $1) g", {S(rows)});
    long long job = c.scalar_int(
        "SELECT mig_start_backfill('" + table + "', 'n = n + 1 + 0 * length(pg_sleep(0.0002)::text)',"
        " batch_size => 200, chunk_time => NULL, vacuum_every => 0, parallel => 2)");
    wait_for([&] { return c.scalar_int("SELECT count(*) FROM mig_job_lanes WHERE job_id = $1"
                                       " AND rows_done > 0 AND worker_pid IS NOT NULL", {S(job)}) == 2; },
             120, "both lanes to run");
    return job;
}

}  // namespace

// Issue 22 item 5: a role that may not control a job calls mig_pause inside
// a savepoint, rolls back to it and stays idle in transaction.  Its
// "about to lock" announcement must not outlive the refusal: the lanes go
// on and the job ends.  (0.3: the lanes waited for the announcement until
// the session's transaction ended.)
TEST(Security2, RefusedPauseInASavepointDoesNotStallTheLanes)
{
    Conn su = primary_as("postgres");
    su.exec("CREATE ROLE sec2_mallory LOGIN");
    long long job = StartBusyParallelJob(su, "s2_stall", 30000);

    Conn mallory = primary_as("postgres", "sec2_mallory");
    mallory.exec("BEGIN");
    mallory.exec("SAVEPOINT s");
    EXPECT_THROW(mallory.exec("SELECT mig_pause($1)", {S(job)}), PgError);
    mallory.exec("ROLLBACK TO SAVEPOINT s");
    // idle in transaction from here on, while the job runs to its end
    EXPECT_EQ("succeeded", wait_job(su, job, 180));
    EXPECT_EQ(0, su.scalar_int("SELECT count(*) FROM s2_stall WHERE n <> 1"));
    mallory.exec("ROLLBACK");
}

// Issue 22 item 6: another role fills the announcement table with refused
// calls for jobs that do not exist, in a transaction it keeps open; the
// owner's job control still gets through the lanes' overlapping share
// locks.  (0.3: every refused call took an entry until the transaction
// ended; with the table full the owner's mig_pause waited as long as the
// lanes overlapped.)
TEST(Security2, RefusedCallsForMissingJobsDoNotStarveJobControl)
{
    Conn su = primary_as("postgres");
    su.exec("CREATE ROLE sec2_spammer LOGIN");
    long long job = StartBusyParallelJob(su, "s2_spam", 60000);

    Conn spam = primary_as("postgres", "sec2_spammer");
    spam.exec("BEGIN");
    spam.exec(
        "DO $$ BEGIN FOR i IN 1..300 LOOP"
        "  BEGIN PERFORM mig_pause(1000000000 + i); EXCEPTION WHEN OTHERS THEN NULL; END;"
        " END LOOP; END $$");
    // and one refused call for the real job, left in its transaction
    spam.exec("SAVEPOINT s");
    EXPECT_THROW(spam.exec("SELECT mig_cancel($1)", {S(job)}), PgError);
    spam.exec("ROLLBACK TO SAVEPOINT s");

    su.exec("SET statement_timeout = '60s'");
    for (int i = 1; i <= 5; i++)
        su.exec("SELECT mig_set($1, batch_size => $2)", {S(job), S(200 + i)});
    su.exec("SELECT mig_pause($1)", {S(job)});
    su.exec("RESET statement_timeout");
    EXPECT_EQ("paused", *su.scalar("SELECT state FROM mig_jobs WHERE job_id = $1", {S(job)}));
    spam.exec("ROLLBACK");
    su.exec("SELECT mig_resume($1)", {S(job)});
    EXPECT_EQ("succeeded", wait_job(su, job, 600));
    EXPECT_EQ(0, su.scalar_int("SELECT count(*) FROM s2_spam WHERE n <> 1"));
}

// Issue 22, reliability: the launcher scans every database, not the first
// 256 it finds: a job left running by a crash in database number 300 is
// restarted.  The databases are empty copies of template0 (FILE_COPY, fsync
// off), so making 300 of them takes seconds.
TEST(Security2, AJobInDatabaseThreeHundredRestartsAfterACrash)
{
    Conn su = primary_as("postgres");
    for (int i = 1; i <= 299; i++)
        su.exec("CREATE DATABASE s2_many_" + S(i) + " TEMPLATE template0 STRATEGY FILE_COPY");
    su.exec("CREATE DATABASE s2_last TEMPLATE template0 STRATEGY FILE_COPY");
    EXPECT_LE(300, su.scalar_int("SELECT count(*) FROM pg_database WHERE datallowconn"));
    long long job;
    {
        Conn db = primary_as("s2_last");
        db.exec("CREATE EXTENSION pg_mig");
        db.exec("CREATE TABLE t (id int PRIMARY KEY, n int NOT NULL DEFAULT 0)");
        db.exec("INSERT INTO t (id) SELECT g FROM generate_series(1, 20000) g");
        job = db.scalar_int("SELECT mig_start_backfill('t', 'n = n + 1', batch_size => 100,"
                            " chunk_time => NULL, sleep => '20ms')");
        wait_for([&] { return job_rows_done(db, job) > 0; }, 120, "the job to make progress");
    }
    // a crash: every process ends at once, the job row says running
    ASSERT_EQ(0, Sandbox::get().ctl("primary", "restart -m immediate -w"));
    Conn db = primary_as("s2_last");
    EXPECT_EQ("succeeded", wait_job(db, job, 180));
    EXPECT_EQ(0, db.scalar_int("SELECT count(*) FROM t WHERE n <> 1"));
}
