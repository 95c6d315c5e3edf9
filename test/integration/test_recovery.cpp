// test_recovery.cpp -- issue 21, the extension's side, against the sandbox
// primary + standby: an index build waits out an old snapshot (a long
// REPEATABLE READ transaction, a pg_dump of the database) without failing,
// and mig_jobs.step names the pid it waits for; a real lock conflict on
// the table is still bounded by lock_timeout and retried; a key started
// again from a new session follows the job.

#include "fixture.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <thread>

using namespace pgmig_test;

namespace {

std::string Id(long long v) { return std::to_string(v); }

std::string JobStep(Conn& c, long long job)
{
    return c.scalar("SELECT step FROM mig_jobs WHERE job_id = $1", {Id(job)}).value_or("");
}

}  // namespace

// Today's 0.3 fails this: CREATE INDEX CONCURRENTLY waits for the old
// snapshot through a lock wait, which lock_timeout (1s) cancels; after
// three retries the job fails.  In 0.4 the wait blocks nobody and is waited
// out, and step says for whom.
TEST(Recovery, IndexWaitsOutALongRepeatableReadTransactionAndSaysForWhom)
{
    Conn c = pg_mig_primary();
    create_table(c, "rix", "id int PRIMARY KEY, v int NOT NULL", "g, g % 1000", 20000);
    create_table(c, "rix_other", "id int PRIMARY KEY", "g", 10);

    Conn holder(Sandbox::get().conninfo());
    holder.exec("BEGIN ISOLATION LEVEL REPEATABLE READ");
    holder.exec("SELECT count(*) FROM rix_other");  // a snapshot, on an unrelated table
    std::string holder_pid = *holder.scalar("SELECT pg_backend_pid()::text");

    long long job = c.scalar_int("SELECT mig_create_index('rix', 'v', index_name => 'rix_v',"
                                 " lock_timeout => '1s', max_retries => 3)");
    wait_for([&] { return JobStep(c, job).find("waits for pid " + holder_pid) != std::string::npos; },
             120, "step to name the pid of the old snapshot");
    std::string step = JobStep(c, job);
    EXPECT_NE(std::string::npos, step.find("building index rix_v")) << step;
    EXPECT_NE(std::string::npos, step.find(" since ")) << step;

    // the old snapshot stays for 25 s: far longer than lock_timeout and its
    // three retries together; the build goes on waiting, nothing is retried
    std::this_thread::sleep_for(std::chrono::seconds(25));
    EXPECT_EQ("running", *c.scalar("SELECT state FROM mig_jobs WHERE job_id = $1", {Id(job)}));
    EXPECT_EQ(0, job_events(c, job, "retried"));
    EXPECT_NE(std::string::npos, JobStep(c, job).find("waits for pid " + holder_pid));

    holder.exec("COMMIT");
    EXPECT_EQ("succeeded", wait_job(c, job, 120));
    EXPECT_EQ("true", *c.scalar("SELECT indisvalid::text FROM pg_index WHERE indexrelid = 'rix_v'::regclass"));
    EXPECT_EQ(0, job_events(c, job, "retried"));
}

// A pg_dump of the database holds its snapshot from its start to its end;
// here it is held up on purpose (another session holds an ACCESS EXCLUSIVE
// lock on a table the dump must lock, after pg_dump took its snapshot), so
// the build runs while the dump does.  Both succeed.
TEST(Recovery, IndexBuildsBesideAPgDumpOfTheDatabase)
{
    Conn c = pg_mig_primary();
    create_table(c, "rid", "id int PRIMARY KEY, v int NOT NULL", "g, g % 100", 20000);
    create_table(c, "rid_held", "id int PRIMARY KEY", "g", 10);

    Conn locker(Sandbox::get().conninfo());
    locker.exec("BEGIN");
    locker.exec("LOCK TABLE rid_held IN ACCESS EXCLUSIVE MODE");

    std::string out = Sandbox::get().base + "/recovery_dump.sql";
    std::vector<std::string> argv = Sandbox::get().pg_program("pg_dump");
    argv.insert(argv.end(), {"-d", Sandbox::get().conninfo(), "-f", out});
    auto dump = std::async(std::launch::async, [argv] { return run_command(argv, {}, 300); });

    // pg_dump has its snapshot and waits for the lock
    wait_for([&] { return c.scalar_int("SELECT count(*) FROM pg_stat_activity"
                                       " WHERE application_name = 'pg_dump' AND wait_event_type = 'Lock'") == 1; },
             60, "pg_dump to wait for its lock");
    std::string dump_pid = *c.scalar("SELECT pid::text FROM pg_stat_activity WHERE application_name = 'pg_dump'");

    long long job = c.scalar_int("SELECT mig_create_index('rid', 'v', index_name => 'rid_v',"
                                 " lock_timeout => '1s', max_retries => 3)");
    wait_for([&] { return JobStep(c, job).find("waits for pid " + dump_pid) != std::string::npos; },
             120, "step to name pg_dump's pid");
    // longer than lock_timeout and its retries: nothing is retried
    std::this_thread::sleep_for(std::chrono::seconds(10));
    EXPECT_EQ("running", *c.scalar("SELECT state FROM mig_jobs WHERE job_id = $1", {Id(job)}));

    locker.exec("COMMIT");
    CmdResult r = dump.get();
    EXPECT_EQ(0, r.exit_code) << r.err;
    EXPECT_EQ("succeeded", wait_job(c, job, 120));
    EXPECT_EQ(0, job_events(c, job, "retried"));
    EXPECT_EQ("true", *c.scalar("SELECT indisvalid::text FROM pg_index WHERE indexrelid = 'rid_v'::regclass"));
}

// A lock that others would queue behind (the table's SHARE UPDATE
// EXCLUSIVE lock that CREATE INDEX CONCURRENTLY takes first, against a
// session holding SHARE ROW EXCLUSIVE or ACCESS EXCLUSIVE) is still waited
// for at most lock_timeout, then retried; before the retry the worker
// waits, queueing behind nobody, for the holder's transaction to end
// (SchemaStepWaitsOutATransactionThatHoldsItsTable), so one holder costs
// one attempt.
TEST(Recovery, IndexLockConflictIsStillBoundedByLockTimeoutAndRetried)
{
    Conn c = pg_mig_primary();
    create_table(c, "ril", "id int PRIMARY KEY, v int NOT NULL", "g, g % 100", 5000);

    for (const char* mode : {"SHARE ROW EXCLUSIVE", "ACCESS EXCLUSIVE"}) {
        std::string index = std::string("ril_v_") + (mode[0] == 'S' ? "sre" : "ae");
        // the job is made in a transaction that holds the table (ACCESS
        // SHARE); the holder's lock request queues behind it and is granted
        // when that transaction commits, before the worker starts
        Conn starter(Sandbox::get().conninfo());
        starter.exec("BEGIN");
        long long job = starter.scalar_int("SELECT mig_create_index('ril', 'v', index_name => $1,"
                                           " lock_timeout => '1s', max_retries => 100)", {index});
        Conn holder(Sandbox::get().conninfo());
        std::string holder_pid = *holder.scalar("SELECT pg_backend_pid()::text");
        holder.exec("BEGIN");
        std::thread lock([&] { holder.exec(std::string("LOCK TABLE ril IN ") + mode + " MODE"); });
        // granted at once (SHARE ROW EXCLUSIVE) or queued (ACCESS EXCLUSIVE)
        wait_for([&] { return c.scalar_int("SELECT count(*) FROM pg_locks WHERE pid = $1"
                                           " AND locktype = 'relation' AND relation = 'ril'::regclass",
                                           {holder_pid}) == 1; },
                 60, "the holder's lock request");
        starter.exec("COMMIT");
        lock.join();
        wait_for([&] { return job_events(c, job, "retried") >= 1
                           && JobStep(c, job).find("waits for pid " + holder_pid + " (virtualxid lock)")
                                  != std::string::npos; },
                 120, std::string("the build to time out behind ") + mode + " and wait for its holder");
        std::this_thread::sleep_for(std::chrono::seconds(3));
        EXPECT_EQ(1, job_events(c, job, "retried")) << mode;
        std::string detail = *c.scalar("SELECT detail FROM mig_job_events WHERE job_id = $1"
                                       " AND event = 'retried' ORDER BY event_id DESC LIMIT 1", {Id(job)});
        EXPECT_NE(std::string::npos, detail.find("lock timeout")) << detail;
        EXPECT_EQ("running", *c.scalar("SELECT state FROM mig_jobs WHERE job_id = $1", {Id(job)}));
        holder.exec("COMMIT");
        EXPECT_EQ("succeeded", wait_job(c, job, 120)) << mode;
        EXPECT_EQ("true", *c.scalar("SELECT indisvalid::text FROM pg_index WHERE indexrelid = $1::regclass", {index}));
    }
}

// A transaction that holds the table for long (a pg_dump's ACCESS SHARE, a
// report in REPEATABLE READ) made every attempt of a schema step that needs
// ACCESS EXCLUSIVE time out: the retries were used up in seconds and the
// job failed (the swap of a type change started before the nightly dump).
// Between attempts the worker now waits, queueing behind nobody, for the
// transactions that held the table when the attempt gave up; one long
// transaction costs one attempt. The wait names the pid it waits for,
// mig_pause stops it, and the application writes on meanwhile.
TEST(Recovery, SchemaStepWaitsOutATransactionThatHoldsItsTable)
{
    Conn c = pg_mig_primary();
    create_table(c, "rlt", "id int PRIMARY KEY, v int NOT NULL", "g, g % 100", 5000);
    // started and paused in one transaction: no worker runs it yet
    c.exec("BEGIN");
    long long job = c.scalar_int("SELECT mig_change_type('rlt', 'v', 'bigint', lock_timeout => '200ms',"
                                 " max_retries => 2)");
    c.exec("SELECT mig_pause($1)", {Id(job)});
    c.exec("COMMIT");

    Conn holder(Sandbox::get().conninfo());
    std::string holder_pid = *holder.scalar("SELECT pg_backend_pid()::text");
    holder.exec("BEGIN ISOLATION LEVEL REPEATABLE READ");
    EXPECT_EQ(5000, holder.scalar_int("SELECT count(*) FROM rlt"));
    c.exec("SELECT mig_resume($1)", {Id(job)});

    // the swap times out once, then waits for the holder's transaction
    wait_for([&] { return job_events(c, job, "retried") >= 1
                       && JobStep(c, job).find("waits for pid " + holder_pid + " (virtualxid lock)")
                              != std::string::npos; },
             120, "the swap to wait for the holder's transaction");
    // longer than two attempts and their backoff: still running, one retry
    std::this_thread::sleep_for(std::chrono::seconds(5));
    EXPECT_EQ("running", *c.scalar("SELECT state FROM mig_jobs WHERE job_id = $1", {Id(job)}));
    EXPECT_EQ(1, job_events(c, job, "retried"));
    // the application writes on
    Conn app(Sandbox::get().conninfo());
    app.exec("SET lock_timeout = '5s'");
    app.exec("INSERT INTO rlt VALUES (5001, 1)");
    // job control stops the wait
    c.exec("SELECT mig_pause($1)", {Id(job)});
    wait_for([&] { return c.scalar_int("SELECT count(*) FROM mig_worker_status() WHERE job_id = $1",
                                       {Id(job)}) == 0; },
             60, "the paused job's worker to leave");
    EXPECT_EQ("paused", *c.scalar("SELECT state FROM mig_jobs WHERE job_id = $1", {Id(job)}));
    c.exec("SELECT mig_resume($1)", {Id(job)});
    wait_for([&] { return JobStep(c, job).find("waits for pid " + holder_pid) != std::string::npos; },
             120, "the resumed swap to wait for the holder again");

    holder.exec("COMMIT");
    EXPECT_EQ("succeeded", wait_job(c, job, 120));
    EXPECT_EQ("bigint", *c.scalar("SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
                                  " WHERE attrelid = 'rlt'::regclass AND attname = 'v'"));
    EXPECT_EQ(5001, c.scalar_int("SELECT count(*) FROM rlt"));
}

// The same for the other tables a step locks. A type change's swap takes
// ACCESS EXCLUSIVE on the tables whose foreign keys reference the column
// too (their keys are re-pointed); a session idle in a transaction that
// read one of them (an ACCESS SHARE lock, no snapshot) made every attempt
// time out there, and the worker waited only for the job's own table, so
// the swap failed after its retries. Now it waits for that session too.
TEST(Recovery, SwapWaitsOutATransactionThatHoldsAReferencingTable)
{
    Conn c = pg_mig_primary();
    create_table(c, "rlp", "id int PRIMARY KEY, v int NOT NULL", "g, g % 100", 2000);
    c.exec("DROP TABLE IF EXISTS rlr");
    c.exec("CREATE TABLE rlr (id int PRIMARY KEY, p int NOT NULL REFERENCES rlp)");
    c.exec("INSERT INTO rlr SELECT g, g FROM generate_series(1, 2000) g");
    c.exec("BEGIN");
    long long job = c.scalar_int("SELECT mig_change_type('rlp', 'id', 'bigint', lock_timeout => '200ms',"
                                 " max_retries => 2)");
    c.exec("SELECT mig_pause($1)", {Id(job)});
    c.exec("COMMIT");

    Conn holder(Sandbox::get().conninfo());
    std::string holder_pid = *holder.scalar("SELECT pg_backend_pid()::text");
    holder.exec("BEGIN");
    // the lock a read leaves, without the snapshot the harness's extended
    // protocol keeps (the index copies would wait for that instead)
    holder.exec("LOCK TABLE rlr IN ACCESS SHARE MODE");
    c.exec("SELECT mig_resume($1)", {Id(job)});

    // (or the job failed, as it did when the worker waited for the job's table only)
    wait_for([&] { return (job_events(c, job, "retried") >= 1
                           && JobStep(c, job).find("waits for pid " + holder_pid + " (virtualxid lock)")
                                  != std::string::npos)
                       || c.scalar("SELECT state FROM mig_jobs WHERE job_id = $1", {Id(job)}) == "failed"; },
             120, "the swap to wait for the transaction that holds the referencing table");
    ASSERT_EQ("running", *c.scalar("SELECT state FROM mig_jobs WHERE job_id = $1", {Id(job)}))
        << c.scalar("SELECT last_error FROM mig_jobs WHERE job_id = $1", {Id(job)}).value_or("");
    EXPECT_NE(std::string::npos, JobStep(c, job).find("swap")) << JobStep(c, job);
    std::this_thread::sleep_for(std::chrono::seconds(5));
    EXPECT_EQ("running", *c.scalar("SELECT state FROM mig_jobs WHERE job_id = $1", {Id(job)}));
    EXPECT_EQ(1, job_events(c, job, "retried"));

    holder.exec("COMMIT");
    EXPECT_EQ("succeeded", wait_job(c, job, 120));
    EXPECT_EQ("bigint", *c.scalar("SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
                                  " WHERE attrelid = 'rlp'::regclass AND attname = 'id'"));
    EXPECT_EQ(1, c.scalar_int("SELECT count(*) FROM pg_constraint WHERE conrelid = 'rlr'::regclass"
                              " AND contype = 'f' AND confrelid = 'rlp'::regclass"));
}

// Before the swap, the copies of the referencing foreign keys are added
// (SHARE ROW EXCLUSIVE on the referencing table), which a transaction that
// wrote there holds off; the worker waits for it as above.
TEST(Recovery, TypeChangeWaitsOutATransactionThatWritesAReferencingTable)
{
    Conn c = pg_mig_primary();
    create_table(c, "rwp", "id int PRIMARY KEY, v int NOT NULL", "g, g % 100", 2000);
    c.exec("DROP TABLE IF EXISTS rwr");
    c.exec("CREATE TABLE rwr (id int PRIMARY KEY, p int NOT NULL REFERENCES rwp)");
    c.exec("INSERT INTO rwr SELECT g, g FROM generate_series(1, 2000) g");
    c.exec("BEGIN");
    long long job = c.scalar_int("SELECT mig_change_type('rwp', 'id', 'bigint', lock_timeout => '200ms',"
                                 " max_retries => 2)");
    c.exec("SELECT mig_pause($1)", {Id(job)});
    c.exec("COMMIT");

    Conn holder(Sandbox::get().conninfo());
    std::string holder_pid = *holder.scalar("SELECT pg_backend_pid()::text");
    holder.exec("BEGIN");
    holder.exec("DELETE FROM rwr WHERE id = 1");
    holder.exec("LOCK TABLE rwr IN ROW EXCLUSIVE MODE");  // no snapshot kept (see above)
    c.exec("SELECT mig_resume($1)", {Id(job)});

    wait_for([&] { return (job_events(c, job, "retried") >= 1
                           && JobStep(c, job).find("waits for pid " + holder_pid + " (virtualxid lock)")
                                  != std::string::npos)
                       || c.scalar("SELECT state FROM mig_jobs WHERE job_id = $1", {Id(job)}) == "failed"; },
             120, "the copy of the foreign key to wait for the transaction that wrote the referencing table");
    ASSERT_EQ("running", *c.scalar("SELECT state FROM mig_jobs WHERE job_id = $1", {Id(job)}))
        << c.scalar("SELECT last_error FROM mig_jobs WHERE job_id = $1", {Id(job)}).value_or("");
    std::string detail = *c.scalar("SELECT detail FROM mig_job_events WHERE job_id = $1"
                                   " AND event = 'retried' ORDER BY event_id LIMIT 1", {Id(job)});
    EXPECT_NE(std::string::npos, detail.find("step add_constraints")) << detail;
    std::this_thread::sleep_for(std::chrono::seconds(5));
    EXPECT_EQ("running", *c.scalar("SELECT state FROM mig_jobs WHERE job_id = $1", {Id(job)}));
    EXPECT_EQ(1, job_events(c, job, "retried"));

    holder.exec("COMMIT");
    EXPECT_EQ("succeeded", wait_job(c, job, 120));
    EXPECT_EQ(1999, c.scalar_int("SELECT count(*) FROM rwr"));
    EXPECT_EQ("bigint", *c.scalar("SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
                                  " WHERE attrelid = 'rwp'::regclass AND attname = 'id'"));
}

// A foreign key's first step (ADD CONSTRAINT ... NOT VALID) takes SHARE ROW
// EXCLUSIVE on the referenced table as well, which a transaction that
// writes there holds off. The worker waits for that transaction between
// attempts as for one on the job's own table.
TEST(Recovery, ForeignKeyWaitsOutATransactionThatWritesTheReferencedTable)
{
    Conn c = pg_mig_primary();
    create_table(c, "rfp", "id int PRIMARY KEY, v int NOT NULL", "g, 0", 2000);
    create_table(c, "rfc", "id int PRIMARY KEY, p int", "g, g", 2000);

    Conn holder(Sandbox::get().conninfo());
    std::string holder_pid = *holder.scalar("SELECT pg_backend_pid()::text");
    holder.exec("BEGIN");
    holder.exec("UPDATE rfp SET v = 1 WHERE id = 1");
    long long job = c.scalar_int("SELECT mig_add_foreign_key('rfc', ARRAY['p'], 'rfp',"
                                 " lock_timeout => '200ms', max_retries => 2)");
    // (or the job failed, as it did when the worker waited for the job's table only)
    wait_for([&] { return (job_events(c, job, "retried") >= 1
                           && JobStep(c, job).find("waits for pid " + holder_pid + " (virtualxid lock)")
                                  != std::string::npos)
                       || c.scalar("SELECT state FROM mig_jobs WHERE job_id = $1", {Id(job)}) == "failed"; },
             120, "the foreign key to wait for the transaction that writes the referenced table");
    ASSERT_EQ("running", *c.scalar("SELECT state FROM mig_jobs WHERE job_id = $1", {Id(job)}))
        << c.scalar("SELECT last_error FROM mig_jobs WHERE job_id = $1", {Id(job)}).value_or("");
    std::this_thread::sleep_for(std::chrono::seconds(5));
    EXPECT_EQ("running", *c.scalar("SELECT state FROM mig_jobs WHERE job_id = $1", {Id(job)}));
    EXPECT_EQ(1, job_events(c, job, "retried"));

    holder.exec("COMMIT");
    EXPECT_EQ("succeeded", wait_job(c, job, 120));
    EXPECT_EQ("true", *c.scalar("SELECT convalidated::text FROM pg_constraint"
                                " WHERE conrelid = 'rfc'::regclass AND contype = 'f'"));
}

// A deploy that timed out runs the same step again from a new session: the
// key follows the running job, then returns the succeeded one; the
// non-idempotent backfill changes every row once.
TEST(Recovery, AKeyStartedAgainFromAnotherSessionFollowsTheJob)
{
    Conn c = pg_mig_primary();
    create_table(c, "rkb", "id int PRIMARY KEY, n int NOT NULL DEFAULT 0", "g, 0", 30000);
    const char* start = "SELECT mig_start_backfill('rkb', 'n = n + 1', batch_size => 500,"
                        " chunk_time => NULL, sleep => '10ms', job_key => 'deploy-42/rkb')";
    long long job = c.scalar_int(start);
    wait_for([&] { return job_rows_done(c, job) >= 1000; }, 120, "the backfill to be under way");
    kill_worker(job);  // the server restarts: the deploy's connection is gone too
    Conn again(Sandbox::get().conninfo());
    EXPECT_EQ(job, again.scalar_int(start));
    EXPECT_EQ("succeeded", wait_job(again, job, 300));
    EXPECT_EQ(job, again.scalar_int(start));
    EXPECT_EQ(30000, again.scalar_int("SELECT count(*) FROM rkb WHERE n = 1"));
    EXPECT_EQ(1, again.scalar_int("SELECT count(*) FROM mig_jobs WHERE relation = 'rkb'::regclass"));
}
