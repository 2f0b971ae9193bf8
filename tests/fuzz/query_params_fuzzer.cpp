// Query strings of the read API: the generic QueryParams decoder and its typed getters, and the
// two endpoint parsers built on them (trace list, metric query).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "query/metrics.hpp"
#include "query/params.hpp"
#include "query/traces.hpp"

namespace {

constexpr std::string_view kNames[] = {"page", "limit", "name", "tags", "from", "to", "step", ""};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view query(reinterpret_cast<const char*>(data), size);
  using xtrace::query::QueryParams;
  if (auto params = QueryParams::Parse(query)) {
    for (const std::string_view name : kNames) {
      (void)params->One(name);
      (void)params->All(name);
      (void)params->Integer(name);
      (void)params->Time(name);
    }
  }
  if (auto list = xtrace::query::ParseTraceListParams(query)) {
    // The normalization the SQL relies on: a positive page and a limit of 1..200.
    if (list->page < 1 || list->limit < 1 || list->limit > 200) std::abort();
  }
  const auto now = xtrace::common::ParseRfc3339("2026-01-01T00:00:00Z").value();
  if (auto metric = xtrace::query::ParseMetricQueryParams(query, now)) {
    if (metric->from > metric->to || metric->step_seconds <= 0) std::abort();
  }
  return 0;
}
