// api.hpp -- typed wrappers over pg_mig's SQL API. The only place with SQL.
#pragma once

#include "pg.hpp"

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace migctl {

struct Job {
    long long job_id = 0;
    std::string relation, state, throttled, last_error, eta, owner;
    long long rows_done = 0, rows_total = -1, batch_size = 0;
    double progress = -1, rows_per_sec = 0;
};

struct InstallReport {
    std::string server_version, ext_version, lib_version, action;
    bool available = false, preloaded = false;
};

class Api {
public:
    explicit Api(Connection& c) : c_(c) {}
    InstallReport Install(bool configure);
    // StartBackfill: named arguments (name -> value, SQL type) of mig_start_backfill
    long long StartBackfill(const std::string& table, const std::string& set, const std::optional<std::string>& where,
                            const std::vector<std::pair<std::string, std::pair<std::string, std::string>>>& args);
    // Set: mig_set with the given named arguments
    void Set(long long job, const std::vector<std::pair<std::string, std::pair<std::string, std::string>>>& args);
    std::vector<Job> Jobs(std::optional<long long> job);
    std::string State(long long job);
    void Control(const std::string& fn, long long job);  // mig_pause / mig_resume / mig_cancel
    std::vector<std::vector<std::string>> Events(long long job);
    long long MaxLagBytes();

private:
    Connection& c_;
};

}  // namespace migctl
