// test_migctl.cpp -- the real migctl binary against the sandbox.
#include "fixture.hpp"

#include <gtest/gtest.h>

#include <algorithm>

using namespace pgmig_test;

namespace {
int Lines(const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }
}  // namespace

TEST(Migctl, InstallTwiceIsIdempotent)
{
    auto r1 = migctl({"install"});
    EXPECT_EQ(0, r1.exit_code) << r1.out << r1.err;
    auto r2 = migctl({"install"});
    EXPECT_EQ(0, r2.exit_code) << r2.out << r2.err;
    Conn c(Sandbox::get().conninfo());
    EXPECT_EQ(1, c.scalar_int("SELECT count(*) FROM pg_extension WHERE extname = 'pg_mig'"));
}

TEST(Migctl, StartWaitStatusJsonEvents)
{
    Conn c(Sandbox::get().conninfo());
    c.exec("CREATE EXTENSION IF NOT EXISTS pg_mig");
    c.exec("CREATE TABLE mc_orders (id int PRIMARY KEY, tracking_id text)");
    c.exec("INSERT INTO mc_orders SELECT g FROM generate_series(1, 20000) g");
    auto r = migctl({"start", "--table", "mc_orders", "--set", "tracking_id = 'TRK-' || id", "--where",
                     "tracking_id IS NULL", "--batch-size", "1000", "--wait"});
    EXPECT_EQ(0, r.exit_code) << r.out << r.err;
    EXPECT_EQ(0, c.scalar_int("SELECT count(*) FROM mc_orders WHERE tracking_id IS NULL"));
    long long job = c.scalar_int("SELECT max(job_id) FROM mig_jobs WHERE relation = 'mc_orders'::regclass");

    auto s = migctl({"status", "--json"});
    EXPECT_EQ(0, s.exit_code) << s.err;
    EXPECT_NE(std::string::npos, s.out.find("\"job_id\"")) << s.out;
    EXPECT_NE(std::string::npos, s.out.find("succeeded")) << s.out;
    // the JSON parses: the server's JSON parser is the judge
    EXPECT_EQ(1, c.scalar_int("SELECT count(*) FROM (SELECT $1::jsonb AS j) s WHERE j::text LIKE '%mc_orders%'",
                              {s.out}));

    auto t = migctl({"status", std::to_string(job)});
    EXPECT_EQ(0, t.exit_code) << t.err;
    EXPECT_EQ(0u, t.out.rfind("JOB", 0)) << t.out;
    for (const char* col : {"STATE", "PROGRESS", "ROWS/S", "ETA", "BATCH", "LAG", "THROTTLED"})
        EXPECT_NE(std::string::npos, t.out.find(col)) << col << " in\n" << t.out;
    EXPECT_NE(std::string::npos, t.out.find("succeeded")) << t.out;
    EXPECT_NE(std::string::npos, t.out.find("100.0%")) << t.out;

    auto e = migctl({"events", std::to_string(job)});
    EXPECT_EQ(0, e.exit_code) << e.err;
    EXPECT_NE(std::string::npos, e.out.find("succeeded")) << e.out;
}

TEST(Migctl, BadTableExitsTwoWithOneLine)
{
    auto r = migctl({"start", "--table", "no_such_table", "--set", "a = 1"});
    EXPECT_EQ(2, r.exit_code) << r.out << r.err;
    EXPECT_GE(Lines(r.err), 1);
    EXPECT_LE(Lines(r.err), 2) << r.err;  // the message, and the server's hint if any
    EXPECT_EQ(0u, r.err.rfind("migctl: ", 0)) << r.err;
}

TEST(Migctl, WrongPortExitsThree)
{
    auto env = migctl_env();
    env["PGPORT"] = "1";
    auto r = run_command({migctl_path(), "status"}, env);
    EXPECT_EQ(3, r.exit_code) << r.out << r.err;
    EXPECT_EQ(0u, r.err.rfind("migctl: ", 0)) << r.err;
}

TEST(Migctl, WaitTimeoutOnPausedJobExitsFour)
{
    Conn c(Sandbox::get().conninfo());
    c.exec("CREATE EXTENSION IF NOT EXISTS pg_mig");
    c.exec("CREATE TABLE mc_paused (id int PRIMARY KEY, n int DEFAULT 0)");
    c.exec("INSERT INTO mc_paused (id) SELECT g FROM generate_series(1, 1000) g");
    long long job = c.scalar_int(
        "SELECT mig_start_backfill('mc_paused', 'n = n + 1', batch_size => 10, chunk_time => NULL, sleep => '1s')");
    auto p = migctl({"pause", std::to_string(job)});
    EXPECT_EQ(0, p.exit_code) << p.err;
    auto r = migctl({"wait", std::to_string(job), "--timeout", "1s"});
    EXPECT_EQ(4, r.exit_code) << r.out << r.err;
    auto x = migctl({"cancel", std::to_string(job)});
    EXPECT_EQ(0, x.exit_code) << x.err;
    auto w = migctl({"wait", std::to_string(job)});
    EXPECT_EQ(1, w.exit_code) << "a cancelled job";
}

TEST(Migctl, WatchWithoutTerminalPrintsPlainLines)
{
    Conn c(Sandbox::get().conninfo());
    c.exec("CREATE EXTENSION IF NOT EXISTS pg_mig");
    c.exec("CREATE TABLE mc_watch (id int PRIMARY KEY, n int DEFAULT 0)");
    c.exec("INSERT INTO mc_watch (id) SELECT g FROM generate_series(1, 3000) g");
    long long job = c.scalar_int(
        "SELECT mig_start_backfill('mc_watch', 'n = n + 1', batch_size => 500, chunk_time => NULL, sleep => '300ms')");
    auto r = migctl({"status", std::to_string(job), "--watch"}, 120);
    EXPECT_EQ(0, r.exit_code) << r.err;
    EXPECT_EQ(std::string::npos, r.out.find('\x1b')) << "no ANSI codes off a terminal";
    EXPECT_GE(Lines(r.out), 1);
    EXPECT_NE(std::string::npos, r.out.find("mc_watch")) << r.out;
}

TEST(Migctl, SetChangesKnobsOfAJob)
{
    Conn c(Sandbox::get().conninfo());
    c.exec("CREATE EXTENSION IF NOT EXISTS pg_mig");
    c.exec("CREATE TABLE mc_set (id int PRIMARY KEY, n int DEFAULT 0)");
    c.exec("INSERT INTO mc_set (id) SELECT g FROM generate_series(1, 1000) g");
    long long job = c.scalar_int(
        "SELECT mig_start_backfill('mc_set', 'n = n + 1', batch_size => 10, chunk_time => NULL, sleep => '1s')");
    auto r = migctl({"set", std::to_string(job), "--batch-size", "500", "--sleep", "0", "--max-lag-bytes", "16MB"});
    EXPECT_EQ(0, r.exit_code) << r.err;
    EXPECT_EQ(16LL * 1024 * 1024, c.scalar_int("SELECT max_lag_bytes FROM mig_jobs WHERE job_id = $1",
                                               {std::to_string(job)}));
    EXPECT_EQ("succeeded", wait_job(c, job, 60));
    EXPECT_EQ(2, migctl({"set", std::to_string(job), "--sleep", "5x"}).exit_code);
    EXPECT_EQ(2, migctl({"set", std::to_string(job)}).exit_code);
}

TEST(Migctl, PlanChecksMeasuresAndChangesNothing)
{
    Conn c(Sandbox::get().conninfo());
    c.exec("CREATE EXTENSION IF NOT EXISTS pg_mig");
    c.exec("CREATE TABLE mc_plan (id bigint PRIMARY KEY, status text, tracking_id text)");
    c.exec("INSERT INTO mc_plan SELECT g, 'new', NULL FROM generate_series(1, 30000) g");
    c.exec("CREATE INDEX mc_plan_tracking ON mc_plan (tracking_id)");
    c.exec("CREATE INDEX mc_plan_lower ON mc_plan (lower(status))");
    c.exec("CREATE INDEX mc_plan_partial ON mc_plan (id) WHERE tracking_id IS NULL");
    c.exec("CREATE INDEX mc_plan_other ON mc_plan (status)");
    c.exec("CREATE FUNCTION mc_plan_trg() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$");
    c.exec("CREATE TRIGGER mc_plan_audit BEFORE UPDATE ON mc_plan FOR EACH ROW EXECUTE FUNCTION mc_plan_trg()");
    c.exec("CREATE TRIGGER mc_plan_ins AFTER INSERT ON mc_plan FOR EACH ROW EXECUTE FUNCTION mc_plan_trg()");
    c.exec("VACUUM ANALYZE mc_plan");

    auto r = migctl({"plan", "--table", "mc_plan", "--set", "tracking_id = 'TRK-' || id", "--where",
                     "tracking_id IS NULL", "--batch-size", "2000", "--samples", "3", "--json"});
    ASSERT_EQ(0, r.exit_code) << r.out << r.err;
    // nothing changed: the sample chunks were rolled back
    EXPECT_EQ(30000, c.scalar_int("SELECT count(*) FROM mc_plan WHERE tracking_id IS NULL"));
    EXPECT_EQ(0, c.scalar_int("SELECT count(*) FROM mig_jobs WHERE relation = 'mc_plan'::regclass"));
    // the server's JSON parser reads it; then check what it says
    auto j = [&](const std::string& path) { return c.scalar("SELECT $1::jsonb #>> $2::text[]", {r.out, path}); };
    EXPECT_EQ("id", j("{targets,0,key}"));
    EXPECT_EQ("[\"tracking_id\"]", j("{set_columns}"));
    EXPECT_EQ("3", *c.scalar("SELECT jsonb_array_length($1::jsonb -> 'samples')::text", {r.out}));
    for (int i = 0; i < 3; i++) {
        EXPECT_EQ("2000", j("{samples," + std::to_string(i) + ",keys}"));
        EXPECT_EQ("2000", j("{samples," + std::to_string(i) + ",rows}"));
        EXPECT_GT(std::stoll(*j("{samples," + std::to_string(i) + ",wal_bytes}")), 2000 * 50);
    }
    EXPECT_EQ("30000", j("{rows_estimate}"));
    // the BEFORE UPDATE row trigger, not the INSERT one
    EXPECT_EQ("[\"mc_plan_audit (BEFORE UPDATE, mc_plan)\"]", j("{triggers}"));
    // indexes on the column, in a predicate; not the others
    EXPECT_EQ("[\"mc_plan_partial\", \"mc_plan_tracking\"]", j("{indexes_on_changed_columns}"));
    EXPECT_NE(std::string::npos, j("{replicas}")->find("standby1")) << *j("{replicas}");
    EXPECT_GT(std::stod(*j("{estimated_seconds}")), 0.0);

    // the human form says the same, with the warnings
    auto h = migctl({"plan", "--table", "mc_plan", "--set", "status = lower(status)", "--samples", "1"});
    ASSERT_EQ(0, h.exit_code) << h.out << h.err;
    EXPECT_NE(std::string::npos, h.out.find("mc_plan_lower")) << h.out;
    EXPECT_EQ(std::string::npos, h.out.find("mc_plan_tracking")) << h.out;
    EXPECT_NE(std::string::npos, h.out.find("WARNING: 1 row trigger")) << h.out;
    EXPECT_NE(std::string::npos, h.out.find("estimate:")) << h.out;
    EXPECT_EQ(0, c.scalar_int("SELECT count(*) FROM mc_plan WHERE status <> 'new'"));

    // bad input: the checks of mig_start_backfill, exit 2 with one line and a hint
    auto bad = migctl({"plan", "--table", "mc_plan", "--set", "nope = 1"});
    EXPECT_EQ(2, bad.exit_code) << bad.out << bad.err;
    EXPECT_EQ(0u, bad.err.rfind("migctl: invalid set_clause", 0)) << bad.err;
    EXPECT_LE(Lines(bad.err), 2) << bad.err;
    EXPECT_EQ(2, migctl({"plan", "--table", "mc_plan"}).exit_code);
    EXPECT_EQ(2, migctl({"plan", "--table", "mc_plan", "--set", "status = 'x'", "--samples", "99"}).exit_code);

    // a row lock held by the application: the sample gives up after lock_timeout, nothing is left behind
    Conn app(Sandbox::get().conninfo());
    app.exec("BEGIN");
    app.exec("UPDATE mc_plan SET status = 'held' WHERE id = 10");
    auto locked = migctl({"plan", "--table", "mc_plan", "--set", "status = 'x'", "--samples", "1",
                          "--lock-timeout", "200ms"});
    EXPECT_EQ(2, locked.exit_code) << locked.out << locked.err;
    EXPECT_NE(std::string::npos, locked.err.find("lock timeout")) << locked.err;
    app.exec("ROLLBACK");
}

TEST(Migctl, InstallUpdatesAnOlderExtension)
{
    Conn c(Sandbox::get().conninfo());
    c.exec("CREATE DATABASE mc_upgrade");
    Conn u(Sandbox::get().conninfo("mc_upgrade"));
    u.exec("CREATE EXTENSION pg_mig VERSION '0.1'");
    u.exec("CREATE TABLE t (id int PRIMARY KEY, n int DEFAULT 0)");
    u.exec("INSERT INTO t (id) SELECT g FROM generate_series(1, 5000) g");
    // this library is 0.4: it refuses the 0.1 tables instead of misreading them
    // (max_lag_bytes given: 0.1's default reads the setting as a plain
    // number, but 0.3 shows it with a unit)
    try {
        u.exec("SELECT mig_start_backfill('t', 'n = n + 1', batch_size => 500, max_lag_bytes => 1000000)");
        ADD_FAILURE() << "a 0.4 library started a job on 0.1 tables";
    } catch (const PgError& e) {
        EXPECT_EQ("55000", e.sqlstate) << e.what();
        EXPECT_NE(std::string::npos, std::string(e.what()).find("is at version 0.1")) << e.what();
    }
    // a job in flight, as the 0.1 library left it: queued, half done
    u.exec("INSERT INTO mig_job (relid, relation_name, set_clause, search_path, owner, batch_size,"
           " lock_timeout, statement_timeout, max_retries, state, last_key, rows_done, keys_done)"
           " VALUES ('t'::regclass, 'public.t', 'n = n + 1', '\"$user\", public',"
           " 'postgres'::regrole, 500, '1s', '0', 3, 'queued', '{2500}', 2500, 2500)");
    u.exec("INSERT INTO mig_job_target (job_id, ord, relid, relation_name, key_columns, upper_key)"
           " SELECT job_id, 0, 't'::regclass, 'public.t', '{id}', '{5000}' FROM mig_job");
    u.exec("UPDATE t SET n = 1 WHERE id <= 2500");
    long long job = u.scalar_int("SELECT job_id FROM mig_job");

    auto env = migctl_env();
    env["PGDATABASE"] = "mc_upgrade";
    // the 0.4 library with the 0.1 SQL objects: every migctl command but
    // install refuses, naming both versions
    auto refused = run_command({migctl_path(), "status"}, env);
    EXPECT_EQ(3, refused.exit_code) << refused.out << refused.err;
    EXPECT_NE(std::string::npos, refused.err.find("version 0.4 but the extension in database \"mc_upgrade\" is "
                                                  "version 0.1"))
        << refused.err;
    auto r = run_command({migctl_path(), "install"}, env);
    EXPECT_EQ(0, r.exit_code) << r.out << r.err;
    EXPECT_NE(std::string::npos, r.out.find("updated extension pg_mig from 0.1 to 0.4")) << r.out;
    EXPECT_EQ("0.4", *u.scalar("SELECT extversion FROM pg_extension WHERE extname = 'pg_mig'"));
    // the job of 0.1 goes on from its checkpoint: every row once
    EXPECT_EQ("succeeded", wait_job(u, job, 60));
    EXPECT_EQ(5000, u.scalar_int("SELECT count(*) FROM t WHERE n = 1"));
    EXPECT_EQ(1, u.scalar_int("SELECT count(*) FROM mig_plan('t', 'n = 0') WHERE kind = 'target'"));
    // and a new job runs on the updated extension
    long long job2 = u.scalar_int("SELECT mig_start_backfill('t', 'n = n + 1', batch_size => 500)");
    EXPECT_EQ("succeeded", wait_job(u, job2, 60));
    EXPECT_EQ(5000, u.scalar_int("SELECT count(*) FROM t WHERE n = 2"));
    auto again = run_command({migctl_path(), "install"}, env);
    EXPECT_EQ(0, again.exit_code) << again.out << again.err;
    EXPECT_NE(std::string::npos, again.out.find("extension pg_mig 0.4 is installed")) << again.out;
}

// Issue 22 item 3: migctl names pg_mig's functions and views qualified with
// the extension's schema and types its parameters, so objects a role plants
// cannot capture what a superuser runs with migctl. The database owner (who
// owns public, where the extension is) plants a mig_cancel(text), views
// mig_jobs / mig_job_events, a function mig_replicas(), a mig_start_backfill
// and operators = in a schema of hers that comes first in the database's
// search_path (before pg_catalog), and a mig_resume(text) beside the real
// one in public. Every planted object writes a row to evil.calls when it
// runs; after every migctl command of the superuser there is none, and the
// commands did what they say.
TEST(Migctl, PlantedObjectsDoNotCaptureMigctl)
{
    Conn su(Sandbox::get().conninfo());
    su.exec("CREATE ROLE mc_mallory LOGIN");
    su.exec("CREATE DATABASE mc_trust OWNER mc_mallory");
    {
        Conn db(Sandbox::get().conninfo("mc_trust"));
        db.exec("CREATE EXTENSION pg_mig");
        db.exec("CREATE TABLE public.t (id int PRIMARY KEY, v text)");
        db.exec("INSERT INTO public.t SELECT g FROM generate_series(1, 2000) g");
    }
    {
        Conn m(Sandbox::get().conninfo("mc_trust", false, "mc_mallory"));
        m.exec("CREATE SCHEMA evil");
        m.exec("GRANT USAGE ON SCHEMA evil TO PUBLIC");
        m.exec("CREATE TABLE evil.calls (who name, what text)");
        m.exec("GRANT INSERT ON evil.calls TO PUBLIC");
        m.exec("CREATE FUNCTION evil.log(what text) RETURNS boolean LANGUAGE plpgsql AS"
               " $$ BEGIN INSERT INTO evil.calls SELECT current_user, what || ' in ' || a.backend_type || ' '"
               " || a.application_name FROM pg_catalog.pg_stat_activity a"
               " WHERE a.pid OPERATOR(pg_catalog.=) pg_catalog.pg_backend_pid(); RETURN true; END $$");
        for (const char* fn : {"mig_cancel", "mig_pause", "mig_wait"})
            m.exec(std::string("CREATE FUNCTION evil.") + fn + "(job_id text) RETURNS void LANGUAGE sql AS"
                   " $$ SELECT evil.log('" + fn + "') $$");
        m.exec("CREATE FUNCTION public.mig_resume(job_id text) RETURNS void LANGUAGE sql AS"
               " $$ SELECT evil.log('public.mig_resume') $$");
        m.exec("CREATE FUNCTION evil.mig_set(job_id text, max_lag_bytes bigint) RETURNS void LANGUAGE sql AS"
               " $$ SELECT evil.log('mig_set') $$");
        m.exec("CREATE FUNCTION evil.mig_start_backfill(relation regclass, set_clause text, batch_size integer,"
               " chunk_time interval, sleep interval) RETURNS bigint"
               " LANGUAGE plpgsql AS $$ BEGIN PERFORM evil.log('mig_start_backfill');"
               " RETURN public.mig_start_backfill(relation, set_clause, batch_size => batch_size,"
               " chunk_time => chunk_time, sleep => sleep); END $$");
        for (const char* view : {"mig_jobs", "mig_job_events", "mig_job_lanes"}) {
            std::string v = view;
            m.exec("CREATE FUNCTION evil." + v + "() RETURNS SETOF public." + v + " LANGUAGE plpgsql AS"
                   " $$ BEGIN PERFORM evil.log('" + v + "'); RETURN QUERY SELECT * FROM public." + v + "; END $$");
            m.exec("CREATE VIEW evil." + v + " AS SELECT * FROM evil." + v + "()");
        }
        m.exec("CREATE FUNCTION evil.mig_replicas(OUT kind text, OUT name text, OUT active boolean,"
               " OUT lag_bytes bigint, OUT replay_lag interval, OUT note text) RETURNS SETOF record"
               " LANGUAGE sql AS $$ SELECT r.* FROM public.mig_replicas() r WHERE evil.log('mig_replicas') $$");
        for (const char* type : {"bigint", "text", "oid", "name", "integer"}) {
            std::string fn = std::string("evil.eq_") + (type[0] == 'b' ? "int8" : type);
            m.exec("CREATE FUNCTION " + fn + "(" + type + ", " + type + ") RETURNS boolean LANGUAGE plpgsql AS"
                   " $$ BEGIN PERFORM evil.log('= " + type + "'); RETURN $1 OPERATOR(pg_catalog.=) $2; END $$");
            m.exec("CREATE OPERATOR evil.= (LEFTARG = " + std::string(type) + ", RIGHTARG = " + type +
                   ", FUNCTION = " + fn + ")");
        }
        m.exec("ALTER DATABASE mc_trust SET search_path = evil, pg_catalog, public");
        // the traps work: a session of the database that names them unqualified calls them
        Conn probe(Sandbox::get().conninfo("mc_trust", false, "mc_mallory"));
        probe.exec("SELECT count(*) FROM mig_jobs");
        probe.exec("SELECT 1::bigint = 1::bigint");
        ASSERT_EQ(2, probe.scalar_int("SELECT count(*) FROM evil.calls WHERE what LIKE 'mig_jobs %' OR what LIKE '= bigint %'"));
        probe.exec("TRUNCATE evil.calls");
    }
    Conn db(Sandbox::get().conninfo("mc_trust"));
    db.exec("SET search_path = pg_catalog, public");  // the test's own checks are not the subject
    auto env = migctl_env();
    env["PGDATABASE"] = "mc_trust";
    auto run = [&](std::vector<std::string> args) {
        args.insert(args.begin(), migctl_path());
        return run_command(args, env);
    };
    // what the planted objects caught since the last look (then forgotten)
    auto calls = [&] {
        auto out = db.scalar("SELECT string_agg(DISTINCT who || ' ran ' || what, '; ') FROM evil.calls");
        db.exec("TRUNCATE evil.calls");
        return out.value_or("");
    };

    // slow (a chunk of 10 rows a second), so that it is still there to pause
    auto start = run({"start", "--table", "t", "--set", "v = 'x'", "--batch-size", "10", "--chunk-time", "0",
                      "--sleep", "1s"});
    ASSERT_EQ(0, start.exit_code) << start.out << start.err;
    EXPECT_EQ("", calls()) << "migctl start";
    std::string job = start.out.substr(0, start.out.find('\n'));
    EXPECT_EQ(1, db.scalar_int("SELECT count(*) FROM public.mig_jobs WHERE job_id::text = $1", {job}));

    auto pause = run({"pause", job});
    EXPECT_EQ(0, pause.exit_code) << pause.out << pause.err;
    EXPECT_EQ("", calls()) << "migctl pause";
    EXPECT_EQ("paused", *db.scalar("SELECT state FROM public.mig_jobs WHERE job_id::text = $1", {job}));

    auto set = run({"set", job, "--max-lag-bytes", "77kB"});
    EXPECT_EQ(0, set.exit_code) << set.out << set.err;
    EXPECT_EQ("", calls()) << "migctl set";
    EXPECT_EQ(77 * 1024, db.scalar_int("SELECT max_lag_bytes FROM public.mig_jobs WHERE job_id::text = $1", {job}));

    for (std::vector<std::string> args : {std::vector<std::string>{"status"}, {"status", "--json"}, {"status", job},
                                          {"events", job}, {"metrics"}, {"version"},
                                          {"plan", "--table", "t", "--set", "v = 'y'", "--samples", "1"}}) {
        auto r = run(args);
        EXPECT_EQ(0, r.exit_code) << args[0] << ": " << r.out << r.err;
        EXPECT_EQ("", calls()) << "migctl " << args[0] << " " << (args.size() > 1 ? args[1] : "");
    }
    EXPECT_NE(std::string::npos, run({"status", job}).out.find("paused"));

    auto resume = run({"resume", job});
    EXPECT_EQ(0, resume.exit_code) << resume.out << resume.err;
    EXPECT_EQ("", calls()) << "migctl resume (a mig_resume(text) in the extension's own schema)";
    EXPECT_NE("paused", *db.scalar("SELECT state FROM public.mig_jobs WHERE job_id::text = $1", {job}));

    auto cancel = run({"cancel", job});
    EXPECT_EQ(0, cancel.exit_code) << cancel.out << cancel.err;
    EXPECT_EQ("", calls()) << "migctl cancel";
    auto wait = run({"wait", job});
    EXPECT_EQ(1, wait.exit_code) << wait.out << wait.err;
    EXPECT_NE(std::string::npos, wait.out.find("cancelled")) << wait.out;
    EXPECT_EQ("", calls()) << "migctl wait";
    auto install = run({"install"});
    EXPECT_EQ(0, install.exit_code) << install.out << install.err;
    EXPECT_EQ("", calls()) << "migctl install";
}

// Issue 21 items 2 and 6: what migctl prints after a refusal or a failure
// names migctl's commands, for the job's kind. A cancel of a finished
// foreign-key job said "Start a new job with mig_start_backfill()"; a failed
// not-null job's error said "then run mig_set_not_null() again".
TEST(Migctl, HintsNameMigctlCommandsOfTheJobsKind)
{
    Conn c(Sandbox::get().conninfo());
    c.exec("CREATE EXTENSION IF NOT EXISTS pg_mig");
    c.exec("CREATE TABLE mc_hint_parent (id int PRIMARY KEY)");
    c.exec("INSERT INTO mc_hint_parent SELECT g FROM generate_series(1, 100) g");
    c.exec("CREATE TABLE mc_hint_child (id int PRIMARY KEY, parent_id int, note text)");
    c.exec("INSERT INTO mc_hint_child SELECT g, g, NULL FROM generate_series(1, 100) g");

    auto fk = migctl({"add-fk", "--table", "mc_hint_child", "--columns", "parent_id", "--references",
                      "mc_hint_parent", "--wait"});
    ASSERT_EQ(0, fk.exit_code) << fk.out << fk.err;
    std::string job = std::to_string(c.scalar_int("SELECT max(job_id) FROM mig_jobs WHERE kind = 'foreign_key'"));
    auto cancel = migctl({"cancel", job});
    EXPECT_EQ(2, cancel.exit_code) << cancel.out << cancel.err;
    EXPECT_EQ(0u, cancel.err.rfind("migctl: cannot cancel job " + job, 0)) << cancel.err;
    EXPECT_EQ(std::string::npos, cancel.err.find("mig_")) << cancel.err;
    EXPECT_NE(std::string::npos, cancel.err.find("HINT: Start a new job with migctl add-fk")) << cancel.err;
    EXPECT_EQ(2, Lines(cancel.err)) << cancel.err;

    // a not-null step that fails on NULLs: its error, as status and events show it
    auto nn = migctl({"not-null", "--table", "mc_hint_child", "--column", "note", "--wait"});
    EXPECT_EQ(1, nn.exit_code) << nn.out << nn.err;
    std::string nn_job = std::to_string(c.scalar_int("SELECT max(job_id) FROM mig_jobs WHERE kind = 'not_null'"));
    auto st = migctl({"status", nn_job, "--json"});
    ASSERT_EQ(0, st.exit_code) << st.err;
    auto last_error = c.scalar("SELECT $1::jsonb -> 0 ->> 'last_error'", {st.out});
    ASSERT_TRUE(last_error.has_value()) << st.out;
    EXPECT_NE(std::string::npos, last_error->find("100 NULL rows")) << *last_error;
    EXPECT_EQ(std::string::npos, last_error->find("mig_")) << *last_error;
    EXPECT_NE(std::string::npos, last_error->find("then run migctl not-null again")) << *last_error;
    auto ev = migctl({"events", nn_job});
    EXPECT_EQ(0, ev.exit_code) << ev.err;
    EXPECT_EQ(std::string::npos, ev.out.find("mig_set_not_null()")) << ev.out;
}

// Issue 21 item 6: migctl plan can plan a delete (mig_plan can: set_clause
// NULL and a where clause): the rows it would delete, the row triggers that
// fire on DELETE, sample chunks rolled back; nothing deleted, no job made.
TEST(Migctl, PlanOfADelete)
{
    Conn c(Sandbox::get().conninfo());
    c.exec("CREATE EXTENSION IF NOT EXISTS pg_mig");
    c.exec("CREATE TABLE mc_plan_del (id bigint PRIMARY KEY, created int)");
    c.exec("INSERT INTO mc_plan_del SELECT g, g % 10 FROM generate_series(1, 20000) g");
    c.exec("CREATE FUNCTION mc_plan_del_trg() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN OLD; END$$");
    c.exec("CREATE TRIGGER mc_plan_del_audit BEFORE DELETE ON mc_plan_del FOR EACH ROW EXECUTE FUNCTION "
           "mc_plan_del_trg()");
    c.exec("CREATE TRIGGER mc_plan_del_upd BEFORE UPDATE ON mc_plan_del FOR EACH ROW EXECUTE FUNCTION "
           "mc_plan_del_trg()");
    c.exec("VACUUM ANALYZE mc_plan_del");

    auto r = migctl({"plan", "--table", "mc_plan_del", "--delete", "--where", "created < 5", "--batch-size", "1000",
                     "--samples", "2", "--json"});
    ASSERT_EQ(0, r.exit_code) << r.out << r.err;
    EXPECT_EQ(20000, c.scalar_int("SELECT count(*) FROM mc_plan_del"));
    EXPECT_EQ(0, c.scalar_int("SELECT count(*) FROM mig_jobs WHERE relation = 'mc_plan_del'::regclass"));
    auto j = [&](const std::string& path) { return c.scalar("SELECT $1::jsonb #>> $2::text[]", {r.out, path}); };
    EXPECT_EQ("delete", j("{kind}"));
    EXPECT_EQ("id", j("{targets,0,key}"));
    EXPECT_EQ("[]", j("{set_columns}"));
    EXPECT_EQ("1000", j("{samples,0,keys}"));
    EXPECT_EQ("500", j("{samples,0,rows}")) << "half the keys of a chunk match created < 5";
    EXPECT_EQ("[\"mc_plan_del_audit (BEFORE DELETE, mc_plan_del)\"]", j("{triggers}"));

    auto h = migctl({"plan", "--table", "mc_plan_del", "--delete", "--where", "created < 5", "--samples", "1"});
    ASSERT_EQ(0, h.exit_code) << h.out << h.err;
    EXPECT_NE(std::string::npos, h.out.find("deletes:")) << h.out;
    EXPECT_NE(std::string::npos, h.out.find("rows to delete")) << h.out;
    EXPECT_NE(std::string::npos, h.out.find("WARNING: 1 row trigger(s) fire on DELETE")) << h.out;
    EXPECT_EQ(20000, c.scalar_int("SELECT count(*) FROM mc_plan_del"));

    // usage: --delete needs --where, and takes no --set (exit 2, one line and a hint)
    for (std::vector<std::string> bad : {std::vector<std::string>{"plan", "--table", "mc_plan_del", "--delete"},
                                         {"plan", "--table", "mc_plan_del", "--delete", "--where", "true", "--set",
                                          "created = 1"}}) {
        auto u = migctl(bad);
        EXPECT_EQ(2, u.exit_code) << u.out << u.err;
        EXPECT_EQ(0u, u.err.rfind("migctl: plan", 0)) << u.err;
        EXPECT_EQ(2, Lines(u.err)) << u.err;
    }
}

// Issue 21: --key K on the commands that start jobs (job_key => K). The
// same command run again with the key (a deploy that timed out and is run
// again) starts nothing: it prints the same job id and exits 0 once that
// job succeeded, and the non-idempotent set clause ran once; the key shows
// in status. Other arguments with the same key: exit 2, one line, a hint.
TEST(Migctl, KeyStartsAJobOnce)
{
    Conn c(Sandbox::get().conninfo());
    c.exec("CREATE EXTENSION IF NOT EXISTS pg_mig");
    c.exec("CREATE TABLE mc_key (id int PRIMARY KEY, n int DEFAULT 0)");
    c.exec("INSERT INTO mc_key (id) SELECT g FROM generate_series(1, 3000) g");
    std::vector<std::string> start{"start", "--table", "mc_key", "--set", "n = n + 1", "--batch-size", "500",
                                   "--key", "deploy-7 backfill"};
    auto first = migctl(start);
    ASSERT_EQ(0, first.exit_code) << first.out << first.err;
    std::string job = first.out.substr(0, first.out.find('\n'));
    EXPECT_EQ("succeeded", wait_job(c, std::stoll(job), 60));
    auto again = migctl(start);
    EXPECT_EQ(0, again.exit_code) << again.out << again.err;
    EXPECT_EQ(job + "\n", again.out);
    auto waited = migctl([&] { auto a = start; a.push_back("--wait"); return a; }());
    EXPECT_EQ(0, waited.exit_code) << waited.out << waited.err;
    EXPECT_NE(std::string::npos, waited.out.find("job " + job)) << waited.out;
    EXPECT_EQ(3000, c.scalar_int("SELECT count(*) FROM mc_key WHERE n = 1")) << "the backfill ran once";
    EXPECT_EQ(1, c.scalar_int("SELECT count(*) FROM mig_jobs WHERE relation = 'mc_key'::regclass"));

    auto json = migctl({"status", job, "--json"});
    ASSERT_EQ(0, json.exit_code) << json.err;
    EXPECT_EQ("deploy-7 backfill", c.scalar("SELECT $1::jsonb -> 0 ->> 'job_key'", {json.out}));
    auto table = migctl({"status", job});
    EXPECT_NE(std::string::npos, table.out.find("KEY")) << table.out;
    EXPECT_NE(std::string::npos, table.out.find("deploy-7 backfill")) << table.out;

    // the same key for another step: refused, naming both
    auto other = migctl({"delete", "--table", "mc_key", "--where", "id > 2900", "--key", "deploy-7 backfill"});
    EXPECT_EQ(2, other.exit_code) << other.out << other.err;
    EXPECT_EQ(0u, other.err.rfind("migctl: ", 0)) << other.err;
    EXPECT_LE(Lines(other.err), 2) << other.err;
    EXPECT_EQ(std::string::npos, other.err.find("mig_start")) << other.err;
    EXPECT_EQ(3000, c.scalar_int("SELECT count(*) FROM mc_key"));
    // a schema step with a key: run twice, one job
    auto nn1 = migctl({"not-null", "--table", "mc_key", "--column", "n", "--key", "deploy-7 not-null", "--wait"});
    EXPECT_EQ(0, nn1.exit_code) << nn1.out << nn1.err;
    auto nn2 = migctl({"not-null", "--table", "mc_key", "--column", "n", "--key", "deploy-7 not-null"});
    EXPECT_EQ(0, nn2.exit_code) << nn2.out << nn2.err;
    EXPECT_EQ(1, c.scalar_int("SELECT count(*) FROM mig_jobs WHERE relation = 'mc_key'::regclass AND kind = 'not_null'"));
    EXPECT_EQ(2, migctl({"start", "--table", "mc_key", "--set", "n = 1", "--key", ""}).exit_code);
}

// Runs last in this file: it restarts the primary twice.
TEST(Migctl, InstallConfigureAddsThePreloadKeepingOthers)
{
    {
        Conn c(Sandbox::get().conninfo());
        c.exec("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'");
    }
    ASSERT_EQ(0, Sandbox::get().ctl("primary", "restart -m fast"));

    auto plain = migctl({"install"});
    EXPECT_EQ(3, plain.exit_code) << plain.out << plain.err;
    EXPECT_NE(std::string::npos, plain.out.find("pg_mig is NOT loaded")) << plain.out;
    // not ready: an error on stderr, one line, then the hint
    EXPECT_EQ(0u, plain.err.rfind("migctl: pg_mig is not loaded", 0)) << plain.err;
    EXPECT_NE(std::string::npos, plain.err.find("HINT: Run migctl install --configure")) << plain.err;
    EXPECT_EQ(2, Lines(plain.err)) << plain.err;

    // issue 21 item 6: --configure that wrote the setting did its job: exit 0,
    // and it says that the server must be restarted
    auto conf = migctl({"install", "--configure"});
    EXPECT_EQ(0, conf.exit_code) << conf.out << conf.err;
    EXPECT_NE(std::string::npos, conf.out.find("restart the server")) << conf.out;
    EXPECT_EQ("", conf.err);
    ASSERT_EQ(0, Sandbox::get().ctl("primary", "restart -m fast"));
    {
        Conn c(Sandbox::get().conninfo());
        EXPECT_EQ("pg_stat_statements, pg_mig", *c.scalar("SELECT current_setting('shared_preload_libraries')"));
    }
    auto done = migctl({"install", "--configure"});
    EXPECT_EQ(0, done.exit_code) << done.out << done.err;
    EXPECT_NE(std::string::npos, done.out.find("pg_mig is loaded")) << done.out;
    {
        Conn c(Sandbox::get().conninfo());
        EXPECT_EQ("pg_stat_statements, pg_mig", *c.scalar("SELECT current_setting('shared_preload_libraries')"))
            << "a second --configure adds nothing";
        c.exec("ALTER SYSTEM RESET shared_preload_libraries");
    }
    ASSERT_EQ(0, Sandbox::get().ctl("primary", "restart -m fast"));
}
