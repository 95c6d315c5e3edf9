// estimate.hpp -- what migctl plan concludes from mig_plan's sample chunks:
// the time and WAL of the whole job at the chosen limits, and the warnings.
#pragma once

#include "api.hpp"

#include <string>
#include <vector>

namespace migctl {

struct PlanLimits {
    int batch_size = 0;         // rows per chunk the samples used
    int64_t sleep_ms = 0;       // pause after every chunk
    double nice_ratio = 0;      // sleep this many times each chunk's duration
    int64_t max_wal_rate = 0;   // bytes/s, 0 = none
    int64_t chunk_time_ms = 0;  // target chunk duration, 0 = fixed batch
};

struct PlanEstimate {
    bool measured = false;         // at least one sample walked a key
    double ms_per_chunk = 0;       // mean time of a sample chunk
    double rows_per_key = 0;       // share of walked keys the where clause selects
    long long rows = 0;            // rows to change: samples' share x keys, else the planner's
    long long chunks = 0;          // at batch_size
    double work_s = 0;             // time inside chunks
    double total_s = 0;            // plus sleeps, nice ratio, WAL pacing
    long long wal_bytes = 0;       // WAL of the whole job
    double wal_bytes_per_row = 0;  // per changed row (per key if no row changed)
    bool wal_paced = false;        // max_wal_rate sets the pace
    int batch_for_chunk_time = 0;  // batch that would reach chunk_time_ms, 0 = n/a
};

PlanEstimate EstimatePlan(const PlanReport& r, const PlanLimits& l);

// PlanWarnings: what a DBA should know before starting (one line each).
std::vector<std::string> PlanWarnings(const PlanReport& r, const PlanEstimate& e, const PlanLimits& l);

}  // namespace migctl
