// api.cpp -- see api.hpp. Values always travel as $n parameters.
#include "api.hpp"

#include "version.hpp"

#include <sstream>

namespace migctl {

namespace {

// kPreloaded: whether the server preloaded pg_mig, for any role. Reading
// shared_preload_libraries needs pg_read_all_settings (or superuser); a role
// without it (a job owner, a monitoring role) sees pg_mig.max_workers, a
// setting the library defines only while it is being preloaded.
const char* const kPreloaded =
    "CASE WHEN pg_catalog.pg_has_role('pg_read_all_settings', 'USAGE')"
    " THEN 'pg_mig' = ANY (pg_catalog.string_to_array(pg_catalog.replace("
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
        " LEFT JOIN pg_catalog.pg_extension e ON e.extname = 'pg_mig'"
        " LEFT JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace");
    v.database = r.get(0, 0);
    v.installed = !r.null(0, 1);
    v.extension = r.get(0, 1);
    v.preloaded = r.get(0, 3) == "t";
    v.server = r.get(0, 4);
    // the library answers even when not preloaded (it is loaded on the call)
    if (v.installed) v.library = c_.exec("SELECT " + r.get(0, 2) + ".mig_version()").get(0, 0);
    return v;
}

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
        // the setting is a list: each library goes in as its own literal
        // (one literal 'a,b' would name a single library "a,b"); ALTER SYSTEM
        // takes no parameters, so each is escaped by libpq
        auto libs = c_.exec("SELECT btrim(l) FROM unnest(string_to_array($1, ',')) l WHERE btrim(l) <> ''",
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

long long Api::StartKind(const std::string& fn, const NamedArgs& args)
{
    static const char* allowed[] = {"mig_start_delete", "mig_set_not_null", "mig_validate_constraint",
                                    "mig_create_index", "mig_add_foreign_key", "mig_revert",
                                    "mig_repack"};
    bool ok = false;
    for (const char* a : allowed) ok = ok || fn == a;
    if (!ok) throw Error(kUsage, "unknown start function " + fn);
    std::string sql = "SELECT " + fn + "(";
    std::vector<Param> params;
    for (const auto& [name, v] : args) {
        params.push_back(v.first);
        sql += (params.size() > 1 ? ", " : "") + name + " => $" + std::to_string(params.size()) + "::" + v.second;
    }
    return std::stoll(c_.exec(sql + ")", params).get(0, 0));
}

void Api::Set(long long job, const NamedArgs& args)
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
        " extract(epoch FROM eta)::bigint, batch_size, throttled, last_error, owner,"
        // kind and step are 0.3's: read them so that an older extension still shows
        " to_jsonb(mig_jobs) ->> 'kind', to_jsonb(mig_jobs) ->> 'step',"
        " to_jsonb(mig_jobs) ->> 'kept_bytes', to_jsonb(mig_jobs) ->> 'parallel'"
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
        if (!r.null(i, 12)) j.kind = r.get(i, 12);
        j.step = r.get(i, 13);
        if (!r.null(i, 14)) j.kept_bytes = std::stoll(r.get(i, 14));
        if (!r.null(i, 15)) j.parallel = std::stoi(r.get(i, 15));
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
    auto r = c_.exec("SELECT job_id, lane, state, rows_done, keys_done, keys_estimate, batch_size,"
                     " rows_per_sec, throttled, lower_key::text, upper_key::text, last_error, worker_pid"
                     " FROM mig_job_lanes WHERE job_id = ANY ($1::bigint[]) ORDER BY job_id, lane",
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
        l.last_error = r.get(i, 11);
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

MetricsReport Api::Metrics(const std::string& finished_within)
{
    MetricsReport rep;
    // kind arrives with the job kinds of 0.3; before that every job is a backfill
    bool has_kind = c_.exec("SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute"
                            " WHERE attrelid = 'mig_jobs'::regclass AND attname = 'kind' AND NOT attisdropped)")
                        .get(0, 0) == "t";
    // Seconds throttled, from the events (their times are visible to every
    // role): a throttled spell lasts until the job's next event that ends or
    // restarts it, or until now if it goes on.
    auto r = c_.exec(
        "WITH ev AS ("
        "  SELECT job_id, event, at, lead(at) OVER (PARTITION BY job_id ORDER BY event_id) AS next_at"
        "    FROM mig_job_events"
        "   WHERE event IN ('throttled', 'unthrottled', 'started', 'paused', 'resumed',"
        "                   'failed', 'cancelled', 'succeeded'))"
        " SELECT j.job_id, j.relation::text, " + std::string(has_kind ? "j.kind::text" : "'backfill'") +
        ", j.state, j.rows_done, j.rows_total, j.progress, coalesce(j.rows_per_sec, 0),"
        " extract(epoch FROM j.eta)::float8, j.retries, j.wal_bytes,"
        " coalesce((SELECT sum(extract(epoch FROM coalesce(ev.next_at,"
        "     CASE WHEN j.state IN ('queued', 'running') THEN now() ELSE coalesce(j.finished_at, j.updated_at) END)"
        "     - ev.at)) FROM ev WHERE ev.job_id = j.job_id AND ev.event = 'throttled'), 0)::float8,"
        " CASE WHEN j.state IN ('queued', 'running') THEN coalesce((SELECT extract(epoch FROM now() - max(ev.at))"
        "     FROM ev WHERE ev.job_id = j.job_id AND ev.event = 'throttled' AND ev.next_at IS NULL), 0)"
        "     ELSE 0 END::float8,"
        " current_database()"
        " FROM mig_jobs j"
        " WHERE j.state NOT IN ('succeeded', 'cancelled') OR j.finished_at > now() - $1::interval"
        " ORDER BY j.job_id",
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
    rep.database = c_.exec("SELECT current_database()").get(0, 0);
    auto p = c_.exec("SELECT name, kind, lag_bytes, extract(epoch FROM replay_lag)::float8 FROM mig_replicas()"
                     " ORDER BY kind, name");
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

PlanReport Api::Plan(const std::string& table, const std::string& set, const std::optional<std::string>& where,
                      int batch_size, int samples, const std::string& lock_timeout, int parallel)
{
    PlanReport rep;
    std::vector<Param> params{table, set, where, batch_size > 0 ? Param(std::to_string(batch_size)) : std::nullopt,
                              std::to_string(samples), lock_timeout};
    // parallel (0.3's seventh argument) only when asked for, so that plan works on 0.2
    if (parallel > 1) params.push_back(std::to_string(parallel));
    // the arrays come back one element per row, so that no name needs unquoting
    auto r = std::make_optional(c_.exec(
        std::string("WITH p AS MATERIALIZED (SELECT * FROM mig_plan($1::regclass, $2, $3, $4::integer,"
                    " $5::integer, $6::interval") +
            (parallel > 1 ? ", $7::integer" : "") + "))"
        " SELECT kind, target, NULL, keys, rows, ms, wal_bytes FROM p"
        " UNION ALL SELECT kind || ' column', target, unnest(columns), NULL, NULL, NULL, NULL"
        " FROM p WHERE columns IS NOT NULL",
        params));
    for (int i = 0; i < r->rows(); i++) {
        std::string kind = r->get(i, 0);
        if (kind == "change") {
            rep.keys_estimate = r->null(i, 3) ? 0 : std::stoll(r->get(i, 3));
            rep.rows_estimate = r->null(i, 4) ? 0 : std::stoll(r->get(i, 4));
        } else if (kind == "change column") {
            rep.set_columns.push_back(r->get(i, 2));
        } else if (kind == "target column") {
            for (auto& t : rep.targets)
                if (t.first == r->get(i, 1)) t.second += (t.second.empty() ? "" : ", ") + r->get(i, 2);
        } else if (kind == "target") {
            rep.targets.push_back({r->get(i, 1), ""});
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
    auto t = c_.exec("SELECT $1::regclass::text, pg_total_relation_size($1::regclass)", {table});
    rep.relation = t.get(0, 0);
    rep.table_bytes = std::stoll(t.get(0, 1));
    // row triggers that fire on UPDATE (tgtype bits: 1 row, 2 before, 64 instead, 16 update)
    auto trg = c_.exec("SELECT tgname || ' (' || CASE WHEN tgtype & 2 <> 0 THEN 'BEFORE'"
                       " WHEN tgtype & 64 <> 0 THEN 'INSTEAD OF' ELSE 'AFTER' END || ' UPDATE, '"
                       " || tgrelid::regclass::text || ')'"
                       " FROM pg_trigger WHERE tgrelid IN (SELECT $1::regclass UNION"
                       "   SELECT relid FROM pg_partition_tree($1::regclass))"
                       " AND NOT tgisinternal AND tgenabled <> 'D' AND tgtype & 1 <> 0 AND tgtype & 16 <> 0"
                       " ORDER BY 1",
                       {table});
    for (int i = 0; i < trg.rows(); i++) rep.triggers.push_back(trg.get(i, 0));
    // indexes whose columns, expressions or predicate use a changed column
    auto idx = c_.exec(
        "SELECT i.indexrelid::regclass::text FROM pg_index i"
        " WHERE i.indrelid = $1::regclass AND ("
        "   EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = i.indrelid"
        "           AND a.attnum = ANY (i.indkey::int2[]) AND a.attname = ANY ($2::text[]))"
        "   OR EXISTS (SELECT 1 FROM pg_depend d JOIN pg_attribute a"
        "              ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid"
        "              WHERE d.classid = 'pg_class'::regclass AND d.objid = i.indexrelid"
        "              AND d.refclassid = 'pg_class'::regclass AND d.refobjid = i.indrelid"
        "              AND a.attname = ANY ($2::text[])))"
        " ORDER BY 1",
        {table, TextArrayLiteral(rep.set_columns)});
    for (int i = 0; i < idx.rows(); i++) rep.indexes.push_back(idx.get(i, 0));
    auto repl = c_.exec("SELECT kind, name, coalesce(active, false), coalesce(lag_bytes::text, ''), coalesce(note, '')"
                        " FROM mig_replicas() ORDER BY kind, name");
    for (int i = 0; i < repl.rows(); i++)
        rep.replicas.push_back({repl.get(i, 0), repl.get(i, 1), repl.get(i, 2), repl.get(i, 3), repl.get(i, 4)});
    rep.preloaded = c_.exec(std::string("SELECT ") + kPreloaded).get(0, 0) == "t";
    return rep;
}

long long Api::DefaultChunkTimeMs()
{
    auto r = c_.exec("SELECT round(extract(epoch FROM coalesce(nullif(current_setting("
                     "'pg_mig.default_chunk_time', true), ''), '50ms')::interval) * 1000)::bigint");
    return std::stoll(r.get(0, 0));
}

}  // namespace migctl
