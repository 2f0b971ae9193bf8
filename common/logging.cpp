#include "common/logging.hpp"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace xtrace::common {

std::optional<spdlog::level::level_enum> ParseLogLevel(std::string_view name) {
  for (int i = spdlog::level::trace; i < spdlog::level::n_levels; ++i) {
    const auto level = static_cast<spdlog::level::level_enum>(i);
    if (spdlog::level::to_string_view(level) == name) return level;
  }
  if (name == "warn") return spdlog::level::warn;
  return std::nullopt;
}

void SetupLogging(spdlog::level::level_enum level) {
  auto logger = spdlog::stderr_logger_mt("xtrace");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%fZ %^%-5l%$ [%t] %v", spdlog::pattern_time_type::utc);
  logger->set_level(level);
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(std::move(logger));
}

}  // namespace xtrace::common
