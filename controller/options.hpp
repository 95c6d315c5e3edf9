// options.hpp -- human durations and sizes.
#pragma once

#include <cstdint>
#include <string>

namespace migctl {

// ParseDuration: "500ms", "2s", "1min", "1h30m", "1d", a bare number = seconds.
// Returns milliseconds; throws Error(kUsage) on bad input.
int64_t ParseDuration(const std::string& text);
// DurationToInterval: milliseconds as a PostgreSQL interval literal.
std::string DurationToInterval(int64_t ms);
// ParseSize: "16MB", "512kB", "1GB", "100" (bytes). Returns bytes.
int64_t ParseSize(const std::string& text);

}  // namespace migctl
