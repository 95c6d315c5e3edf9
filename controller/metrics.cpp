// metrics.cpp -- see metrics.hpp. Names follow Prometheus' conventions: the
// pg_mig_ prefix, base units in the name (_seconds, _bytes, _ratio),
// _total only on counters. A job's samples carry job_id, relation, kind and
// database; the state is a label of pg_mig_job_state (one sample per job).
#include "metrics.hpp"

#include <cstdio>
#include <functional>

namespace migctl {

std::string PromLabel(const std::string& v)
{
    std::string out;
    for (char c : v) {
        if (c == '\\') out += "\\\\";
        else if (c == '"') out += "\\\"";
        else if (c == '\n') out += "\\n";
        else out += c;
    }
    return out;
}

namespace {

std::string Num(double v)
{
    char buf[40];
    if (v == static_cast<double>(static_cast<long long>(v)) && v > -1e15 && v < 1e15)
        std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(v));
    else
        std::snprintf(buf, sizeof buf, "%.6g", v);
    return buf;
}

struct Family {
    const char *name, *type, *help;
};

}  // namespace

std::string MetricsText(const MetricsReport& r)
{
    std::string out;
    std::string db = PromLabel(r.database);
    auto family = [&](const Family& f) {
        out += std::string("# HELP ") + f.name + " " + f.help + "\n# TYPE " + f.name + " " + f.type + "\n";
    };
    auto job_labels = [&](const JobMetrics& j) {
        return "job_id=\"" + std::to_string(j.job_id) + "\",relation=\"" + PromLabel(j.relation) + "\",kind=\"" +
               PromLabel(j.kind) + "\",database=\"" + db + "\"";
    };
    // one family per job metric; value() returns nothing to leave a job out (unknown)
    auto per_job = [&](const Family& f, const std::function<std::optional<double>(const JobMetrics&)>& value) {
        family(f);
        for (const auto& j : r.jobs)
            if (auto v = value(j)) out += std::string(f.name) + "{" + job_labels(j) + "} " + Num(*v) + "\n";
    };

    // one sample per job, labelled with its state (queued, running, paused,
    // succeeded, failed, cancelled): pg_mig_job_state{state="failed"} == 1
    family({"pg_mig_job_state", "gauge",
            "Always 1; the state label is the job's state (queued, running, paused, succeeded, failed, cancelled)."});
    for (const auto& j : r.jobs)
        out += "pg_mig_job_state{" + job_labels(j) + ",state=\"" + PromLabel(j.state) + "\"} 1\n";
    per_job({"pg_mig_job_rows_done_total", "counter", "Rows the job has changed so far (committed chunks)."},
            [](const JobMetrics& j) { return static_cast<double>(j.rows_done); });
    per_job({"pg_mig_job_rows_estimated", "gauge",
             "Estimate of the rows the job changes in all (exact once it succeeded); absent while unknown."},
            [](const JobMetrics& j) {
                return j.rows_total ? std::optional<double>(static_cast<double>(*j.rows_total)) : std::nullopt;
            });
    per_job({"pg_mig_job_progress_ratio", "gauge", "Share of the job's keys walked, 0 to 1; absent while unknown."},
            [](const JobMetrics& j) { return j.progress; });
    per_job({"pg_mig_job_rows_per_second", "gauge", "Recent rate of the job in rows per second (0 unless running)."},
            [](const JobMetrics& j) { return std::optional<double>(j.rows_per_sec); });
    per_job({"pg_mig_job_eta_seconds", "gauge", "Estimated seconds until the job ends; absent while unknown."},
            [](const JobMetrics& j) { return j.eta_seconds; });
    per_job({"pg_mig_job_throttled_seconds_total", "counter",
             "Seconds the job has waited on a throttle (replica lag, run window, ...) in all."},
            [](const JobMetrics& j) { return std::optional<double>(j.throttled_seconds); });
    per_job({"pg_mig_job_throttled_for_seconds", "gauge",
             "Seconds the job has been throttled without a break until now; 0 while it runs freely."},
            [](const JobMetrics& j) { return std::optional<double>(j.throttled_for_seconds); });
    per_job({"pg_mig_job_retries_total", "counter", "Chunks of the job that were retried."},
            [](const JobMetrics& j) { return std::optional<double>(static_cast<double>(j.retries)); });
    per_job({"pg_mig_job_wal_bytes_total", "counter", "Bytes of WAL the job's chunks wrote."},
            [](const JobMetrics& j) { return std::optional<double>(static_cast<double>(j.wal_bytes)); });

    auto replica_labels = [&](const ReplicaMetrics& p) {
        return "replica=\"" + PromLabel(p.name) + "\",type=\"" + PromLabel(p.type) + "\",database=\"" + db + "\"";
    };
    family({"pg_mig_replica_lag_bytes", "gauge",
            "WAL bytes a standby or replication slot is behind the primary; absent if its position is unknown."});
    for (const auto& p : r.replicas)
        if (p.lag_bytes)
            out += "pg_mig_replica_lag_bytes{" + replica_labels(p) + "} " + Num(static_cast<double>(*p.lag_bytes)) +
                   "\n";
    family({"pg_mig_replica_replay_lag_seconds", "gauge", "Seconds a streaming standby's replay is behind."});
    for (const auto& p : r.replicas)
        if (p.replay_lag_seconds)
            out += "pg_mig_replica_replay_lag_seconds{" + replica_labels(p) + "} " + Num(*p.replay_lag_seconds) + "\n";
    return out;
}

}  // namespace migctl
