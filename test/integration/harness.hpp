// harness.hpp -- the integration tests' view of a real sandbox: one primary
// + streaming standby per test binary (scripts/sandbox.sh), libpq
// connections with RAII, and a runner for commands such as migctl.
#pragma once

#include <libpq-fe.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace pgmig_test {

struct Sandbox {
    static Sandbox& get();
    std::string dir;   // also the unix socket directory
    std::string base;  // the test's temp directory (dir's parent, mode 755)
    int primary_port = 0;
    int standby_port = 0;
    // the servers' major version: the one scripts/sandbox.sh was given
    // (PGMIG_PG=15|17|18|19, PG_CONFIG, or the pg_config on PATH; it checks
    // that the primary runs it), for tests whose expectation depends on it
    int pg_major = 0;
    // the argv prefix that runs a client program of the server's own version
    // (pg_dump, pg_restore, ... refuse a newer server than theirs): the
    // server's bin directory, through scripts/pgchroot.sh for 17's and 19's chroots
    std::vector<std::string> pg_program(const std::string& name) const;
    std::string conninfo(const std::string& db = "postgres", bool standby = false,
                         const std::string& user = "postgres") const;
    int ctl(const std::string& server, const std::string& pg_ctl_args);  // exit code
    // failover: the primary dies (immediate stop), the standby is promoted
    // and is the primary from then on (conninfo() follows); a new standby is
    // made from it. Exit code of sandbox.sh failover.
    int failover();
    std::string primary_log() const;
};

struct PgError : std::runtime_error {
    PgError(const std::string& msg, std::string state, std::string h)
        : std::runtime_error(msg), sqlstate(std::move(state)), hint(std::move(h)) {}
    std::string sqlstate, hint;
};

using Params = std::vector<std::optional<std::string>>;
using Rows = std::vector<std::vector<std::optional<std::string>>>;

class Conn {
public:
    explicit Conn(const std::string& conninfo);
    void exec(const std::string& sql, const Params& params = {});
    std::optional<std::string> scalar(const std::string& sql, const Params& params = {});
    long long scalar_int(const std::string& sql, const Params& params = {});
    Rows rows(const std::string& sql, const Params& params = {});
    PGconn* raw() { return conn_.get(); }

private:
    struct Deleter {
        void operator()(PGconn* c) const { PQfinish(c); }
    };
    std::unique_ptr<PGconn, Deleter> conn_;
};

struct CmdResult {
    int exit_code;
    std::string out, err;
};
CmdResult run_command(const std::vector<std::string>& argv,
                      const std::map<std::string, std::string>& extra_env = {},
                      double timeout_s = 120);
std::string migctl_path();
std::string source_dir();
void wait_for(const std::function<bool()>& pred, double timeout_s, const std::string& what);
std::string wait_job(Conn& c, long long job_id, double timeout_s);
// a job's throttle reason (nothing while it runs freely) and committed rows
std::optional<std::string> job_throttled(Conn& c, long long job_id);
long long job_rows_done(Conn& c, long long job_id);

}  // namespace pgmig_test
