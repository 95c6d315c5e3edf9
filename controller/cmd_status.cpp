// cmd_status.cpp -- migctl status [JOB] [--json] [--watch]
#include "cli.hpp"
#include "render.hpp"

#include <cstdio>
#include <iostream>

namespace migctl {

namespace {

std::string JsonJobs(const std::vector<Job>& jobs, long long lag)
{
    std::string out = "[";
    auto num = [](double v, bool null) { return null ? std::string("null") : std::to_string(v); };
    auto str = [](const std::string& v) { return v.empty() ? std::string("null") : "\"" + JsonEscape(v) + "\""; };
    for (size_t i = 0; i < jobs.size(); i++) {
        const auto& j = jobs[i];
        std::vector<JsonField> fields{{"job_id", std::to_string(j.job_id), true},
                           {"relation", j.relation, false},
                           {"state", j.state, false},
                           {"kind", j.kind, false},
                           {"step", str(j.step), true},
                           {"rows_done", std::to_string(j.rows_done), true},
                           {"rows_total", j.rows_total < 0 ? "null" : std::to_string(j.rows_total), true},
                           {"progress", num(j.progress, j.progress < 0), true},
                           {"rows_per_sec", num(j.rows_per_sec, false), true},
                           {"eta_seconds", j.eta.empty() ? "null" : j.eta, true},
                           {"batch_size", std::to_string(j.batch_size), true},
                           {"throttled", str(j.throttled), true},
                           {"last_error", str(j.last_error), true},
                           {"owner", j.owner, false},
                           {"job_key", str(j.job_key), true},
                           // the replicas' lag now; the job's limit under its own name
                           {"lag_bytes", std::to_string(lag), true},
                           {"max_lag_bytes", j.max_lag_bytes < 0 ? "null" : std::to_string(j.max_lag_bytes), true},
                           {"throttled_seconds", num(j.throttled_seconds, false), true}};
        // undo (0.3): only a backfill that kept its old values has kept_bytes
        if (j.kept_bytes >= 0) fields.push_back({"kept_bytes", std::to_string(j.kept_bytes), true});
        // parallel lanes (0.3): only a job of more than one lane has them
        if (j.parallel > 1) {
            std::string lanes = "[";
            for (size_t k = 0; k < j.lanes.size(); k++) {
                const auto& l = j.lanes[k];
                lanes += (k ? ", " : "") +
                         JsonObject({{"lane", std::to_string(l.lane), true},
                                     {"state", l.state, false},
                                     {"rows_done", std::to_string(l.rows_done), true},
                                     {"keys_done", std::to_string(l.keys_done), true},
                                     {"keys_estimate", std::to_string(l.keys_estimate), true},
                                     {"batch_size", std::to_string(l.batch_size), true},
                                     {"rows_per_sec", num(l.rows_per_sec, false), true},
                                     {"throttled", str(l.throttled), true},
                                     {"last_error", str(l.last_error), true},
                                     {"lower_key", str(l.lower_key), true},
                                     {"upper_key", str(l.upper_key), true},
                                     {"worker_pid", l.worker_pid ? std::to_string(l.worker_pid) : "null", true}});
            }
            fields.push_back({"parallel", std::to_string(j.parallel), true});
            fields.push_back({"lanes", lanes + "]", true});
        }
        out += (i ? ",\n " : "") + JsonObject(fields);
    }
    return out + "]\n";
}

}  // namespace

int CmdStatus(const std::string& cmd, const std::vector<std::string>& args)
{
    po::options_description d("status options");
    d.add_options()("json", "JSON for scripts")("watch", "redraw until the jobs end (plain lines when not on a terminal)");
    auto cl = Parse(cmd, args, d, "status [JOB] [--json] [--watch]");
    if (cl.help) return kOk;
    auto job = OptionalJob(cl);

    Connection c(cl.conn);
    Api api(c);
    if (cl.vm.count("watch")) {
        int rc = Follow(api, job, -1);
        return rc == kJobFailed ? kOk : rc;  // watching ended fine; wait reports outcomes
    }
    auto jobs = api.Jobs(job);
    if (cl.vm.count("json")) {
        std::cout << JsonJobs(jobs, api.MaxLagBytes());
        return kOk;
    }
    // replica lag is the server's, not a job's: the largest of every standby and slot
    // in the unit style of the throttle reasons ("2.0 MB")
    std::string lag = FormatBytes(static_cast<double>(api.MaxLagBytes()));
    std::vector<std::vector<std::string>> rows;
    // undo (0.3): the KEPT column only when a job shown kept old values
    bool kept = false;
    for (const auto& j : jobs) kept = kept || j.kept_bytes >= 0;
    // parallel lanes (0.3): the LANES column only when a job shown has lanes
    bool lanes = false;
    for (const auto& j : jobs) lanes = lanes || j.parallel > 1;
    // job keys (0.4): the KEY column only when a job shown has one
    bool keys = false;
    for (const auto& j : jobs) keys = keys || !j.job_key.empty();
    for (const auto& j : jobs) {
        char pct[16];
        std::snprintf(pct, sizeof pct, "%.1f%%", j.progress < 0 ? 0.0 : j.progress * 100);
        rows.push_back({std::to_string(j.job_id), j.relation, j.kind, j.state, pct, FormatCount(j.rows_done),
                        FormatRate(j.rows_per_sec), EtaText(j.eta), std::to_string(j.batch_size), lag,
                        j.throttled.empty() ? "-" : j.throttled, j.step.empty() ? "-" : j.step});
        if (kept) rows.back().push_back(j.kept_bytes < 0 ? "-" : FormatBytes(static_cast<double>(j.kept_bytes)));
        if (lanes) rows.back().push_back(LanesText(j).empty() ? "-" : LanesText(j));
        if (keys) rows.back().push_back(j.job_key.empty() ? "-" : j.job_key);
    }
    std::vector<std::string> header{"JOB",   "TABLE", "KIND",      "STATE", "PROGRESS", "ROWS", "ROWS/S",
                                    "ETA",   "BATCH", "LAG",       "THROTTLED", "STEP"};
    if (kept) header.push_back("KEPT");
    if (lanes) header.push_back("LANES");
    if (keys) header.push_back("KEY");
    std::cout << FormatTable(header, rows);
    // one job asked for: a failed one says why, a verified walk what is left
    if (job && jobs.size() == 1) {
        const auto& j = jobs[0];
        if (j.state == "failed" && !j.last_error.empty())
            std::cout << "error: " << j.last_error << "\nhint: see migctl events " << j.job_id
                      << " for the history; migctl resume " << j.job_id << " retries from the checkpoint\n";
        std::string verified;
        for (const auto& e : api.Events(j.job_id))
            if (e.at(1) == "verified") verified = e.at(2);
        if (!verified.empty()) std::cout << "verified: " << verified << "\n";
    }
    return kOk;
}

}  // namespace migctl
