#include "ingest/json_fields.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <cmath>

namespace xtrace::ingest {

std::string FieldReader::PathOf(std::string_view key) const {
  if (path_.empty()) return std::string(key);
  return path_ + "." + std::string(key);
}

void FieldReader::Fail(std::string_view key, std::string why) {
  if (!error_) error_ = common::Error::InvalidField(PathOf(key), std::move(why));
}

const boost::json::value* FieldReader::Get(std::string_view key) {
  if (error_) return nullptr;
  const auto* v = object_.if_contains(key);
  if (v == nullptr || v->is_null()) return nullptr;
  return v;
}

void FieldReader::Require(std::string_view key) {
  if (Get(key) == nullptr) Fail(key, "missing required field " + PathOf(key));
}

std::optional<std::string> FieldReader::String(std::string_view key) {
  const auto* v = Get(key);
  if (v == nullptr) return std::nullopt;
  if (!v->is_string()) {
    Fail(key, PathOf(key) + " must be a string");
    return std::nullopt;
  }
  return std::string(v->get_string());
}

std::optional<double> FieldReader::Number(std::string_view key) {
  const auto* v = Get(key);
  if (v == nullptr) return std::nullopt;
  if (!v->is_number() || !std::isfinite(v->to_number<double>())) {
    Fail(key, PathOf(key) + " must be a finite number");
    return std::nullopt;
  }
  return v->to_number<double>();
}

std::optional<int64_t> FieldReader::Integer(std::string_view key) {
  const auto* v = Get(key);
  if (v == nullptr) return std::nullopt;
  if (v->is_int64()) return v->get_int64();
  if (v->is_uint64() && v->get_uint64() <= static_cast<uint64_t>(INT64_MAX)) {
    return static_cast<int64_t>(v->get_uint64());
  }
  if (v->is_double()) {
    const double d = v->get_double();
    // 9.2e18 is the largest double below 2^63, so the cast below cannot overflow.
    if (std::isfinite(d) && std::trunc(d) == d && std::fabs(d) < 9.2e18) {
      return static_cast<int64_t>(d);
    }
  }
  Fail(key, PathOf(key) + " must be an integer");
  return std::nullopt;
}

std::optional<bool> FieldReader::Bool(std::string_view key) {
  const auto* v = Get(key);
  if (v == nullptr) return std::nullopt;
  if (!v->is_bool()) {
    Fail(key, PathOf(key) + " must be a boolean");
    return std::nullopt;
  }
  return v->get_bool();
}

std::optional<common::Uuid> FieldReader::Uuid(std::string_view key) {
  const auto* v = Get(key);
  if (v == nullptr) return std::nullopt;
  if (v->is_string()) {
    if (auto u = common::Uuid::Parse(v->get_string())) return u;
  }
  Fail(key, PathOf(key) + " must be a UUID string");
  return std::nullopt;
}

std::optional<common::TimePoint> FieldReader::Time(std::string_view key) {
  const auto* v = Get(key);
  if (v == nullptr) return std::nullopt;
  if (v->is_string()) {
    if (auto t = common::ParseRfc3339(v->get_string())) return t;
  }
  Fail(key, PathOf(key) + " must be an RFC 3339 timestamp with an offset");
  return std::nullopt;
}

common::Result<boost::json::value> ParseObjectBody(std::string_view body, size_t max_depth) {
  boost::json::parse_options options;
  options.max_depth = max_depth;
  boost::system::error_code ec;
  boost::json::value root = boost::json::parse(body, ec, {}, options);
  if (ec) {
    return common::Error{
        common::ErrorCode::kMalformedJson, "request body is not valid JSON: " + ec.message(), {}};
  }
  if (!root.is_object()) {
    return common::Error::InvalidField("", "request body must be a JSON object");
  }
  return root;
}

namespace {

// A number beyond double range (1e400) parses as infinity, which JSON cannot represent: it would
// serialize as `Infinity` and no JSON reader, PostgreSQL included, would take it back.
bool AllNumbersFinite(const boost::json::value& v) {
  switch (v.kind()) {
    case boost::json::kind::double_: return std::isfinite(v.get_double());
    case boost::json::kind::array:
      for (const auto& item : v.get_array()) {
        if (!AllNumbersFinite(item)) return false;
      }
      return true;
    case boost::json::kind::object:
      for (const auto& member : v.get_object()) {
        if (!AllNumbersFinite(member.value())) return false;
      }
      return true;
    default: return true;
  }
}

}  // namespace

std::optional<std::string> FieldReader::Json(std::string_view key) {
  const auto* v = Get(key);
  if (v == nullptr) return std::nullopt;
  if (!AllNumbersFinite(*v)) {
    Fail(key, PathOf(key) + " contains a number beyond the range of a double");
    return std::nullopt;
  }
  return boost::json::serialize(*v);
}

std::optional<std::vector<std::string>> FieldReader::StringList(std::string_view key) {
  const auto* v = Get(key);
  if (v == nullptr) return std::nullopt;
  if (!v->is_array()) {
    Fail(key, PathOf(key) + " must be an array of strings");
    return std::nullopt;
  }
  std::vector<std::string> out;
  const auto& array = v->get_array();
  out.reserve(array.size());
  for (size_t i = 0; i < array.size(); ++i) {
    if (!array[i].is_string()) {
      Fail(std::string(key) + "[" + std::to_string(i) + "]",
           PathOf(key) + "[" + std::to_string(i) + "] must be a string");
      return std::nullopt;
    }
    out.emplace_back(array[i].get_string());
  }
  return out;
}

std::optional<std::string> FieldReader::StringOrInteger(std::string_view key) {
  const auto* v = Get(key);
  if (v == nullptr) return std::nullopt;
  if (v->is_string()) return std::string(v->get_string());
  if (v->is_int64()) return std::to_string(v->get_int64());
  if (v->is_uint64()) return std::to_string(v->get_uint64());
  Fail(key, PathOf(key) + " must be a string or an integer");
  return std::nullopt;
}

}  // namespace xtrace::ingest
