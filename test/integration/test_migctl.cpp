// test_migctl.cpp -- the real migctl binary against the sandbox.
#include "harness.hpp"

#include <gtest/gtest.h>

#include <algorithm>

using namespace pgmig_test;

namespace {
std::map<std::string, std::string> Env()
{
    auto& sb = Sandbox::get();
    return {{"PGHOST", sb.dir}, {"PGPORT", std::to_string(sb.primary_port)}, {"PGUSER", "postgres"},
            {"PGDATABASE", "postgres"}};
}

CmdResult Migctl(std::vector<std::string> args, double timeout = 120)
{
    args.insert(args.begin(), migctl_path());
    return run_command(args, Env(), timeout);
}

int Lines(const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }
}  // namespace

TEST(Migctl, InstallTwiceIsIdempotent)
{
    auto r1 = Migctl({"install"});
    EXPECT_EQ(0, r1.exit_code) << r1.out << r1.err;
    auto r2 = Migctl({"install"});
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
    auto r = Migctl({"start", "--table", "mc_orders", "--set", "tracking_id = 'TRK-' || id", "--where",
                     "tracking_id IS NULL", "--batch-size", "1000", "--wait"});
    EXPECT_EQ(0, r.exit_code) << r.out << r.err;
    EXPECT_EQ(0, c.scalar_int("SELECT count(*) FROM mc_orders WHERE tracking_id IS NULL"));
    long long job = c.scalar_int("SELECT max(job_id) FROM mig_jobs WHERE relation = 'mc_orders'::regclass");

    auto s = Migctl({"status", "--json"});
    EXPECT_EQ(0, s.exit_code) << s.err;
    EXPECT_NE(std::string::npos, s.out.find("\"job_id\"")) << s.out;
    EXPECT_NE(std::string::npos, s.out.find("succeeded")) << s.out;
    // the JSON parses: the server's JSON parser is the judge
    EXPECT_EQ(1, c.scalar_int("SELECT count(*) FROM (SELECT $1::jsonb AS j) s WHERE j::text LIKE '%mc_orders%'",
                              {s.out}));

    auto e = Migctl({"events", std::to_string(job)});
    EXPECT_EQ(0, e.exit_code) << e.err;
    EXPECT_NE(std::string::npos, e.out.find("succeeded")) << e.out;
}

TEST(Migctl, BadTableExitsTwoWithOneLine)
{
    auto r = Migctl({"start", "--table", "no_such_table", "--set", "a = 1"});
    EXPECT_EQ(2, r.exit_code) << r.out << r.err;
    EXPECT_GE(Lines(r.err), 1);
    EXPECT_LE(Lines(r.err), 2) << r.err;  // the message, and the server's hint if any
    EXPECT_EQ(0u, r.err.rfind("migctl: ", 0)) << r.err;
}

TEST(Migctl, WrongPortExitsThree)
{
    auto env = Env();
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
    auto p = Migctl({"pause", std::to_string(job)});
    EXPECT_EQ(0, p.exit_code) << p.err;
    auto r = Migctl({"wait", std::to_string(job), "--timeout", "1s"});
    EXPECT_EQ(4, r.exit_code) << r.out << r.err;
    auto x = Migctl({"cancel", std::to_string(job)});
    EXPECT_EQ(0, x.exit_code) << x.err;
    auto w = Migctl({"wait", std::to_string(job)});
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
    auto r = Migctl({"status", std::to_string(job), "--watch"}, 120);
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
    auto r = Migctl({"set", std::to_string(job), "--batch-size", "500", "--sleep", "0", "--max-lag-bytes", "16MB"});
    EXPECT_EQ(0, r.exit_code) << r.err;
    EXPECT_EQ(16LL * 1024 * 1024, c.scalar_int("SELECT max_lag_bytes FROM mig_jobs WHERE job_id = $1",
                                               {std::to_string(job)}));
    EXPECT_EQ("succeeded", wait_job(c, job, 60));
    EXPECT_EQ(2, Migctl({"set", std::to_string(job), "--sleep", "5x"}).exit_code);
    EXPECT_EQ(2, Migctl({"set", std::to_string(job)}).exit_code);
}
