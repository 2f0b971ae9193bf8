#pragma once

#include <optional>
#include <string_view>

#include <spdlog/common.h>

namespace xtrace::common {

// "trace", "debug", "info", "warn", "error", "critical" or "off"; nullopt for anything else.
std::optional<spdlog::level::level_enum> ParseLogLevel(std::string_view name);

// One process-wide logger on stderr with timestamps in UTC and the thread id.
void SetupLogging(spdlog::level::level_enum level);

}  // namespace xtrace::common
