// fixture.cpp -- see fixture.hpp.
#include "fixture.hpp"

#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>

namespace pgmig_test {

namespace {
const char* kCheckpointerPid = "SELECT pid::text FROM pg_stat_activity WHERE backend_type = 'checkpointer'";

void Ctl(const std::string& args)
{
    if (Sandbox::get().ctl("primary", args) != 0) throw std::runtime_error("pg_ctl " + args + " failed");
}
}  // namespace

bool sandbox_conf(const std::string& lines)
{
    setenv("SANDBOX_CONF", lines.c_str(), 1);
    return true;
}

const char* const kWorkersConf =
    "fsync = off\n"
    "pg_mig.max_workers = 8\n"
    "pg_mig.naptime = 1\n";

std::string S(long long v) { return std::to_string(v); }

Conn primary_as(const std::string& db, const std::string& user)
{
    return Conn(Sandbox::get().conninfo(db, false, user));
}

std::string read_file(const std::string& path)
{
    std::ifstream f(path);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
}

Conn pg_mig_primary()
{
    Conn c(Sandbox::get().conninfo());
    c.exec("CREATE EXTENSION IF NOT EXISTS pg_mig");
    return c;
}

void create_table(Conn& c, const std::string& name, const std::string& columns,
                  const std::string& select_list, long long rows)
{
    c.exec("CREATE TABLE " + name + " (" + columns + ")");
    c.exec("INSERT INTO " + name + " SELECT " + select_list + " FROM generate_series(1, $1::int) g",
           {std::to_string(rows)});
}

std::optional<std::string> try_scalar(const std::string& sql, const Params& params)
{
    try {
        Conn c(Sandbox::get().conninfo());
        return c.scalar(sql, params);
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

std::string wait_scalar(const std::string& sql, const Params& params, const std::string& what,
                        double timeout_s)
{
    std::optional<std::string> v;
    wait_for([&] { return (v = try_scalar(sql, params)).has_value(); }, timeout_s, what);
    return *v;
}

long long job_rows_done(long long job_id)
{
    return std::stoll(wait_scalar("SELECT rows_done FROM mig_jobs WHERE job_id = $1", {std::to_string(job_id)},
                                  "the job's rows_done"));
}

long long job_events(Conn& c, long long job_id, const std::string& event)
{
    return c.scalar_int("SELECT count(*) FROM mig_job_events WHERE job_id = $1 AND event = $2",
                        {std::to_string(job_id), event});
}

long long worker_pid(long long job_id)
{
    return std::stoll(wait_scalar("SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_mig worker'"
                                  " AND application_name = $1",
                                  {"pg_mig job " + std::to_string(job_id)}, "the job's worker to run"));
}

std::string checkpointer_pid() { return wait_scalar(kCheckpointerPid, {}, "the checkpointer's pid"); }

void wait_primary_restarted(const std::string& old_checkpointer)
{
    wait_for(
        [&] {
            auto v = try_scalar(kCheckpointerPid);
            return v && *v != old_checkpointer;
        },
        120, "the primary to restart");
}

void kill_worker(long long job_id)
{
    std::string checkpointer = checkpointer_pid();
    long long pid = worker_pid(job_id);
    if (::kill(static_cast<pid_t>(pid), SIGKILL) != 0)
        throw std::runtime_error("kill -9 " + std::to_string(pid) + " failed");
    wait_primary_restarted(checkpointer);
}

void crash_primary()
{
    std::string checkpointer = checkpointer_pid();
    Ctl("stop -m immediate");
    Ctl("start");
    wait_primary_restarted(checkpointer);
}

void restart_primary()
{
    std::string checkpointer = checkpointer_pid();
    Ctl("restart -m fast");
    wait_primary_restarted(checkpointer);
}

void wait_standby()
{
    Conn p(Sandbox::get().conninfo());
    std::string lsn = *p.scalar("SELECT pg_current_wal_insert_lsn()::text");
    Conn s(Sandbox::get().conninfo("postgres", true));
    wait_for([&] { return s.scalar("SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn", {lsn}) == "t"; }, 120,
             "the standby to replay");
}

void failover_to_standby()
{
    wait_standby();
    int rc = Sandbox::get().failover();
    if (rc != 0) throw std::runtime_error("sandbox.sh failover exited with " + std::to_string(rc));
    wait_scalar("SELECT 1", {}, "the promoted standby to accept connections");
}

AppWriter::AppWriter(const std::string& table, int rows) : table_(table), rows_(rows)
{
    thread_ = std::thread([this] { run(); });
}

AppWriter::~AppWriter() { stop(); }

void AppWriter::stop()
{
    stop_ = true;
    if (thread_.joinable()) thread_.join();
}

void AppWriter::run()
{
    Conn c(Sandbox::get().conninfo());
    std::mt19937 rng(42);
    std::uniform_int_distribution<int> pick(1, rows_);
    while (!stop_) {
        try {
            c.exec("UPDATE " + table_ + " SET w = w + 1 WHERE id = $1", {std::to_string(pick(rng))});
            done_++;
        } catch (const std::exception&) {
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
            try {
                c = Conn(Sandbox::get().conninfo());
            } catch (const std::exception&) {
            }
        }
    }
}

std::map<std::string, std::string> migctl_env(const std::string& db)
{
    auto& sb = Sandbox::get();
    return {{"PGHOST", sb.dir},
            {"PGPORT", std::to_string(sb.primary_port)},
            {"PGUSER", "postgres"},
            {"PGDATABASE", db}};
}

CmdResult migctl(std::vector<std::string> args, double timeout_s)
{
    return migctl_in("postgres", std::move(args), timeout_s);
}

CmdResult migctl_in(const std::string& db, std::vector<std::string> args, double timeout_s)
{
    args.insert(args.begin(), migctl_path());
    return run_command(args, migctl_env(db), timeout_s);
}

}  // namespace pgmig_test
