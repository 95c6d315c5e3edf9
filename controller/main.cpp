// main.cpp -- migctl: finds the subcommand in the command table (cli.cpp),
// runs it, and turns every error into one line on stderr and an exit code.
// This is the only place that decides exit codes for errors: migctl's own
// errors carry theirs, server errors are mapped from their SQLSTATE.
#include "cli.hpp"
#include "hints.hpp"

#include <algorithm>
#include <iostream>
#include <set>

using namespace migctl;

namespace {

void PrintError(const std::string& message, const std::string& hint)
{
    std::cerr << "migctl: " << message << "\n";
    if (!hint.empty()) std::cerr << "HINT: " << hint << "\n";
}

}  // namespace

int main(int argc, char** argv)
{
    try {
        std::vector<std::string> args(argv + 1, argv + argc);
        static const std::set<std::string> with_value = {"--dsn", "-h", "--host", "-p", "--port",
                                                         "-U", "--username", "-d", "--dbname"};
        std::string cmd;
        for (size_t i = 0; i < args.size(); i++) {
            if (with_value.count(args[i])) {
                i++;
                continue;
            }
            if (args[i] == "--version") {  // migctl [connection options] --version
                args[i] = cmd = "version";
                break;
            }
            if (args[i].empty() || args[i][0] != '-') {
                cmd = args[i];
                break;
            }
        }
        if (cmd.empty()) {
            bool help = std::find(args.begin(), args.end(), "--help") != args.end();
            (help ? std::cout : std::cerr) << UsageText();
            return help ? kOk : kUsage;
        }
        const Command* c = FindCommand(cmd);
        if (!c) throw Error(kUsage, "unknown command \"" + cmd + "\"", "Run migctl --help.");
        return c->run(cmd == "log" ? "events" : cmd, args);
    } catch (const SqlError& e) {
        // the server's hint names SQL; the user is in migctl
        PrintError(e.what(), MigctlHint(e.hint));
        return ExitCodeForSqlState(e.sqlstate);
    } catch (const Error& e) {
        PrintError(e.what(), e.hint);
        return e.exit_code;
    } catch (const std::exception& e) {
        PrintError(e.what(), "");
        return kUsage;
    }
}
