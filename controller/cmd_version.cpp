// cmd_version.cpp -- migctl version (or migctl --version): the versions of
// the three parts that must agree, and a warning if they do not.
#include "cli.hpp"
#include "version.hpp"

#include <cstdlib>
#include <iostream>

namespace migctl {

namespace {

// ConnectionGiven: whether the user named a server, on the command line or
// in the environment; only then does --version connect
bool ConnectionGiven(const ConnOptions& o)
{
    if (!o.dsn.empty() || !o.host.empty() || !o.port.empty() || !o.user.empty() || !o.dbname.empty()) return true;
    for (const char* v : {"PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGUSER", "PGSERVICE"})
        if (std::getenv(v)) return true;
    return false;
}

}  // namespace

std::string VersionReport(const Versions& v)
{
    std::string out = "migctl " + v.client + "\n";
    if (!v.installed)
        return out + "library   unknown (no extension to ask)\nextension not installed in database \"" + v.database +
               "\"\n";
    out += "library   " + v.library + (v.preloaded ? " (loaded by PostgreSQL " : " (NOT preloaded; PostgreSQL ") +
           v.server + ")\n";
    out += "extension " + v.extension + " in database \"" + v.database + "\"\n";
    return out;
}

int CmdVersion(const std::string& cmd, const std::vector<std::string>& args)
{
    po::options_description d;
    auto cl = Parse(cmd, args, d, "version [connection options]  (or migctl [connection options] --version)");
    if (cl.help) return kOk;
    if (!ConnectionGiven(cl.conn)) {
        std::cout << "migctl " << kVersion << "\n";
        return kOk;
    }
    std::cout << "migctl " << kVersion << std::endl;  // even if the server cannot be reached
    Connection c(cl.conn);
    Api api(c, Api::Unchecked{});
    auto v = api.ReadVersions();
    std::string report = VersionReport(v);
    std::cout << report.substr(report.find('\n') + 1);
    if (auto problem = VersionProblem(v)) {
        std::cerr << "migctl: WARNING: " << problem->what() << "\n";
        if (!problem->hint.empty()) std::cerr << "HINT: " << problem->hint << "\n";
    }
    return kOk;
}

}  // namespace migctl
