// test_ops.cpp -- migctl for operators, against the sandbox: --version and
// the version handshake on every command, exit codes from SQLSTATEs,
// metrics checked by promtool (and the README's alert rules by promtool
// check rules), and the live views on a real terminal (tmux).
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
std::string S(long long v) { return std::to_string(v); }

std::map<std::string, std::string> Env(const std::string& db = "postgres")
{
    auto& sb = Sandbox::get();
    return {{"PGHOST", sb.dir}, {"PGPORT", S(sb.primary_port)}, {"PGUSER", "postgres"}, {"PGDATABASE", db}};
}

CmdResult Migctl(std::vector<std::string> args, const std::string& db = "postgres")
{
    args.insert(args.begin(), migctl_path());
    return run_command(args, Env(db));
}

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

std::string ReadFile(const std::string& path)
{
    std::ifstream f(path);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
}

// A tmux server of this test's own (by socket name), running one command
// in an 80x24 terminal.
struct Tmux {
    std::string sock = "pgmig-it-ops-" + S(getpid());
    explicit Tmux(const std::string& command)
    {
        std::string env;
        for (const auto& [k, v] : Env()) env += k + "=" + v + " ";
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
    auto r = Migctl({"--version"});
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
    auto env = Env();
    env["PGPORT"] = "1";
    auto down = run_command({migctl_path(), "--version"}, env);
    EXPECT_EQ(3, down.exit_code) << down.out << down.err;
    EXPECT_EQ("migctl 0.4\n", down.out);
}

// The handshake runs before every command: an extension whose SQL objects
// are older than the loaded library (ALTER EXTENSION not run) is refused
// with both versions and what to do; --version warns; install fixes it.
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
                                          {"start", "--table", "t", "--set", "n = 1"}}) {
        auto r = Migctl(cmd, "ops_old");
        EXPECT_EQ(3, r.exit_code) << cmd[0] << ": " << r.out << r.err;
        EXPECT_EQ("migctl: the pg_mig library loaded by the server is version 0.4 but the extension in database "
                  "\"ops_old\" is version 0.2\nHINT: Run migctl install to update the extension to 0.4.\n",
                  r.err)
            << cmd[0];
        EXPECT_EQ("", r.out) << cmd[0];
    }
    Conn old(Sandbox::get().conninfo("ops_old"));
    EXPECT_EQ(0, old.scalar_int("SELECT count(*) FROM mig_jobs")) << "start made no job";
    auto v = Migctl({"--version"}, "ops_old");
    EXPECT_EQ(0, v.exit_code) << v.err;
    EXPECT_TRUE(Has(v.out, "library   0.4")) << v.out;
    EXPECT_TRUE(Has(v.out, "extension 0.2 in database \"ops_old\"")) << v.out;
    EXPECT_TRUE(Has(v.err, "WARNING: the pg_mig library loaded by the server is version 0.4 but the extension")) << v.err;
    auto i = Migctl({"install"}, "ops_old");
    EXPECT_EQ(0, i.exit_code) << i.out << i.err;
    EXPECT_TRUE(Has(i.out, "updated extension pg_mig from 0.2 to 0.4")) << i.out;
    EXPECT_EQ(0, Migctl({"status"}, "ops_old").exit_code);

    // a database without the extension: exit 3 and the way out
    c.exec("CREATE DATABASE ops_none");
    auto none = Migctl({"status"}, "ops_none");
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
    auto env = Env();
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
    auto bad = Migctl({"start", "--table", "ops_codes", "--set", "n = mig_no_such_function(1)"});
    EXPECT_EQ(2, bad.exit_code) << bad.out << bad.err;
    EXPECT_TRUE(Has(bad.err, "mig_no_such_function")) << bad.err;
    auto nojobs = Migctl({"start", "--table", "ops_codes", "--set", "n = 1", "--where", "mig_jobs.x = 1"});
    EXPECT_EQ(2, nojobs.exit_code) << nojobs.out << nojobs.err;
    long long job = c.scalar_int("SELECT mig_start_backfill('ops_codes', 'n = n + 1')");
    EXPECT_EQ("succeeded", wait_job(c, job, 60));
    auto pause = Migctl({"pause", S(job)});
    EXPECT_EQ(2, pause.exit_code) << pause.out << pause.err;
    auto nodb = Migctl({"status"}, "ops_no_such_database");
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

    auto m = Migctl({"metrics"});
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
    auto done = Migctl({"metrics"});
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
    auto recent = Migctl({"metrics", "--finished-within", "0"});
    EXPECT_EQ(-1, Sample(recent.out, "pg_mig_job_state" + labels + ",state=\"succeeded\"}")) << recent.out;
    EXPECT_EQ(2, Migctl({"metrics", "--finished-within", "soon"}).exit_code);

    // the alert rules the README gives, between its markers
    std::string readme = ReadFile(source_dir() + "/README.md");
    std::smatch rules;
    ASSERT_TRUE(std::regex_search(readme, rules, std::regex("```yaml\n(# pg_mig alert rules[^`]*)```")));
    auto rc = Promtool("rules", rules[1].str());
    EXPECT_EQ(0, rc.exit_code) << rc.out << rc.err << rules[1].str();
    EXPECT_TRUE(Has(rc.out, "SUCCESS: 3 rules found")) << rc.out;
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
