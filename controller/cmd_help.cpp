// cmd_help.cpp -- migctl help [COMMAND], and the internal commands made from
// the command table: __man (the man page), __complete and __complete-jobs
// (bash completion). Because all of them read the table and each command's
// own --help (CaptureHelp), a new command is documented and completed
// without further work.
#include "cli.hpp"
#include "version.hpp"

#include <fstream>
#include <iostream>
#include <sstream>

namespace migctl {

int CmdHelp(const std::string& cmd, const std::vector<std::string>& args)
{
    po::options_description d;
    auto cl = Parse(cmd, args, d, "help [COMMAND]");
    if (cl.help) return kOk;
    if (!cl.vm.count("job")) {
        std::cout << UsageText();
        return kOk;
    }
    std::string name = cl.vm["job"].as<std::string>();
    const Command* c = FindCommand(name);
    if (!c || Internal(*c)) throw Error(kUsage, "unknown command \"" + name + "\"", "Run migctl help.");
    // exactly what COMMAND --help prints
    return c->run(name == "log" ? "events" : name, {name, "--help"});
}

namespace {

// Roff: text safe for roff: backslashes escaped, hyphens as \-, a leading
// dot or quote neutralised
std::string Roff(const std::string& s)
{
    std::string out;
    for (char ch : s) {
        if (ch == '\\') out += "\\e";
        else if (ch == '-') out += "\\-";
        else out += ch;
    }
    if (!out.empty() && (out[0] == '.' || out[0] == '\'')) out = "\\&" + out;
    return out;
}

std::string OptionsRoff(const std::vector<OptionHelp>& options)
{
    std::string out;
    for (const auto& o : options) {
        out += ".TP\n";
        if (!o.short_name.empty()) out += "\\fB" + Roff(o.short_name) + "\\fR, ";
        out += "\\fB" + Roff(o.long_name) + "\\fR";
        if (!o.param.empty()) out += " \\fI" + Roff(o.param) + "\\fR";
        out += "\n" + Roff(o.text) + "\n";
    }
    return out;
}

std::string CommandsRoff(std::string* connection)
{
    std::string out;
    for (const auto& c : Commands()) {
        if (!c.synopsis || Internal(c)) continue;
        auto help = CaptureHelp(c);
        auto [usage, what] = SplitSynopsis(c.synopsis);
        out += ".SS \"" + Roff(usage) + "\"\n" + Roff(c.man ? c.man : what) + "\n";
        if (help.usage != usage) out += ".PP\nUsage: \\fBmigctl " + Roff(help.usage) + "\\fR\n";
        for (size_t g = 0; g + 1 < help.groups.size(); g++) out += OptionsRoff(help.groups[g].second);
        if (connection && !help.groups.empty()) *connection = OptionsRoff(help.groups.back().second);
    }
    return out;
}

}  // namespace

int CmdMan(const std::string&, const std::vector<std::string>& args)
{
    if (args.size() != 3) throw Error(kUsage, "usage: migctl __man TEMPLATE OUTPUT");
    std::ifstream in(args[1]);
    if (!in) throw Error(kUsage, "cannot read " + args[1]);
    std::string connection, commands = CommandsRoff(&connection), line, out;
    while (std::getline(in, line)) {
        for (size_t at; (at = line.find("@VERSION@")) != std::string::npos;) line.replace(at, 9, kVersion);
        if (line == "@COMMANDS@") out += commands;
        else if (line == "@CONNECTION_OPTIONS@") out += connection;
        else out += line + "\n";
    }
    std::ofstream o(args[2]);
    o << out;
    if (!o) throw Error(kUsage, "cannot write " + args[2]);
    return kOk;
}

// __complete: the command names; __complete COMMAND: its options, one per
// line with 1 if it takes a value, and a line JOB if it takes a job id
int CmdCompleteWords(const std::string&, const std::vector<std::string>& args)
{
    if (args.size() < 2) {
        for (const auto& c : Commands())
            if (!Internal(c)) std::cout << c.name << "\n";
        return kOk;
    }
    const Command* c = FindCommand(args[1]);
    if (!c || Internal(*c)) return kUsage;
    auto help = CaptureHelp(*c);
    for (const auto& g : help.groups)
        for (const auto& o : g.second) {
            std::cout << o.long_name << " " << (o.param.empty() ? 0 : 1) << "\n";
            if (!o.short_name.empty()) std::cout << o.short_name << " " << (o.param.empty() ? 0 : 1) << "\n";
        }
    if (help.usage.find("JOB") != std::string::npos) std::cout << "JOB\n";
    return kOk;
}

// __complete-jobs [connection options]: the job ids, newest first
int CmdCompleteJobs(const std::string& cmd, const std::vector<std::string>& args)
{
    po::options_description d;
    auto cl = Parse(cmd, args, d, "__complete-jobs [connection options]");
    if (cl.help) return kOk;
    Connection c(cl.conn);
    Api api(c, Api::Unchecked{});
    auto jobs = api.Jobs(std::nullopt);
    for (auto it = jobs.rbegin(); it != jobs.rend(); ++it) std::cout << it->job_id << "\n";
    return kOk;
}

}  // namespace migctl
