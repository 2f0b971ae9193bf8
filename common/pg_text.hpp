#pragma once
// Text forms of PostgreSQL values that libpqxx 6 cannot produce itself.

#include <string>
#include <vector>

namespace xtrace::common {

// A text[] literal, e.g. {"a","b \"c\""}: every element quoted, quotes and backslashes escaped.
std::string PgTextArrayLiteral(const std::vector<std::string>& items);

}  // namespace xtrace::common
