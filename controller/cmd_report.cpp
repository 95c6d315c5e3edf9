// cmd_report.cpp -- migctl report JOB [--html FILE]: a job's history
// (mig_job_timeline and its events) as a text summary, or as a
// self-contained HTML page with SVG charts.
#include "cli.hpp"
#include "report.hpp"

#include <fstream>
#include <iostream>

namespace migctl {

int CmdReport(const std::string& cmd, const std::vector<std::string>& args)
{
    std::string html;
    po::options_description d("report options");
    d.add_options()("html", po::value(&html), "write the report as a self-contained HTML page with charts to FILE");
    auto cl = Parse(cmd, args, d, "report JOB [--html FILE]");
    if (cl.help) return kOk;
    long long job = NeedJob(cl, cmd);

    Connection c(cl.conn);
    Api api(c);
    auto data = api.Report(job);
    if (html.empty()) {
        std::cout << ReportText(data) << std::flush;
        return kOk;
    }
    std::ofstream out(html, std::ios::binary | std::ios::trunc);
    if (!out) throw Error(kUsage, "cannot write \"" + html + "\"", "Give --html a file in a directory you may write to.");
    out << ReportHtml(data);
    out.close();
    if (!out) throw Error(kUsage, "cannot write \"" + html + "\"", "Check the free space where --html points.");
    std::cout << "wrote " << html << " (" << data.samples.size() << " samples, " << data.events.size()
              << " events)\n";
    return kOk;
}

}  // namespace migctl
