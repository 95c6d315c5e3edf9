// test_security.cpp -- caller's rights that need a whole cluster: a database
// owner's search_path must not reach pg_mig's superuser scan or its
// workers, and jobs restored from a dump into another database must not run
// under OIDs that mean something else there.  This binary's sandbox scans
// every second (pg_mig.naptime = 1), so a scan is never far off.
#include "fixture.hpp"
#include "harness.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

using namespace pgmig_test;

namespace {

const bool kConf = sandbox_conf("fsync = off\npg_mig.naptime = 1\n");

std::string Finished(Conn& c, long long job)
{
    return c.scalar("SELECT finished_at::text FROM mig_jobs WHERE job_id = $1", {S(job)})
        .value_or("");
}

}  // namespace

// Issue 11 item 2: the database owner sets the database's search_path to a
// schema of hers with an operator =(text, text) that records who calls it.
// The scan (which runs as the bootstrap superuser and compares the job
// state with text literals) and the workers must never call it.
TEST(Security, DatabaseSearchPathDoesNotReachTheScanOrTheWorker)
{
    Conn su = primary_as("postgres");
    su.exec("CREATE ROLE sec_dbowner LOGIN");
    su.exec("CREATE DATABASE sec_evil OWNER sec_dbowner");
    {
        Conn db = primary_as("sec_evil");
        db.exec("CREATE EXTENSION pg_mig");
        db.exec("CREATE TABLE public.t (id int PRIMARY KEY, v text)");
        db.exec("INSERT INTO public.t SELECT g FROM generate_series(1, 500) g");
    }
    {
        Conn owner = primary_as("sec_evil", "sec_dbowner");
        owner.exec("CREATE SCHEMA evil");
        owner.exec("GRANT USAGE ON SCHEMA evil TO PUBLIC");
        owner.exec("CREATE TABLE evil.calls (who name)");
        owner.exec("GRANT INSERT ON evil.calls TO PUBLIC");
        owner.exec(
            "CREATE FUNCTION evil.eq(text, text) RETURNS boolean LANGUAGE plpgsql AS"
            " $$ BEGIN INSERT INTO evil.calls VALUES (current_user);"
            " RETURN $1 OPERATOR(pg_catalog.=) $2; END $$");
        owner.exec(
            "CREATE OPERATOR evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.eq,"
            " COMMUTATOR = OPERATOR(evil.=))");
        owner.exec("ALTER DATABASE sec_evil SET search_path = evil, pg_catalog");
        // the trap works: a new session of the database calls it
        Conn probe = primary_as("sec_evil", "sec_dbowner");
        probe.exec("SELECT 'a'::text = 'a'::text");
        ASSERT_EQ(1, probe.scalar_int("SELECT count(*) FROM evil.calls"));
        probe.exec("TRUNCATE evil.calls");
    }

    // a careful superuser starts a job (its own session's path is its own)
    Conn db = primary_as("sec_evil");
    db.exec("SET search_path = pg_catalog, public");
    long long job = db.scalar_int(
        "SELECT mig_start_backfill('public.t', 'v = id::text', batch_size => 100,"
        " chunk_time => NULL)");
    EXPECT_EQ("succeeded", wait_job(db, job, 60));
    EXPECT_EQ(500, db.scalar_int("SELECT count(*) FROM public.t WHERE v = id::text"));

    // queue it again behind pg_mig's back: only a scan can start it now, so
    // when it has finished again, a scan has read the job table
    std::string first = Finished(db, job);
    db.exec("UPDATE mig_job SET state = 'queued', finished_at = NULL WHERE job_id = $1", {S(job)});
    wait_for([&] { return db.scalar("SELECT state FROM mig_jobs WHERE job_id = $1", {S(job)})
                              .value_or("") == "succeeded" && Finished(db, job) != first; },
             60, "a scan to start the job again");

    auto calls = db.rows("SELECT who::text FROM evil.calls");
    EXPECT_TRUE(calls.empty()) << "evil.= was called by " << calls.size() << " statements, first as "
                               << calls[0][0].value_or("?");
}

// Issue 11 item 19: the job tables are dumped with the jobs' OIDs.  A
// restore into another database gives the table another OID: a running job
// that comes with it fails at the start of its worker, a paused one cannot
// be resumed, and neither touches a row.
TEST(Security, RestoredJobsDoNotRunUnderOidsOfAnotherDatabase)
{
    Conn su = primary_as("postgres");
    su.exec("CREATE DATABASE sec_dump");
    long long running, paused;
    {
        Conn db = primary_as("sec_dump");
        db.exec("CREATE EXTENSION pg_mig");
        db.exec("CREATE TABLE public.d1 (id int PRIMARY KEY, n int NOT NULL DEFAULT 0)");
        db.exec("CREATE TABLE public.d2 (id int PRIMARY KEY, n int NOT NULL DEFAULT 0)");
        db.exec("INSERT INTO public.d1 (id) SELECT g FROM generate_series(1, 300) g");
        db.exec("INSERT INTO public.d2 (id) SELECT g FROM generate_series(1, 300) g");
        // one job that keeps running (throttled), one paused
        running = db.scalar_int(
            "SELECT mig_start_backfill('public.d1', 'n = n + 1', throttle_query => 'SELECT true')");
        wait_for([&] { return job_throttled(db, running).has_value(); }, 60, "the job to throttle");
        db.exec("BEGIN");
        paused = db.scalar_int("SELECT mig_start_backfill('public.d2', 'n = n + 1')");
        db.exec("SELECT mig_pause($1)", {S(paused)});
        db.exec("COMMIT");
    }
    std::string file = Sandbox::get().base + "/sec_dump.dump";
    // the server's own pg_dump and pg_restore: an older pg_dump refuses a newer server
    auto pg = [](const std::string& program, std::vector<std::string> args) {
        std::vector<std::string> argv = Sandbox::get().pg_program(program);
        argv.insert(argv.end(), args.begin(), args.end());
        return argv;
    };
    auto dump = run_command(pg("pg_dump", {"-Fc", "-f", file, "-d", Sandbox::get().conninfo("sec_dump")}));
    ASSERT_EQ(0, dump.exit_code) << dump.err;
    {
        Conn db = primary_as("sec_dump");
        db.exec("SELECT mig_cancel($1)", {S(running)});
        db.exec("SELECT mig_cancel($1)", {S(paused)});
    }
    su.exec("CREATE DATABASE sec_restored");
    auto restore = run_command(pg("pg_restore", {"-d", Sandbox::get().conninfo("sec_restored"), file}));
    ASSERT_EQ(0, restore.exit_code) << restore.err;

    Conn db = primary_as("sec_restored");
    EXPECT_NE(db.scalar("SELECT relid::text FROM mig_job WHERE job_id = $1", {S(running)}),
              db.scalar("SELECT 'public.d1'::regclass::oid::text"));
    EXPECT_EQ("failed", wait_job(db, running, 60));
    EXPECT_NE(std::string::npos,
              db.scalar("SELECT last_error FROM mig_jobs WHERE job_id = $1", {S(running)})
                  .value_or("")
                  .find("is not the table the job was started on"));
    try {
        db.exec("SELECT mig_resume($1)", {S(paused)});
        ADD_FAILURE() << "mig_resume of a restored job was allowed";
    } catch (const PgError& e) {
        EXPECT_EQ("55000", e.sqlstate) << e.what();
    }
    EXPECT_EQ(0, db.scalar_int("SELECT count(*) FROM public.d1 WHERE n <> 0"));
    EXPECT_EQ(0, db.scalar_int("SELECT count(*) FROM public.d2 WHERE n <> 0"));
    // the restored sequences go on from the dumped ones
    long long next = db.scalar_int("SELECT mig_start_backfill('public.d2', 'n = 1', batch_size => 1000)");
    EXPECT_GT(next, paused);
}
