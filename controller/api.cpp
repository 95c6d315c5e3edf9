// api.cpp -- see api.hpp. Values always travel as $n parameters.
//
// Trust: migctl is often run by a superuser, in databases where other roles
// may create objects (in a schema early in the search_path, or in the
// extension's own schema). So every statement here names what it uses:
// pg_mig's functions and views as @extschema@.name (the extension's schema,
// read once per connection, quoted by the server), built-in functions,
// types and operators with pg_catalog (OPERATOR(pg_catalog.=), never IN,
// NULLIF or a bare =), and every parameter with its type ($1::pg_catalog.int8),
// so that no function of the same name with other argument types is a
// better match. The session's search_path is pinned (Connection); only the
// statements that resolve or show names the user gave run with the
// caller's own (Connection::execAsCaller).
#include "api.hpp"

#include "hints.hpp"
#include "version.hpp"

#include <sstream>

namespace migctl {

namespace {

// SqlType: a type of NamedArgs as migctl writes it in a cast, qualified
std::string SqlType(const std::string& type)
{
    static const std::map<std::string, std::string> types = {
        {"integer", "pg_catalog.int4"},   {"bigint", "pg_catalog.int8"},
        {"interval", "pg_catalog.interval"}, {"boolean", "pg_catalog.bool"},
        {"double precision", "pg_catalog.float8"}, {"text", "pg_catalog.text"},
        {"text[]", "pg_catalog.text[]"},  {"regclass", "pg_catalog.regclass"},
        {"name", "pg_catalog.name"},      {"name[]", "pg_catalog.name[]"},
    };
    auto it = types.find(type);
    if (it == types.end()) throw Error(kUsage, "unknown SQL type " + type + " of an argument");
    return it->second;
}

// AppendNamedArgs: ", name => $n::type" for each argument (a leading comma
// unless it is the first argument of the call), the values into params
void AppendNamedArgs(const NamedArgs& args, std::string& sql, std::vector<Param>& params)
{
    for (const auto& [name, v] : args) {
        sql += (params.empty() ? "" : ", ") + name + " => $" + std::to_string(params.size() + 1) + "::" +
               SqlType(v.second);
        params.push_back(v.first);
    }
}

// kPreloaded: whether the server preloaded pg_mig, for any role. Reading
// shared_preload_libraries needs pg_read_all_settings (or superuser); a role
// without it (a job owner, a monitoring role) sees pg_mig.max_workers, a
// setting the library defines only while it is being preloaded.
const char* const kPreloaded =
    "CASE WHEN pg_catalog.pg_has_role('pg_read_all_settings', 'USAGE')"
    " THEN 'pg_mig' OPERATOR(pg_catalog.=) ANY (pg_catalog.string_to_array(pg_catalog.replace("
    "   pg_catalog.current_setting('shared_preload_libraries'), ' ', ''), ','))"
    " ELSE pg_catalog.current_setting('pg_mig.max_workers', true) IS NOT NULL END";

}  // namespace

int CompareVersions(const std::string& a, const std::string& b)
{
    std::istringstream x(a), y(b);
    std::string p, q;
    for (;;) {
        bool more_a = static_cast<bool>(std::getline(x, p, '.')), more_b = static_cast<bool>(std::getline(y, q, '.'));
        if (!more_a && !more_b) return 0;
        long long m = more_a ? std::atoll(p.c_str()) : 0, n = more_b ? std::atoll(q.c_str()) : 0;
        if (m != n) return m < n ? -1 : 1;
    }
}

std::optional<Error> VersionProblem(const Versions& v)
{
    std::string db = "database \"" + v.database + "\"";
    if (!v.installed)
        return Error(kNoConnection, "the pg_mig extension is not installed in " + db,
                     "Run migctl install to create it, or connect to the database that has it (-d).");
    if (!v.preloaded)
        return Error(kNoConnection, "pg_mig is not loaded: shared_preload_libraries does not include it",
                     "Run migctl install --configure (or add pg_mig to shared_preload_libraries), then restart "
                     "the server.");
    if (v.library != v.extension)
        return Error(kNoConnection,
                     "the pg_mig library loaded by the server is version " + v.library + " but the extension in " +
                         db + " is version " + v.extension,
                     CompareVersions(v.extension, v.library) < 0
                         ? "Run migctl install to update the extension to " + v.library + "."
                         : "Install the pg_mig " + v.extension +
                               " library on the server (make install or the package) and restart the server.");
    if (v.client != v.extension)
        return Error(kNoConnection,
                     "migctl is version " + v.client + " but the pg_mig extension in " + db + " is version " +
                         v.extension,
                     CompareVersions(v.extension, v.client) < 0
                         ? "Install the pg_mig " + v.client + " library on the server, restart it, then run "
                           "migctl install to update the extension."
                         : "Use the migctl of pg_mig " + v.extension + ".");
    return std::nullopt;
}

Api::Api(Connection& c) : c_(c)
{
    if (auto problem = VersionProblem(ReadVersions())) throw *problem;
}

const std::string& Api::Ext()
{
    if (ext_.empty()) {
        auto v = ReadVersions();
        if (!v.installed) throw *VersionProblem(v);
    }
    return ext_;
}

std::string Api::Sql(const std::string& text)
{
    static const std::string token = "@extschema@";
    std::string out = text;
    for (size_t at = out.find(token); at != std::string::npos; at = out.find(token, at + Ext().size()))
        out.replace(at, token.size(), Ext());
    return out;
}

Versions Api::ReadVersions()
{
    Versions v;
    v.client = kVersion;
    auto r = c_.exec(
        "SELECT pg_catalog.current_database(), e.extversion, pg_catalog.quote_ident(n.nspname), " +
        std::string(kPreloaded) +
        ","
        " pg_catalog.split_part(pg_catalog.current_setting('server_version'), ' ', 1)"
        " FROM (SELECT 1) one"
        " LEFT JOIN pg_catalog.pg_extension e ON e.extname OPERATOR(pg_catalog.=) 'pg_mig'"
        " LEFT JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) e.extnamespace");
    v.database = r.get(0, 0);
    v.installed = !r.null(0, 1);
    v.extension = r.get(0, 1);
    v.preloaded = r.get(0, 3) == "t";
    v.server = r.get(0, 4);
    ext_ = v.installed ? r.get(0, 2) : "";  // quoted by the server
    // the library answers even when not preloaded (it is loaded on the call)
    if (v.installed) v.library = c_.exec(Sql("SELECT @extschema@.mig_version()")).get(0, 0);
    return v;
}

InstallReport Api::Install(bool configure)
{
    InstallReport rep;
    rep.server_version = c_.exec("SELECT pg_catalog.current_setting('server_version')").get(0, 0);
    if (std::stoi(c_.exec("SELECT pg_catalog.current_setting('server_version_num')").get(0, 0)) < 130000)
        throw Error(kNoConnection, "PostgreSQL " + rep.server_version + " is too old for pg_mig",
                    "pg_mig needs PostgreSQL 13 or later.");
    auto avail = c_.exec("SELECT a.default_version, a.installed_version FROM pg_catalog.pg_available_extensions a"
                         " WHERE a.name OPERATOR(pg_catalog.=) 'pg_mig'");
    if (avail.rows() == 0)
        throw Error(kNoConnection, "the pg_mig extension files are not installed on the server",
                    "Run make install in the pg_mig source tree on the database server.");
    rep.available = true;
    if (avail.null(0, 1)) {
        // in the caller's first schema, as CREATE EXTENSION in psql would
        c_.execAsCaller("CREATE EXTENSION pg_mig");
        rep.action = "created extension pg_mig " + avail.get(0, 0);
    } else if (avail.get(0, 1) != avail.get(0, 0)) {
        c_.exec("ALTER EXTENSION pg_mig UPDATE");
        rep.action = "updated extension pg_mig from " + avail.get(0, 1) + " to " + avail.get(0, 0);
    } else {
        rep.action = "extension pg_mig " + avail.get(0, 0) + " is installed";
    }
    std::string preload = c_.exec("SELECT pg_catalog.current_setting('shared_preload_libraries')").get(0, 0);
    rep.preloaded = c_.exec("SELECT 'pg_mig' OPERATOR(pg_catalog.=) ANY (pg_catalog.string_to_array("
                            "pg_catalog.replace($1::pg_catalog.text, ' ', ''), ','))",
                            {preload})
                        .get(0, 0) == "t";
    if (!rep.preloaded && configure) {
        // the setting is a list: each library goes in as its own literal
        // (one literal 'a,b' would name a single library "a,b"); ALTER SYSTEM
        // takes no parameters, so each is escaped by libpq
        auto libs = c_.exec("SELECT pg_catalog.btrim(l) FROM pg_catalog.unnest(pg_catalog.string_to_array("
                            "$1::pg_catalog.text, ',')) l WHERE pg_catalog.btrim(l) OPERATOR(pg_catalog.<>) ''",
                            {preload});
        std::string list;
        for (int i = 0; i <= libs.rows(); i++) {
            std::string name = i < libs.rows() ? libs.get(i, 0) : "pg_mig";
            if (name.size() >= 2 && name.front() == '"' && name.back() == '"') name = name.substr(1, name.size() - 2);
            std::unique_ptr<char, void (*)(void*)> lit(PQescapeLiteral(c_.raw(), name.c_str(), name.size()),
                                                       PQfreemem);
            if (!lit) throw Error(kUsage, "could not quote shared_preload_libraries");
            list += (list.empty() ? "" : ", ") + std::string(lit.get());
        }
        c_.exec("ALTER SYSTEM SET shared_preload_libraries = " + list);
        rep.action += "; added pg_mig to shared_preload_libraries: restart the server to load it";
    }
    auto v = ReadVersions();
    rep.ext_version = v.extension;
    rep.lib_version = v.library;
    if (rep.preloaded)
        if (auto problem = VersionProblem(v)) throw *problem;
    return rep;
}

long long Api::StartBackfill(const std::string& table, const std::string& set,
                             const std::optional<std::string>& where,
                             const NamedArgs& args)
{
    NamedArgs all{{"relation", {table, "regclass"}}, {"set_clause", {set, "text"}}};
    if (where) all.push_back({"where_clause", {*where, "text"}});
    all.insert(all.end(), args.begin(), args.end());
    return StartKind("mig_start_backfill", all);
}

long long Api::StartKind(const std::string& fn, const NamedArgs& args)
{
    static const char* allowed[] = {"mig_start_backfill", "mig_start_delete", "mig_set_not_null",
                                    "mig_validate_constraint", "mig_create_index", "mig_add_foreign_key",
                                    "mig_revert", "mig_repack", "mig_change_type"};
    bool ok = false;
    for (const char* a : allowed) ok = ok || fn == a;
    if (!ok) throw Error(kUsage, "unknown start function " + fn);
    std::string sql = Sql("SELECT @extschema@." + fn + "(");
    std::vector<Param> params;
    AppendNamedArgs(args, sql, params);
    // the table and the clauses are the user's words: resolved as the user sees them
    return std::stoll(c_.execAsCaller(sql + ")", params).get(0, 0));
}

void Api::Set(long long job, const NamedArgs& args)
{
    std::string sql = Sql("SELECT @extschema@.mig_set(");
    std::vector<Param> params;
    NamedArgs all{{"job_id", {std::to_string(job), "bigint"}}};
    all.insert(all.end(), args.begin(), args.end());
    AppendNamedArgs(all, sql, params);
    // a throttle query is the user's SQL: checked as the user sees it
    c_.execAsCaller(sql + ")", params);
}

std::vector<Job> Api::Jobs(std::optional<long long> job)
{
    std::string sql = Sql(
        "SELECT j.job_id, j.relation::pg_catalog.text, j.state, j.rows_done, j.rows_total, j.progress,"
        " j.rows_per_sec, extract(epoch FROM j.eta)::pg_catalog.int8, j.batch_size, j.throttled, j.last_error,"
        " j.owner,"
        // kind and step are 0.3's, job_key 0.4's: read so that an older extension still shows
        " pg_catalog.to_jsonb(j) OPERATOR(pg_catalog.->>) 'kind',"
        " pg_catalog.to_jsonb(j) OPERATOR(pg_catalog.->>) 'step',"
        " pg_catalog.to_jsonb(j) OPERATOR(pg_catalog.->>) 'kept_bytes',"
        " pg_catalog.to_jsonb(j) OPERATOR(pg_catalog.->>) 'parallel',"
        " pg_catalog.to_jsonb(j) OPERATOR(pg_catalog.->>) 'job_key',"
        // 0.4 monitoring: the job's lag limit, throttled time counted by the
        // worker, and whether it is live or ended in the last minutes
        " pg_catalog.to_jsonb(j) OPERATOR(pg_catalog.->>) 'max_lag_bytes',"
        " pg_catalog.to_jsonb(j) OPERATOR(pg_catalog.->>) 'throttled_seconds',"
        " j.finished_at IS NULL OR j.finished_at OPERATOR(pg_catalog.>)"
        "   (pg_catalog.now() OPERATOR(pg_catalog.-) '5 min'::pg_catalog.interval)"
        " FROM @extschema@.mig_jobs j");
    std::vector<Param> params;
    if (job) {
        sql += " WHERE j.job_id OPERATOR(pg_catalog.=) $1::pg_catalog.int8";
        params.push_back(std::to_string(*job));
    }
    sql += " ORDER BY j.job_id";
    // relation as the user would write it (regclass shows a name relative
    // to the search_path)
    auto r = c_.execAsCaller(sql, params);
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
        if (!r.null(i, 12)) j.kind = r.get(i, 12);
        j.step = r.get(i, 13);
        if (!r.null(i, 14)) j.kept_bytes = std::stoll(r.get(i, 14));
        if (!r.null(i, 15)) j.parallel = std::stoi(r.get(i, 15));
        j.job_key = r.get(i, 16);
        // a failed step's error says what to do next in SQL: say it in migctl's words
        j.last_error = MigctlHint(j.last_error, j.kind);
        if (!r.null(i, 17)) j.max_lag_bytes = std::stoll(r.get(i, 17));
        if (!r.null(i, 18)) j.throttled_seconds = std::stod(r.get(i, 18));
        j.recent = r.get(i, 19) == "t";
        out.push_back(j);
    }
    ReadLanes(out);
    if (job && out.empty())
        throw Error(kUsage, "job " + std::to_string(*job) + " does not exist", "See migctl status.");
    return out;
}

// ReadLanes: the lanes of the parallel jobs among jobs (mig_job_lanes is
// 0.3's, and only a 0.3 job has parallel > 1)
void Api::ReadLanes(std::vector<Job>& jobs)
{
    std::string ids;
    for (const auto& j : jobs)
        if (j.parallel > 1) ids += (ids.empty() ? "" : ",") + std::to_string(j.job_id);
    if (ids.empty()) return;
    auto r = c_.exec(Sql("SELECT l.job_id, l.lane, l.state, l.rows_done, l.keys_done, l.keys_estimate,"
                         " l.batch_size, l.rows_per_sec, l.throttled, l.lower_key::pg_catalog.text,"
                         " l.upper_key::pg_catalog.text, l.last_error, l.worker_pid"
                         " FROM @extschema@.mig_job_lanes l"
                         " WHERE l.job_id OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.int8[])"
                         " ORDER BY l.job_id, l.lane"),
                     {"{" + ids + "}"});
    for (int i = 0; i < r.rows(); i++) {
        Lane l;
        long long job_id = std::stoll(r.get(i, 0));
        l.lane = std::stoi(r.get(i, 1));
        l.state = r.get(i, 2);
        l.rows_done = std::stoll(r.get(i, 3));
        l.keys_done = std::stoll(r.get(i, 4));
        l.keys_estimate = r.null(i, 5) ? 0 : std::stoll(r.get(i, 5));
        l.batch_size = r.null(i, 6) ? 0 : std::stoll(r.get(i, 6));
        l.rows_per_sec = r.null(i, 7) ? 0 : std::stod(r.get(i, 7));
        l.throttled = r.get(i, 8);
        l.lower_key = r.get(i, 9);
        l.upper_key = r.get(i, 10);
        l.last_error = MigctlHint(r.get(i, 11));
        l.worker_pid = r.null(i, 12) ? 0 : std::stoll(r.get(i, 12));
        for (auto& j : jobs)
            if (j.job_id == job_id) j.lanes.push_back(l);
    }
}

std::string Api::State(long long job) { return Jobs(job).at(0).state; }

void Api::Control(const std::string& fn, long long job)
{
    static const char* allowed[] = {"mig_pause", "mig_resume", "mig_cancel", "mig_forget"};
    bool ok = false;
    for (const char* a : allowed) ok = ok || fn == a;
    if (!ok) throw Error(kUsage, "unknown control function " + fn);
    c_.exec(Sql("SELECT @extschema@." + fn + "($1::pg_catalog.int8)"), {std::to_string(job)});
}

std::vector<std::vector<std::string>> Api::Events(long long job)
{
    Jobs(job);  // the job exists
    auto r = c_.exec(Sql("SELECT pg_catalog.to_char(e.at, 'YYYY-MM-DD HH24:MI:SS.MS'), e.event,"
                         " COALESCE(e.detail, '')"
                         " FROM @extschema@.mig_job_events e WHERE e.job_id OPERATOR(pg_catalog.=) $1::pg_catalog.int8"
                         " ORDER BY e.event_id"),
                     {std::to_string(job)});
    std::vector<std::vector<std::string>> out;
    for (int i = 0; i < r.rows(); i++) out.push_back({r.get(i, 0), r.get(i, 1), MigctlHint(r.get(i, 2))});
    return out;
}

long long Api::MaxLagBytes()
{
    auto r = c_.exec(Sql("SELECT COALESCE(pg_catalog.max(r.lag_bytes), 0) FROM @extschema@.mig_replicas() r"));
    return std::stoll(r.get(0, 0));
}

ReportData Api::Report(long long job)
{
    ReportData d;
    d.job = Jobs(job).at(0);
    auto r = c_.exec(
        Sql("SELECT extract(epoch FROM COALESCE(j.started_at, j.created_at))::pg_catalog.float8,"
            " COALESCE(extract(epoch FROM j.finished_at)::pg_catalog.float8, 0),"
            " COALESCE(extract(epoch FROM j.max_lag)::pg_catalog.float8, '-1'::pg_catalog.float8), COALESCE(j.wal_bytes, 0),"
            " (SELECT pg_catalog.count(e.event_id) FROM @extschema@.mig_job_events e"
            "   WHERE e.job_id OPERATOR(pg_catalog.=) j.job_id AND e.event OPERATOR(pg_catalog.=) 'retried')"
            " FROM @extschema@.mig_jobs j WHERE j.job_id OPERATOR(pg_catalog.=) $1::pg_catalog.int8"),
        {std::to_string(job)});
    d.started_at = std::stod(r.get(0, 0));
    d.finished_at = std::stod(r.get(0, 1));
    d.max_lag_seconds = std::stod(r.get(0, 2));
    d.wal_bytes = std::stoll(r.get(0, 3));
    d.retries = std::stoll(r.get(0, 4));
    auto t = c_.exec(
        Sql("SELECT extract(epoch FROM t.at)::pg_catalog.float8, t.rows_done, COALESCE(t.wal_bytes, 0),"
            " COALESCE(t.table_bytes, '-1'::pg_catalog.int8), COALESCE(t.lag_bytes, '-1'::pg_catalog.int8),"
            " COALESCE(t.rows_per_sec, '-1'::pg_catalog.float8),"
            " COALESCE(extract(epoch FROM t.lag)::pg_catalog.float8, '-1'::pg_catalog.float8), COALESCE(t.throttled, '')"
            " FROM @extschema@.mig_job_timeline($1::pg_catalog.int8) t ORDER BY t.at"),
        {std::to_string(job)});
    for (int i = 0; i < t.rows(); i++) {
        Sample s;
        s.at = std::stod(t.get(i, 0));
        s.rows_done = std::stoll(t.get(i, 1));
        s.wal_bytes = std::stoll(t.get(i, 2));
        s.table_bytes = std::stoll(t.get(i, 3));
        s.lag_bytes = std::stoll(t.get(i, 4));
        s.rows_per_sec = std::stod(t.get(i, 5));
        s.lag_seconds = std::stod(t.get(i, 6));
        s.throttled = t.get(i, 7);
        d.samples.push_back(s);
    }
    auto e = c_.exec(
        Sql("SELECT extract(epoch FROM e.at)::pg_catalog.float8, e.event, COALESCE(e.detail, '')"
            " FROM @extschema@.mig_job_events e WHERE e.job_id OPERATOR(pg_catalog.=) $1::pg_catalog.int8"
            " ORDER BY e.event_id"),
        {std::to_string(job)});
    for (int i = 0; i < e.rows(); i++) d.events.push_back({std::stod(e.get(i, 0)), e.get(i, 1), e.get(i, 2)});
    return d;
}

MetricsReport Api::Metrics(const std::string& finished_within)
{
    MetricsReport rep;
    // Seconds throttled, from the events (their times are visible to every
    // role): a throttled spell lasts until the job's next event that ends or
    // restarts it, or until now if it goes on. Run as the caller: the
    // relation label is the name the user sees.
    auto r = c_.execAsCaller(Sql(
        "WITH ev AS ("
        "  SELECT e.job_id, e.event, e.at,"
        "         pg_catalog.lead(e.at) OVER (PARTITION BY e.job_id ORDER BY e.event_id) AS next_at"
        "    FROM @extschema@.mig_job_events e"
        "   WHERE e.event OPERATOR(pg_catalog.=) ANY ('{throttled,unthrottled,started,paused,resumed,"
        "failed,cancelled,succeeded}'::pg_catalog.text[]))"
        " SELECT j.job_id, j.relation::pg_catalog.text, j.kind::pg_catalog.text,"
        " j.state, j.rows_done, j.rows_total, j.progress, COALESCE(j.rows_per_sec, 0),"
        " extract(epoch FROM j.eta)::pg_catalog.float8, j.retries, j.wal_bytes,"
        // 0.4: counted by the worker; before, summed from the events
        " COALESCE((pg_catalog.to_jsonb(j) OPERATOR(pg_catalog.->>) 'throttled_seconds')::pg_catalog.float8,"
        " (SELECT pg_catalog.sum(extract(epoch FROM COALESCE(ev.next_at,"
        "     CASE WHEN j.state OPERATOR(pg_catalog.=) ANY ('{queued,running}'::pg_catalog.text[])"
        "          THEN pg_catalog.now() ELSE COALESCE(j.finished_at, j.updated_at) END)"
        "     OPERATOR(pg_catalog.-) ev.at)) FROM ev WHERE ev.job_id OPERATOR(pg_catalog.=) j.job_id"
        "     AND ev.event OPERATOR(pg_catalog.=) 'throttled'), 0)::pg_catalog.float8,"
        " CASE WHEN j.state OPERATOR(pg_catalog.=) ANY ('{queued,running}'::pg_catalog.text[])"
        "      THEN COALESCE((SELECT extract(epoch FROM pg_catalog.now() OPERATOR(pg_catalog.-) pg_catalog.max(ev.at))"
        "     FROM ev WHERE ev.job_id OPERATOR(pg_catalog.=) j.job_id AND ev.event OPERATOR(pg_catalog.=) 'throttled'"
        "     AND ev.next_at IS NULL), 0)"
        "     ELSE 0 END::pg_catalog.float8,"
        " pg_catalog.current_database()"
        " FROM @extschema@.mig_jobs j"
        " WHERE NOT (j.state OPERATOR(pg_catalog.=) ANY ('{succeeded,cancelled}'::pg_catalog.text[]))"
        "    OR j.finished_at OPERATOR(pg_catalog.>) (pg_catalog.now() OPERATOR(pg_catalog.-) $1::pg_catalog.interval)"
        " ORDER BY j.job_id"),
        {finished_within});
    for (int i = 0; i < r.rows(); i++) {
        JobMetrics j;
        j.job_id = std::stoll(r.get(i, 0));
        j.relation = r.get(i, 1);
        j.kind = r.get(i, 2);
        j.state = r.get(i, 3);
        j.rows_done = std::stoll(r.get(i, 4));
        if (!r.null(i, 5)) j.rows_total = std::stoll(r.get(i, 5));
        if (!r.null(i, 6)) j.progress = std::stod(r.get(i, 6));
        j.rows_per_sec = std::stod(r.get(i, 7));
        if (!r.null(i, 8)) j.eta_seconds = std::stod(r.get(i, 8));
        j.retries = r.null(i, 9) ? 0 : std::stoll(r.get(i, 9));
        j.wal_bytes = r.null(i, 10) ? 0 : std::stoll(r.get(i, 10));
        j.throttled_seconds = std::stod(r.get(i, 11));
        j.throttled_for_seconds = std::stod(r.get(i, 12));
        rep.jobs.push_back(j);
    }
    rep.database = c_.exec("SELECT pg_catalog.current_database()").get(0, 0);
    auto p = c_.exec(Sql("SELECT r.name, r.kind, r.lag_bytes, extract(epoch FROM r.replay_lag)::pg_catalog.float8"
                         " FROM @extschema@.mig_replicas() r ORDER BY r.kind, r.name"));
    for (int i = 0; i < p.rows(); i++) {
        ReplicaMetrics m;
        m.name = p.get(i, 0);
        m.type = p.get(i, 1);
        if (!p.null(i, 2)) m.lag_bytes = std::stoll(p.get(i, 2));
        if (!p.null(i, 3)) m.replay_lag_seconds = std::stod(p.get(i, 3));
        rep.replicas.push_back(m);
    }
    return rep;
}

PlanReport Api::Plan(const std::string& table, const std::optional<std::string>& set,
                     const std::optional<std::string>& where, int batch_size, int samples,
                     const std::string& lock_timeout, int parallel)
{
    PlanReport rep;
    rep.is_delete = !set;
    std::vector<Param> params{table, set, where, batch_size > 0 ? Param(std::to_string(batch_size)) : std::nullopt,
                              std::to_string(samples), lock_timeout};
    // parallel (0.3's seventh argument) only when asked for, so that plan works on 0.2
    if (parallel > 1) params.push_back(std::to_string(parallel));
    // the arrays come back one element per row (c.col, numbered c.n), so
    // that no name needs unquoting; the table and clauses are the user's
    // words, resolved as the user sees them
    auto r = std::make_optional(c_.execAsCaller(
        Sql("SELECT p.kind, p.target, c.col, p.keys, p.rows, p.ms, p.wal_bytes, c.n"
            " FROM @extschema@.mig_plan($1::pg_catalog.regclass, $2::pg_catalog.text, $3::pg_catalog.text,"
            " $4::pg_catalog.int4, $5::pg_catalog.int4, $6::pg_catalog.interval" +
            std::string(parallel > 1 ? ", $7::pg_catalog.int4" : "") +
            ") p LEFT JOIN LATERAL pg_catalog.unnest(p.columns) WITH ORDINALITY c(col, n) ON true"),
        params));
    for (int i = 0; i < r->rows(); i++) {
        std::string kind = r->get(i, 0);
        bool first = r->null(i, 7) || r->get(i, 7) == "1";  // the first row of mig_plan's row
        if (kind == "change") {
            if (first) {
                rep.keys_estimate = r->null(i, 3) ? 0 : std::stoll(r->get(i, 3));
                rep.rows_estimate = r->null(i, 4) ? 0 : std::stoll(r->get(i, 4));
            }
            if (!r->null(i, 2)) rep.set_columns.push_back(r->get(i, 2));
        } else if (kind == "target") {
            if (first) rep.targets.push_back({r->get(i, 1), ""});
            auto& t = rep.targets.back();
            if (!r->null(i, 2)) t.second += (t.second.empty() ? "" : ", ") + r->get(i, 2);
        } else if (!first) {
            continue;
        } else if (kind == "sample") {
            PlanSample s;
            s.target = r->get(i, 1);
            s.keys = std::stoll(r->get(i, 3));
            s.rows = std::stoll(r->get(i, 4));
            s.ms = std::stod(r->get(i, 5));
            s.wal_bytes = std::stoll(r->get(i, 6));
            rep.samples.push_back(s);
        } else if (kind == "lane") {
            PlanSample s;
            s.target = r->get(i, 1);
            s.keys = r->null(i, 3) ? 0 : std::stoll(r->get(i, 3));
            s.rows = r->null(i, 4) ? -1 : std::stoll(r->get(i, 4));
            rep.lanes.push_back(s);
        }
    }
    // the catalog facts, named as the user sees them (regclass output
    // depends on the search_path), so with the caller's search_path too
    auto t = c_.execAsCaller("SELECT $1::pg_catalog.regclass::pg_catalog.text,"
                             " pg_catalog.pg_total_relation_size($1::pg_catalog.regclass)",
                             {table});
    rep.relation = t.get(0, 0);
    rep.table_bytes = std::stoll(t.get(0, 1));
    // row triggers that fire on UPDATE, or on DELETE for a delete (tgtype
    // bits: 1 row, 2 before, 64 instead, 16 update, 8 delete)
    auto trg = c_.execAsCaller(
        "SELECT pg_catalog.concat(g.tgname, ' (',"
        " CASE WHEN (g.tgtype::pg_catalog.int4 OPERATOR(pg_catalog.&) 2) OPERATOR(pg_catalog.<>) 0 THEN 'BEFORE'"
        "      WHEN (g.tgtype::pg_catalog.int4 OPERATOR(pg_catalog.&) 64) OPERATOR(pg_catalog.<>) 0 THEN 'INSTEAD OF'"
        "      ELSE 'AFTER' END,"
        " ' ', $2::pg_catalog.text, ', ', g.tgrelid::pg_catalog.regclass::pg_catalog.text, ')')"
        " FROM pg_catalog.pg_trigger g"
        " WHERE g.tgrelid OPERATOR(pg_catalog.=) ANY (SELECT pt.relid::pg_catalog.oid"
        "   FROM pg_catalog.pg_partition_tree($1::pg_catalog.regclass) pt"
        "   UNION ALL SELECT $1::pg_catalog.regclass::pg_catalog.oid)"
        " AND NOT g.tgisinternal AND g.tgenabled OPERATOR(pg_catalog.<>) 'D'"
        " AND (g.tgtype::pg_catalog.int4 OPERATOR(pg_catalog.&) 1) OPERATOR(pg_catalog.<>) 0"
        " AND (g.tgtype::pg_catalog.int4 OPERATOR(pg_catalog.&) $3::pg_catalog.int4) OPERATOR(pg_catalog.<>) 0"
        " ORDER BY 1",
        {table, std::string(rep.is_delete ? "DELETE" : "UPDATE"), std::string(rep.is_delete ? "8" : "16")});
    for (int i = 0; i < trg.rows(); i++) rep.triggers.push_back(trg.get(i, 0));
    // indexes whose columns, expressions or predicate use a changed column
    auto idx = c_.execAsCaller(
        "SELECT i.indexrelid::pg_catalog.regclass::pg_catalog.text FROM pg_catalog.pg_index i"
        " WHERE i.indrelid OPERATOR(pg_catalog.=) $1::pg_catalog.regclass::pg_catalog.oid AND ("
        "   EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid OPERATOR(pg_catalog.=) i.indrelid"
        "           AND a.attnum OPERATOR(pg_catalog.=) ANY (i.indkey::pg_catalog.int2[])"
        "           AND a.attname::pg_catalog.text OPERATOR(pg_catalog.=) ANY ($2::pg_catalog.text[]))"
        "   OR EXISTS (SELECT 1 FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_attribute a"
        "              ON a.attrelid OPERATOR(pg_catalog.=) d.refobjid"
        "             AND a.attnum::pg_catalog.int4 OPERATOR(pg_catalog.=) d.refobjsubid"
        "              WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass::pg_catalog.oid"
        "              AND d.objid OPERATOR(pg_catalog.=) i.indexrelid"
        "              AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass::pg_catalog.oid"
        "              AND d.refobjid OPERATOR(pg_catalog.=) i.indrelid"
        "              AND a.attname::pg_catalog.text OPERATOR(pg_catalog.=) ANY ($2::pg_catalog.text[])))"
        " ORDER BY 1",
        {table, TextArrayLiteral(rep.set_columns)});
    for (int i = 0; i < idx.rows(); i++) rep.indexes.push_back(idx.get(i, 0));
    auto repl = c_.exec(Sql("SELECT r.kind, r.name, COALESCE(r.active, false),"
                            " COALESCE(r.lag_bytes::pg_catalog.text, ''), COALESCE(r.note, '')"
                            " FROM @extschema@.mig_replicas() r ORDER BY r.kind, r.name"));
    for (int i = 0; i < repl.rows(); i++)
        rep.replicas.push_back({repl.get(i, 0), repl.get(i, 1), repl.get(i, 2), repl.get(i, 3), repl.get(i, 4)});
    rep.preloaded = c_.exec(std::string("SELECT ") + kPreloaded).get(0, 0) == "t";
    return rep;
}

long long Api::DefaultChunkTimeMs()
{
    std::string setting =
        c_.exec("SELECT pg_catalog.current_setting('pg_mig.default_chunk_time', true)").get(0, 0);
    auto r = c_.exec("SELECT pg_catalog.round(extract(epoch FROM $1::pg_catalog.interval)"
                     " OPERATOR(pg_catalog.*) 1000)::pg_catalog.int8",
                     {setting.empty() ? "50ms" : setting});
    return std::stoll(r.get(0, 0));
}

}  // namespace migctl
