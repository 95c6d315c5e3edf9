// metrics.hpp -- migctl metrics: jobs and replicas in the Prometheus text
// exposition format (version 0.0.4), for node_exporter's textfile collector.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace migctl {

struct JobMetrics {
    long long job_id = 0;
    std::string relation, kind = "backfill", state;
    long long rows_done = 0, retries = 0, wal_bytes = 0;
    std::optional<long long> rows_total;
    std::optional<double> progress, eta_seconds;
    double rows_per_sec = 0;
    double throttled_seconds = 0;      // every throttled spell so far
    double throttled_for_seconds = 0;  // the one going on now, 0 if none
};

struct ReplicaMetrics {
    std::string name, type;  // type: standby, physical slot, logical slot
    std::optional<long long> lag_bytes;
    std::optional<double> replay_lag_seconds;
};

struct MetricsReport {
    std::string database;
    std::vector<JobMetrics> jobs;
    std::vector<ReplicaMetrics> replicas;
};

// PromLabel: a label value escaped for the text format (\\, \", \n)
std::string PromLabel(const std::string& value);
// MetricsText: the whole exposition, every family with HELP and TYPE
std::string MetricsText(const MetricsReport& r);

}  // namespace migctl
