#pragma once
// A decoded query string (`+` is a space, as form encoding has it) with typed getters whose
// errors name the parameter.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/error.hpp"
#include "common/time.hpp"

namespace xtrace::query {

class QueryParams {
 public:
  static common::Result<QueryParams> Parse(std::string_view query);

  // The single value of a scalar parameter; given twice → error.
  common::Result<std::optional<std::string>> One(std::string_view name) const;
  // Every value of a repeatable parameter (`tags=a&tags=b`), in order.
  std::vector<std::string> All(std::string_view name) const;
  common::Result<std::optional<int64_t>> Integer(std::string_view name) const;
  common::Result<std::optional<common::TimePoint>> Time(std::string_view name) const;

 private:
  std::vector<std::pair<std::string, std::string>> items_;
};

}  // namespace xtrace::query
