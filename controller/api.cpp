// api.cpp -- see api.hpp. Values always travel as $n parameters.
#include "api.hpp"

namespace migctl {

InstallReport Api::Install(bool configure)
{
    InstallReport rep;
    rep.server_version = c_.exec("SELECT current_setting('server_version')").get(0, 0);
    if (std::stoi(c_.exec("SELECT current_setting('server_version_num')").get(0, 0)) < 130000)
        throw Error(kNoConnection, "PostgreSQL " + rep.server_version + " is too old for pg_mig",
                    "pg_mig needs PostgreSQL 13 or later.");
    auto avail = c_.exec("SELECT default_version, installed_version FROM pg_available_extensions WHERE name = 'pg_mig'");
    if (avail.rows() == 0)
        throw Error(kNoConnection, "the pg_mig extension files are not installed on the server",
                    "Run make install in the pg_mig source tree on the database server.");
    rep.available = true;
    if (avail.null(0, 1)) {
        c_.exec("CREATE EXTENSION pg_mig");
        rep.action = "created extension pg_mig " + avail.get(0, 0);
    } else if (avail.get(0, 1) != avail.get(0, 0)) {
        c_.exec("ALTER EXTENSION pg_mig UPDATE");
        rep.action = "updated extension pg_mig from " + avail.get(0, 1) + " to " + avail.get(0, 0);
    } else {
        rep.action = "extension pg_mig " + avail.get(0, 0) + " is installed";
    }
    std::string preload = c_.exec("SELECT current_setting('shared_preload_libraries')").get(0, 0);
    rep.preloaded = c_.exec("SELECT 'pg_mig' = ANY (string_to_array(replace($1, ' ', ''), ','))", {preload}).get(0, 0) == "t";
    if (!rep.preloaded && configure) {
        std::string value = preload.empty() ? "pg_mig" : preload + ",pg_mig";
        // ALTER SYSTEM takes no parameters: the value goes in as a libpq-escaped literal
        std::unique_ptr<char, void (*)(void*)> lit(PQescapeLiteral(c_.raw(), value.c_str(), value.size()),
                                                   PQfreemem);
        if (!lit) throw Error(kUsage, "could not quote shared_preload_libraries");
        c_.exec(std::string("ALTER SYSTEM SET shared_preload_libraries = ") + lit.get());
        rep.action += "; added pg_mig to shared_preload_libraries: restart the server to load it";
    }
    rep.ext_version = c_.exec("SELECT extversion FROM pg_extension WHERE extname = 'pg_mig'").get(0, 0);
    if (rep.preloaded) {
        rep.lib_version = c_.exec("SELECT mig_version()").get(0, 0);
        if (rep.lib_version != rep.ext_version)
            throw Error(kNoConnection,
                        "the loaded pg_mig library is version " + rep.lib_version + " but the extension is version " +
                            rep.ext_version,
                        "Restart the server after installing pg_mig, then run migctl install again.");
    }
    return rep;
}

long long Api::StartBackfill(const std::string& table, const std::string& set,
                             const std::optional<std::string>& where,
                             const std::vector<std::pair<std::string, std::pair<std::string, std::string>>>& args)
{
    std::string sql = "SELECT mig_start_backfill(relation => $1::regclass, set_clause => $2";
    std::vector<Param> params{table, set};
    if (where) {
        params.push_back(*where);
        sql += ", where_clause => $3";
    }
    for (const auto& [name, v] : args) {
        params.push_back(v.first);
        sql += ", " + name + " => $" + std::to_string(params.size()) + "::" + v.second;
    }
    sql += ")";
    return std::stoll(c_.exec(sql, params).get(0, 0));
}

void Api::Set(long long job, const std::vector<std::pair<std::string, std::pair<std::string, std::string>>>& args)
{
    std::string sql = "SELECT mig_set($1";
    std::vector<Param> params{std::to_string(job)};
    for (const auto& [name, v] : args) {
        params.push_back(v.first);
        sql += ", " + name + " => $" + std::to_string(params.size()) + "::" + v.second;
    }
    c_.exec(sql + ")", params);
}

std::vector<Job> Api::Jobs(std::optional<long long> job)
{
    std::string sql =
        "SELECT job_id, relation::text, state, rows_done, rows_total, progress, rows_per_sec,"
        " extract(epoch FROM eta)::bigint, batch_size, throttled, last_error, owner"
        " FROM mig_jobs";
    std::vector<Param> params;
    if (job) {
        sql += " WHERE job_id = $1";
        params.push_back(std::to_string(*job));
    }
    sql += " ORDER BY job_id";
    auto r = c_.exec(sql, params);
    std::vector<Job> out;
    for (int i = 0; i < r.rows(); i++) {
        Job j;
        j.job_id = std::stoll(r.get(i, 0));
        j.relation = r.get(i, 1);
        j.state = r.get(i, 2);
        j.rows_done = std::stoll(r.get(i, 3));
        j.rows_total = r.null(i, 4) ? -1 : std::stoll(r.get(i, 4));
        j.progress = r.null(i, 5) ? -1 : std::stod(r.get(i, 5));
        j.rows_per_sec = r.null(i, 6) ? 0 : std::stod(r.get(i, 6));
        j.eta = r.get(i, 7);
        j.batch_size = std::stoll(r.get(i, 8));
        j.throttled = r.get(i, 9);
        j.last_error = r.get(i, 10);
        j.owner = r.get(i, 11);
        out.push_back(j);
    }
    if (job && out.empty())
        throw Error(kUsage, "job " + std::to_string(*job) + " does not exist", "See migctl status.");
    return out;
}

std::string Api::State(long long job) { return Jobs(job).at(0).state; }

void Api::Control(const std::string& fn, long long job)
{
    static const char* allowed[] = {"mig_pause", "mig_resume", "mig_cancel"};
    bool ok = false;
    for (const char* a : allowed) ok = ok || fn == a;
    if (!ok) throw Error(kUsage, "unknown control function " + fn);
    c_.exec("SELECT " + fn + "($1)", {std::to_string(job)});
}

std::vector<std::vector<std::string>> Api::Events(long long job)
{
    Jobs(job);  // the job exists
    auto r = c_.exec("SELECT to_char(at, 'YYYY-MM-DD HH24:MI:SS.MS'), event, coalesce(detail, '')"
                     " FROM mig_job_events WHERE job_id = $1 ORDER BY event_id",
                     {std::to_string(job)});
    std::vector<std::vector<std::string>> out;
    for (int i = 0; i < r.rows(); i++) out.push_back({r.get(i, 0), r.get(i, 1), r.get(i, 2)});
    return out;
}

long long Api::MaxLagBytes()
{
    auto r = c_.exec("SELECT coalesce(max(lag_bytes), 0) FROM mig_replicas()");
    return std::stoll(r.get(0, 0));
}

}  // namespace migctl
