// cmd_start.cpp -- migctl start and migctl set: the knobs of a job.
#include "cli.hpp"

#include <iostream>

namespace migctl {

int CmdStart(const std::string& cmd, const std::vector<std::string>& args)
{
    std::string table, set, where, key;
    Knobs knobs;
    WalkOptions walk;
    po::options_description d("start options");
    d.add_options()("table", po::value(&table), "the table to backfill")(
        "set", po::value(&set), "the SET list, e.g. \"col = expr\"")("where", po::value(&where),
                                                                     "rows that still need work")(
        "wait", "follow the job to its end (exit codes of wait)")(
        "keep-old-values", "keep the old values of every changed row, for migctl revert");
    AddKeyOption(d, key);
    AddKnobOptions(d, knobs);
    AddWalkOptions(d, walk, true);
    auto cl = Parse(cmd, args, d,
                    "start --table T --set EXPR [--where EXPR] [options] [--keep-old-values] [--key K] [--wait]");
    if (cl.help) return kOk;
    if (table.empty() || set.empty())
        throw Error(kUsage, "start needs --table and --set", "e.g. migctl start --table orders --set \"col = expr\"");
    if (cl.vm.count("job")) throw Error(kUsage, "start takes no job id", "Run migctl start --help.");
    NamedArgs named = KnobArgs(knobs, cl.vm);  // checks durations and sizes before connecting
    for (auto& a : WalkArgs(walk, cl.vm)) named.push_back(a);
    if (cl.vm.count("keep-old-values")) named.push_back({"keep_old_values", {"true", "boolean"}});
    for (auto& a : KeyArgs(key, cl.vm)) named.push_back(a);

    Connection c(cl.conn);
    Api api(c);
    long long id = api.StartBackfill(table, set, where.empty() ? std::nullopt : std::optional<std::string>(where),
                                     named);
    return Started(api, id, cl.vm.count("wait") > 0);
}

int CmdSet(const std::string& cmd, const std::vector<std::string>& args)
{
    Knobs knobs;
    WalkOptions walk;
    po::options_description d("set options (0 turns an optional limit off)");
    AddKnobOptions(d, knobs);
    AddWalkOptions(d, walk, false);
    auto cl = Parse(cmd, args, d, "set JOB [options]");
    if (cl.help) return kOk;
    long long job = NeedJob(cl, cmd);
    NamedArgs named = KnobArgs(knobs, cl.vm);
    for (auto& a : WalkArgs(walk, cl.vm)) named.push_back(a);
    if (named.empty())
        throw Error(kUsage, "set needs at least one knob to change", "e.g. migctl set 3 --batch-size 5000");

    Connection c(cl.conn);
    Api api(c);
    api.Set(job, named);
    std::cout << "job " << job << ": changed\n";
    return kOk;
}

}  // namespace migctl
