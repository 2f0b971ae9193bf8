#pragma once
// Timestamps are microseconds since the Unix epoch, UTC: PostgreSQL's timestamptz precision, so a
// value survives a round trip through the database unchanged.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace xtrace::common {

using Micros = std::chrono::microseconds;
using TimePoint = std::chrono::sys_time<Micros>;

// Parses RFC 3339 the way xtrace's clients send it: `YYYY-MM-DD`, `T`, `t` or a space, `HH:MM:SS`,
// an optional fraction (digits beyond microseconds are truncated) and a mandatory offset (`Z`,
// `z`, `UTC`, `+HH:MM` or `+HHMM`). Returns nullopt for anything else, including out-of-range
// fields (month 13, Feb 30, hour 24) and instants outside the years 0001..9999 UTC (also when
// only the offset moves them there).
std::optional<TimePoint> ParseRfc3339(std::string_view text);

// `2026-01-01T00:00:00Z`, `…00.420Z`, `…00.123456Z`: 0, 3 or 6 fractional digits, as needed.
std::string FormatRfc3339(TimePoint t);

// The same instant with a `+00:00` offset instead of `Z`, as the reference renders metric,
// project and rate-limit timestamps.
std::string FormatRfc3339Offset(TimePoint t);

TimePoint Now();

}  // namespace xtrace::common
