// fixture.hpp -- what the integration tests share on top of the sandbox
// (harness.hpp): the primary with pg_mig, test tables, values read across a
// crash, the job's worker, crashes and restarts of the primary, the
// standby's replay, an application that writes, and migctl.
//
// A helper that cannot do what it says (a kill that fails, a server that
// does not restart, a wait that times out) throws, which fails the test.
#pragma once

#include "harness.hpp"

#include <atomic>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace pgmig_test {

// Sets the postgresql.conf lines of this binary's sandbox (SANDBOX_CONF);
// call it before main, where the sandbox starts:
//   const bool kConf = sandbox_conf("fsync = off\n");
// kWorkersConf: eight workers, the launcher looking every second.
bool sandbox_conf(const std::string& lines);
extern const char* const kWorkersConf;

// A number as a query parameter.
std::string S(long long v);

// A connection to the primary's database db as user.
Conn primary_as(const std::string& db = "postgres", const std::string& user = "postgres");

// The contents of a file (empty if there is none).
std::string read_file(const std::string& path);

// A connection to the primary's database postgres, with pg_mig created there.
Conn pg_mig_primary();

// CREATE TABLE name (columns), then INSERT INTO name SELECT select_list FROM
// generate_series(1, rows) g; select_list names g for the row number.
void create_table(Conn& c, const std::string& name, const std::string& columns,
                  const std::string& select_list, long long rows);

// One value from a new connection to the primary, or nothing while the
// server is down or restarts (after a kill -9 the postmaster needs a moment
// to notice, so a query can succeed and the next one meet "the database
// system is in recovery mode").
std::optional<std::string> try_scalar(const std::string& sql, const Params& params = {});
// The first value try_scalar gets, within timeout_s.
std::string wait_scalar(const std::string& sql, const Params& params, const std::string& what,
                        double timeout_s = 120);

// A job's rows_done and its count of events of one kind (mig_job_events);
// job_rows_done(job) asks a new connection, across restarts.
long long job_rows_done(long long job_id);
long long job_events(Conn& c, long long job_id, const std::string& event);

// The pid of the job's worker, once it runs.
long long worker_pid(long long job_id);

// The checkpointer's pid: every crash or restart made below replaces it (a
// crash of any backend makes the postmaster restart all its children).
std::string checkpointer_pid();
// Waits until the primary has gone through a crash or restart (a new
// checkpointer) and accepts connections again.  Without the first part a
// query can slip in before the postmaster notices a kill and the next meet
// recovery mode.
void wait_primary_restarted(const std::string& old_checkpointer);

// Kills the job's worker with SIGKILL (the server restarts all its
// processes) and waits until the primary is back.
void kill_worker(long long job_id);
// pg_ctl stop -m immediate, then start: a crash of the primary; and
// pg_ctl restart -m fast.  Both wait until the primary is back.
void crash_primary();
void restart_primary();

// Waits until the standby has replayed everything the primary wrote so far.
void wait_standby();

// Failover: waits until the standby has replayed everything, then the
// primary dies (immediate stop) and the standby is promoted; the fixture
// (Sandbox::get().conninfo(), pg_mig_primary(), ...) points at the promoted
// server from then on, and a new standby streams from it.  Returns once the
// promoted server accepts connections.
void failover_to_standby();

// An application that updates random rows of table (id 1 .. rows, a column
// w int), one short transaction at a time, from a thread of its own until
// stopped; it counts the updates it got done and reconnects after errors.
class AppWriter {
public:
    AppWriter(const std::string& table, int rows);
    ~AppWriter();
    AppWriter(const AppWriter&) = delete;
    AppWriter& operator=(const AppWriter&) = delete;
    void stop();
    long long done() const { return done_; }

private:
    void run();
    std::string table_;
    int rows_;
    std::atomic<bool> stop_{false};
    std::atomic<long long> done_{0};
    std::thread thread_;
};

// The environment that points migctl at the primary, and migctl run with it.
// migctl_in runs it against the primary's database db.
std::map<std::string, std::string> migctl_env(const std::string& db = "postgres");
CmdResult migctl(std::vector<std::string> args, double timeout_s = 120);
CmdResult migctl_in(const std::string& db, std::vector<std::string> args, double timeout_s = 120);

}  // namespace pgmig_test
