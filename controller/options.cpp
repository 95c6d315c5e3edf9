// options.cpp -- see options.hpp.
#include "options.hpp"

#include "pg.hpp"

#include <cctype>
#include <cmath>

namespace migctl {

int64_t ParseDuration(const std::string& text)
{
    if (text.empty()) throw Error(kUsage, "invalid duration \"\"", "Use e.g. 500ms, 2s, 5min, 1h30m.");
    size_t i = 0;
    double total = 0;
    bool any = false;
    while (i < text.size()) {
        size_t start = i;
        while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) i++;
        if (start == i) throw Error(kUsage, "invalid duration \"" + text + "\"", "Use e.g. 500ms, 2s, 5min, 1h30m.");
        double v = std::stod(text.substr(start, i - start));
        size_t ustart = i;
        while (i < text.size() && std::isalpha(static_cast<unsigned char>(text[i]))) i++;
        std::string unit = text.substr(ustart, i - ustart);
        double mult;
        if (unit.empty() || unit == "s") mult = 1000;
        else if (unit == "ms") mult = 1;
        else if (unit == "m" || unit == "min") mult = 60000;
        else if (unit == "h") mult = 3600000;
        else if (unit == "d") mult = 86400000;
        else throw Error(kUsage, "invalid duration \"" + text + "\": unknown unit \"" + unit + "\"",
                         "Use ms, s, min (or m), h or d.");
        if (unit.empty() && any) throw Error(kUsage, "invalid duration \"" + text + "\"", "Give every part a unit.");
        total += v * mult;
        any = true;
    }
    if (total > 1e13) throw Error(kUsage, "duration \"" + text + "\" is too large");
    return static_cast<int64_t>(std::llround(total));
}

std::string DurationToInterval(int64_t ms) { return std::to_string(ms) + " milliseconds"; }

int64_t ParseSize(const std::string& text)
{
    size_t i = 0;
    while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) i++;
    if (i == 0) throw Error(kUsage, "invalid size \"" + text + "\"", "Use e.g. 16MB, 512kB, 1GB or a number of bytes.");
    double v = std::stod(text.substr(0, i));
    std::string unit = text.substr(i);
    double mult;
    if (unit.empty() || unit == "B") mult = 1;
    else if (unit == "kB" || unit == "KB" || unit == "k") mult = 1024;
    else if (unit == "MB" || unit == "M") mult = 1024.0 * 1024;
    else if (unit == "GB" || unit == "G") mult = 1024.0 * 1024 * 1024;
    else if (unit == "TB") mult = 1024.0 * 1024 * 1024 * 1024;
    else throw Error(kUsage, "invalid size \"" + text + "\": unknown unit \"" + unit + "\"", "Use B, kB, MB, GB or TB.");
    double b = v * mult;
    if (b > 9.2e18) throw Error(kUsage, "size \"" + text + "\" is too large");
    return static_cast<int64_t>(std::llround(b));
}

}  // namespace migctl
