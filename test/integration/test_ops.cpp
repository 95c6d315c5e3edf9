// test_ops.cpp -- migctl for operators, against the sandbox: --version and
// the version handshake on every command, exit codes from SQLSTATEs,
// metrics checked by promtool (and the README's alert rules by promtool
// check rules), and the live views on a real terminal (tmux).
#include "fixture.hpp"
#include "harness.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

using namespace pgmig_test;

namespace {
bool Has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

void MakeTable(Conn& c, const std::string& name, int rows)
{
    c.exec("CREATE EXTENSION IF NOT EXISTS pg_mig");
    c.exec("CREATE TABLE " + name + " (id int PRIMARY KEY, n int NOT NULL DEFAULT 0)");
    c.exec("INSERT INTO " + name + " (id) SELECT g FROM generate_series(1, " + S(rows) + ") g");
}

// a sample's value from an exposition, or -1 if it is not there
double Sample(const std::string& text, const std::string& name_and_labels)
{
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        if (line.rfind(name_and_labels + " ", 0) == 0) return std::stod(line.substr(name_and_labels.size() + 1));
    return -1;
}

// Promtool: promtool ARGS on a file holding text; its exit code and output
CmdResult Promtool(const std::string& what, const std::string& text)
{
    std::string file = Sandbox::get().base + "/promtool_input";
    std::ofstream(file) << text;
    return run_command({"sh", "-c", "promtool check " + what + (what == "metrics" ? " < " : " ") + file});
}

// A tmux server of this test's own (by socket name), running one command
// in an 80x24 terminal.
struct Tmux {
    std::string sock = "pgmig-it-ops-" + S(getpid());
    explicit Tmux(const std::string& command)
    {
        std::string env;
        for (const auto& [k, v] : migctl_env()) env += k + "=" + v + " ";
        auto r = run_command({"tmux", "-L", sock, "new-session", "-d", "-x", "80", "-y", "24", "-s", "t",
                              "env TERM=xterm " + env + command + "; sleep 600"});
        EXPECT_EQ(0, r.exit_code) << r.out << r.err;
    }
    ~Tmux() { run_command({"tmux", "-L", sock, "kill-server"}); }
    std::string Capture() { return run_command({"tmux", "-L", sock, "capture-pane", "-p", "-t", "t"}).out; }
};

std::vector<std::string> LinesWith(const std::string& screen, const std::string& part)
{
    std::vector<std::string> out;
    std::istringstream in(screen);
    for (std::string line; std::getline(in, line);)
        if (Has(line, part)) out.push_back(line);
    return out;
}
}  // namespace

TEST(Ops, VersionReportsTheThreeParts)
{
    Conn c(Sandbox::get().conninfo());
    c.exec("CREATE EXTENSION IF NOT EXISTS pg_mig");
    auto r = migctl({"--version"});
    EXPECT_EQ(0, r.exit_code) << r.out << r.err;
    EXPECT_TRUE(std::regex_search(r.out, std::regex("^migctl 0\\.4\nlibrary   0\\.4 \\(loaded by PostgreSQL [0-9]+")))
        << r.out;
    EXPECT_TRUE(Has(r.out, "extension 0.4 in database \"postgres\"")) << r.out;
    EXPECT_EQ("", r.err);
    // no server named anywhere: the client's version only, no connection
    auto alone = run_command({"env", "-i", "PATH=/usr/bin:/bin", migctl_path(), "--version"});
    EXPECT_EQ(0, alone.exit_code) << alone.err;
    EXPECT_EQ("migctl 0.4\n", alone.out);
    // a server named but not there: the client's version, then exit 3
    auto env = migctl_env();
    env["PGPORT"] = "1";
    auto down = run_command({migctl_path(), "--version"}, env);
    EXPECT_EQ(3, down.exit_code) << down.out << down.err;
    EXPECT_EQ("migctl 0.4\n", down.out);
}

// The handshake runs before every command: an extension whose SQL objects
// are older than the loaded library (ALTER EXTENSION not run) is refused
// with both versions and what to do; --version warns; install fixes it.
// 18 and later: the library's magic block carries pg_mig's name and
// version (PG_MODULE_MAGIC_EXT), which pg_get_loaded_modules() shows; the
// version is the one mig_version() reports
TEST(Ops, LoadedModuleShowsNameAndVersion)
{
    if (Sandbox::get().pg_major < 18) GTEST_SKIP() << "pg_get_loaded_modules() is 18's";
    Conn c(Sandbox::get().conninfo());
    c.exec("CREATE EXTENSION IF NOT EXISTS pg_mig");
    EXPECT_EQ("pg_mig " + *c.scalar("SELECT mig_version()"),
              *c.scalar("SELECT string_agg(module_name || ' ' || version, ', ')"
                        " FROM pg_get_loaded_modules() WHERE file_name LIKE 'pg_mig%'"));
}

TEST(Ops, EveryCommandRefusesAVersionMismatch)
{
    Conn c(Sandbox::get().conninfo());
    c.exec("CREATE DATABASE ops_old");
    {
        Conn old(Sandbox::get().conninfo("ops_old"));
        old.exec("CREATE EXTENSION pg_mig VERSION '0.2'");
        old.exec("CREATE TABLE t (id int PRIMARY KEY, n int NOT NULL DEFAULT 0)");
    }
    for (std::vector<std::string> cmd : {std::vector<std::string>{"status"}, {"metrics"}, {"events", "1"},
                                          {"start", "--table", "t", "--set", "n = 1"}, {"status", "1"},
                                          {"pause", "1"}, {"resume", "1"}, {"cancel", "1"}, {"wait", "1"}}) {
        auto r = migctl_in("ops_old", cmd);
        EXPECT_EQ(3, r.exit_code) << cmd[0] << ": " << r.out << r.err;
        EXPECT_EQ("migctl: the pg_mig library loaded by the server is version 0.4 but the extension in database "
                  "\"ops_old\" is version 0.2\nHINT: Run migctl install to update the extension to 0.4.\n",
                  r.err)
            << cmd[0];
        EXPECT_EQ("", r.out) << cmd[0];
    }
    Conn old(Sandbox::get().conninfo("ops_old"));
    EXPECT_EQ(0, old.scalar_int("SELECT count(*) FROM mig_jobs")) << "start made no job";
    auto v = migctl_in("ops_old", {"--version"});
    EXPECT_EQ(0, v.exit_code) << v.err;
    EXPECT_TRUE(Has(v.out, "library   0.4")) << v.out;
    EXPECT_TRUE(Has(v.out, "extension 0.2 in database \"ops_old\"")) << v.out;
    EXPECT_TRUE(Has(v.err, "WARNING: the pg_mig library loaded by the server is version 0.4 but the extension")) << v.err;
    auto i = migctl_in("ops_old", {"install"});
    EXPECT_EQ(0, i.exit_code) << i.out << i.err;
    EXPECT_TRUE(Has(i.out, "updated extension pg_mig from 0.2 to 0.4")) << i.out;
    EXPECT_EQ(0, migctl_in("ops_old", {"status"}).exit_code);

    // a database without the extension: exit 3 and the way out
    c.exec("CREATE DATABASE ops_none");
    auto none = migctl_in("ops_none", {"status"});
    EXPECT_EQ(3, none.exit_code) << none.out << none.err;
    EXPECT_EQ("migctl: the pg_mig extension is not installed in database \"ops_none\"\nHINT: Run migctl install to "
              "create it, or connect to the database that has it (-d).\n",
              none.err);
}

// The handshake works for a role that may not read shared_preload_libraries
// (a job owner, a monitoring role): it sees the preload through pg_mig's own
// setting. plan, which reports the preload too, works for it as well.
TEST(Ops, HandshakeAsAnUnprivilegedRole)
{
    Conn c(Sandbox::get().conninfo());
    MakeTable(c, "ops_app", 1000);
    c.exec("CREATE ROLE ops_app LOGIN");
    c.exec("GRANT SELECT, UPDATE ON ops_app TO ops_app");
    auto env = migctl_env();
    env["PGUSER"] = "ops_app";
    auto run = [&](std::vector<std::string> args) {
        args.insert(args.begin(), migctl_path());
        return run_command(args, env);
    };
    auto start = run({"start", "--table", "ops_app", "--set", "n = n + 1", "--wait"});
    EXPECT_EQ(0, start.exit_code) << start.out << start.err;
    EXPECT_EQ(1000, c.scalar_int("SELECT count(*) FROM ops_app WHERE n = 1"));
    for (std::vector<std::string> cmd : {std::vector<std::string>{"status"}, {"metrics"}, {"--version"},
                                          {"plan", "--table", "ops_app", "--set", "n = 0", "--samples", "0"}}) {
        auto r = run(cmd);
        EXPECT_EQ(0, r.exit_code) << cmd[0] << ": " << r.out << r.err;
        EXPECT_EQ("", r.err) << cmd[0];
    }
}

// Exit codes come from the SQLSTATE, not from the message: a function in
// the set clause whose name starts with mig_ is bad input (2), not "not
// installed" (3); a finished job cannot be paused (2); no such database (3).
TEST(Ops, ExitCodesFromSqlState)
{
    Conn c(Sandbox::get().conninfo());
    MakeTable(c, "ops_codes", 100);
    auto bad = migctl({"start", "--table", "ops_codes", "--set", "n = mig_no_such_function(1)"});
    EXPECT_EQ(2, bad.exit_code) << bad.out << bad.err;
    EXPECT_TRUE(Has(bad.err, "mig_no_such_function")) << bad.err;
    auto nojobs = migctl({"start", "--table", "ops_codes", "--set", "n = 1", "--where", "mig_jobs.x = 1"});
    EXPECT_EQ(2, nojobs.exit_code) << nojobs.out << nojobs.err;
    long long job = c.scalar_int("SELECT mig_start_backfill('ops_codes', 'n = n + 1')");
    EXPECT_EQ("succeeded", wait_job(c, job, 60));
    auto pause = migctl({"pause", S(job)});
    EXPECT_EQ(2, pause.exit_code) << pause.out << pause.err;
    auto nodb = migctl_in("ops_no_such_database", {"status"});
    EXPECT_EQ(3, nodb.exit_code) << nodb.out << nodb.err;
}

// migctl metrics while a job is held by a paused standby and after it
// ends: promtool accepts the exposition, the samples say what happened; the
// README's alert rules pass promtool check rules.
TEST(Ops, MetricsForPrometheus)
{
    Conn c(Sandbox::get().conninfo());
    Conn standby(Sandbox::get().conninfo("postgres", true));
    MakeTable(c, "ops_metrics", 50000);
    c.exec("SELECT pg_switch_wal()");
    wait_for([&] { return c.scalar_int("SELECT coalesce(max(lag_bytes), 0) FROM mig_replicas()") == 0; }, 120,
             "the standby to catch up");
    standby.exec("SELECT pg_wal_replay_pause()");
    long long job = c.scalar_int("SELECT mig_start_backfill('ops_metrics', 'n = n + 1', batch_size => 2000,"
                                 " chunk_time => NULL, max_lag_bytes => 1048576)");
    wait_for([&] { return job_throttled(c, job).has_value(); }, 60, "the job to throttle");
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));

    auto m = migctl({"metrics"});
    ASSERT_EQ(0, m.exit_code) << m.err;
    auto check = Promtool("metrics", m.out);
    EXPECT_EQ(0, check.exit_code) << check.out << check.err << m.out;
    std::string labels = "{job_id=\"" + S(job) + "\",relation=\"ops_metrics\",kind=\"backfill\",database=\"postgres\"";
    EXPECT_EQ(1, Sample(m.out, "pg_mig_job_state" + labels + ",state=\"running\"}")) << m.out;
    EXPECT_EQ(-1, Sample(m.out, "pg_mig_job_state" + labels + ",state=\"succeeded\"}")) << "one state per job";
    EXPECT_EQ(job_rows_done(c, job), Sample(m.out, "pg_mig_job_rows_done_total" + labels + "}")) << m.out;
    EXPECT_GE(Sample(m.out, "pg_mig_job_throttled_for_seconds" + labels + "}"), 1.0) << m.out;
    EXPECT_GE(Sample(m.out, "pg_mig_job_throttled_seconds_total" + labels + "}"), 1.0) << m.out;
    EXPECT_GT(Sample(m.out, "pg_mig_replica_lag_bytes{replica=\"standby1\",type=\"standby\",database=\"postgres\"}"),
              1048576.0 / 2)
        << m.out;

    standby.exec("SELECT pg_wal_replay_resume()");
    EXPECT_EQ("succeeded", wait_job(c, job, 300));
    auto done = migctl({"metrics"});
    ASSERT_EQ(0, done.exit_code) << done.err;
    EXPECT_EQ(0, Promtool("metrics", done.out).exit_code) << done.out;
    EXPECT_EQ(1, Sample(done.out, "pg_mig_job_state" + labels + ",state=\"succeeded\"}")) << done.out;
    EXPECT_EQ(-1, Sample(done.out, "pg_mig_job_state" + labels + ",state=\"running\"}")) << done.out;
    EXPECT_EQ(50000, Sample(done.out, "pg_mig_job_rows_done_total" + labels + "}")) << done.out;
    EXPECT_EQ(50000, Sample(done.out, "pg_mig_job_rows_estimated" + labels + "}")) << done.out;
    EXPECT_EQ(0, Sample(done.out, "pg_mig_job_throttled_for_seconds" + labels + "}")) << done.out;
    // the spell ended with the unthrottled event: its length is what the worker measured
    double total = Sample(done.out, "pg_mig_job_throttled_seconds_total" + labels + "}");
    double measured = std::stod(*c.scalar(
        "SELECT sum(substring(detail FROM '^after ([0-9.]+) s')::numeric)::text FROM mig_job_events"
        " WHERE job_id = $1 AND event = 'unthrottled'",
        {S(job)}));
    EXPECT_NEAR(measured, total, 0.5) << done.out;
    // a finished job drops out after --finished-within
    auto recent = migctl({"metrics", "--finished-within", "0"});
    EXPECT_EQ(-1, Sample(recent.out, "pg_mig_job_state" + labels + ",state=\"succeeded\"}")) << recent.out;
    EXPECT_EQ(2, migctl({"metrics", "--finished-within", "soon"}).exit_code);

    // the alert rules the README points to (0.4: integrations/grafana/)
    std::string rules = read_file(source_dir() + "/integrations/grafana/pg_mig-rules.yml");
    ASSERT_FALSE(rules.empty());
    auto rc = Promtool("rules", rules);
    EXPECT_EQ(0, rc.exit_code) << rc.out << rc.err << rules;
    EXPECT_TRUE(Has(rc.out, "SUCCESS: 4 rules found")) << rc.out;
}

// status --watch on a terminal redraws one line per job in place: two
// screens a few seconds apart show the job on exactly one line each time,
// with different progress, though the line is wider than the terminal.
TEST(Ops, WatchRedrawsInPlaceOnATerminal)
{
    Conn c(Sandbox::get().conninfo());
    MakeTable(c, "ops_watch_table_with_a_long_name", 4000);
    long long job = c.scalar_int("SELECT mig_start_backfill('ops_watch_table_with_a_long_name', 'n = n + 1',"
                                 " batch_size => 100, chunk_time => NULL, sleep => '250ms')");
    std::string tag = "job " + S(job) + " ";
    Tmux tmux(migctl_path() + " status " + S(job) + " --watch");
    wait_for([&] { return LinesWith(tmux.Capture(), tag).size() == 1 && job_rows_done(c, job) >= 300; }, 60,
             "the live view");
    std::this_thread::sleep_for(std::chrono::seconds(1));
    auto first = tmux.Capture();
    std::this_thread::sleep_for(std::chrono::seconds(3));
    auto second = tmux.Capture();
    auto a = LinesWith(first, tag), b = LinesWith(second, tag);
    ASSERT_EQ(1u, a.size()) << first;
    ASSERT_EQ(1u, b.size()) << second;
    EXPECT_NE(a[0], b[0]) << "the progress moved";
    size_t columns = 0;  // characters, not bytes: the bar is drawn with block characters
    for (unsigned char ch : a[0]) columns += (ch & 0xC0) != 0x80;
    EXPECT_LE(columns, 80u) << a[0];
    // and nothing else on the screen: no scrolled copies, no stray lines
    auto nonblank = [](const std::string& s) {
        std::istringstream in(s);
        int n = 0;
        for (std::string line; std::getline(in, line);) n += line.find_first_not_of(' ') != std::string::npos;
        return n;
    };
    EXPECT_EQ(1, nonblank(second)) << second;
    c.exec("SELECT mig_cancel($1)", {S(job)});
}

// the bash completion offers the server's job ids for a command that takes one
TEST(Ops, CompletionOffersJobIds)
{
    Conn c(Sandbox::get().conninfo());
    MakeTable(c, "ops_complete", 10);
    long long job = c.scalar_int("SELECT mig_start_backfill('ops_complete', 'n = n + 1')");
    EXPECT_EQ("succeeded", wait_job(c, job, 60));
    auto& sb = Sandbox::get();
    std::string script = "source " + source_dir() + "/controller/migctl.bash-completion; COMP_WORDS=(" +
                         migctl_path() + " -h " + sb.dir + " -p " + S(sb.primary_port) +
                         " -U postgres events ''); COMP_CWORD=8; _migctl; printf '%s\\n' \"${COMPREPLY[@]}\"";
    auto r = run_command({"env", "-i", "PATH=/usr/bin:/bin", "bash", "-c", script});
    EXPECT_EQ(0, r.exit_code) << r.err;
    EXPECT_TRUE(std::regex_search(r.out, std::regex("(^|\n)" + S(job) + "\n"))) << r.out;
    // not after a command without a job
    auto none = run_command({"env", "-i", "PATH=/usr/bin:/bin", "bash", "-c",
                             "source " + source_dir() + "/controller/migctl.bash-completion; COMP_WORDS=(" +
                                 migctl_path() + " -h " + sb.dir + " -p " + S(sb.primary_port) +
                                 " metrics ''); COMP_CWORD=6; _migctl; echo ${#COMPREPLY[@]}"});
    EXPECT_EQ("0\n", none.out) << none.err;
}

// start --wait on a terminal: "started job N" first, then the live view,
// never a bare job id among the progress lines
TEST(Ops, StartWaitOnATerminalNamesTheJobOnce)
{
    Conn c(Sandbox::get().conninfo());
    MakeTable(c, "ops_startwait", 2000);
    Tmux tmux(migctl_path() + " start --table ops_startwait --set 'n = n + 1' --batch-size 100"
                              " --chunk-time 0 --sleep 100ms --wait; echo exit=$?");
    wait_for([&] { return Has(tmux.Capture(), "exit="); }, 120, "start --wait to end");
    auto screen = tmux.Capture();
    EXPECT_TRUE(Has(screen, "exit=0")) << screen;
    long long job = c.scalar_int("SELECT max(job_id) FROM mig_jobs WHERE relation = 'ops_startwait'::regclass");
    EXPECT_EQ(1u, LinesWith(screen, "started job " + S(job)).size()) << screen;
    EXPECT_EQ(1u, LinesWith(screen, "job " + S(job) + " ops_startwait").size()) << screen;
    EXPECT_FALSE(std::regex_search(screen, std::regex("(^|\n) *[0-9]+ *(\n|$)"))) << screen;
    EXPECT_EQ(2000, c.scalar_int("SELECT count(*) FROM ops_startwait WHERE n = 1"));
}

// Between a package upgrade and ALTER EXTENSION pg_mig UPDATE the library
// is newer than the SQL objects: every function of the old SQL, called with
// its defaults, works or fails with SQLSTATE 55000 and the hint to update;
// never a cast error from an old default (0.1's and 0.2's read
// pg_mig.default_max_lag_bytes with ::bigint; 0.3 made it a size setting).
// The views of the old SQL work. After the update a job with every default
// runs.
TEST(Ops, OldSqlWorksOrSaysToUpdate)
{
    Conn c(Sandbox::get().conninfo());
    EXPECT_EQ("67108864", *c.scalar("SHOW pg_mig.default_max_lag_bytes"));
    EXPECT_EQ("67108864", *c.scalar("SELECT current_setting('pg_mig.default_max_lag_bytes')"));
    EXPECT_EQ("B", *c.scalar("SELECT unit FROM pg_settings WHERE name = 'pg_mig.default_max_lag_bytes'"));
    c.exec("SET pg_mig.default_max_lag_bytes = '16MB'");
    EXPECT_EQ("16777216", *c.scalar("SHOW pg_mig.default_max_lag_bytes"));
    c.exec("RESET pg_mig.default_max_lag_bytes");
    for (std::string version : {"0.1", "0.2", "0.3"}) {
        std::string db = "ops_sql_" + version.substr(2);
        c.exec("CREATE DATABASE " + db);
        Conn old(Sandbox::get().conninfo(db));
        old.exec("CREATE EXTENSION pg_mig VERSION '" + version + "'");
        old.exec("CREATE TABLE t (id int PRIMARY KEY, n int)");
        old.exec("INSERT INTO t SELECT g, 0 FROM generate_series(1, 100) g");
        // every function of the extension but the triggers, with its
        // arguments that have no default
        auto funcs = old.rows(
            "SELECT p.oid::regprocedure::text, p.proname,"
            " (SELECT string_agg(format_type(u.t, NULL), ',' ORDER BY u.i)"
            "    FROM unnest(p.proargtypes) WITH ORDINALITY u(t, i)"
            "   WHERE u.i <= p.pronargs - p.pronargdefaults)"
            " FROM pg_proc p JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid"
            " JOIN pg_extension e ON e.oid = d.refobjid AND d.deptype = 'e'"
            " WHERE e.extname = 'pg_mig' AND p.prorettype <> 'trigger'::regtype ORDER BY 1");
        EXPECT_GE(funcs.size(), 9u) << version;
        int refused = 0, worked = 0;
        for (const auto& f : funcs) {
            std::string sig = *f[0], name = *f[1], types = f[2].value_or("");
            std::vector<std::string> args;
            std::stringstream in(types);
            for (std::string t; std::getline(in, t, ',');) {
                std::string v = t == "regclass" ? "'t'"
                                : t == "text" ? "'n = 1'"
                                : t == "name" ? "'n'"
                                : t == "name[]" ? "'{n}'"
                                : t == "interval" ? "'1s'"
                                : t == "boolean" ? "false"
                                                 : "1";
                args.push_back(v + "::" + t);
            }
            std::string call = "SELECT * FROM " + name + "(";
            for (size_t i = 0; i < args.size(); i++) call += (i ? ", " : "") + args[i];
            call += ")";
            try {
                old.exec(call);
                worked++;
            } catch (const PgError& e) {
                refused++;
                EXPECT_EQ("55000", e.sqlstate) << version << " " << sig << ": " << e.what();
                EXPECT_EQ("Run ALTER EXTENSION pg_mig UPDATE.", e.hint) << version << " " << sig;
                EXPECT_TRUE(Has(e.what(), "extension \"pg_mig\" is at version " + version +
                                              " in this database, but its library is version 0.4"))
                    << version << " " << sig << ": " << e.what();
            }
        }
        EXPECT_GE(refused, 6) << version;  // start, pause, resume, cancel, wait, set
        EXPECT_GE(worked, 3) << version;   // mig_version, mig_worker_status, mig_replicas
        EXPECT_EQ("0.4", *old.scalar("SELECT mig_version()"));
        for (const auto& v : old.rows("SELECT c.oid::regclass::text FROM pg_class c"
                                      " JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid"
                                      " JOIN pg_extension e ON e.oid = d.refobjid AND d.deptype = 'e'"
                                      " WHERE e.extname = 'pg_mig' AND c.relkind = 'v'"))
            EXPECT_NO_THROW(old.exec("SELECT * FROM " + *v[0])) << version << " " << *v[0];
        EXPECT_EQ(0, old.scalar_int("SELECT count(*) FROM mig_jobs")) << version << ": no job was made";
        // updated: a backfill with every default runs
        old.exec("ALTER EXTENSION pg_mig UPDATE");
        long long job = old.scalar_int("SELECT mig_start_backfill('t', 'n = n + 1')");
        EXPECT_EQ("succeeded", wait_job(old, job, 60)) << version;
        EXPECT_EQ(100, old.scalar_int("SELECT count(*) FROM t WHERE n = 1")) << version;
    }
}

namespace {
// The extension's objects in the catalog of the connected database, one
// line each, sorted: functions (arguments, defaults, result, language,
// volatility, strictness, security, settings, body, privileges, comment),
// relations (kind, privileges, row security, options, comment) with their
// columns (position among the live ones, type, not null, default,
// identity, comment, privileges), constraints, indexes, triggers, policies
// and view definitions, sequences, types, every member of the extension
// and its configuration tables.
std::vector<std::string> ExtensionCatalog(Conn& c)
{
    const char* q = R"SQL(
WITH m AS (
  SELECT d.classid, d.objid FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
   WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e' AND e.extname = 'pg_mig'),
rels AS (SELECT c.* FROM pg_class c JOIN m ON m.classid = 'pg_class'::regclass AND m.objid = c.oid)
SELECT 'member ' || pg_describe_object(m.classid, m.objid, 0) FROM m
UNION ALL
SELECT concat_ws(' | ', 'function', p.oid::regprocedure, pg_get_function_arguments(p.oid),
       pg_get_function_result(p.oid), l.lanname, p.provolatile, p.proisstrict, p.prosecdef,
       p.proleakproof, p.proparallel, p.procost, p.prorows, p.proconfig::text, p.probin,
       md5(p.prosrc), p.proacl::text, obj_description(p.oid, 'pg_proc'))
  FROM pg_proc p JOIN m ON m.classid = 'pg_proc'::regclass AND m.objid = p.oid
  JOIN pg_language l ON l.oid = p.prolang
UNION ALL
SELECT concat_ws(' | ', 'relation', r.oid::regclass, r.relkind, r.relpersistence, r.relacl::text,
       r.relrowsecurity, r.relforcerowsecurity, r.reloptions::text, r.relhasindex, r.relreplident,
       obj_description(r.oid, 'pg_class'))
  FROM rels r
UNION ALL
SELECT concat_ws(' | ', 'column', r.oid::regclass,
       row_number() OVER (PARTITION BY r.oid ORDER BY a.attnum), a.attname,
       format_type(a.atttypid, a.atttypmod), a.attnotnull, pg_get_expr(ad.adbin, ad.adrelid),
       a.attidentity, a.attgenerated, a.attcollation::regcollation, a.attacl::text,
       col_description(r.oid, a.attnum))
  FROM rels r JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
  LEFT JOIN pg_attrdef ad ON ad.adrelid = r.oid AND ad.adnum = a.attnum
UNION ALL
SELECT concat_ws(' | ', 'constraint', r.oid::regclass, co.conname, pg_get_constraintdef(co.oid),
       co.condeferrable, co.condeferred, co.convalidated, obj_description(co.oid, 'pg_constraint'))
  FROM rels r JOIN pg_constraint co ON co.conrelid = r.oid
UNION ALL
SELECT concat_ws(' | ', 'index', r.oid::regclass, pg_get_indexdef(i.indexrelid),
       i.indisprimary, i.indisunique, i.indisclustered, i.indisreplident)
  FROM rels r JOIN pg_index i ON i.indrelid = r.oid
UNION ALL
SELECT concat_ws(' | ', 'trigger', r.oid::regclass, pg_get_triggerdef(t.oid), t.tgenabled)
  FROM rels r JOIN pg_trigger t ON t.tgrelid = r.oid AND NOT t.tgisinternal
UNION ALL
SELECT concat_ws(' | ', 'policy', r.oid::regclass, po.polname, po.polcmd, po.polpermissive,
       po.polroles::regrole[]::text, pg_get_expr(po.polqual, po.polrelid), pg_get_expr(po.polwithcheck, po.polrelid))
  FROM rels r JOIN pg_policy po ON po.polrelid = r.oid
UNION ALL
SELECT concat_ws(' | ', 'view', r.oid::regclass, pg_get_viewdef(r.oid))
  FROM rels r WHERE r.relkind IN ('v', 'm')
UNION ALL
SELECT concat_ws(' | ', 'sequence', s.seqrelid::regclass, format_type(s.seqtypid, NULL), s.seqstart,
       s.seqincrement, s.seqmax, s.seqmin, s.seqcache, s.seqcycle,
       (SELECT pg_describe_object(d.refclassid, d.refobjid, d.refobjsubid) FROM pg_depend d
         WHERE d.classid = 'pg_class'::regclass AND d.objid = s.seqrelid AND d.deptype IN ('a', 'i')))
  FROM pg_sequence s
 WHERE s.seqrelid IN (SELECT oid FROM rels)
    OR s.seqrelid IN (SELECT d.objid FROM pg_depend d JOIN rels r ON d.refobjid = r.oid
                       WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass)
UNION ALL
SELECT concat_ws(' | ', 'type', t.oid::regtype, t.typtype, t.typacl::text, obj_description(t.oid, 'pg_type'))
  FROM pg_type t JOIN m ON m.classid = 'pg_type'::regclass AND m.objid = t.oid
UNION ALL
SELECT concat_ws(' | ', 'config', u.c::regclass, u.cond)
  FROM pg_extension e, unnest(e.extconfig, e.extcondition) u(c, cond) WHERE e.extname = 'pg_mig'
UNION ALL
SELECT concat_ws(' | ', 'extension', e.extversion, e.extrelocatable, e.extnamespace::regnamespace,
       obj_description(e.oid, 'pg_extension'))
  FROM pg_extension e WHERE e.extname = 'pg_mig'
ORDER BY 1
)SQL";
    std::vector<std::string> out;
    for (const auto& r : c.rows(q)) out.push_back(r[0].value_or("(null)"));
    return out;
}
}  // namespace

// Issue 23 item 6: CREATE EXTENSION pg_mig runs the full install script of
// the current version (sql/pg_mig.sql, installed as pg_mig--0.4.sql); its
// catalog equals the one of 0.1's script plus every upgrade script.
TEST(Ops, FreshInstallEqualsTheUpgradePath)
{
    Conn c(Sandbox::get().conninfo());
    c.exec("CREATE DATABASE ops_fresh");
    c.exec("CREATE DATABASE ops_upgraded");
    Conn fresh(Sandbox::get().conninfo("ops_fresh"));
    Conn upgraded(Sandbox::get().conninfo("ops_upgraded"));
    fresh.exec("CREATE EXTENSION pg_mig");
    upgraded.exec("CREATE EXTENSION pg_mig VERSION '0.1'");
    upgraded.exec("ALTER EXTENSION pg_mig UPDATE");
    // not a replay: the default version has an install script of its own
    EXPECT_EQ("t", *fresh.scalar("SELECT (pg_stat_file((SELECT setting FROM pg_config WHERE name = 'SHAREDIR')"
                                 " || '/extension/pg_mig--0.4.sql')).size > 0"));
    auto a = ExtensionCatalog(fresh), b = ExtensionCatalog(upgraded);
    EXPECT_GT(a.size(), 100u);
    std::string only_fresh, only_upgraded;
    for (const auto& l : a)
        if (std::find(b.begin(), b.end(), l) == b.end()) only_fresh += "  " + l + "\n";
    for (const auto& l : b)
        if (std::find(a.begin(), a.end(), l) == a.end()) only_upgraded += "  " + l + "\n";
    EXPECT_EQ("", only_fresh) << "only after CREATE EXTENSION pg_mig:\n" << only_fresh;
    EXPECT_EQ("", only_upgraded) << "only after VERSION '0.1' + UPDATE:\n" << only_upgraded;
}
