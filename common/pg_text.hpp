#pragma once
// Text forms of PostgreSQL values that libpqxx 6 cannot produce itself.

#include <optional>
#include <string>
#include <vector>

namespace xtrace::common {

// A text[] literal, e.g. {"a","b \"c\""}: every element quoted, quotes and backslashes escaped.
std::string PgTextArrayLiteral(const std::vector<std::string>& items);

// The same with NULL elements: an array literal castable to any element type (uuid[], jsonb[],
// timestamptz[], ...) whose elements are given in their text form.
std::string PgArrayLiteral(const std::vector<std::optional<std::string>>& items);

}  // namespace xtrace::common
