// test_kinds.cpp -- the job kinds of 0.3 against the sandbox primary +
// standby: a chunked delete, SET NOT NULL, VALIDATE and CREATE INDEX
// CONCURRENTLY while an application writes and while a long transaction
// holds the table; worker kills inside a walk and between steps; the
// failure paths; the standby's catalog afterwards; the migctl
// subcommands; and the update 0.1 -> 0.2 -> 0.3 with a job in flight.

#include "fixture.hpp"

#include <gtest/gtest.h>

using namespace pgmig_test;

namespace {

std::string Id(long long v) { return std::to_string(v); }

std::string FirstLine(const std::string& s) { return s.substr(0, s.find('\n')); }
// the job id a command prints with --wait: "started job N" on its first line
std::string StartedJob(const std::string& s)
{
    std::string line = FirstLine(s);
    EXPECT_EQ(0u, line.rfind("started job ", 0)) << s;
    return line.rfind("started job ", 0) == 0 ? line.substr(12) : line;
}

}  // namespace

TEST(Kinds, DeleteWhileTheAppWritesAndTheWorkerIsKilled)
{
    const int rows = 60000;
    Conn c = pg_mig_primary();
    create_table(c, "kdel", "id int PRIMARY KEY, v int NOT NULL, w int NOT NULL DEFAULT 0", "g, g % 5, 0", rows);

    AppWriter app("kdel", rows);
    long long job = c.scalar_int("SELECT mig_start_delete('kdel', 'v = 1', batch_size => 500,"
                                 " chunk_time => NULL, sleep => '20ms')");
    wait_for([&] { return job_rows_done(c, job) >= 3000; }, 120, "the delete to be under way");
    kill_worker(job);
    Conn c2(Sandbox::get().conninfo());
    EXPECT_EQ("succeeded", wait_job(c2, job, 300));
    app.stop();
    EXPECT_GT(app.done(), 0);

    // exactly the matching rows are gone, each counted once
    EXPECT_EQ(0, c2.scalar_int("SELECT count(*) FROM kdel WHERE v = 1"));
    EXPECT_EQ(rows - rows / 5, c2.scalar_int("SELECT count(*) FROM kdel"));
    EXPECT_EQ(rows / 5, job_rows_done(c2, job));
    EXPECT_EQ("delete", *c2.scalar("SELECT kind FROM mig_jobs WHERE job_id = $1", {Id(job)}));
    EXPECT_GE(job_events(c2, job, "started"), 2);  // it resumed after the kill

    wait_standby();
    Conn s(Sandbox::get().conninfo("postgres", true));
    EXPECT_EQ(rows - rows / 5, s.scalar_int("SELECT count(*) FROM kdel"));
    EXPECT_EQ(0, s.scalar_int("SELECT count(*) FROM kdel WHERE v = 1"));
}

// the first step's ACCESS EXCLUSIVE lock times out behind a long
// transaction once; then the worker waits for that transaction, queueing
// behind nobody (test_recovery: SchemaStepWaitsOutATransactionThatHoldsItsTable),
// and the application writes on
TEST(Kinds, NotNullRetriesBehindALongTransactionWhileTheAppWrites)
{
    const int rows = 20000;
    Conn c = pg_mig_primary();
    create_table(c, "knn", "id int PRIMARY KEY, note text, w int NOT NULL DEFAULT 0", "g, 'n', 0", rows);

    Conn holder(Sandbox::get().conninfo());
    std::string holder_pid = *holder.scalar("SELECT pg_backend_pid()::text");
    holder.exec("BEGIN");
    holder.exec("SELECT count(*) FROM knn");  // an ACCESS SHARE lock, held
    AppWriter app("knn", rows);
    long long job = c.scalar_int("SELECT mig_set_not_null('knn', 'note', lock_timeout => '100ms',"
                                 " max_retries => 1000)");
    auto step = [&] { return c.scalar("SELECT step FROM mig_jobs WHERE job_id = $1", {Id(job)}).value_or(""); };
    wait_for([&] { return job_events(c, job, "retried") >= 1
                       && step().find("waits for pid " + holder_pid + " (virtualxid lock)") != std::string::npos; },
             120, "the first step to retry, then wait for the long transaction");
    long long before = app.done();
    wait_for([&] { return app.done() > before + 20; }, 120, "the application to write on");
    EXPECT_EQ(1, job_events(c, job, "retried"));
    EXPECT_NE(std::string::npos, step().find("adding constraint")) << step();
    EXPECT_NE(std::string::npos,
              c.scalar("SELECT detail FROM mig_job_events WHERE job_id = $1 AND event = 'retried' LIMIT 1",
                       {Id(job)})
                  .value_or("")
                  .find("lock timeout"));
    holder.exec("COMMIT");

    EXPECT_EQ("succeeded", wait_job(c, job, 120));
    app.stop();
    EXPECT_EQ("true", *c.scalar("SELECT attnotnull::text FROM pg_attribute WHERE attrelid = 'knn'::regclass"
                             " AND attname = 'note'"));
    EXPECT_EQ(0, c.scalar_int("SELECT count(*) FROM pg_constraint WHERE conrelid = 'knn'::regclass AND contype = 'c'"));
    // 18 keeps NOT NULL as a constraint: it has PostgreSQL's usual name, not
    // one chosen around the job's check (knn_note_not_null1); before 18, no
    // constraint of the column is left
    const char* note_constraints = "SELECT coalesce(string_agg(conname, ', ' ORDER BY conname), '')"
                                   " FROM pg_constraint WHERE conrelid = 'knn'::regclass AND conname LIKE 'knn_note%'";
    const std::string expected = Sandbox::get().pg_major >= 18 ? "knn_note_not_null" : "";
    EXPECT_EQ(expected, *c.scalar(note_constraints));
    wait_standby();
    Conn s(Sandbox::get().conninfo("postgres", true));
    EXPECT_EQ("true", *s.scalar("SELECT attnotnull::text FROM pg_attribute WHERE attrelid = 'knn'::regclass"
                             " AND attname = 'note'"));
    EXPECT_EQ(0, s.scalar_int("SELECT count(*) FROM pg_constraint WHERE conrelid = 'knn'::regclass AND contype = 'c'"));
    EXPECT_EQ(expected, *s.scalar(note_constraints));
}

TEST(Kinds, NotNullResumesAfterAKillWhileItsStepWaits)
{
    Conn c = pg_mig_primary();
    create_table(c, "knk", "id int PRIMARY KEY, note text", "g, 'n'", 5000);
    long long job;
    {
        Conn holder(Sandbox::get().conninfo());
        holder.exec("BEGIN");
        holder.exec("SELECT count(*) FROM knk");
        job = c.scalar_int("SELECT mig_set_not_null('knk', 'note', lock_timeout => '100ms', max_retries => 1000)");
        wait_for([&] { return job_events(c, job, "retried") >= 1; }, 120, "the step to retry");
        kill_worker(job);  // the holder's session goes with the restart
    }
    Conn c2(Sandbox::get().conninfo());
    EXPECT_EQ("succeeded", wait_job(c2, job, 120));
    EXPECT_EQ(Sandbox::get().pg_major >= 18 ? "{add_not_null,validate}"
                                            : "{add_check,validate,set_not_null,drop_check}",
              *c2.scalar("SELECT steps_done::text FROM mig_job WHERE job_id = $1", {Id(job)}));
    EXPECT_EQ("true", *c2.scalar("SELECT attnotnull::text FROM pg_attribute WHERE attrelid = 'knk'::regclass"
                              " AND attname = 'note'"));
}

// 18 and later: ADD CONSTRAINT ... NOT NULL ... NOT VALID, then VALIDATE
// CONSTRAINT (two steps, the constraint under PostgreSQL's usual name);
// before, the check-based four. Rows still NULL fail the job with their
// count and a hint on both paths, and leave no constraint behind.
TEST(Kinds, NotNullTakesTheNotValidPathOn18AndFailsCleanlyOnNulls)
{
    const bool nv = Sandbox::get().pg_major >= 18;
    Conn c = pg_mig_primary();
    create_table(c, "knv", "id int PRIMARY KEY, note text, w int NOT NULL DEFAULT 0",
                 "g, CASE WHEN g % 1000 = 0 THEN NULL ELSE 'n' END, 0", 20000);
    const char* constraints = "SELECT coalesce(string_agg(conname || ':' || contype::text || ':' || convalidated::text,"
                              " ', ' ORDER BY conname), '') FROM pg_constraint"
                              " WHERE conrelid = 'knv'::regclass AND conname LIKE 'knv_note%'";
    const char* attnotnull = "SELECT attnotnull::text FROM pg_attribute WHERE attrelid = 'knv'::regclass"
                             " AND attname = 'note'";

    // 20 rows NULL: the job fails with their count and a hint, nothing left
    long long job = c.scalar_int("SELECT mig_set_not_null('knv', 'note', lock_timeout => '2s')");
    EXPECT_EQ("failed", wait_job(c, job, 120));
    std::string err = c.scalar("SELECT last_error FROM mig_jobs WHERE job_id = $1", {Id(job)}).value_or("");
    EXPECT_NE(std::string::npos, err.find("has 20 NULL rows")) << err;
    EXPECT_NE(std::string::npos, err.find("mig_start_backfill()")) << err;
    EXPECT_NE(std::string::npos, err.find(nv ? "SQLSTATE 23502" : "SQLSTATE 23514")) << err;
    EXPECT_EQ("", *c.scalar(constraints));
    EXPECT_EQ("false", *c.scalar(attnotnull));
    EXPECT_EQ(nv ? "add_not_null: done, undo: done" : "add_check: done, undo: done",
              *c.scalar("SELECT string_agg(detail, ', ' ORDER BY event_id) FROM mig_job_events"
                        " WHERE job_id = $1 AND event = 'step'", {Id(job)}));

    // backfilled and resumed: the path of the server's version
    c.exec("UPDATE knv SET note = 'y' WHERE note IS NULL");
    c.exec("SELECT mig_resume($1)", {Id(job)});
    EXPECT_EQ("succeeded", wait_job(c, job, 120));
    EXPECT_EQ(nv ? "{add_not_null,validate}" : "{add_check,validate,set_not_null,drop_check}",
              *c.scalar("SELECT steps_done::text FROM mig_job WHERE job_id = $1", {Id(job)}));
    EXPECT_EQ(nv ? "add_not_null: done, undo: done, add_not_null: done, validate: done"
                 : "add_check: done, undo: done, add_check: done, validate: done, set_not_null: done,"
                   " drop_check: done",
              *c.scalar("SELECT string_agg(detail, ', ' ORDER BY event_id) FROM mig_job_events"
                        " WHERE job_id = $1 AND event = 'step'", {Id(job)}));
    // the constraint is PostgreSQL's own, valid, under its usual name (18
    // keeps NOT NULL in pg_constraint); before 18 the column is NOT NULL
    // and no check is left
    EXPECT_EQ(nv ? "knv_note_not_null:n:true" : "", *c.scalar(constraints));
    EXPECT_EQ("true", *c.scalar(attnotnull));
    wait_standby();
    Conn s(Sandbox::get().conninfo("postgres", true));
    EXPECT_EQ(nv ? "knv_note_not_null:n:true" : "", *s.scalar(constraints));
    EXPECT_EQ("true", *s.scalar(attnotnull));
}

TEST(Kinds, IndexSurvivesAKillBetweenStepsAndLeavesNoInvalidIndex)
{
    Conn c = pg_mig_primary();
    create_table(c, "kix", "id int PRIMARY KEY, email text NOT NULL, w int NOT NULL DEFAULT 0",
                 "g, 'User' || g || '@example.com', 0", 30000);
    AppWriter app("kix", 30000);
    long long job;
    {
        // an old snapshot: CREATE INDEX CONCURRENTLY waits for it (0.4: as
        // long as it takes, not lock_timeout), its INVALID index already
        // there; the worker is killed while it waits, and the build after the
        // restart drops that index first
        Conn holder(Sandbox::get().conninfo());
        holder.exec("BEGIN ISOLATION LEVEL REPEATABLE READ");
        holder.exec("SELECT count(*) FROM kix");
        job = c.scalar_int("SELECT mig_create_index('kix', 'lower(email)', \"unique\" => true,"
                           " index_name => 'kix_email', lock_timeout => '200ms', max_retries => 1000)");
        wait_for([&] { return c.scalar_int("SELECT count(*) FROM pg_index WHERE indrelid = 'kix'::regclass"
                                           " AND NOT indisvalid") == 1 &&
                              c.scalar("SELECT step FROM mig_jobs WHERE job_id = $1", {Id(job)})
                                      .value_or("").find("waits for pid") != std::string::npos; },
                 120, "the build to wait for the old snapshot");
        EXPECT_EQ(0, job_events(c, job, "retried"));
        EXPECT_EQ("{drop_invalid}", *c.scalar("SELECT steps_done::text FROM mig_job WHERE job_id = $1", {Id(job)}));
        kill_worker(job);
    }
    Conn c2(Sandbox::get().conninfo());
    EXPECT_EQ("succeeded", wait_job(c2, job, 300));
    app.stop();
    EXPECT_EQ(1, c2.scalar_int("SELECT count(*) FROM pg_index WHERE indrelid = 'kix'::regclass"
                               " AND indexrelid = 'kix_email'::regclass AND indisvalid AND indisunique"));
    EXPECT_EQ(0, c2.scalar_int("SELECT count(*) FROM pg_index WHERE indrelid = 'kix'::regclass AND NOT indisvalid"));
    EXPECT_EQ("{drop_invalid,build}", *c2.scalar("SELECT steps_done::text FROM mig_job WHERE job_id = $1", {Id(job)}));
    EXPECT_GE(job_events(c2, job, "started"), 2);
    wait_standby();
    Conn s(Sandbox::get().conninfo("postgres", true));
    EXPECT_EQ(1, s.scalar_int("SELECT count(*) FROM pg_index WHERE indexrelid = 'kix_email'::regclass AND indisvalid"));
    EXPECT_EQ(0, s.scalar_int("SELECT count(*) FROM pg_index WHERE indrelid = 'kix'::regclass AND NOT indisvalid"));
}

TEST(Kinds, IndexDropsAnInvalidLeftoverAndFailsCleanlyOnDuplicates)
{
    Conn c = pg_mig_primary();
    create_table(c, "kil", "id int PRIMARY KEY, v int NOT NULL", "g, g % 100", 5000);
    // a failed build of someone else's leaves an INVALID index of the name
    EXPECT_THROW(c.exec("CREATE UNIQUE INDEX CONCURRENTLY kil_v ON kil (v)"), PgError);
    EXPECT_EQ(1, c.scalar_int("SELECT count(*) FROM pg_index WHERE indexrelid = 'kil_v'::regclass AND NOT indisvalid"));

    long long job = c.scalar_int("SELECT mig_create_index('kil', 'v', index_name => 'kil_v')");
    EXPECT_EQ("succeeded", wait_job(c, job, 120));
    EXPECT_EQ(1, c.scalar_int("SELECT count(*) FROM pg_index WHERE indexrelid = 'kil_v'::regclass AND indisvalid"));
    EXPECT_NE(std::string::npos,
              c.scalar("SELECT string_agg(detail, ';') FROM mig_job_events WHERE job_id = $1 AND event = 'step'",
                       {Id(job)})
                  ->find("drop_invalid: done"));

    // duplicates: the unique build fails the job with the error, no index is left
    long long dup = c.scalar_int("SELECT mig_create_index('kil', 'v, (id % 2)', \"unique\" => true,"
                                 " index_name => 'kil_dup')");
    EXPECT_EQ("failed", wait_job(c, dup, 120));
    EXPECT_NE(std::string::npos,
              c.scalar("SELECT last_error FROM mig_jobs WHERE job_id = $1", {Id(dup)})->find("is duplicated"));
    EXPECT_EQ(0, c.scalar_int("SELECT count(*) FROM pg_class WHERE relname = 'kil_dup'"));
    c.exec("SELECT mig_cancel($1)", {Id(dup)});
    wait_standby();
    Conn s(Sandbox::get().conninfo("postgres", true));
    EXPECT_EQ(0, s.scalar_int("SELECT count(*) FROM pg_class WHERE relname = 'kil_dup'"));
    EXPECT_EQ(1, s.scalar_int("SELECT count(*) FROM pg_index WHERE indexrelid = 'kil_v'::regclass AND indisvalid"));
}

TEST(Kinds, MigctlValidateRetriesBehindALockThenWaits)
{
    Conn c = pg_mig_primary();
    create_table(c, "kvp", "id int PRIMARY KEY", "g", 100);
    create_table(c, "kvc", "id int PRIMARY KEY, p int", "g, g % 100 + 1", 5000);
    c.exec("ALTER TABLE kvc ADD CONSTRAINT kvc_p_fk FOREIGN KEY (p) REFERENCES kvp NOT VALID");

    Conn holder(Sandbox::get().conninfo());
    std::string holder_pid = *holder.scalar("SELECT pg_backend_pid()::text");
    holder.exec("BEGIN");
    holder.exec("LOCK TABLE kvc IN SHARE UPDATE EXCLUSIVE MODE");
    auto r = migctl({"validate", "--table", "kvc", "--constraint", "kvc_p_fk", "--lock-timeout", "100ms",
                     "--max-retries", "1000"});
    ASSERT_EQ(0, r.exit_code) << r.out << r.err;
    long long job = std::stoll(FirstLine(r.out));
    // one attempt times out; then the worker waits for the holder's transaction
    wait_for([&] { return job_events(c, job, "retried") >= 1
                       && c.scalar("SELECT step FROM mig_jobs WHERE job_id = $1", {Id(job)}).value_or("")
                                  .find("waits for pid " + holder_pid + " (virtualxid lock)") != std::string::npos; },
             120, "validate to retry, then wait for the holder");
    holder.exec("COMMIT");
    auto w = migctl({"wait", Id(job)});
    EXPECT_EQ(0, w.exit_code) << w.out << w.err;
    EXPECT_EQ("true", *c.scalar("SELECT convalidated::text FROM pg_constraint WHERE conname = 'kvc_p_fk'"));
    wait_standby();
    Conn s(Sandbox::get().conninfo("postgres", true));
    EXPECT_EQ("true", *s.scalar("SELECT convalidated::text FROM pg_constraint WHERE conname = 'kvc_p_fk'"));
}

TEST(Kinds, MigctlSubcommandsExitCodesAndErrors)
{
    Conn c = pg_mig_primary();
    create_table(c, "kmc", "id int PRIMARY KEY, v int NOT NULL, note text",
                 "g, g % 4, CASE WHEN g % 7 = 0 THEN NULL ELSE 'x' END", 4000);

    auto del = migctl({"delete", "--table", "kmc", "--where", "v = 2", "--batch-size", "300", "--wait"});
    EXPECT_EQ(0, del.exit_code) << del.out << del.err;
    EXPECT_EQ(0, c.scalar_int("SELECT count(*) FROM kmc WHERE v = 2"));

    // NULLs left: --wait ends 1 and the status says why
    auto nn = migctl({"not-null", "--table", "kmc", "--column", "note", "--wait"});
    EXPECT_EQ(1, nn.exit_code) << nn.out << nn.err;
    EXPECT_NE(std::string::npos, nn.out.find("NULL rows")) << nn.out;
    long long nn_job = std::stoll(StartedJob(nn.out));
    auto st = migctl({"status", Id(nn_job)});
    EXPECT_EQ(0, st.exit_code);
    EXPECT_NE(std::string::npos, st.out.find("not_null")) << st.out;
    EXPECT_EQ(0, migctl({"cancel", Id(nn_job)}).exit_code);
    c.exec("UPDATE kmc SET note = 'y' WHERE note IS NULL");
    auto nn2 = migctl({"not-null", "--table", "kmc", "--column", "note", "--wait"});
    EXPECT_EQ(0, nn2.exit_code) << nn2.out << nn2.err;

    auto idx = migctl({"index", "--table", "kmc", "--columns", "v, note DESC", "--include", "id", "--wait"});
    EXPECT_EQ(0, idx.exit_code) << idx.out << idx.err;
    EXPECT_EQ(1, c.scalar_int("SELECT count(*) FROM pg_indexes WHERE tablename = 'kmc'"
                              " AND indexdef LIKE '%(v, note DESC) INCLUDE (id)'"));

    // bad input: exit 2, one line that says what, then a hint
    auto bad = migctl({"index", "--table", "kmc", "--columns", "nope"});
    EXPECT_EQ(2, bad.exit_code) << bad.err;
    EXPECT_NE(std::string::npos, FirstLine(bad.err).find("column \"nope\"")) << bad.err;
    auto usage = migctl({"not-null", "--table", "kmc"});
    EXPECT_EQ(2, usage.exit_code);
    EXPECT_NE(std::string::npos, FirstLine(usage.err).find("--column")) << usage.err;
    auto nodel = migctl({"delete", "--table", "kmc"});
    EXPECT_EQ(2, nodel.exit_code);
    auto nocon = migctl({"validate", "--table", "kmc", "--constraint", "nope"});
    EXPECT_EQ(2, nocon.exit_code) << nocon.err;
    EXPECT_NE(std::string::npos, FirstLine(nocon.err).find("constraint \"nope\"")) << nocon.err;
}

// A job of 0.1 half done (a 0.1 library wrote its rows and its first 5
// chunks) when the extension is updated 0.1 -> 0.2 -> 0.3: the 0.3 worker
// goes on from its checkpoint, as a backfill, and changes no row twice.
TEST(Kinds, UpdateFrom01Through03WithAJobInFlight)
{
    Conn c(Sandbox::get().conninfo());
    c.exec("CREATE DATABASE kinds_upgrade");
    Conn u(Sandbox::get().conninfo("kinds_upgrade"));
    u.exec("CREATE EXTENSION pg_mig VERSION '0.1'");
    u.exec("CREATE TABLE t (id int PRIMARY KEY, n int NOT NULL DEFAULT 0)");
    u.exec("INSERT INTO t (id) SELECT g FROM generate_series(1, 20000) g");
    u.exec("UPDATE t SET n = n + 1 WHERE id <= 5000");  // the chunks the 0.1 worker committed
    u.exec("BEGIN");
    long long job = u.scalar_int(
        "INSERT INTO mig_job (relid, relation_name, set_clause, search_path, owner, state, batch_size,"
        " lock_timeout, statement_timeout, max_retries, target_ord, last_key, rows_done, keys_done,"
        " chunks_done, keys_total, rows_total, started_at)"
        " VALUES ('t'::regclass, 'public.t', 'n = n + 1', 'public', 'postgres'::regrole, 'running', 1000,"
        " '1s', '1min', 10, 0, '{5000}', 5000, 5000, 5, 20000, 20000, now()) RETURNING job_id");
    u.exec("INSERT INTO mig_job_target (job_id, ord, relid, relation_name, key_columns, upper_key, keys_estimate)"
           " VALUES ($1, 0, 't'::regclass, 'public.t', '{id}', '{20000}', 20000)",
           {Id(job)});
    u.exec("ALTER EXTENSION pg_mig UPDATE TO '0.2'");
    u.exec("ALTER EXTENSION pg_mig UPDATE TO '0.4'");
    u.exec("COMMIT");

    EXPECT_EQ("0.4", *u.scalar("SELECT extversion FROM pg_extension WHERE extname = 'pg_mig'"));
    EXPECT_EQ("succeeded", wait_job(u, job, 300));
    EXPECT_EQ(20000, u.scalar_int("SELECT count(*) FROM t WHERE n = 1"));  // none twice, none skipped
    EXPECT_EQ(20000, job_rows_done(u, job));
    EXPECT_EQ("backfill", *u.scalar("SELECT kind FROM mig_jobs WHERE job_id = $1", {Id(job)}));
    EXPECT_EQ(1, u.scalar_int("SELECT parallel FROM mig_jobs WHERE job_id = $1", {Id(job)}));
    // and the kinds of 0.3 run there
    long long del = u.scalar_int("SELECT mig_start_delete('t', 'id % 2 = 0', batch_size => 1000)");
    EXPECT_EQ("succeeded", wait_job(u, del, 120));
    EXPECT_EQ(10000, u.scalar_int("SELECT count(*) FROM t"));
    long long nn = u.scalar_int("SELECT mig_set_not_null('t', 'n')");
    EXPECT_EQ("succeeded", wait_job(u, nn, 120));
}

TEST(Kinds, ForeignKeyDeletesOrphansExactlyOnceAcrossAKillWhileTheAppWrites)
{
    const int rows = 40000;
    Conn c = pg_mig_primary();
    create_table(c, "kfkp", "id int PRIMARY KEY", "g", 900);
    // pid 901..1000 has no parent (orphans), every 50th row has no pid (no orphan)
    create_table(c, "kfkc", "id int PRIMARY KEY, pid int, w int NOT NULL DEFAULT 0",
                 "g, CASE WHEN g % 50 = 0 THEN NULL ELSE g % 1000 + 1 END, 0", rows);
    long long orphans = c.scalar_int("SELECT count(*) FROM kfkc WHERE pid > 900");
    ASSERT_GT(orphans, 0);

    // 'fail' through migctl: exit 1, the count in the error, no constraint left
    auto fail = migctl({"add-fk", "--table", "kfkc", "--columns", "pid", "--references", "kfkp", "--batch-size",
                        "2000", "--wait"});
    EXPECT_EQ(1, fail.exit_code) << fail.out << fail.err;
    EXPECT_NE(std::string::npos, fail.out.find(std::to_string(orphans) + " orphan rows")) << fail.out;
    EXPECT_EQ(0, c.scalar_int("SELECT count(*) FROM pg_constraint WHERE conrelid = 'kfkc'::regclass AND contype = 'f'"));
    EXPECT_EQ(0, migctl({"cancel", StartedJob(fail.out)}).exit_code);

    AppWriter app("kfkc", rows);
    auto r = migctl({"add-fk", "--table", "kfkc", "--columns", "pid", "--references", "kfkp", "--orphans",
                     "delete", "--name", "kfkc_parent", "--batch-size", "500", "--chunk-time", "0", "--sleep",
                     "20ms"});
    ASSERT_EQ(0, r.exit_code) << r.out << r.err;
    long long job = std::stoll(FirstLine(r.out));
    wait_for([&] { return job_rows_done(c, job) >= orphans / 4; }, 120, "the orphan walk to be under way");
    kill_worker(job);
    Conn c2(Sandbox::get().conninfo());
    EXPECT_EQ("succeeded", wait_job(c2, job, 300));
    app.stop();
    EXPECT_EQ(orphans, job_rows_done(c2, job));  // each orphan deleted and counted once
    EXPECT_EQ(0, c2.scalar_int("SELECT count(*) FROM kfkc WHERE pid > 900"));
    EXPECT_EQ(rows - orphans, c2.scalar_int("SELECT count(*) FROM kfkc"));
    EXPECT_EQ("true", *c2.scalar("SELECT convalidated::text FROM pg_constraint WHERE conname = 'kfkc_parent'"));
    EXPECT_EQ("{add_not_valid,walk,check_orphans,validate}",
              *c2.scalar("SELECT steps_done::text FROM mig_job WHERE job_id = $1", {Id(job)}));
    // from now on the constraint checks the application's rows
    EXPECT_THROW(c2.exec("INSERT INTO kfkc (id, pid) VALUES (-1, 999)"), PgError);
    wait_standby();
    Conn s(Sandbox::get().conninfo("postgres", true));
    EXPECT_EQ("true", *s.scalar("SELECT convalidated::text FROM pg_constraint WHERE conname = 'kfkc_parent'"));
    EXPECT_EQ(rows - orphans, s.scalar_int("SELECT count(*) FROM kfkc"));
}

TEST(Kinds, CancelInterruptsALongIndexBuildAndLeavesNoInvalidIndex)
{
    Conn c = pg_mig_primary();
    create_table(c, "kcx", "id int PRIMARY KEY, v int NOT NULL", "g, g", 20000);
    Conn holder(Sandbox::get().conninfo());
    holder.exec("BEGIN ISOLATION LEVEL REPEATABLE READ");
    holder.exec("SELECT count(*) FROM kcx");  // the build waits for this snapshot, up to lock_timeout
    long long job = c.scalar_int("SELECT mig_create_index('kcx', 'v', index_name => 'kcx_v',"
                                 " lock_timeout => '10min')");
    // the build is under way (its INVALID index is there) and waits
    wait_for([&] { return c.scalar_int("SELECT count(*) FROM pg_index WHERE indrelid = 'kcx'::regclass"
                                       " AND NOT indisvalid") == 1; },
             60, "the build to wait for the old snapshot");
    c.exec("SELECT mig_cancel($1)", {Id(job)});
    // the worker does not sit in the build for lock_timeout: it is interrupted
    // and cleans up (its DROP INDEX CONCURRENTLY waits for the holder too)
    wait_for([&] { return c.scalar("SELECT detail FROM mig_job_events WHERE job_id = $1 AND event = 'retried'"
                                   " ORDER BY event_id DESC LIMIT 1", {Id(job)}).has_value() ||
                          c.scalar_int("SELECT count(*) FROM mig_job_events WHERE job_id = $1"
                                       " AND event = 'step' AND detail LIKE 'undo%'", {Id(job)}) > 0 ||
                          c.scalar_int("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'DROP INDEX%kcx_v%'") > 0; },
             60, "the build to be interrupted");
    holder.exec("COMMIT");
    wait_for([&] { return c.scalar_int("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_mig worker'"
                                       " AND application_name = $1", {"pg_mig job " + Id(job)}) == 0; },
             60, "the worker to stop");
    EXPECT_EQ("cancelled", *c.scalar("SELECT state FROM mig_jobs WHERE job_id = $1", {Id(job)}));
    EXPECT_EQ(0, c.scalar_int("SELECT count(*) FROM pg_class WHERE relname = 'kcx_v'"));
    EXPECT_EQ(0, job_events(c, job, "failed"));
}
