// cmd_control.cpp -- migctl pause|resume|cancel JOB, wait JOB, events JOB.
#include "cli.hpp"
#include "hints.hpp"
#include "options.hpp"
#include "render.hpp"

#include <unistd.h>

#include <chrono>
#include <iostream>
#include <thread>

namespace migctl {

int CmdControl(const std::string& cmd, const std::vector<std::string>& args)
{
    po::options_description d;
    std::string usage = cmd + " JOB";
    auto cl = Parse(cmd, args, d, usage.c_str());
    if (cl.help) return kOk;
    long long job = NeedJob(cl, cmd);

    Connection c(cl.conn);
    Api api(c);
    try {
        api.Control("mig_" + cmd, job);
    } catch (const SqlError& e) {
        // the hint for this job's kind (a refused cancel of a foreign-key
        // job names migctl add-fk, not start)
        std::string kind;
        try {
            kind = api.Jobs(job).at(0).kind;
        } catch (const std::exception&) {
        }
        throw SqlError(e.sqlstate, e.what(), MigctlHint(e.hint, kind));
    }
    std::cout << "job " << job << ": " << api.State(job) << "\n";
    return kOk;
}

int CmdWait(const std::string& cmd, const std::vector<std::string>& args)
{
    std::string timeout;
    po::options_description d("wait options");
    d.add_options()("timeout", po::value(&timeout), "give up after this long, e.g. 30s or 4h (exit 4)");
    auto cl = Parse(cmd, args, d, "wait JOB [--timeout D]");
    if (cl.help) return kOk;
    long long job = NeedJob(cl, cmd);
    int64_t timeout_ms = timeout.empty() ? -1 : ParseDuration(timeout);

    Connection c(cl.conn);
    Api api(c);
    if (isatty(STDOUT_FILENO)) return Follow(api, job, timeout_ms);
    // not on a terminal (cron, scripts): one line at the end
    auto start = std::chrono::steady_clock::now();
    for (;;) {
        auto j = api.Jobs(job).at(0);
        const std::string& st = j.state;
        if (Finished(st)) {
            std::cout << "job " << job << ": " << st << "\n";
            // a failed job says why, and what to do about it
            if (st == "failed" && !j.last_error.empty())
                std::cout << "error: " << j.last_error << "\nhint: see migctl events " << job
                          << " for the history; migctl resume " << job << " retries from the checkpoint\n";
            return st == "succeeded" ? kOk : kJobFailed;
        }
        if (timeout_ms >= 0 &&
            std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count() >=
                timeout_ms) {
            std::cerr << "migctl: timed out waiting for job " << job << " (state " << st << ")\n";
            return kTimeout;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
}

int CmdEvents(const std::string& cmd, const std::vector<std::string>& args)
{
    po::options_description d;
    auto cl = Parse(cmd, args, d, "events JOB");
    if (cl.help) return kOk;
    long long job = NeedJob(cl, cmd);

    Connection c(cl.conn);
    Api api(c);
    std::cout << FormatTable({"AT", "EVENT", "DETAIL"}, api.Events(job));
    return kOk;
}

}  // namespace migctl
