// report.hpp -- migctl report: a job's history as a text summary and as a
// self-contained HTML page with inline SVG charts (no I/O here).
#pragma once

#include "api.hpp"

#include <string>
#include <vector>

namespace migctl {

// ReasonClass: a throttle reason in a few words, the same for every reason
// of one kind ("standby1 is 2.0 MB behind ..." -> "replica lag")
std::string ReasonClass(const std::string& reason);

// ThrottledByReason: seconds throttled per reason class, from the samples
// (each sample's reason holds until the next sample), largest first
std::vector<std::pair<std::string, double>> ThrottledByReason(const ReportData& d);

// ReportText: migctl report JOB
std::string ReportText(const ReportData& d);
// ReportHtml: migctl report JOB --html FILE; one circle per sample in the
// rows chart (class pt-rows), the rate chart (pt-rate) and, where a lag
// was read, the lag chart (pt-lag); throttled spans are rects of class
// span, events lines of class ev
std::string ReportHtml(const ReportData& d);

}  // namespace migctl
