#pragma once
// Values rendered as the text of statement parameters (and of array elements), and result fields
// parsed back: the conversions the fold's parts share. Free text and JSON are sanitized on the
// way (sanitize.hpp).

#include <pqxx/result>  // <pqxx/field> alone does not compile in libpqxx 6.4

#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/pg_text.hpp"
#include "common/time.hpp"
#include "schema/events.hpp"

namespace xtrace::projector {

// A parameter or array element as text; std::nullopt is SQL NULL.
using Param = std::optional<std::string>;

Param Text(const schema::OptString& s);
std::string Text(const std::string& s);
Param Json(const schema::OptString& s);
Param Time(const schema::Field<common::TimePoint>& t);
Param Bool(const schema::Field<bool>& b);

template <class Number>
Param Num(const schema::Field<Number>& n) {
  if (!n) return std::nullopt;
  char buf[64];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, *n);
  return std::string(buf, end);
}

// A point in time, in microseconds since the epoch, as timestamptz text. Integer microseconds
// times an interval would go through float8 in PostgreSQL and lose the last microsecond beyond
// year 2255 (ingest accepts 0001-9999).
std::string TimeText(int64_t us);

// A float8 in shortest round-trip form.
std::string Decimal(double v);

// A numeric result field (see common::ParsePgNumber).
template <class Number>
Number Parse(const pqxx::field& f) {
  return common::ParsePgNumber<Number>(std::string_view(f.c_str(), f.size()));
}

}  // namespace xtrace::projector
