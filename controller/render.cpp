// render.cpp -- see render.hpp.
#include "render.hpp"

#include <algorithm>
#include <cstdio>
#include <sstream>

namespace migctl {

std::string JsonEscape(const std::string& s)
{
    std::string out;
    for (unsigned char c : s) {
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            case '\b': out += "\\b"; break;
            case '\f': out += "\\f"; break;
            default:
                if (c < 0x20) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\u%04x", c);
                    out += buf;
                } else {
                    out += static_cast<char>(c);
                }
        }
    }
    return out;
}

std::string ProgressBar(double fraction, int width, bool utf8)
{
    fraction = std::clamp(fraction, 0.0, 1.0);
    int full = static_cast<int>(fraction * width + 1e-9);
    std::string out = "[";
    for (int i = 0; i < width; i++) out += i < full ? (utf8 ? "\u2588" : "#") : (utf8 ? "\u2591" : "-");
    return out + "]";
}

std::string FormatCount(long long n)
{
    std::string digits = std::to_string(n < 0 ? -n : n), out;
    for (size_t i = 0; i < digits.size(); i++) {
        if (i && (digits.size() - i) % 3 == 0) out += ',';
        out += digits[i];
    }
    return n < 0 ? "-" + out : out;
}

std::string FormatRate(double v)
{
    char buf[32];
    if (v >= 1e6) std::snprintf(buf, sizeof buf, "%.1fM", v / 1e6);
    else if (v >= 1e3) std::snprintf(buf, sizeof buf, "%.1fk", v / 1e3);
    else std::snprintf(buf, sizeof buf, "%.0f", v);
    return buf;
}

std::string FitToWidth(const std::string& line, int cols)
{
    auto lead = [&](size_t i) { return (static_cast<unsigned char>(line[i]) & 0xC0) != 0x80; };
    int chars = 0;
    for (size_t i = 0; i < line.size(); i++) chars += lead(i);
    if (chars <= cols) return line;
    if (cols < 4) return "";
    // keep cols - 3 characters, never cutting inside a UTF-8 sequence
    size_t end = 0;
    for (int n = 0; end < line.size(); end++)
        if (lead(end) && n++ == cols - 3) break;
    return line.substr(0, end) + "...";
}

std::string FormatTable(const std::vector<std::string>& header,
                        const std::vector<std::vector<std::string>>& rows)
{
    std::vector<size_t> w(header.size());
    for (size_t i = 0; i < header.size(); i++) w[i] = header[i].size();
    for (const auto& r : rows)
        for (size_t i = 0; i < r.size() && i < w.size(); i++) w[i] = std::max(w[i], r[i].size());
    std::ostringstream out;
    auto line = [&](const std::vector<std::string>& r) {
        for (size_t i = 0; i < w.size(); i++) {
            std::string cell = i < r.size() ? r[i] : "";
            out << cell;
            if (i + 1 < w.size()) out << std::string(w[i] - cell.size() + 2, ' ');
        }
        out << '\n';
    };
    line(header);
    for (const auto& r : rows) line(r);
    return out.str();
}

std::string JsonObject(const std::vector<JsonField>& fields)
{
    std::string out = "{";
    for (size_t i = 0; i < fields.size(); i++) {
        if (i) out += ", ";
        out += "\"" + JsonEscape(fields[i].key) + "\": ";
        out += fields[i].raw ? fields[i].value : "\"" + JsonEscape(fields[i].value) + "\"";
    }
    return out + "}";
}

std::string FormatBytes(double bytes)
{
    static const char* units[] = {"bytes", "kB", "MB", "GB", "TB", "PB"};
    int u = 0;
    while (bytes >= 1024 && u < 5) {
        bytes /= 1024;
        u++;
    }
    char buf[32];
    if (u == 0)
        std::snprintf(buf, sizeof buf, "%.0f bytes", bytes);
    else
        std::snprintf(buf, sizeof buf, bytes < 10 ? "%.1f %s" : "%.0f %s", bytes, units[u]);
    return buf;
}

std::string FormatMillis(double ms)
{
    char buf[48];
    if (ms < 1000)
        std::snprintf(buf, sizeof buf, "%.1f ms", ms);
    else if (ms < 60000)
        std::snprintf(buf, sizeof buf, "%.1f s", ms / 1000);
    else {
        long long s = static_cast<long long>(ms / 1000 + 0.5);
        if (s < 3600)
            std::snprintf(buf, sizeof buf, "%lld min %02lld s", s / 60, s % 60);
        else
            std::snprintf(buf, sizeof buf, "%lld h %02lld min", s / 3600, s / 60 % 60);
    }
    return buf;
}

}  // namespace migctl
