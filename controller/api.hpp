// api.hpp -- typed wrappers over pg_mig's SQL API. The only place with SQL.
#pragma once

#include "metrics.hpp"
#include "pg.hpp"

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace migctl {

// Lane: one lane of a parallel job (mig_job_lanes, 0.3)
struct Lane {
    int lane = 0;
    std::string state, throttled, lower_key, upper_key, last_error;
    long long rows_done = 0, keys_done = 0, keys_estimate = 0, batch_size = 0, worker_pid = 0;
    double rows_per_sec = 0;
};

struct Job {
    long long job_id = 0;
    std::string relation, state, throttled, last_error, eta, owner;
    std::string kind = "backfill", step;  // 0.3: the job's kind and, for schema steps, its step now
    std::string job_key;                  // 0.4: the caller's name for the job; "" if none
    long long rows_done = 0, rows_total = -1, batch_size = 0;
    double progress = -1, rows_per_sec = 0;
    long long kept_bytes = -1;  // 0.3 undo: size of a backfill's kept values; -1 none
    int parallel = 1;           // 0.3 parallel lanes: the job's number of lanes
    std::vector<Lane> lanes;    // and each of them (mig_job_lanes), if parallel > 1
    // 0.4 monitoring: the job's lag limit (-1 none), seconds throttled in all,
    // and whether it is unfinished or ended in the last minutes (status --watch)
    long long max_lag_bytes = -1;
    double throttled_seconds = 0;
    bool recent = true;
};

// Sample: one row of mig_job_timeline (0.4)
struct Sample {
    double at = 0;  // epoch seconds
    long long rows_done = 0, wal_bytes = 0, table_bytes = -1, lag_bytes = -1;
    double rows_per_sec = -1, lag_seconds = -1;  // -1: NULL
    std::string throttled;
};

// JobEvent: one row of mig_job_events
struct JobEvent {
    double at = 0;
    std::string event, detail;
};

// ReportData: what migctl report draws
struct ReportData {
    Job job;
    double started_at = 0, finished_at = 0;  // epoch seconds, 0: not yet
    double max_lag_seconds = -1;             // the job's max_lag, -1 none
    long long wal_bytes = 0, retries = 0;
    std::vector<Sample> samples;
    std::vector<JobEvent> events;
};

// Named SQL arguments: (name, (value as text, SQL type)).
using NamedArgs = std::vector<std::pair<std::string, std::pair<std::string, std::string>>>;

struct InstallReport {
    std::string server_version, ext_version, lib_version, action;
    bool available = false, preloaded = false;
};

struct PlanSample {
    std::string target;
    long long keys = 0, rows = 0, wal_bytes = 0;
    double ms = 0;
};

struct PlanReport {
    std::string relation;
    std::vector<std::string> set_columns;
    long long keys_estimate = 0, rows_estimate = 0;
    std::vector<std::pair<std::string, std::string>> targets;  // (target, key columns)
    std::vector<PlanSample> samples;
    std::vector<PlanSample> lanes;  // parallel => n (0.3): target = the lane's keys, in words
    std::vector<std::string> triggers;  // "name (BEFORE UPDATE, row)"
    std::vector<std::string> indexes;   // indexes on the changed columns
    std::vector<std::vector<std::string>> replicas;  // kind, name, active, lag_bytes, note
    long long table_bytes = 0;
    bool preloaded = false;
    bool is_delete = false;  // the plan of a delete (no set clause): triggers on DELETE
};

// Versions: the three parts that must agree -- this migctl, the library the
// server loaded (mig_version()) and the SQL objects of the extension in this
// database (extversion) -- and whether the library is preloaded.
struct Versions {
    std::string client, library, extension, database, server;
    bool installed = false, preloaded = false;
};

// VersionProblem: what stops migctl from working with these versions, as the
// Error to throw (exit 3, a message naming both versions, a hint what to
// do), or nothing if they agree.
std::optional<Error> VersionProblem(const Versions& v);

// CompareVersions: <0, 0, >0 comparing "0.2" and "0.10" part by part
int CompareVersions(const std::string& a, const std::string& b);

class Api {
public:
    // Api: the version handshake first -- every command refuses to work
    // when the client, the library and the SQL script do not agree.
    explicit Api(Connection& c);
    // Unchecked: no handshake, for install (it updates the extension first)
    // and --version (it reports the versions, whatever they are)
    struct Unchecked {};
    Api(Connection& c, Unchecked) : c_(c) {}
    Versions ReadVersions();
    InstallReport Install(bool configure);
    // StartBackfill: named arguments (name -> value, SQL type) of mig_start_backfill
    long long StartBackfill(const std::string& table, const std::string& set, const std::optional<std::string>& where,
                            const NamedArgs& args);
    // StartKind: one of the start functions of the other job kinds
    // (mig_start_delete, mig_set_not_null, mig_validate_constraint,
    // mig_create_index, mig_add_foreign_key) with named arguments
    long long StartKind(const std::string& fn, const NamedArgs& args);
    // Set: mig_set with the given named arguments
    void Set(long long job, const NamedArgs& args);
    // Plan: mig_plan's checks, estimates and sample chunks, and the catalog
    // facts around them (triggers, indexes on the changed columns, replicas)
    // set: nothing for the plan of a delete (where is then required)
    PlanReport Plan(const std::string& table, const std::optional<std::string>& set,
                    const std::optional<std::string>& where, int batch_size, int samples,
                    const std::string& lock_timeout, int parallel = 1);
    std::vector<Job> Jobs(std::optional<long long> job);
    std::string State(long long job);
    void Control(const std::string& fn, long long job);  // mig_pause / mig_resume / mig_cancel
    std::vector<std::vector<std::string>> Events(long long job);
    long long MaxLagBytes();
    // Report: the job, its timeline (mig_job_timeline) and its events
    ReportData Report(long long job);
    // Metrics: every job not finished, or finished within finished_within
    // (an interval; failed jobs always), and every replica
    MetricsReport Metrics(const std::string& finished_within);
    // DefaultChunkTimeMs: the server's pg_mig.default_chunk_time (50 ms if unset)
    long long DefaultChunkTimeMs();

private:
    void ReadLanes(std::vector<Job>& jobs);
    // Ext: the extension's schema, quoted by the server (read once per
    // connection); Sql: text with each @extschema@ replaced by it
    const std::string& Ext();
    std::string Sql(const std::string& text);
    Connection& c_;
    std::string ext_;
};

}  // namespace migctl
