// cmd_metrics.cpp -- migctl metrics [--finished-within D]: Prometheus text
// format on stdout, e.g. for node_exporter's textfile collector from cron:
//   migctl metrics > /var/lib/prometheus/node-exporter/pg_mig.prom.$$ &&
//   mv /var/lib/prometheus/node-exporter/pg_mig.prom.$$ /var/lib/prometheus/node-exporter/pg_mig.prom
// Nothing is written to stdout unless the whole exposition was read.
#include "cli.hpp"
#include "metrics.hpp"
#include "options.hpp"

#include <iostream>

namespace migctl {

int CmdMetrics(const std::string& cmd, const std::vector<std::string>& args)
{
    std::string within = "1d";
    po::options_description d("metrics options");
    d.add_options()("finished-within", po::value(&within)->default_value(within),
                    "also show succeeded and cancelled jobs that ended this recently (failed ones always)");
    auto cl = Parse(cmd, args, d, "metrics [--finished-within D]");
    if (cl.help) return kOk;
    if (cl.vm.count("job")) throw Error(kUsage, "metrics takes no job id", "Run migctl metrics --help.");
    std::string interval = DurationToInterval(ParseDuration(within));

    Connection c(cl.conn);
    Api api(c);
    std::cout << MetricsText(api.Metrics(interval)) << std::flush;
    return kOk;
}

}  // namespace migctl
