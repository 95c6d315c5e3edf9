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

// One subcommand: its name, a line for migctl --help ("USAGE  what it
// does"; nullptr for an alias listed on another command's line), its entry
// point, which gets every argument (connection options may stand anywhere),
// and optionally a paragraph for the man page. Names that start with "__"
// are internal (the man page generator, shell completion) and never shown.
// The man page, migctl help and the bash completion are all made from this
// table, so a new command needs nothing but its entry here.
struct Command {
    const char* name;
    const char* synopsis;
    int (*run)(const std::string& name, const std::vector<std::string>& args);
    const char* man = nullptr;
};
const std::vector<Command>& Commands();
const Command* FindCommand(const std::string& name);
bool Internal(const Command& c);
// UsageText: migctl --help
std::string UsageText();
// SplitSynopsis: "start --table T ...   starts a job" -> {usage, what it does}
std::pair<std::string, std::string> SplitSynopsis(const char* synopsis);

// What Parse shows for --help, as data: the usage line and the option
// groups, for the man page and the completion (CaptureHelp runs a command's
// --help into one instead of printing it).
struct OptionHelp {
    std::string short_name, long_name, param, text;  // "-h", "--host", "arg", "server host ..."
};
struct HelpRecord {
    std::string usage;
    std::vector<std::pair<std::string, std::vector<OptionHelp>>> groups;  // "options" (if any), then "connection"
};
HelpRecord CaptureHelp(const Command& c);

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
// KnobOption: the option of a knob's SQL argument ("ignore_slots" ->
// "--ignore-slot"), or "" if arg is no knob
std::string KnobOption(const std::string& arg);

// WalkOptions: --parallel N and --vacuum-every N of the kinds that walk rows
// (start, delete; set takes --vacuum-every only)
struct WalkOptions {
    std::string parallel, vacuum_every;
};
void AddWalkOptions(po::options_description& d, WalkOptions& w, bool with_parallel);
// WalkArgs: their named SQL arguments, checked (a whole number each)
NamedArgs WalkArgs(const WalkOptions& w, const po::variables_map& vm);
// --key K of every command that starts a job (0.4): the caller's name for
// "this step of this migration"; the same command run again with the same
// key starts nothing and returns that job (job_key of the start functions)
void AddKeyOption(po::options_description& d, std::string& key);
// KeyArgs: job_key => K if --key was given (an empty key is bad usage)
NamedArgs KeyArgs(const std::string& key, const po::variables_map& vm);

// LanesText: "3/4 running, 1 waiting" for a parallel job, "" for one walker
std::string LanesText(const Job& j);

// Follow: the live view until every job shown has ended or timeout_ms
// passes (-1: no timeout); redraws in place on a terminal, prints plain
// lines otherwise. Returns 0 all succeeded, 1 one failed or was cancelled,
// 4 timeout.
int Follow(Api& api, std::optional<long long> job, int64_t timeout_ms);
bool Finished(const std::string& state);
// Started: what a command that starts a job prints: the bare id on stdout,
// for scripts (id=$(migctl start ...)); with --wait "started job N" on a line
// of its own and then the live view (Follow's exit code), so that no bare
// number stands among the progress lines
int Started(Api& api, long long job, bool wait);
// WatchLine: one job on one line: state, bar, rows, rate, ETA, replica lag,
// and why it is throttled or failed
std::string WatchLine(const Job& j, long long lag_bytes, bool utf8);
std::string EtaText(const std::string& secs);
// WhyText: "throttled: REASON" or, for a failed job, "error: LAST_ERROR"; "" if neither
std::string WhyText(const Job& j);
// WatchLines: WatchLine cut to cols; when it does not fit, the reason
// (WhyText) goes on a second line of its own, indented
std::vector<std::string> WatchLines(const Job& j, long long lag_bytes, bool utf8, int cols);
// WatchedJobs: what status --watch shows of all jobs: the unfinished ones
// and those that ended in the last minutes (Job::recent)
std::vector<Job> WatchedJobs(std::vector<Job> jobs);

// VersionReport: the lines of migctl --version for these versions
std::string VersionReport(const Versions& v);

// the subcommands
int CmdInstall(const std::string&, const std::vector<std::string>&);
int CmdStart(const std::string&, const std::vector<std::string>&);
int CmdSet(const std::string&, const std::vector<std::string>&);
int CmdStatus(const std::string&, const std::vector<std::string>&);
int CmdControl(const std::string&, const std::vector<std::string>&);  // pause, resume, cancel
int CmdWait(const std::string&, const std::vector<std::string>&);
int CmdEvents(const std::string&, const std::vector<std::string>&);
int CmdPlan(const std::string&, const std::vector<std::string>&);
int CmdVersion(const std::string&, const std::vector<std::string>&);
int CmdMetrics(const std::string&, const std::vector<std::string>&);
int CmdReport(const std::string&, const std::vector<std::string>&);  // cmd_report.cpp (0.4)
int CmdHelp(const std::string&, const std::vector<std::string>&);
int CmdMan(const std::string&, const std::vector<std::string>&);           // __man TEMPLATE OUT
int CmdCompleteJobs(const std::string&, const std::vector<std::string>&);  // __complete-jobs
int CmdCompleteWords(const std::string&, const std::vector<std::string>&);  // __complete [COMMAND]
// the other job kinds (0.3): cmd_delete.cpp, cmd_schema.cpp
int CmdDelete(const std::string&, const std::vector<std::string>&);
int CmdRevert(const std::string&, const std::vector<std::string>&);  // undo: cmd_undo.cpp
int CmdForget(const std::string&, const std::vector<std::string>&);
int CmdNotNull(const std::string&, const std::vector<std::string>&);
int CmdValidate(const std::string&, const std::vector<std::string>&);
int CmdRepack(const std::string&, const std::vector<std::string>&);
int CmdChangeType(const std::string&, const std::vector<std::string>&);
int CmdIndex(const std::string&, const std::vector<std::string>&);
int CmdAddFk(const std::string&, const std::vector<std::string>&);

}  // namespace migctl
