// test_engine.cpp -- the backfill engine on a real primary + standby:
// job control, retries and failures, several jobs and databases, DDL while
// a job runs, notifications, observability and bounded memory.

#include "fixture.hpp"
#include "harness.hpp"

#include <gtest/gtest.h>

#include <libpq-fe.h>
#include <sys/select.h>

#include <chrono>
#include <fstream>
#include <numeric>
#include <sstream>
#include <thread>

using namespace pgmig_test;

namespace {

void MakeTable(Conn& c, const std::string& name, int rows)
{
    c.exec("CREATE EXTENSION IF NOT EXISTS pg_mig");
    c.exec("DROP TABLE IF EXISTS " + name);
    c.exec("CREATE TABLE " + name + " (id int PRIMARY KEY, n int NOT NULL DEFAULT 0, v text)");
    c.exec("INSERT INTO " + name + " (id) SELECT g FROM generate_series(1, $1) g", {S(rows)});
    c.exec("ANALYZE " + name);
}

long long Col(Conn& c, const std::string& col, long long job)
{
    auto v = c.scalar("SELECT " + col + " FROM mig_jobs WHERE job_id = $1", {S(job)});
    return v ? std::stoll(*v) : -1;
}

std::string State(Conn& c, long long job)
{
    return c.scalar("SELECT state FROM mig_jobs WHERE job_id = $1", {S(job)}).value_or("?");
}

}  // namespace

TEST(Engine, PauseStopsWithinOneChunkAndResumeFinishes)
{
    Conn c = primary_as();
    MakeTable(c, "e_pause", 50000);
    long long job = c.scalar_int(
        "SELECT mig_start_backfill('e_pause', 'n = n + 1', batch_size => 200,"
        " chunk_time => NULL, sleep => '20ms')");
    wait_for([&] { return Col(c, "rows_done", job) > 1000; }, 60, "progress");
    c.exec("SELECT mig_pause($1)", {S(job)});
    // once mig_pause has committed, no new chunk starts
    long long at_pause = Col(c, "rows_done", job);
    std::this_thread::sleep_for(std::chrono::milliseconds(800));
    EXPECT_EQ(at_pause, Col(c, "rows_done", job));
    EXPECT_EQ("paused", State(c, job));
    wait_for([&] { return Col(c, "worker_pid", job) < 0; }, 30, "the paused worker to exit");

    c.exec("SELECT mig_set($1, sleep => '0', batch_size => 5000)", {S(job)});
    c.exec("SELECT mig_resume($1)", {S(job)});
    EXPECT_EQ("succeeded", wait_job(c, job, 120));
    EXPECT_EQ(50000, c.scalar_int("SELECT count(*) FROM e_pause WHERE n = 1"));
    EXPECT_EQ(1, job_events(c, job, "paused"));
    EXPECT_EQ(1, job_events(c, job, "resumed"));
    EXPECT_EQ(1, job_events(c, job, "changed"));
}

TEST(Engine, MigSetChangesBatchSizeOfRunningJob)
{
    Conn c = primary_as();
    MakeTable(c, "e_set", 40000);
    long long job = c.scalar_int(
        "SELECT mig_start_backfill('e_set', 'n = n + 1', batch_size => 100,"
        " chunk_time => NULL, sleep => '30ms')");
    wait_for([&] { return Col(c, "chunks_done", job) >= 3; }, 60, "a few chunks");
    c.exec("SELECT mig_set($1, batch_size => 4000, sleep => '0')", {S(job)});
    EXPECT_EQ("succeeded", wait_job(c, job, 120));
    // with 100-row chunks the job would need 400 chunks
    EXPECT_LT(Col(c, "chunks_done", job), 100);
    EXPECT_EQ(4000, Col(c, "batch_size", job));
    EXPECT_EQ(40000, c.scalar_int("SELECT count(*) FROM e_set WHERE n = 1"));
}

TEST(Engine, CancelKeepsCommittedChunks)
{
    Conn c = primary_as();
    MakeTable(c, "e_cancel", 30000);
    long long job = c.scalar_int(
        "SELECT mig_start_backfill('e_cancel', 'n = n + 1', batch_size => 100,"
        " chunk_time => NULL, sleep => '20ms')");
    wait_for([&] { return Col(c, "rows_done", job) > 500; }, 60, "progress");
    c.exec("SELECT mig_cancel($1)", {S(job)});
    EXPECT_EQ("cancelled", *c.scalar("SELECT mig_wait($1, '30s')", {S(job)}));
    wait_for([&] { return Col(c, "worker_pid", job) < 0; }, 30, "the worker to exit");
    long long done = Col(c, "rows_done", job);
    EXPECT_EQ(done, c.scalar_int("SELECT count(*) FROM e_cancel WHERE n = 1"));
    EXPECT_EQ(0, c.scalar_int("SELECT count(*) FROM e_cancel WHERE n > 1"));
}

TEST(Engine, LockedRowIsRetriedAndJobFinishesAfterLockGoes)
{
    Conn c = primary_as();
    MakeTable(c, "e_lock", 20000);
    Conn holder = primary_as();
    holder.exec("BEGIN");
    holder.exec("SELECT * FROM e_lock WHERE id = 10000 FOR UPDATE");
    long long job = c.scalar_int(
        "SELECT mig_start_backfill('e_lock', 'n = n + 1', batch_size => 1000,"
        " chunk_time => NULL, lock_timeout => '100ms', max_retries => 100)");
    std::string holder_pid = *holder.scalar("SELECT pg_backend_pid()::text");
    // one retry, then a wait for the holder's transaction (see test_recovery,
    // AChunkWaitsOutATransactionThatHoldsARow)
    wait_for([&] { return job_events(c, job, "retried") >= 1
                          && c.scalar("SELECT step FROM mig_jobs WHERE job_id = $1", {S(job)}).value_or("")
                                 .find("waits for pid " + holder_pid) != std::string::npos; },
             60, "a retry on the locked row and a wait for its holder");
    EXPECT_EQ("running", State(c, job));
    auto err = c.scalar("SELECT last_error FROM mig_jobs WHERE job_id = $1", {S(job)});
    ASSERT_TRUE(err.has_value());
    EXPECT_NE(std::string::npos, err->find("lock timeout")) << *err;
    // retries split the chunk: the batch shrinks
    std::string detail = *c.scalar("SELECT detail FROM mig_job_events WHERE job_id = $1"
                                   " AND event = 'retried' ORDER BY event_id LIMIT 1", {S(job)});
    EXPECT_NE(std::string::npos, detail.find(", batch 500:")) << detail;
    holder.exec("COMMIT");
    EXPECT_EQ("succeeded", wait_job(c, job, 120));
    EXPECT_EQ(20000, c.scalar_int("SELECT count(*) FROM e_lock WHERE n = 1"));
}

TEST(Engine, PermanentErrorFailsJobAndResumeRetriesIt)
{
    Conn c = primary_as();
    MakeTable(c, "e_fail", 10000);
    c.exec("CREATE TABLE e_fail_gate (open bool)");
    long long job = c.scalar_int(
        "SELECT mig_start_backfill('e_fail', $$n = n + 1 / CASE WHEN id = 6000 AND NOT"
        " EXISTS (SELECT FROM e_fail_gate) THEN 0 ELSE 1 END$$, batch_size => 500,"
        " chunk_time => NULL)");
    EXPECT_EQ("failed", wait_job(c, job, 60));
    auto err = c.scalar("SELECT last_error FROM mig_jobs WHERE job_id = $1", {S(job)});
    ASSERT_TRUE(err.has_value());
    EXPECT_NE(std::string::npos, err->find("division by zero")) << *err;
    // consistent up to the last committed chunk
    long long done = Col(c, "rows_done", job);
    EXPECT_EQ(5500, done);
    EXPECT_EQ(done, c.scalar_int("SELECT count(*) FROM e_fail WHERE n = 1"));
    EXPECT_EQ(0, c.scalar_int("SELECT count(*) FROM e_fail WHERE n = 1 AND id > 5500"));
    EXPECT_EQ(1, job_events(c, job, "failed"));

    c.exec("INSERT INTO e_fail_gate VALUES (true)");
    c.exec("SELECT mig_resume($1)", {S(job)});
    EXPECT_EQ("succeeded", wait_job(c, job, 60));
    EXPECT_EQ(10000, c.scalar_int("SELECT count(*) FROM e_fail WHERE n = 1"));
}

TEST(Engine, SeveralJobsAreBoundedByMaxWorkers)
{
    Conn c = primary_as();
    int max_workers = static_cast<int>(c.scalar_int("SELECT current_setting('pg_mig.max_workers')::int"));
    int njobs = max_workers + 2;
    // one role starts every job here: lift the per-role limit to the
    // cluster's so that pg_mig.max_workers is the bound this test sees
    c.exec("ALTER SYSTEM SET pg_mig.max_workers_per_role = " + S(max_workers));
    c.exec("SELECT pg_reload_conf()");
    wait_for([&] { return c.scalar_int("SELECT current_setting('pg_mig.max_workers_per_role')::int") == max_workers; },
             30, "the per-role limit to be reloaded");
    std::vector<long long> jobs;
    for (int i = 0; i < njobs; i++) {
        MakeTable(c, "e_many" + S(i), 3000);
        jobs.push_back(c.scalar_int("SELECT mig_start_backfill('e_many" + S(i) +
                                    "', 'n = n + 1', batch_size => 100, chunk_time => NULL,"
                                    " sleep => '50ms')"));
    }
    int peak = 0;
    bool saw_reason = false;
    wait_for(
        [&] {
            int running = static_cast<int>(c.scalar_int(
                "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_mig worker'"));
            peak = std::max(peak, running);
            if (c.scalar_int("SELECT count(*) FROM mig_jobs WHERE state = 'queued'"
                             " AND throttled LIKE '%pg_mig worker%'") > 0)
                saw_reason = true;
            return c.scalar_int("SELECT count(*) FROM mig_jobs WHERE job_id >= $1 AND"
                                " state <> 'succeeded'",
                                {S(jobs.front())}) == 0;
        },
        180, "all jobs to finish");
    EXPECT_LE(peak, max_workers);
    EXPECT_GE(peak, 2) << "jobs on different tables should run at once";
    EXPECT_TRUE(saw_reason) << "a queued job should say why it waits";
    for (int i = 0; i < njobs; i++)
        EXPECT_EQ(3000, c.scalar_int("SELECT count(*) FROM e_many" + S(i) + " WHERE n = 1"));
    c.exec("ALTER SYSTEM RESET pg_mig.max_workers_per_role");
    c.exec("SELECT pg_reload_conf()");
}

TEST(Engine, JobsInTwoDatabasesWithoutConfiguration)
{
    Conn c = primary_as();
    c.exec("DROP DATABASE IF EXISTS e_db2");
    c.exec("CREATE DATABASE e_db2");
    Conn c2 = primary_as("e_db2");
    MakeTable(c, "e_db1t", 10000);
    MakeTable(c2, "e_db2t", 10000);
    long long j1 = c.scalar_int("SELECT mig_start_backfill('e_db1t', 'n = n + 1', batch_size => 500)");
    long long j2 = c2.scalar_int("SELECT mig_start_backfill('e_db2t', 'n = n + 1', batch_size => 500)");
    EXPECT_EQ("succeeded", wait_job(c, j1, 60));
    EXPECT_EQ("succeeded", wait_job(c2, j2, 60));
    EXPECT_EQ(10000, c2.scalar_int("SELECT count(*) FROM e_db2t WHERE n = 1"));

    // a dropped database does not wedge the launcher
    c2 = primary_as();  // leave e_db2
    c.exec("DROP DATABASE e_db2");
    MakeTable(c, "e_after_drop", 1000);
    long long j3 = c.scalar_int("SELECT mig_start_backfill('e_after_drop', 'n = n + 1')");
    EXPECT_EQ("succeeded", wait_job(c, j3, 60));
}

TEST(Engine, DropOrRenameOfTheTableFailsTheJobCleanly)
{
    Conn c = primary_as();
    MakeTable(c, "e_drop", 20000);
    long long job = c.scalar_int(
        "SELECT mig_start_backfill('e_drop', 'n = n + 1', batch_size => 100,"
        " chunk_time => NULL, sleep => '20ms')");
    wait_for([&] { return Col(c, "rows_done", job) > 0; }, 60, "progress");
    c.exec("SET lock_timeout = '10s'");
    c.exec("DROP TABLE e_drop");
    EXPECT_EQ("failed", wait_job(c, job, 60));
    auto err = c.scalar("SELECT last_error FROM mig_jobs WHERE job_id = $1", {S(job)});
    ASSERT_TRUE(err.has_value());
    EXPECT_NE(std::string::npos, err->find("e_drop")) << *err;

    MakeTable(c, "e_rename", 20000);
    job = c.scalar_int(
        "SELECT mig_start_backfill('e_rename', 'n = n + 1', batch_size => 100,"
        " chunk_time => NULL, sleep => '20ms')");
    wait_for([&] { return Col(c, "rows_done", job) > 0; }, 60, "progress");
    c.exec("ALTER TABLE e_rename RENAME TO e_renamed");
    c.exec("CREATE TABLE e_rename (id int PRIMARY KEY, n int NOT NULL DEFAULT 0, v text)");
    c.exec("INSERT INTO e_rename (id) SELECT g FROM generate_series(1, 20000) g");
    EXPECT_EQ("failed", wait_job(c, job, 60));
    // the impostor of the same name was never touched
    EXPECT_EQ(0, c.scalar_int("SELECT count(*) FROM e_rename WHERE n <> 0"));
    EXPECT_EQ(0, c.scalar_int("SELECT count(*) FROM e_renamed WHERE n > 1"));

    // a dropped column the set clause uses fails the job too
    MakeTable(c, "e_dropcol", 20000);
    job = c.scalar_int(
        "SELECT mig_start_backfill('e_dropcol', $$v = 'x'$$, batch_size => 100,"
        " chunk_time => NULL, sleep => '20ms')");
    wait_for([&] { return Col(c, "rows_done", job) > 0; }, 60, "progress");
    c.exec("ALTER TABLE e_dropcol DROP COLUMN v");
    EXPECT_EQ("failed", wait_job(c, job, 60));
}

TEST(Engine, NotifiesStateChangesAndShowsInPgStatActivity)
{
    Conn c = primary_as();
    MakeTable(c, "e_notify", 20000);
    Conn listener = primary_as();
    listener.exec("LISTEN pg_mig");
    long long job = c.scalar_int(
        "SELECT mig_start_backfill('e_notify', 'n = n + 1', batch_size => 200,"
        " chunk_time => NULL, sleep => '20ms')");
    // the worker shows who it is and what it does
    wait_for(
        [&] {
            return c.scalar_int("SELECT count(*) FROM pg_stat_activity WHERE backend_type ="
                                " 'pg_mig worker' AND application_name = $1 AND query LIKE"
                                " '%chunk%e_notify%'",
                                {"pg_mig job " + S(job)}) == 1;
        },
        60, "the worker in pg_stat_activity");
    EXPECT_EQ("succeeded", wait_job(c, job, 120));

    std::vector<std::string> payloads;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
        PGconn* raw = listener.raw();
        PQconsumeInput(raw);
        while (PGnotify* n = PQnotifies(raw)) {
            payloads.push_back(n->extra);
            PQfreemem(n);
        }
        if (std::find(payloads.begin(), payloads.end(), S(job) + " succeeded") != payloads.end())
            break;
        int sock = PQsocket(raw);
        fd_set fds;
        FD_ZERO(&fds);
        FD_SET(sock, &fds);
        timeval tv{0, 200000};
        select(sock + 1, &fds, nullptr, nullptr, &tv);
    }
    EXPECT_NE(std::find(payloads.begin(), payloads.end(), S(job) + " queued"), payloads.end());
    EXPECT_NE(std::find(payloads.begin(), payloads.end(), S(job) + " running"), payloads.end());
    EXPECT_NE(std::find(payloads.begin(), payloads.end(), S(job) + " succeeded"), payloads.end());
}

TEST(Engine, ProgressRateAndEtaWhileRunning)
{
    Conn c = primary_as();
    MakeTable(c, "e_progress", 100000);
    long long job = c.scalar_int(
        "SELECT mig_start_backfill('e_progress', 'n = n + 1', batch_size => 1000,"
        " chunk_time => NULL, sleep => '30ms')");
    wait_for([&] { return Col(c, "chunks_done", job) >= 10; }, 60, "ten chunks");
    auto row = c.rows(
        "SELECT rows_total, progress, rows_per_sec, eta, worker_pid FROM mig_jobs WHERE job_id = $1",
        {S(job)});
    ASSERT_EQ(1u, row.size());
    ASSERT_TRUE(row[0][0].has_value());
    EXPECT_NEAR(100000, std::stod(*row[0][0]), 10000);
    ASSERT_TRUE(row[0][1].has_value());
    double progress = std::stod(*row[0][1]);
    EXPECT_GT(progress, 0.0);
    EXPECT_LT(progress, 1.0);
    ASSERT_TRUE(row[0][2].has_value());
    EXPECT_GT(std::stod(*row[0][2]), 0.0);
    EXPECT_TRUE(row[0][3].has_value()) << "eta while running";
    EXPECT_TRUE(row[0][4].has_value()) << "worker_pid while running";
    EXPECT_EQ("succeeded", wait_job(c, job, 120));
    EXPECT_EQ("1", *c.scalar("SELECT progress FROM mig_jobs WHERE job_id = $1", {S(job)}));
}

// Samples the worker's resident memory over a 1,000,000-row backfill; the
// memory of a chunk is freed after it, so there must be no growth trend.
TEST(Engine, WorkerMemoryDoesNotGrowWithTableSize)
{
    Conn c = primary_as();
    MakeTable(c, "e_mem", 1000000);
    long long job = c.scalar_int(
        "SELECT mig_start_backfill('e_mem', 'n = n + 1', batch_size => 5000, chunk_time => NULL)");
    std::vector<long> samples;  // kB
    auto read_rss = [](long long pid) -> long {
        std::ifstream f("/proc/" + std::to_string(pid) + "/status");
        std::string line;
        while (std::getline(f, line))
            if (line.rfind("RssAnon:", 0) == 0) return std::stol(line.substr(8));
        return -1;
    };
    wait_for(
        [&] {
            auto pid = c.scalar("SELECT worker_pid FROM mig_jobs WHERE job_id = $1", {S(job)});
            if (pid) {
                long rss = read_rss(std::stoll(*pid));
                if (rss > 0) samples.push_back(rss);
            }
            // one read of the state: two could straddle queued -> running
            std::string state = State(c, job);
            return state != "running" && state != "queued";
        },
        600, "the 1M-row job");
    EXPECT_EQ("succeeded", State(c, job));
    EXPECT_EQ(1000000, c.scalar_int("SELECT count(*) FROM e_mem WHERE n = 1"));
    ASSERT_GE(samples.size(), 8u) << "too few RSS samples";
    size_t q = samples.size() / 4;
    double first = std::accumulate(samples.begin() + q, samples.begin() + 2 * q, 0.0) / q;
    double last = std::accumulate(samples.end() - q, samples.end(), 0.0) / q;
    long peak = *std::max_element(samples.begin(), samples.end());
    std::printf("worker private RSS (RssAnon) over 1M rows: %zu samples, second quarter %.0f kB, last quarter %.0f kB,"
                " peak %ld kB\n",
                samples.size(), first, last, peak);
    // RssAnon: the worker's private memory, not the shared buffers it touches
    EXPECT_LT(last, first + 8 * 1024) << "worker memory grows with the table";
}

// pg_stat_activity names what pg_mig waits for (17 and later, through
// WaitEventExtensionNew): a worker held by its run window waits in
// PgMigThrottled, the launcher between its rounds in PgMigLauncherMain.
// Before 17 every wait of an extension shows as "Extension".
TEST(Engine, WaitEventsNameTheWorkersAndTheLaunchersWaits)
{
    Conn c = primary_as();
    MakeTable(c, "e_wait_event", 1000);
    auto window = *c.scalar(
        "SELECT to_char(now() + interval '12 hours', 'HH24:MI') || '-' ||"
        " to_char(now() + interval '12 hours 1 minute', 'HH24:MI')");
    long long job = c.scalar_int("SELECT mig_start_backfill('e_wait_event', 'n = n + 1', run_window => $1)",
                                 {window});
    wait_for([&] { return job_throttled(c, job).has_value(); }, 60, "the job to wait for its window");

    bool named = Sandbox::get().pg_major >= 17;
    std::string worker_wait = named ? "PgMigThrottled" : "Extension";
    std::string launcher_wait = named ? "PgMigLauncherMain" : "Extension";
    wait_for([&] {
        auto w = c.scalar("SELECT wait_event_type || '/' || wait_event FROM pg_stat_activity"
                          " WHERE application_name = $1", {"pg_mig job " + S(job)});
        return w && *w == "Extension/" + worker_wait;
    }, 60, "the worker to wait in " + worker_wait);
    wait_for([&] {
        auto w = c.scalar("SELECT wait_event_type || '/' || wait_event FROM pg_stat_activity"
                          " WHERE backend_type = 'pg_mig launcher'");
        return w && *w == "Extension/" + launcher_wait;
    }, 60, "the launcher to wait in " + launcher_wait);

    c.exec("SELECT mig_cancel($1)", {S(job)});
    EXPECT_EQ("cancelled", wait_job(c, job, 60));
}
