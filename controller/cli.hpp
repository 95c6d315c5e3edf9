// cli.hpp -- what the subcommands share: the command table, option parsing,
// the knobs of start and set, and the live view.
#pragma once

#include "api.hpp"
#include "pg.hpp"

#include <boost/program_options.hpp>

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace migctl {

namespace po = boost::program_options;

// One subcommand: its name, a line for migctl --help, and its entry point,
// which gets every argument (connection options may stand anywhere).
struct Command {
    const char* name;
    const char* synopsis;
    int (*run)(const std::string& name, const std::vector<std::string>& args);
};
const std::vector<Command>& Commands();

// A subcommand's parsed command line. Parse adds the connection options and
// the positional COMMAND [JOB]; it throws Error(kUsage) on bad options.
struct CommandLine {
    ConnOptions conn;
    po::variables_map vm;
    bool help = false;
};
CommandLine Parse(const std::string& cmd, const std::vector<std::string>& args,
                  po::options_description& options, const char* usage);

// JobArg: a positive job id, or Error(kUsage).
long long JobArg(const std::string& s);
// NeedJob: the positional JOB, or Error(kUsage) naming the command.
long long NeedJob(const CommandLine& cl, const std::string& cmd);
std::optional<long long> OptionalJob(const CommandLine& cl);

// The knobs shared by start, set and plan, in human form (durations, sizes).
struct Knobs {
    std::map<std::string, std::string> values;  // option name -> text
    std::vector<std::string> ignore_slots;
    bool throttle_on_autovacuum = false;
};
void AddKnobOptions(po::options_description& d, Knobs& k);
// KnobArgs: the named SQL arguments of the knobs that were given.
NamedArgs KnobArgs(const Knobs& k, const po::variables_map& vm);

// Follow: the live view until every job shown has ended or timeout_ms
// passes (-1: no timeout); redraws in place on a terminal, prints plain
// lines otherwise. Returns 0 all succeeded, 1 one failed or was cancelled,
// 4 timeout.
int Follow(Api& api, std::optional<long long> job, int64_t timeout_ms);
bool Finished(const std::string& state);
std::string EtaText(const std::string& secs);

// the subcommands
int CmdInstall(const std::string&, const std::vector<std::string>&);
int CmdStart(const std::string&, const std::vector<std::string>&);
int CmdSet(const std::string&, const std::vector<std::string>&);
int CmdStatus(const std::string&, const std::vector<std::string>&);
int CmdControl(const std::string&, const std::vector<std::string>&);  // pause, resume, cancel
int CmdWait(const std::string&, const std::vector<std::string>&);
int CmdEvents(const std::string&, const std::vector<std::string>&);
int CmdPlan(const std::string&, const std::vector<std::string>&);
// the other job kinds (0.3): cmd_delete.cpp, cmd_schema.cpp
int CmdDelete(const std::string&, const std::vector<std::string>&);
int CmdNotNull(const std::string&, const std::vector<std::string>&);
int CmdValidate(const std::string&, const std::vector<std::string>&);
int CmdIndex(const std::string&, const std::vector<std::string>&);
int CmdAddFk(const std::string&, const std::vector<std::string>&);

}  // namespace migctl
