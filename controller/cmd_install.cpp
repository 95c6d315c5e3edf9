// cmd_install.cpp -- migctl install [--configure]
#include "cli.hpp"

#include <iostream>

namespace migctl {

int CmdInstall(const std::string& cmd, const std::vector<std::string>& args)
{
    po::options_description d("install options");
    d.add_options()("configure", "add pg_mig to shared_preload_libraries with ALTER SYSTEM (restart needed)");
    auto cl = Parse(cmd, args, d, "install [--configure] [connection options]");
    if (cl.help) return kOk;
    bool configure = cl.vm.count("configure") > 0;

    Connection c(cl.conn);
    Api api(c, Api::Unchecked{});  // Install checks the versions after the update
    auto rep = api.Install(configure);
    std::cout << "server: PostgreSQL " << rep.server_version << "\n" << rep.action << "\n";
    if (rep.preloaded) {
        std::cout << "shared_preload_libraries: pg_mig is loaded (library " << rep.lib_version << ")\n";
        return kOk;
    }
    std::cout << "shared_preload_libraries: pg_mig is NOT loaded\n";
    // --configure wrote the setting: done, the restart is the user's to do
    // (Install's action says so); without it the server is not ready
    if (configure) return kOk;
    std::cout << std::flush;
    throw Error(kNoConnection, "pg_mig is not loaded: shared_preload_libraries does not include it",
                "Run migctl install --configure (or add pg_mig to shared_preload_libraries in postgresql.conf), "
                "then restart the server.");
}

}  // namespace migctl
