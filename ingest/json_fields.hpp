#pragma once
// Typed access to the members of one JSON object, with the JSON path of the object so every
// error names the exact field (e.g. `observations[1].traceId`). An absent member and an explicit
// null are the same to every optional getter: the client did not say.

#include <boost/json/object.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "common/time.hpp"
#include "common/uuid.hpp"

namespace xtrace::ingest {

// Parses a request body that must be a JSON object: malformed JSON (or nesting deeper than
// max_depth) → kMalformedJson; any other JSON value → kInvalidField.
common::Result<boost::json::value> ParseObjectBody(std::string_view body, size_t max_depth);

class FieldReader {
 public:
  FieldReader(const boost::json::object& object, std::string path)
      : object_(object), path_(std::move(path)) {}

  // The first error met; later getters are no-ops once one is set.
  const std::optional<common::Error>& error() const { return error_; }

  std::optional<std::string> String(std::string_view key);
  std::optional<double> Number(std::string_view key);
  std::optional<int64_t> Integer(std::string_view key);  // integral doubles (12.0) accepted
  std::optional<bool> Bool(std::string_view key);
  std::optional<common::Uuid> Uuid(std::string_view key);
  std::optional<common::TimePoint> Time(std::string_view key);
  // Any JSON value, re-serialized compactly.
  std::optional<std::string> Json(std::string_view key);
  std::optional<std::vector<std::string>> StringList(std::string_view key);
  // A string, or an integer rendered as a string (prompt versions arrive both ways).
  std::optional<std::string> StringOrInteger(std::string_view key);

  void Require(std::string_view key);  // records an error when the member is absent or null
  std::string PathOf(std::string_view key) const;
  void Fail(std::string_view key, std::string why);

 private:
  const boost::json::value* Get(std::string_view key);

  const boost::json::object& object_;
  std::string path_;
  std::optional<common::Error> error_;
};

}  // namespace xtrace::ingest
