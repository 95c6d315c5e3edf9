// cmd_plan.cpp -- migctl plan: a dry run before the real backfill.
//
// mig_plan runs every check of mig_start_backfill and measures a few sample
// chunks in subtransactions that are rolled back; this command adds the
// catalog facts around it (row triggers, indexes on the changed columns,
// replicas and slots) and estimates the whole job's time and WAL.
#include "cli.hpp"
#include "estimate.hpp"
#include "options.hpp"
#include "render.hpp"

#include <cstdio>
#include <iostream>

namespace migctl {

namespace {

std::string Num(double v)
{
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3f", v);
    return buf;
}

std::string JsonStrings(const std::vector<std::string>& v)
{
    std::string out = "[";
    for (size_t i = 0; i < v.size(); i++) out += (i ? ", \"" : "\"") + JsonEscape(v[i]) + "\"";
    return out + "]";
}

std::string PlanJson(const PlanReport& r, const PlanEstimate& e, const std::vector<std::string>& warnings)
{
    std::string targets = "[", samples = "[", replicas = "[", lanes = "[";
    for (size_t i = 0; i < r.lanes.size(); i++)
        lanes += (i ? ", " : "") + JsonObject({{"lane", r.lanes[i].target, false},
                                               {"keys", std::to_string(r.lanes[i].keys), true},
                                               {"rows", r.lanes[i].rows < 0 ? "null" : std::to_string(r.lanes[i].rows),
                                                true}});
    for (size_t i = 0; i < r.targets.size(); i++)
        targets += (i ? ", " : "") + JsonObject({{"target", r.targets[i].first, false},
                                                 {"key", r.targets[i].second, false}});
    for (size_t i = 0; i < r.samples.size(); i++) {
        const auto& s = r.samples[i];
        samples += (i ? ", " : "") + JsonObject({{"target", s.target, false},
                                                 {"keys", std::to_string(s.keys), true},
                                                 {"rows", std::to_string(s.rows), true},
                                                 {"ms", Num(s.ms), true},
                                                 {"wal_bytes", std::to_string(s.wal_bytes), true}});
    }
    for (size_t i = 0; i < r.replicas.size(); i++) {
        const auto& p = r.replicas[i];
        replicas += (i ? ", " : "") + JsonObject({{"kind", p[0], false},
                                                  {"name", p[1], false},
                                                  {"active", p[2] == "t" ? "true" : "false", true},
                                                  {"lag_bytes", p[3].empty() ? "null" : p[3], true}});
    }
    std::vector<JsonField> fields{{"relation", r.relation, false},
                       {"kind", r.is_delete ? "delete" : "backfill", false},
                       {"table_bytes", std::to_string(r.table_bytes), true},
                       {"set_columns", JsonStrings(r.set_columns), true},
                       {"targets", targets + "]", true},
                       {"keys_estimate", std::to_string(r.keys_estimate), true},
                       {"rows_estimate_planner", std::to_string(r.rows_estimate), true},
                       {"rows_estimate", std::to_string(e.rows), true},
                       {"triggers", JsonStrings(r.triggers), true},
                       {"indexes_on_changed_columns", JsonStrings(r.indexes), true},
                       {"replicas", replicas + "]", true},
                       {"samples", samples + "]", true},
                       {"estimated_seconds", e.measured ? Num(e.total_s) : "null", true},
                       {"estimated_wal_bytes", e.measured ? std::to_string(e.wal_bytes) : "null", true},
                       {"warnings", JsonStrings(warnings), true}};
    // parallel => n (0.3): the lanes, only when asked for
    if (!r.lanes.empty()) fields.push_back({"lanes", lanes + "]", true});
    return JsonObject(fields) + "\n";
}

void PrintPlan(const PlanReport& r, const PlanEstimate& e, const PlanLimits& l,
               const std::vector<std::string>& warnings)
{
    std::cout << "table:     " << r.relation << " (" << FormatBytes(static_cast<double>(r.table_bytes))
              << " with indexes)\n";
    std::string cols;
    for (const auto& c : r.set_columns) cols += (cols.empty() ? "" : ", ") + c;
    if (r.is_delete)
        std::cout << "deletes:   the rows that match the where clause\n";
    else
        std::cout << "changes:   " << cols << "\n";
    for (const auto& t : r.targets) std::cout << "key:       " << t.first << " (" << t.second << ")\n";
    std::cout << "rows:      about " << FormatCount(r.keys_estimate) << " keys to walk, about "
              << FormatCount(e.rows) << (r.is_delete ? " rows to delete" : " rows to change")
              << (e.measured ? " (from the samples)" : " (planner estimate)") << "\n";
    // a heading, then one item per line (or "none ..." on the heading's line)
    auto list = [](const char* heading, const std::vector<std::string>& items, const char* none) {
        std::cout << heading << (items.empty() ? none : "") << "\n";
        for (const auto& i : items) std::cout << "           " << i << "\n";
    };
    list("triggers:  ", r.triggers, r.is_delete ? "none that fire per row on DELETE" : "none that fire per row on UPDATE");
    if (!r.is_delete) list("indexes:   ", r.indexes, "none on the changed columns (updates can be HOT)");
    std::vector<std::string> replicas;
    for (const auto& p : r.replicas)
        replicas.push_back(p[0] + " " + p[1] + (p[2] == "t" ? " active" : " inactive") + ", lag " +
                           (p[3].empty() ? "unknown" : FormatBytes(std::stod(p[3]))) + (p[4].empty() ? "" : ", " + p[4]));
    list("replicas:  ", replicas, "none (no streaming standby, no slot)");
    std::vector<std::string> lanes;
    for (const auto& s : r.lanes)
        lanes.push_back(s.target + ": about " + FormatCount(s.keys) + " keys" +
                        (s.rows < 0 ? "" : ", " + FormatCount(s.rows) + " rows"));
    if (!lanes.empty()) list("lanes:     ", lanes, "");
    if (!r.samples.empty()) {
        std::cout << "\nsample chunks (batch " << l.batch_size << ", rolled back):\n";
        std::vector<std::vector<std::string>> rows;
        for (const auto& s : r.samples)
            rows.push_back({s.target, FormatCount(s.keys), FormatCount(s.rows), FormatMillis(s.ms),
                            FormatBytes(static_cast<double>(s.wal_bytes))});
        std::string table = FormatTable({"TARGET", "KEYS", "ROWS", "TIME", "WAL"}, rows);
        for (size_t at = 0; at < table.size();) {
            size_t nl = table.find('\n', at);
            std::cout << "  " << table.substr(at, nl - at + 1);
            at = nl == std::string::npos ? table.size() : nl + 1;
        }
    }
    if (e.measured) {
        std::cout << "\nestimate:  " << FormatMillis(e.total_s * 1000) << " for " << FormatCount(e.chunks)
                  << " chunks (" << FormatMillis(e.work_s * 1000) << " of chunk work"
                  << (e.wal_paced ? ", paced by max_wal_rate" : "") << "), no throttling counted\n";
        std::cout << "WAL:       about " << FormatBytes(static_cast<double>(e.wal_bytes)) << " ("
                  << FormatBytes(e.wal_bytes_per_row) << " per row)\n";
        if (e.batch_for_chunk_time > 0)
            std::cout << "chunk:     " << FormatMillis(e.ms_per_chunk) << " per chunk of " << l.batch_size
                      << "; about " << FormatCount(e.batch_for_chunk_time) << " rows per chunk would take chunk_time "
                      << FormatMillis(static_cast<double>(l.chunk_time_ms)) << "\n";
    }
    if (!warnings.empty()) std::cout << "\n";
    for (const auto& w : warnings) std::cout << "WARNING: " << w << "\n";
}

}  // namespace

int CmdPlan(const std::string& cmd, const std::vector<std::string>& args)
{
    std::string table, set, where, sleep, wal_rate, chunk_time, lock_timeout = "1s";
    int batch = 10000, samples = 3, parallel = 1;
    double nice = 0;
    po::options_description d("plan options");
    d.add_options()("table", po::value(&table), "the table to backfill")(
        "set", po::value(&set), "the SET list, e.g. \"col = expr\"")("where", po::value(&where),
                                                                     "rows that still need work")(
        "batch-size", po::value(&batch)->default_value(batch), "rows per sample chunk")(
        "samples", po::value(&samples)->default_value(samples),
        "sample chunks to run and roll back (0: checks and estimates only; each writes WAL and leaves dead rows)")(
        "lock-timeout", po::value(&lock_timeout)->default_value(lock_timeout),
        "a sample chunk waits no longer for a row lock")(
        "chunk-time", po::value(&chunk_time), "the chunk duration to size batches for (default: the server's pg_mig.default_chunk_time)")(
        "sleep", po::value(&sleep), "pause after every chunk, for the estimate")(
        "nice-ratio", po::value(&nice), "sleep this many times each chunk's duration, for the estimate")(
        "max-wal-rate", po::value(&wal_rate), "WAL bytes per second, for the estimate")(
        "parallel", po::value(&parallel)->default_value(parallel), "show the lanes parallel => N would walk (1-32)")(
        "delete", "plan a delete (migctl delete) of the rows --where selects, instead of a backfill")(
        "json", "JSON for scripts");
    auto cl = Parse(cmd, args, d, "plan --table T (--set EXPR [--where EXPR] | --delete --where EXPR) [options]");
    if (cl.help) return kOk;
    bool is_delete = cl.vm.count("delete") > 0;
    if (is_delete && !set.empty())
        throw Error(kUsage, "plan takes --set or --delete, not both",
                    "A delete changes no column: leave out --set, e.g. migctl plan --table events --delete "
                    "--where \"created_at < '2020-01-01'\"");
    if (is_delete && (table.empty() || where.empty()))
        throw Error(kUsage, "plan --delete needs --table and --where",
                    "e.g. migctl plan --table events --delete --where \"created_at < '2020-01-01'\"");
    if (table.empty() || (set.empty() && !is_delete))
        throw Error(kUsage, "plan needs --table and --set (or --delete and --where)",
                    "e.g. migctl plan --table orders --set \"col = expr\"");
    if (cl.vm.count("job")) throw Error(kUsage, "plan takes no job id", "Run migctl plan --help.");
    if (samples < 0 || samples > 20) throw Error(kUsage, "--samples must be between 0 and 20");
    if (batch < 1 || batch > 1000000) throw Error(kUsage, "--batch-size must be between 1 and 1000000");
    if (nice < 0) throw Error(kUsage, "--nice-ratio must not be negative");
    if (parallel < 1 || parallel > 32) throw Error(kUsage, "--parallel must be between 1 and 32");
    PlanLimits limits;
    limits.batch_size = batch;
    limits.chunk_time_ms = chunk_time.empty() ? -1 : ParseDuration(chunk_time);
    limits.sleep_ms = sleep.empty() ? 0 : ParseDuration(sleep);
    limits.nice_ratio = nice;
    limits.max_wal_rate = wal_rate.empty() ? 0 : ParseSize(wal_rate);
    std::string lock_interval = DurationToInterval(ParseDuration(lock_timeout));

    Connection c(cl.conn);
    Api api(c);
    if (limits.chunk_time_ms < 0) limits.chunk_time_ms = api.DefaultChunkTimeMs();
    auto report = api.Plan(table, is_delete ? std::nullopt : std::optional<std::string>(set),
                           where.empty() ? std::nullopt : std::optional<std::string>(where), batch, samples,
                           lock_interval, parallel);
    auto estimate = EstimatePlan(report, limits);
    auto warnings = PlanWarnings(report, estimate, limits);
    if (cl.vm.count("json"))
        std::cout << PlanJson(report, estimate, warnings);
    else
        PrintPlan(report, estimate, limits, warnings);
    return kOk;
}

}  // namespace migctl
