// main.cpp -- migctl: finds the subcommand in the command table (cli.cpp),
// runs it, and turns every error into one line on stderr and an exit code.
#include "cli.hpp"

#include <algorithm>
#include <iostream>
#include <set>

using namespace migctl;

namespace {

std::string UsageText()
{
    std::string s =
        "migctl -- controls pg_mig backfill jobs\n\n"
        "Usage: migctl [connection options] COMMAND [options]\n\n"
        "Commands:\n";
    for (const auto& c : Commands())
        if (c.synopsis) s += std::string("  ") + c.synopsis + "\n";
    s += "\nConnection options (libpq; the PG* environment variables and .pgpass apply):\n"
         "  --dsn DSN                 URI or key=value connection string\n"
         "  -h, --host HOST  -p, --port PORT  -U, --username USER  -d, --dbname DB\n\n"
         "Exit codes: 0 success, 1 job failed or cancelled, 2 bad usage or input,\n"
         "3 cannot connect or server not ready, 4 timeout.\n"
         "Run migctl COMMAND --help for the options of a command.\n";
    return s;
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
            if (args[i] == "--version") {
                std::cout << "migctl 0.3\n";
                return kOk;
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
        for (const auto& c : Commands())
            if (cmd == c.name) return c.run(cmd == "log" ? "events" : cmd, args);
        throw Error(kUsage, "unknown command \"" + cmd + "\"", "Run migctl --help.");
    } catch (const Error& e) {
        std::cerr << "migctl: " << e.what() << "\n";
        if (!e.hint.empty()) std::cerr << "HINT: " << e.hint << "\n";
        return e.exit_code;
    } catch (const std::exception& e) {
        std::cerr << "migctl: " << e.what() << "\n";
        return kUsage;
    }
}
