// render.hpp -- tables, progress bars and JSON for migctl's output.
#pragma once

#include <string>
#include <vector>

namespace migctl {

std::string JsonEscape(const std::string& s);
// ProgressBar: "[#####-----]" (ascii) or with block characters (utf8).
std::string ProgressBar(double fraction, int width, bool utf8);
// FormatCount: 1234567 -> "1,234,567"
std::string FormatCount(long long n);
// FormatRate: 48213.2 -> "48.2k"
std::string FormatRate(double per_sec);
// FormatBytes: 3735952 -> "3.6 MB" (binary units, like pg_size_pretty)
std::string FormatBytes(double bytes);
// FormatMillis: 45.3 -> "45.3 ms", 125000 -> "2 min 05 s", 7500000 -> "2 h 05 min"
std::string FormatMillis(double ms);
// FitToWidth: the line cut to at most cols characters (UTF-8 aware), ending
// in "..." when cut
std::string FitToWidth(const std::string& line, int cols);
// FormatTable: columns padded to the widest cell.
std::string FormatTable(const std::vector<std::string>& header,
                        const std::vector<std::vector<std::string>>& rows);
// JsonObject: {"k": v, ...} where numeric says whether a value is a bare number/null.
struct JsonField {
    std::string key, value;
    bool raw;  // number, true/false or null
};
std::string JsonObject(const std::vector<JsonField>& fields);

}  // namespace migctl
