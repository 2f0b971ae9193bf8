#pragma once
// Typed access to the members of one JSON object, with the JSON path of the object so every
// error names the exact field (e.g. `observations[1].traceId`). An absent member and an explicit
// null are the same to every optional getter: the client did not say.

#include <boost/json/object.hpp>

#include <cstdint>
#include <initializer_list>
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

// How a text field is checked besides its length.
enum class TextKind {
  kFree,        // any text (NUL is replaced on the way to PostgreSQL)
  kIdentifier,  // a name, id or group key: no control characters (C0, DEL, C1)
};

// Limits of a list of identifiers (tags).
struct ListLimits {
  size_t item_bytes;
  size_t items;
  size_t total_bytes;
};

// The first control character (C0, DEL or C1) in UTF-8 text, or npos.
size_t FindControlCharacter(std::string_view text);

class FieldReader {
 public:
  FieldReader(const boost::json::object& object, std::string path)
      : object_(object), path_(std::move(path)) {}

  // The first error met; later getters are no-ops once one is set.
  const std::optional<common::Error>& error() const { return error_; }

  std::optional<std::string> String(std::string_view key);
  // A string of at most max_bytes bytes (UTF-8), checked as `kind` says.
  std::optional<std::string> Text(std::string_view key, size_t max_bytes,
                                  TextKind kind = TextKind::kIdentifier);
  std::optional<double> Number(std::string_view key);
  std::optional<int64_t> Integer(std::string_view key);  // integral doubles (12.0) accepted
  // An integer in [0, max] (a token count).
  std::optional<int64_t> Count(std::string_view key, int64_t max);
  // A finite number in [0, max] (a cost, price or duration).
  std::optional<double> Amount(std::string_view key, double max);
  std::optional<bool> Bool(std::string_view key);
  std::optional<common::Uuid> Uuid(std::string_view key);
  std::optional<common::TimePoint> Time(std::string_view key);
  // Any JSON value, re-serialized compactly.
  std::optional<std::string> Json(std::string_view key);
  std::optional<std::vector<std::string>> StringList(std::string_view key);
  // A list of identifiers within `limits`.
  std::optional<std::vector<std::string>> IdentifierList(std::string_view key, ListLimits limits);
  // A JSON object whose listed members, where they are numbers, are counts in [0, max]: the
  // usage payload, whose token members feed the derived token columns and the rollups.
  std::optional<std::string> JsonWithCounts(std::string_view key,
                                            std::initializer_list<std::string_view> members,
                                            int64_t max);
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
