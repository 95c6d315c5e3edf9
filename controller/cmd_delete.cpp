// cmd_delete.cpp -- migctl delete: a chunked DELETE (mig_start_delete).
#include "cli.hpp"

#include <iostream>

namespace migctl {

int CmdDelete(const std::string& cmd, const std::vector<std::string>& args)
{
    std::string table, where, key;
    Knobs knobs;
    WalkOptions walk;
    po::options_description d("delete options");
    d.add_options()("table", po::value(&table), "the table to delete from")(
        "where", po::value(&where), "the rows to delete, e.g. \"created_at < '2020-01-01'\"")(
        "wait", "follow the job to its end (exit codes of wait)");
    AddKeyOption(d, key);
    AddKnobOptions(d, knobs);
    AddWalkOptions(d, walk, true);
    auto cl = Parse(cmd, args, d, "delete --table T --where EXPR [options] [--key K] [--wait]");
    if (cl.help) return kOk;
    if (table.empty() || where.empty())
        throw Error(kUsage, "delete needs --table and --where",
                    "e.g. migctl delete --table events --where \"created_at < now() - interval '1 year'\"");
    if (cl.vm.count("job")) throw Error(kUsage, "delete takes no job id", "Run migctl delete --help.");
    NamedArgs named{{"relation", {table, "regclass"}}, {"where_clause", {where, "text"}}};
    for (auto& a : KnobArgs(knobs, cl.vm)) named.push_back(a);  // checks durations and sizes first
    for (auto& a : WalkArgs(walk, cl.vm)) named.push_back(a);
    for (auto& a : KeyArgs(key, cl.vm)) named.push_back(a);

    Connection c(cl.conn);
    Api api(c);
    long long id = api.StartKind("mig_start_delete", named);
    return Started(api, id, cl.vm.count("wait") > 0);
}

}  // namespace migctl
