#pragma once
// Text forms of PostgreSQL values that libpqxx 6 cannot produce itself.

#include <charconv>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace xtrace::common {

// A text[] literal, e.g. {"a","b \"c\""}: every element quoted, quotes and backslashes escaped.
std::string PgTextArrayLiteral(const std::vector<std::string>& items);

// The same with NULL elements: an array literal castable to any element type (uuid[], jsonb[],
// timestamptz[], ...) whose elements are given in their text form.
std::string PgArrayLiteral(const std::vector<std::optional<std::string>>& items);

// A number in PostgreSQL's text output (float8 in shortest round-trip form), parsed without the
// locale-aware stream conversion libpqxx's as<>() uses, which shows in profiles when result sets
// are large. Throws on anything else.
template <class Number>
Number ParsePgNumber(std::string_view text) {
  Number v{};
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size()) {
    throw std::runtime_error("unexpected number from PostgreSQL: " + std::string(text));
  }
  return v;
}

}  // namespace xtrace::common
