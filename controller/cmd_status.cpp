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
        out += (i ? ",\n " : "") +
               JsonObject({{"job_id", std::to_string(j.job_id), true},
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
                           {"kept_bytes", j.kept_bytes < 0 ? "null" : std::to_string(j.kept_bytes), true},
                           {"max_lag_bytes", std::to_string(lag), true}});
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
    std::string lag = FormatCount(api.MaxLagBytes() / 1024) + " kB";
    std::vector<std::vector<std::string>> rows;
    for (const auto& j : jobs) {
        char pct[16];
        std::snprintf(pct, sizeof pct, "%.1f%%", j.progress < 0 ? 0.0 : j.progress * 100);
        rows.push_back({std::to_string(j.job_id), j.relation, j.kind, j.state, pct, FormatCount(j.rows_done),
                        FormatRate(j.rows_per_sec), EtaText(j.eta), std::to_string(j.batch_size), lag,
                        j.throttled.empty() ? "-" : j.throttled, j.step.empty() ? "-" : j.step,
                        j.kept_bytes < 0 ? "-" : FormatBytes(static_cast<double>(j.kept_bytes))});
    }
    std::cout << FormatTable({"JOB", "TABLE", "KIND", "STATE", "PROGRESS", "ROWS", "ROWS/S", "ETA", "BATCH", "LAG",
                              "THROTTLED", "STEP", "KEPT"},
                             rows);
    return kOk;
}

}  // namespace migctl
