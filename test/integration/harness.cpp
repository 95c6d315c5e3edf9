// harness.cpp -- see harness.hpp. main() starts one sandbox for the test
// binary, runs the tests, and stops and removes the sandbox.
#include "harness.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

namespace pgmig_test {

namespace {
Sandbox g_sandbox;

struct ResultDeleter {
    void operator()(PGresult* r) const { PQclear(r); }
};
using Result = std::unique_ptr<PGresult, ResultDeleter>;

std::string Field(const PGresult* r, int field)
{
    const char* v = PQresultErrorField(r, field);
    return v ? v : "";
}

int Shell(const std::string& cmd) { int rc = std::system(cmd.c_str()); return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1; }

std::string ReadEnv(const std::string& dir, const std::string& key)
{
    std::ifstream f(dir + "/env");
    std::string line;
    while (std::getline(f, line)) {
        std::string prefix = "export " + key + "=";
        if (line.rfind(prefix, 0) == 0) return line.substr(prefix.size());
    }
    return "";
}

int ReadEnvInt(const std::string& dir, const std::string& key)
{
    std::string v = ReadEnv(dir, key);
    return v.empty() ? 0 : std::stoi(v);
}
}  // namespace

Sandbox& Sandbox::get() { return g_sandbox; }

std::string Sandbox::conninfo(const std::string& db, bool standby, const std::string& user) const
{
    return "host=" + dir + " port=" + std::to_string(standby ? standby_port : primary_port) +
           " dbname=" + db + " user=" + user + " connect_timeout=10";
}

int Sandbox::ctl(const std::string& server, const std::string& args)
{
    return Shell(source_dir() + "/scripts/sandbox.sh ctl " + dir + " " + server + " " + args);
}

std::vector<std::string> Sandbox::pg_program(const std::string& name) const
{
    std::vector<std::string> argv;
    std::string chroot = ReadEnv(dir, "SANDBOX_PG_CHROOT");
    if (!chroot.empty()) {
        argv.push_back(source_dir() + "/scripts/pgchroot.sh");
        argv.push_back("--chroot");
        argv.push_back(chroot);
    }
    argv.push_back(ReadEnv(dir, "SANDBOX_PG_BINDIR") + "/" + name);
    return argv;
}

int Sandbox::failover()
{
    int rc = Shell(source_dir() + "/scripts/sandbox.sh failover " + dir);
    primary_port = ReadEnvInt(dir, "PRIMARY_PORT");
    standby_port = ReadEnvInt(dir, "STANDBY_PORT");
    return rc;
}

std::string Sandbox::primary_log() const
{
    std::ifstream f(ReadEnv(dir, "PRIMARY_DATA") + ".log");
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
}

Conn::Conn(const std::string& conninfo) : conn_(PQconnectdb(conninfo.c_str()))
{
    if (PQstatus(conn_.get()) != CONNECTION_OK)
        throw PgError(PQerrorMessage(conn_.get()), "08006", "");
}

static Result Exec(PGconn* c, const std::string& sql, const Params& params)
{
    std::vector<const char*> values;
    for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
    Result r(PQexecParams(c, sql.c_str(), static_cast<int>(values.size()), nullptr,
                          values.data(), nullptr, nullptr, 0));
    auto st = PQresultStatus(r.get());
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        throw PgError(std::string(PQresultErrorMessage(r.get())) + " [" + sql + "]",
                      Field(r.get(), PG_DIAG_SQLSTATE), Field(r.get(), PG_DIAG_MESSAGE_HINT));
    return r;
}

void Conn::exec(const std::string& sql, const Params& params) { Exec(raw(), sql, params); }

std::optional<std::string> Conn::scalar(const std::string& sql, const Params& params)
{
    Result r = Exec(raw(), sql, params);
    if (PQntuples(r.get()) < 1 || PQnfields(r.get()) < 1 || PQgetisnull(r.get(), 0, 0))
        return std::nullopt;
    return std::string(PQgetvalue(r.get(), 0, 0));
}

long long Conn::scalar_int(const std::string& sql, const Params& params)
{
    auto v = scalar(sql, params);
    if (!v) throw std::runtime_error("NULL where a number was expected: " + sql);
    return std::stoll(*v);
}

Rows Conn::rows(const std::string& sql, const Params& params)
{
    Result r = Exec(raw(), sql, params);
    Rows out;
    for (int i = 0; i < PQntuples(r.get()); i++) {
        std::vector<std::optional<std::string>> row;
        for (int j = 0; j < PQnfields(r.get()); j++)
            row.push_back(PQgetisnull(r.get(), i, j) ? std::nullopt
                                                      : std::optional<std::string>(PQgetvalue(r.get(), i, j)));
        out.push_back(std::move(row));
    }
    return out;
}

CmdResult run_command(const std::vector<std::string>& argv,
                      const std::map<std::string, std::string>& extra_env, double timeout_s)
{
    int out[2], err[2];
    if (pipe(out) != 0 || pipe(err) != 0) throw std::runtime_error("pipe failed");
    pid_t pid = fork();
    if (pid == 0) {
        dup2(out[1], 1);
        dup2(err[1], 2);
        close(out[0]); close(err[0]); close(out[1]); close(err[1]);
        int devnull = open("/dev/null", O_RDONLY);
        dup2(devnull, 0);
        for (const auto& [k, v] : extra_env) setenv(k.c_str(), v.c_str(), 1);
        std::vector<char*> args;
        for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        execvp(args[0], args.data());
        _exit(127);
    }
    close(out[1]);
    close(err[1]);
    CmdResult res{-1, "", ""};
    auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
    pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
    int open_fds = 2;
    while (open_fds > 0) {
        if (std::chrono::steady_clock::now() > deadline) { kill(pid, SIGKILL); break; }
        if (poll(fds, 2, 200) <= 0) continue;
        for (int i = 0; i < 2; i++) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP))) continue;
            char buf[4096];
            ssize_t n = read(fds[i].fd, buf, sizeof buf);
            if (n <= 0) { close(fds[i].fd); fds[i].fd = -1; open_fds--; continue; }
            (i == 0 ? res.out : res.err).append(buf, n);
        }
    }
    int status = 0;
    waitpid(pid, &status, 0);
    res.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return res;
}

std::string migctl_path() { return MIGCTL_PATH; }
std::string source_dir() { return PGMIG_SOURCE_DIR; }

void wait_for(const std::function<bool()>& pred, double timeout_s, const std::string& what)
{
    auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
    while (!pred()) {
        if (std::chrono::steady_clock::now() > deadline)
            throw std::runtime_error("timed out waiting for " + what);
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
}

std::string wait_job(Conn& c, long long job_id, double timeout_s)
{
    std::string state;
    wait_for(
        [&] {
            state = c.scalar("SELECT state FROM mig_jobs WHERE job_id = $1", {std::to_string(job_id)})
                        .value_or("?");
            return state == "succeeded" || state == "failed" || state == "cancelled";
        },
        timeout_s, "job " + std::to_string(job_id));
    return state;
}

std::optional<std::string> job_throttled(Conn& c, long long job_id)
{
    return c.scalar("SELECT throttled FROM mig_jobs WHERE job_id = $1", {std::to_string(job_id)});
}

long long job_rows_done(Conn& c, long long job_id)
{
    return c.scalar_int("SELECT rows_done FROM mig_jobs WHERE job_id = $1", {std::to_string(job_id)});
}

}  // namespace pgmig_test

int main(int argc, char** argv)
{
    ::testing::InitGoogleTest(&argc, argv);
    using namespace pgmig_test;
    char tmpl[] = "/tmp/pgmig-it.XXXXXX";
    if (!mkdtemp(tmpl)) return 2;
    chmod(tmpl, 0755);  // the sandbox user must reach it
    g_sandbox.base = tmpl;
    g_sandbox.dir = std::string(tmpl) + "/sb";
    // a test binary may set SANDBOX_CONF before main (a static initializer);
    // @BASE@ in it stands for the temp directory made here
    std::string conf = getenv("SANDBOX_CONF") ? getenv("SANDBOX_CONF") : "fsync = off";
    for (size_t at; (at = conf.find("@BASE@")) != std::string::npos;) conf.replace(at, 6, tmpl);
    setenv("SANDBOX_CONF", conf.c_str(), 1);
    if (Shell(source_dir() + "/scripts/sandbox.sh start " + g_sandbox.dir + " >/dev/null") != 0) {
        std::fprintf(stderr, "could not start the sandbox in %s\n", g_sandbox.dir.c_str());
        return 2;
    }
    g_sandbox.primary_port = ReadEnvInt(g_sandbox.dir, "PRIMARY_PORT");
    g_sandbox.standby_port = ReadEnvInt(g_sandbox.dir, "STANDBY_PORT");
    g_sandbox.pg_major = ReadEnvInt(g_sandbox.dir, "SANDBOX_PG_MAJOR");
    std::fprintf(stderr, "sandbox: PostgreSQL %d in %s\n", g_sandbox.pg_major, g_sandbox.dir.c_str());
    int rc = RUN_ALL_TESTS();
    if (rc != 0) {
        std::string log = g_sandbox.primary_log();
        std::fprintf(stderr, "---- last lines of the primary's log ----\n%s\n",
                     log.substr(log.size() > 6000 ? log.size() - 6000 : 0).c_str());
    }
    if (getenv("PGMIG_KEEP_SANDBOX")) {  // for debugging: stop the servers, keep the files
        Shell(source_dir() + "/scripts/sandbox.sh stop " + g_sandbox.dir);
        std::fprintf(stderr, "sandbox kept in %s\n", tmpl);
        return rc;
    }
    Shell(source_dir() + "/scripts/sandbox.sh stop " + g_sandbox.dir + " --remove");
    Shell("rm -rf '" + std::string(tmpl) + "'");
    return rc;
}
