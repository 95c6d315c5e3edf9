// test_upgrade.cpp -- the package upgrade with jobs in flight, with the real
// released libraries: the sandbox runs a copy of this checkout's server
// (scripts/release.sh server) into which the released pg_mig 0.2, then
// 0.3, then this checkout's 0.4 are installed, as a package upgrade does,
// each followed by a restart of the primary and the standby.
//
// 0.2 runs jobs in a database at 0.2; 0.3 runs jobs in every state in a
// database at 0.3 (running with a non-idempotent n = n + 1 at a slow pace,
// paused, failed, with lanes, keeping old values). Then with 0.4 loaded and
// the extensions not yet updated: the jobs wait, saying why in mig_jobs
// (the old SQL's view), and the old functions fail with the hint to update;
// after ALTER EXTENSION pg_mig UPDATE they go on by themselves (no
// restart) and every row is changed exactly once, on the primary and the
// standby; the kept values still revert.
//
// The released versions are built once per version (build/releases/TAG-pgN);
// PostgreSQL 17 runs in a chroot whose server is not copied: skipped there.
#include "fixture.hpp"

#include <gtest/gtest.h>

#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <string>

using namespace pgmig_test;

namespace {

std::string g_tmp;        // holds the server copy
std::string g_pg_config;  // the copy's pg_config
std::string g_release[2]; // build/releases/v0.2-pgN and v0.3-pgN
std::string g_setup_error;

// Output of a shell command, or an error in g_setup_error
std::string Run(const std::string& cmd)
{
    std::string out;
    FILE* p = popen(cmd.c_str(), "r");
    if (!p) {
        g_setup_error = "cannot run " + cmd;
        return "";
    }
    char buf[4096];
    while (size_t n = fread(buf, 1, sizeof(buf), p)) out.append(buf, n);
    int rc = pclose(p);
    if (rc != 0 && g_setup_error.empty()) g_setup_error = cmd + " failed: " + out;
    while (!out.empty() && out.back() == '\n') out.pop_back();
    return out;
}

// Before main() starts the sandbox: build the releases, copy the server,
// install 0.2 into it and make the sandbox run it (PG_CONFIG).
struct ServerCopy {
    ServerCopy()
    {
        const char* pg = getenv("PGMIG_PG");
        if (!pg || (std::string(pg) != "15" && std::string(pg) != "18")) {
            g_setup_error = "skip: the upgrade test runs with PGMIG_PG=15 or 18 (a copy of build/pg/N)";
            return;
        }
        std::string script = std::string(PGMIG_SOURCE_DIR) + "/scripts/release.sh";
        g_release[0] = Run(script + " build v0.2");
        g_release[1] = Run(script + " build v0.3");
        if (!g_setup_error.empty()) return;
        char tmpl[] = "/tmp/pgmig-upgrade.XXXXXX";
        if (!mkdtemp(tmpl)) {
            g_setup_error = "mkdtemp failed";
            return;
        }
        chmod(tmpl, 0755);
        g_tmp = tmpl;
        g_pg_config = Run(script + " server " + g_tmp + "/server");
        if (!g_setup_error.empty()) return;
        Run(script + " install " + g_release[0] + " " + g_pg_config);
        if (!g_setup_error.empty()) return;
        // room for every job and lane at once (0.3's per-role limit is
        // half of it); every version knows the setting
        setenv("SANDBOX_CONF", "fsync = off\npg_mig.max_workers = 12", 1);
        setenv("PG_CONFIG", g_pg_config.c_str(), 1);
        // scripts/test.sh exports the server it resolved (PG_BINDIR comes
        // before PG_CONFIG in scripts/pgenv.sh): the copy only
        unsetenv("PGMIG_PG");
        unsetenv("PG_BINDIR");
    }
    ~ServerCopy()  // after main() stopped the sandbox
    {
        if (!g_tmp.empty()) Run("rm -rf '" + g_tmp + "'");
    }
};
ServerCopy g_server_copy;

// stop both servers, install the pg_mig of dir, start both
void SwapLibrary(const std::string& dir)
{
    auto& sb = Sandbox::get();
    ASSERT_EQ(0, sb.ctl("standby", "stop -m fast"));
    ASSERT_EQ(0, sb.ctl("primary", "stop -m fast"));
    Run(std::string(PGMIG_SOURCE_DIR) + "/scripts/release.sh install " + dir + " " + g_pg_config);
    ASSERT_EQ("", g_setup_error);
    ASSERT_EQ(0, sb.ctl("primary", "start"));
    ASSERT_EQ(0, sb.ctl("standby", "start"));
}

void Table(Conn& c, const std::string& name, int rows, const std::string& extra = "")
{
    c.exec("CREATE TABLE " + name + " (id int PRIMARY KEY, n int NOT NULL DEFAULT 0" + extra + ")");
    c.exec("INSERT INTO " + name + " (id) SELECT g FROM generate_series(1, " + S(rows) + ") g");
}

long long Start(Conn& c, const std::string& table, const std::string& knobs = "")
{
    return c.scalar_int("SELECT mig_start_backfill('" + table +
                        "', 'n = n + 1', batch_size => 50, chunk_time => NULL, sleep => '1s'" + knobs + ")");
}

long long RowsDone(Conn& c, long long job) { return c.scalar_int("SELECT rows_done FROM mig_jobs WHERE job_id = " + S(job)); }

void WaitRows(Conn& c, long long job, long long rows)
{
    wait_for([&] { return RowsDone(c, job) >= rows; }, 180, "job " + S(job) + " to change " + S(rows) + " rows");
}

long long Count(Conn& c, const std::string& sql) { return c.scalar_int(sql); }

// every row changed at most once, and as many rows as the job says
void ExpectOnce(Conn& c, const std::string& table, long long job)
{
    EXPECT_EQ(0, Count(c, "SELECT count(*) FROM " + table + " WHERE n NOT IN (0, 1)")) << table;
    EXPECT_EQ(RowsDone(c, job), Count(c, "SELECT count(*) FROM " + table + " WHERE n = 1")) << table;
}

// a call refused with the update hint
void ExpectRefused(Conn& c, const std::string& sql, const std::string& version)
{
    try {
        c.exec(sql);
        ADD_FAILURE() << sql << " worked with the extension at " << version;
    } catch (const PgError& e) {
        EXPECT_EQ("55000", e.sqlstate) << sql << ": " << e.what();
        EXPECT_EQ("Run ALTER EXTENSION pg_mig UPDATE.", e.hint) << sql << ": " << e.what();
        EXPECT_NE(std::string::npos, std::string(e.what()).find("is at version " + version +
                                                                " in this database, but its library is version 0.4"))
            << e.what();
    }
}

// waits until every job of jobs shows reason in mig_jobs.throttled; fails
// with what the jobs show else
void WaitThrottled(Conn& c, std::vector<long long> jobs, const std::string& reason)
{
    try {
        for (long long job : jobs)
            wait_for([&] { return job_throttled(c, job) == reason; }, 90,
                     "job " + S(job) + " to show: " + reason);
    } catch (const std::exception& e) {
        std::string all;
        for (const auto& r : c.rows("SELECT job_id, state, throttled FROM mig_jobs ORDER BY 1"))
            all += "\n  " + r[0].value_or("") + " " + r[1].value_or("") + " " + r[2].value_or("(null)");
        ADD_FAILURE() << e.what() << "; the jobs:" << all;
    }
}

std::string Waiting(const std::string& version)
{
    return "waiting for ALTER EXTENSION pg_mig UPDATE (the library is 0.4, the extension " + version + ")";
}

}  // namespace

TEST(Upgrade, JobsInFlightGoOnAfterTheUpdate)
{
    if (g_setup_error.rfind("skip:", 0) == 0) GTEST_SKIP() << g_setup_error;
    ASSERT_EQ("", g_setup_error);
    auto& sb = Sandbox::get();

    // ---- 0.2: a database at 0.2, a job running and one paused
    Conn admin(sb.conninfo());
    ASSERT_EQ("0.2", *admin.scalar("SELECT default_version FROM pg_available_extensions WHERE name = 'pg_mig'"));
    admin.exec("CREATE DATABASE up02");
    long long a_run, a_paused;
    {
        Conn c(sb.conninfo("up02"));
        c.exec("CREATE EXTENSION pg_mig");
        Table(c, "a_run", 10000);
        Table(c, "a_paused", 3000);
        a_run = Start(c, "a_run");
        a_paused = Start(c, "a_paused");
        WaitRows(c, a_paused, 50);
        c.exec("SELECT mig_pause(" + S(a_paused) + ")");
        WaitRows(c, a_run, 100);
    }
    SwapLibrary(g_release[1]);

    // ---- 0.3: a database at 0.3 with jobs in every state
    admin = Conn(sb.conninfo());
    ASSERT_EQ("0.3", *admin.scalar("SELECT default_version FROM pg_available_extensions WHERE name = 'pg_mig'"));
    admin.exec("CREATE DATABASE up03");
    long long j_run, j_paused, j_failed, j_lanes, j_kept;
    {
        Conn c(sb.conninfo("up03"));
        c.exec("CREATE EXTENSION pg_mig");
        EXPECT_EQ("0.3", *c.scalar("SELECT mig_version()"));
        Table(c, "r", 10000);
        Table(c, "p", 3000);
        Table(c, "f", 2000, ", CHECK (n < 1 OR id < 300)");
        Table(c, "l", 20000);
        Table(c, "k", 10000);
        j_paused = Start(c, "p");
        j_failed = Start(c, "f", ", max_retries => 0");
        j_lanes = Start(c, "l", ", parallel => 2");
        j_kept = Start(c, "k", ", keep_old_values => true");
        WaitRows(c, j_paused, 50);
        c.exec("SELECT mig_pause(" + S(j_paused) + ")");
        EXPECT_EQ("failed", wait_job(c, j_failed, 180));
        j_run = Start(c, "r");  // last: it must still run at the restart
        WaitRows(c, j_run, 100);
        WaitRows(c, j_lanes, 200);
        WaitRows(c, j_kept, 100);
    }
    // PGMIG_UPGRADE_TO: another build to upgrade to (release.sh build REF),
    // e.g. to see this test fail on an older main
    const char* to = getenv("PGMIG_UPGRADE_TO");
    SwapLibrary(to ? to : PGMIG_SOURCE_DIR);

    // ---- 0.4 loaded, the extensions not updated: the jobs wait, saying why
    Conn c3(sb.conninfo("up03"));
    Conn c2(sb.conninfo("up02"));
    EXPECT_EQ("0.4", *c3.scalar("SELECT mig_version()"));
    EXPECT_EQ("0.3", *c3.scalar("SELECT extversion FROM pg_extension WHERE extname = 'pg_mig'"));
    WaitThrottled(c3, {j_run, j_lanes, j_kept}, Waiting("0.3"));
    WaitThrottled(c2, {a_run}, Waiting("0.2"));
    EXPECT_EQ("paused", *c3.scalar("SELECT state FROM mig_jobs WHERE job_id = " + S(j_paused)));
    EXPECT_EQ(std::nullopt, job_throttled(c3, j_paused));
    EXPECT_EQ("failed", *c3.scalar("SELECT state FROM mig_jobs WHERE job_id = " + S(j_failed)));
    EXPECT_NE(std::nullopt, c3.scalar("SELECT last_error FROM mig_jobs WHERE job_id = " + S(j_failed)));
    EXPECT_EQ("paused", *c2.scalar("SELECT state FROM mig_jobs WHERE job_id = " + S(a_paused)));
    // nothing runs: no worker, and the rows are the checkpoints' rows
    EXPECT_EQ(0, Count(c3, "SELECT count(*) FROM mig_jobs WHERE worker_pid IS NOT NULL"));
    for (auto [t, job] : {std::pair<std::string, long long>{"r", j_run}, {"p", j_paused}, {"f", j_failed},
                          {"l", j_lanes}, {"k", j_kept}})
        ExpectOnce(c3, t, job);
    ExpectOnce(c2, "a_run", a_run);
    ExpectOnce(c2, "a_paused", a_paused);
    // the old functions fail with the hint, their defaults included
    ExpectRefused(c3, "SELECT mig_pause(" + S(j_run) + ")", "0.3");
    ExpectRefused(c3, "SELECT mig_start_backfill('r', 'n = n + 1')", "0.3");
    ExpectRefused(c3, "SELECT mig_revert(" + S(j_kept) + ")", "0.3");
    ExpectRefused(c2, "SELECT mig_start_backfill('a_run', 'n = n + 1')", "0.2");
    ExpectRefused(c2, "SELECT mig_resume(" + S(a_paused) + ")", "0.2");
    EXPECT_EQ(0, Count(c3, "SELECT count(*) FROM mig_jobs WHERE job_id > " + S(j_run)));

    // ---- ALTER EXTENSION pg_mig UPDATE: the jobs go on by themselves
    long long before = RowsDone(c3, j_run);
    c3.exec("ALTER EXTENSION pg_mig UPDATE");
    EXPECT_EQ("0.4", *c3.scalar("SELECT extversion FROM pg_extension WHERE extname = 'pg_mig'"));
    WaitRows(c3, j_run, before + 100);
    for (long long job : {j_run, j_lanes, j_kept}) {
        EXPECT_NE(Waiting("0.3"), job_throttled(c3, job).value_or(""));
        c3.exec("SELECT mig_set(" + S(job) + ", sleep => '0', batch_size => 500)");
    }
    c3.exec("SELECT mig_resume(" + S(j_paused) + ")");
    for (long long job : {j_run, j_lanes, j_kept, j_paused}) EXPECT_EQ("succeeded", wait_job(c3, job, 300)) << job;
    EXPECT_EQ("failed", *c3.scalar("SELECT state FROM mig_jobs WHERE job_id = " + S(j_failed)));
    c2.exec("ALTER EXTENSION pg_mig UPDATE");
    c2.exec("SELECT mig_set(" + S(a_run) + ", sleep => '0', batch_size => 500)");
    c2.exec("SELECT mig_resume(" + S(a_paused) + ")");
    c2.exec("SELECT mig_set(" + S(a_paused) + ", sleep => '0', batch_size => 500)");
    for (long long job : {a_run, a_paused}) EXPECT_EQ("succeeded", wait_job(c2, job, 300)) << job;

    // every row exactly once, on the primary and the standby
    wait_standby();
    struct Expect {
        std::string db, table;
        long long ones;
    };
    long long failed_rows = RowsDone(c3, j_failed);
    EXPECT_GT(failed_rows, 0);
    std::vector<Expect> expect = {{"up03", "r", 10000}, {"up03", "p", 3000}, {"up03", "f", failed_rows},
                                  {"up03", "l", 20000}, {"up03", "k", 10000}, {"up02", "a_run", 10000},
                                  {"up02", "a_paused", 3000}};
    for (bool standby : {false, true}) {
        for (const auto& e : expect) {
            Conn c(sb.conninfo(e.db, standby));
            EXPECT_EQ(e.ones, Count(c, "SELECT count(*) FROM " + e.table + " WHERE n = 1"))
                << e.db << "." << e.table << (standby ? " on the standby" : "");
            EXPECT_EQ(0, Count(c, "SELECT count(*) FROM " + e.table + " WHERE n NOT IN (0, 1)"))
                << e.db << "." << e.table << (standby ? " on the standby" : "");
        }
    }
    for (long long job : {j_run, j_lanes, j_kept}) EXPECT_EQ(job == j_lanes ? 20000 : 10000, RowsDone(c3, job)) << job;
    EXPECT_EQ(3000, RowsDone(c3, j_paused));

    // the values kept by 0.3 revert
    long long rev = c3.scalar_int("SELECT mig_revert(" + S(j_kept) + ", batch_size => 1000)");
    EXPECT_EQ("succeeded", wait_job(c3, rev, 300));
    EXPECT_EQ(10000, Count(c3, "SELECT count(*) FROM k WHERE n = 0"));
    // and a new job runs on the updated extension, with every default
    long long fresh = c3.scalar_int("SELECT mig_start_backfill('r', 'n = n + 1')");
    EXPECT_EQ("succeeded", wait_job(c3, fresh, 300));
    EXPECT_EQ(10000, Count(c3, "SELECT count(*) FROM r WHERE n = 2"));
}
