// report.cpp -- migctl report: a job's history as text and as HTML + SVG.
#include "report.hpp"

#include "render.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <map>

namespace migctl {

namespace {

std::string Html(const std::string& s)
{
    std::string out;
    for (char ch : s) {
        switch (ch) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&quot;"; break;
            default: out += ch;
        }
    }
    return out;
}

std::string Fixed(double v, int digits)
{
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", digits, v);
    return buf;
}

std::string Clock(double epoch)
{
    std::time_t t = static_cast<std::time_t>(epoch);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
    return buf;
}

std::string Duration(double secs)
{
    return FormatMillis(std::max(secs, 0.0) * 1000);
}

double EndOf(const ReportData& d)
{
    double end = d.finished_at > 0 ? d.finished_at : 0;
    for (const auto& s : d.samples) end = std::max(end, s.at);
    for (const auto& e : d.events) end = std::max(end, e.at);
    return std::max(end, d.started_at);
}

// the colour of a reason class in the charts
std::string ReasonColour(const std::string& cls)
{
    static const std::map<std::string, std::string> colours{
        {"replica lag", "#e4572e"},   {"replay lag", "#f3a712"},       {"run window", "#4c6ef5"},
        {"active sessions", "#8e44ad"}, {"old transaction", "#16a085"}, {"archive backlog", "#7f8c8d"},
        {"autovacuum", "#2ecc71"},    {"throttle query", "#d35400"},  {"waiting for a worker", "#95a5a6"},
        {"application latency", "#c0392b"}};
    auto it = colours.find(cls);
    return it == colours.end() ? "#bdc3c7" : it->second;
}

}  // namespace

std::string ReasonClass(const std::string& reason)
{
    struct Rule {
        const char* needle;
        const char* cls;
    };
    static const Rule rules[] = {{"run window", "run window"},        {"replays", "replay lag"},
                                 {"behind", "replica lag"},           {"position of", "replica lag"},
                                 {"session", "active sessions"},     {"transaction", "old transaction"},
                                 {"archive", "archive backlog"},      {"autovacuum", "autovacuum"},
                                 {"throttle query", "throttle query"}, {"worker", "waiting for a worker"},
                                 {"latency", "application latency"}, {"hold", "pg_mig.hold"}};
    for (const auto& r : rules)
        if (reason.find(r.needle) != std::string::npos) return r.cls;
    return reason.empty() ? "" : "other";
}

std::vector<std::pair<std::string, double>> ThrottledByReason(const ReportData& d)
{
    std::map<std::string, double> by;
    for (size_t i = 0; i + 1 < d.samples.size(); i++)
        if (!d.samples[i].throttled.empty())
            by[ReasonClass(d.samples[i].throttled)] += d.samples[i + 1].at - d.samples[i].at;
    if (!d.samples.empty() && !d.samples.back().throttled.empty())
        by[ReasonClass(d.samples.back().throttled)] += std::max(EndOf(d) - d.samples.back().at, 0.0);
    std::vector<std::pair<std::string, double>> out(by.begin(), by.end());
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
    return out;
}

std::string ReportText(const ReportData& d)
{
    const Job& j = d.job;
    double end = d.finished_at > 0 ? d.finished_at : EndOf(d);
    double secs = end - d.started_at;
    double peak = 0;
    long long peak_lag = -1;
    double peak_replay = -1;
    for (const auto& s : d.samples) {
        peak = std::max(peak, s.rows_per_sec);
        peak_lag = std::max(peak_lag, s.lag_bytes);
        peak_replay = std::max(peak_replay, s.lag_seconds);
    }
    std::vector<std::vector<std::string>> rows;
    auto add = [&](const std::string& k, const std::string& v) { rows.push_back({k, v}); };
    add("job", std::to_string(j.job_id) + " " + j.relation + "  " + j.kind + "  " + j.state);
    add("duration", Duration(secs) + " (" + Clock(d.started_at) + " to " +
                        (d.finished_at > 0 ? Clock(d.finished_at) : std::string("now")) + ")");
    add("rows", FormatCount(j.rows_done) + " done" +
                    (j.rows_total >= 0 ? " of about " + FormatCount(j.rows_total) : std::string()));
    add("rate", "mean " + FormatRate(secs > 0 ? j.rows_done / secs : 0) + " rows/s, peak " +
                    (d.samples.size() > 1 ? FormatRate(peak) + " rows/s" : std::string("-")) + " (" +
                    std::to_string(d.samples.size()) + " samples)");
    std::string thr = Duration(j.throttled_seconds) + " in all";
    for (const auto& [cls, s] : ThrottledByReason(d)) thr += "; " + cls + " " + Duration(s);
    add("throttled", thr);
    std::string lag = peak_lag < 0 ? std::string("no replica") : FormatBytes(static_cast<double>(peak_lag));
    if (peak_replay >= 0) lag += ", replay " + Duration(peak_replay);
    if (j.max_lag_bytes > 0) lag += " (max_lag_bytes " + FormatBytes(static_cast<double>(j.max_lag_bytes)) + ")";
    if (d.max_lag_seconds > 0) lag += " (max_lag " + Duration(d.max_lag_seconds) + ")";
    add("peak lag", lag);
    add("WAL", FormatBytes(static_cast<double>(d.wal_bytes)));
    add("retries", std::to_string(d.retries));
    long long before = -1, after = -1;
    for (const auto& s : d.samples)
        if (s.table_bytes >= 0) {
            if (before < 0) before = s.table_bytes;
            after = s.table_bytes;
        }
    if (before >= 0)
        add("table size", FormatBytes(static_cast<double>(before)) + " before, " +
                              FormatBytes(static_cast<double>(after)) + (d.finished_at > 0 ? " after" : " now"));
    for (const auto& e : d.events)
        if (e.event == "verified") add("verified", e.detail);
    if (!j.last_error.empty() && j.state != "succeeded") add("last error", j.last_error);
    std::string out;
    for (const auto& r : rows) {
        std::string k = r[0];
        k.resize(12, ' ');
        out += k + r[1] + "\n";
    }
    return out;
}

std::string ReportHtml(const ReportData& d)
{
    const int W = 960, H = 220, L = 100, R = 150, T = 20, B = 30;
    double t0 = d.started_at;
    if (!d.samples.empty()) t0 = std::min(t0, d.samples.front().at);
    double t1 = std::max(EndOf(d), t0 + 1);
    auto x = [&](double t) { return L + (t - t0) / (t1 - t0) * (W - L - R); };
    double max_rows = 1, max_rate = 1, max_lag = 1;
    for (const auto& s : d.samples) {
        max_rows = std::max(max_rows, static_cast<double>(s.rows_done));
        max_rate = std::max(max_rate, s.rows_per_sec);
        max_lag = std::max(max_lag, static_cast<double>(s.lag_bytes));
    }
    // the budget on the chart when the lag came near it; else named above it
    bool budget_shown = d.job.max_lag_bytes > 0 && d.job.max_lag_bytes <= max_lag * 4;
    if (budget_shown) max_lag = std::max(max_lag, d.job.max_lag_bytes * 1.1);
    max_lag *= budget_shown ? 1.0 : 1.2;
    auto y = [&](double v, double max) { return T + (H - T - B) * (1 - v / max); };

    // throttled spans: a sample's reason holds until the next sample
    std::string spans;
    for (size_t i = 0; i < d.samples.size(); i++) {
        const auto& s = d.samples[i];
        if (s.throttled.empty()) continue;
        double until = i + 1 < d.samples.size() ? d.samples[i + 1].at : t1;
        std::string cls = ReasonClass(s.throttled);
        spans += "<rect class=\"span\" data-reason=\"" + Html(cls) + "\" x=\"" + Fixed(x(s.at), 1) + "\" y=\"" +
                 std::to_string(T) + "\" width=\"" + Fixed(std::max(x(until) - x(s.at), 1.0), 1) + "\" height=\"" +
                 std::to_string(H - T - B) + "\" fill=\"" + ReasonColour(cls) + "\" opacity=\"0.25\"><title>" +
                 Html(s.throttled) + "</title></rect>";
    }
    std::string events;
    for (const auto& e : d.events) {
        events += "<line class=\"ev\" x1=\"" + Fixed(x(e.at), 1) + "\" x2=\"" + Fixed(x(e.at), 1) + "\" y1=\"" +
                  std::to_string(T) + "\" y2=\"" + std::to_string(H - B) +
                  "\" stroke=\"#555\" stroke-dasharray=\"2,3\"><title>" + Html(Clock(e.at) + " " + e.event +
                  (e.detail.empty() ? "" : ": " + e.detail)) + "</title></line>";
    }
    auto axis = [&](const std::string& left, const std::string& right) {
        std::string a = "<line x1=\"" + std::to_string(L) + "\" y1=\"" + std::to_string(H - B) + "\" x2=\"" +
                        std::to_string(W - R) + "\" y2=\"" + std::to_string(H - B) + "\" stroke=\"#333\"/>";
        a += "<text x=\"" + std::to_string(L) + "\" y=\"" + std::to_string(H - 8) + "\" font-size=\"11\">0 s</text>";
        a += "<text x=\"" + std::to_string(W - R) + "\" y=\"" + std::to_string(H - 8) +
             "\" font-size=\"11\" text-anchor=\"end\">" + Html(Duration(t1 - t0)) + "</text>";
        a += "<text x=\"" + std::to_string(L - 6) + "\" y=\"" + std::to_string(T + 10) +
             "\" font-size=\"11\" text-anchor=\"end\">" + Html(left) + "</text>";
        if (!right.empty())
            a += "<text x=\"" + std::to_string(W - R + 6) + "\" y=\"" + std::to_string(T + 10) +
                 "\" font-size=\"11\">" + Html(right) + "</text>";
        return a;
    };
    auto series = [&](const std::string& cls, const std::string& colour, auto value, double max) {
        std::string path, dots;
        for (const auto& s : d.samples) {
            double v = value(s);
            if (v < 0) continue;
            std::string px = Fixed(x(s.at), 1), py = Fixed(y(v, max), 1);
            path += (path.empty() ? "M" : " L") + px + "," + py;
            dots += "<circle class=\"" + cls + "\" cx=\"" + px + "\" cy=\"" + py + "\" r=\"2.5\" fill=\"" + colour +
                    "\"/>";
        }
        return "<path class=\"line-" + cls + "\" d=\"" + path + "\" fill=\"none\" stroke=\"" + colour +
               "\" stroke-width=\"1.5\"/>" + dots;
    };
    auto svg = [&](const std::string& id, const std::string& body) {
        return "<svg id=\"" + id + "\" xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(W) +
               "\" height=\"" + std::to_string(H) + "\" viewBox=\"0 0 " + std::to_string(W) + " " +
               std::to_string(H) + "\">" + spans + events + body + "</svg>\n";
    };

    std::string rows_chart = svg(
        "rows", axis(FormatCount(static_cast<long long>(max_rows)) + " rows", FormatRate(max_rate) + " rows/s") +
                    series("pt-rows", "#1f77b4", [](const Sample& s) { return static_cast<double>(s.rows_done); },
                           max_rows) +
                    series("pt-rate", "#ff7f0e", [](const Sample& s) { return s.rows_per_sec; }, max_rate));
    std::string budget;
    if (d.job.max_lag_bytes > 0 && !budget_shown)
        budget = "<text class=\"budget\" x=\"" + std::to_string(W - R + 6) + "\" y=\"" + std::to_string(T + 24) +
                 "\" font-size=\"11\" fill=\"#c0392b\">max_lag_bytes " +
                 Html(FormatBytes(static_cast<double>(d.job.max_lag_bytes))) + "</text><text x=\"" +
                 std::to_string(W - R + 6) + "\" y=\"" + std::to_string(T + 38) +
                 "\" font-size=\"11\" fill=\"#c0392b\">(above the chart)</text>";
    else if (d.job.max_lag_bytes > 0) {
        std::string by = Fixed(y(static_cast<double>(d.job.max_lag_bytes), max_lag), 1);
        budget = "<line class=\"budget\" x1=\"" + std::to_string(L) + "\" x2=\"" + std::to_string(W - R) +
                 "\" y1=\"" + by + "\" y2=\"" + by + "\" stroke=\"#c0392b\" stroke-dasharray=\"6,4\"/>" +
                 "<text x=\"" + std::to_string(W - R + 6) + "\" y=\"" + by + "\" font-size=\"11\" fill=\"#c0392b\">" +
                 "max_lag_bytes " + Html(FormatBytes(static_cast<double>(d.job.max_lag_bytes))) + "</text>";
    }
    std::string lag_chart =
        svg("lag", axis(FormatBytes(max_lag), "") + budget +
                       series("pt-lag", "#2ca02c", [](const Sample& s) { return static_cast<double>(s.lag_bytes); },
                              max_lag));

    std::string legend;
    std::map<std::string, bool> seen;
    for (const auto& s : d.samples) {
        std::string cls = ReasonClass(s.throttled);
        if (cls.empty() || seen[cls]) continue;
        seen[cls] = true;
        legend += "<span class=\"key\"><span class=\"swatch\" style=\"background:" + ReasonColour(cls) +
                  "\"></span>" + Html(cls) + "</span> ";
    }
    std::string event_rows;
    for (const auto& e : d.events)
        event_rows += "<tr><td>+" + Fixed(std::max(e.at - t0, 0.0), 1) + " s</td><td>" + Html(e.event) + "</td><td>" +
                      Html(e.detail) + "</td></tr>\n";

    std::string title = "pg_mig job " + std::to_string(d.job.job_id) + " on " + d.job.relation;
    return "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>" + Html(title) +
           "</title>\n<style>body{font-family:sans-serif;margin:24px;color:#222}"
           "pre{background:#f6f6f6;padding:12px}h2{font-size:16px;margin:18px 0 4px}"
           ".key{margin-right:14px;font-size:13px}.swatch{display:inline-block;width:12px;height:12px;"
           "margin-right:4px;vertical-align:middle;opacity:.6}"
           "table{border-collapse:collapse;font-size:13px}td{padding:2px 10px 2px 0;vertical-align:top}"
           "</style></head>\n<body>\n<h1>" + Html(title) + "</h1>\n<pre id=\"summary\">" + Html(ReportText(d)) +
           "</pre>\n<h2>Rows done (blue) and rate (orange)</h2>\n" + rows_chart +
           "<h2>Replica lag (green) against the budget (red)</h2>\n" + lag_chart +
           "<div id=\"legend\">Throttled: " + (legend.empty() ? std::string("never") : legend) +
           " &middot; dotted lines: events</div>\n<h2>Events</h2>\n<table id=\"events\">\n" + event_rows +
           "</table>\n</body></html>\n";
}

}  // namespace migctl
