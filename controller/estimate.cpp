// estimate.cpp -- see estimate.hpp.
#include "estimate.hpp"

#include "render.hpp"

#include <algorithm>
#include <cmath>

namespace migctl {

PlanEstimate EstimatePlan(const PlanReport& r, const PlanLimits& l)
{
    PlanEstimate e;
    long long keys = 0, rows = 0, wal = 0;
    double ms = 0;
    for (const auto& s : r.samples) {
        keys += s.keys;
        rows += s.rows;
        wal += s.wal_bytes;
        ms += s.ms;
    }
    e.rows = r.rows_estimate;
    int batch = std::max(l.batch_size, 1);
    e.chunks = (r.keys_estimate + batch - 1) / batch;
    if (keys <= 0 || r.samples.empty()) return e;

    e.measured = true;
    e.ms_per_chunk = ms / static_cast<double>(r.samples.size());
    e.rows_per_key = static_cast<double>(rows) / static_cast<double>(keys);
    e.rows = std::llround(e.rows_per_key * static_cast<double>(r.keys_estimate));
    double ms_per_key = ms / static_cast<double>(keys);
    double wal_per_key = static_cast<double>(wal) / static_cast<double>(keys);
    e.wal_bytes = std::llround(wal_per_key * static_cast<double>(r.keys_estimate));
    e.wal_bytes_per_row = rows > 0 ? static_cast<double>(wal) / static_cast<double>(rows) : wal_per_key;
    e.work_s = ms_per_key * static_cast<double>(r.keys_estimate) / 1000.0;
    e.total_s = e.work_s * (1.0 + std::max(l.nice_ratio, 0.0)) +
                static_cast<double>(e.chunks) * static_cast<double>(l.sleep_ms) / 1000.0;
    if (l.max_wal_rate > 0) {
        double paced = static_cast<double>(e.wal_bytes) / static_cast<double>(l.max_wal_rate);
        if (paced > e.total_s) {
            e.total_s = paced;
            e.wal_paced = true;
        }
    }
    if (l.chunk_time_ms > 0 && e.ms_per_chunk > 0) {
        // the samples' keys per chunk, scaled to the target time
        double keys_per_chunk = static_cast<double>(keys) / static_cast<double>(r.samples.size());
        e.batch_for_chunk_time =
            static_cast<int>(std::min(1e6, keys_per_chunk * static_cast<double>(l.chunk_time_ms) / e.ms_per_chunk));
    }
    return e;
}

std::vector<std::string> PlanWarnings(const PlanReport& r, const PlanEstimate& e, const PlanLimits& l)
{
    std::vector<std::string> w;
    if (!r.preloaded)
        w.push_back("pg_mig is not in shared_preload_libraries: no job can run until it is (migctl install "
                    "--configure, then restart)");
    if (!r.triggers.empty())
        w.push_back(std::to_string(r.triggers.size()) +
                    (r.is_delete ? " row trigger(s) fire on DELETE: they run once per deleted row"
                                 : " row trigger(s) fire on UPDATE: they run once per changed row") +
                    " and slow every chunk");
    if (!r.indexes.empty())
        w.push_back(std::to_string(r.indexes.size()) +
                    " index(es) cover the changed columns: no HOT updates, every changed row adds index entries "
                    "(more WAL, more bloat)");
    bool any_replica = false;
    for (const auto& rep : r.replicas) {
        any_replica = true;
        if (rep.size() >= 3 && rep[0].find("slot") != std::string::npos && rep[2] != "t")
            w.push_back("slot " + rep[1] +
                        " is inactive: it holds WAL back and will throttle the job if max_lag_bytes is set (use "
                        "--ignore-slot if it is abandoned)");
    }
    if (!any_replica) w.push_back("no streaming standby and no replication slot: replica lag will not throttle");
    if (e.measured && l.chunk_time_ms > 0 && e.ms_per_chunk > 2.0 * static_cast<double>(l.chunk_time_ms))
        w.push_back("a sample chunk took " + FormatMillis(e.ms_per_chunk) + ", over twice chunk_time " +
                    FormatMillis(static_cast<double>(l.chunk_time_ms)) +
                    ": the job will shrink its batches (or pass a smaller --batch-size)");
    if (e.measured && e.rows == 0)
        w.push_back(std::string("the sample chunks ") + (r.is_delete ? "deleted" : "changed") +
                    " no row: the where clause selects nothing at the start of the table");
    return w;
}

}  // namespace migctl
