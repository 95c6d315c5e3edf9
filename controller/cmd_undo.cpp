// cmd_undo.cpp -- migctl revert JOB and migctl forget JOB: the undo of a
// backfill started with keep_old_values, or of a type change after its swap
// (mig_revert, mig_forget).
#include "cli.hpp"

#include <iostream>

namespace migctl {

int CmdRevert(const std::string& cmd, const std::vector<std::string>& args)
{
    Knobs knobs;
    std::string key;
    po::options_description d("revert options (the throttle options of start)");
    d.add_options()("wait", "follow the revert to its end (exit codes of wait)");
    AddKeyOption(d, key);
    AddKnobOptions(d, knobs);
    auto cl = Parse(cmd, args, d, "revert JOB [options] [--key K] [--wait]");
    if (cl.help) return kOk;
    long long job = NeedJob(cl, cmd);
    NamedArgs named{{"job_id", {std::to_string(job), "bigint"}}};
    for (auto& a : KnobArgs(knobs, cl.vm)) named.push_back(a);  // checks durations and sizes first
    for (auto& a : KeyArgs(key, cl.vm)) named.push_back(a);

    Connection c(cl.conn);
    Api api(c);
    return Started(api, api.StartKind("mig_revert", named), cl.vm.count("wait") > 0);
}

int CmdForget(const std::string& cmd, const std::vector<std::string>& args)
{
    po::options_description d("forget options");
    auto cl = Parse(cmd, args, d, "forget JOB");
    if (cl.help) return kOk;
    long long job = NeedJob(cl, cmd);

    Connection c(cl.conn);
    Api api(c);
    api.Control("mig_forget", job);
    // what this forget did: its event 'forgotten', and what it dropped
    // before it (a change_type job's column), 'key released' between them
    auto events = api.Events(job);
    std::string said;
    for (size_t i = events.size(); i-- > 0;) {
        if (events[i][1] != "forgotten") continue;
        said = events[i][2];
        for (size_t j = i; j-- > 0 && events[j][1] != "forgotten";) {
            if (events[j][1] == "key released") continue;
            if (events[j][1] == "old column dropped" || events[j][1] == "new column dropped")
                said = events[j][1] + ": " + events[j][2] + "; " + said;
            break;
        }
        break;
    }
    std::cout << "job " << job << ": " << (said.empty() ? "forgotten" : said) << "\n";
    return kOk;
}

}  // namespace migctl
