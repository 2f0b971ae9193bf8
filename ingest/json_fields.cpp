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

size_t FindControlCharacter(std::string_view text) {
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == 0x7F) return i;
    // C1 controls U+0080..U+009F are encoded as C2 80..C2 9F.
    if (c == 0xC2 && i + 1 < text.size() && static_cast<unsigned char>(text[i + 1]) <= 0x9F &&
        static_cast<unsigned char>(text[i + 1]) >= 0x80) {
      return i;
    }
  }
  return std::string_view::npos;
}

namespace {

// The reason `text` breaks the rule, or empty.
std::string CheckText(std::string_view text, size_t max_bytes, TextKind kind) {
  if (text.size() > max_bytes) {
    return "is " + std::to_string(text.size()) + " bytes; at most " + std::to_string(max_bytes) +
           " are allowed";
  }
  if (kind == TextKind::kIdentifier && FindControlCharacter(text) != std::string_view::npos) {
    return "must not contain control characters";
  }
  return {};
}

}  // namespace

std::optional<std::string> FieldReader::Text(std::string_view key, size_t max_bytes,
                                             TextKind kind) {
  auto s = String(key);
  if (!s) return s;
  if (auto why = CheckText(*s, max_bytes, kind); !why.empty()) {
    Fail(key, PathOf(key) + " " + why);
    return std::nullopt;
  }
  return s;
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

std::optional<int64_t> FieldReader::Count(std::string_view key, int64_t max) {
  const auto v = Integer(key);
  if (v && (*v < 0 || *v > max)) {
    Fail(key, PathOf(key) + " must be between 0 and " + std::to_string(max));
    return std::nullopt;
  }
  return v;
}

std::optional<double> FieldReader::Amount(std::string_view key, double max) {
  const auto v = Number(key);
  if (v && !(*v >= 0 && *v <= max)) {
    Fail(key, PathOf(key) + " must be a number between 0 and " +
                  std::to_string(static_cast<int64_t>(max)));
    return std::nullopt;
  }
  return v;
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

std::optional<std::vector<std::string>> FieldReader::IdentifierList(std::string_view key,
                                                                    ListLimits limits) {
  auto list = StringList(key);
  if (!list) return list;
  if (list->size() > limits.items) {
    Fail(key, PathOf(key) + " has " + std::to_string(list->size()) + " items; at most " +
                  std::to_string(limits.items) + " are allowed");
    return std::nullopt;
  }
  size_t total = 0;
  for (size_t i = 0; i < list->size(); ++i) {
    const std::string item = std::string(key) + "[" + std::to_string(i) + "]";
    if (auto why = CheckText((*list)[i], limits.item_bytes, TextKind::kIdentifier); !why.empty()) {
      Fail(item, PathOf(item) + " " + why);
      return std::nullopt;
    }
    total += (*list)[i].size();
  }
  if (total > limits.total_bytes) {
    Fail(key, PathOf(key) + " hold " + std::to_string(total) + " bytes together; at most " +
                  std::to_string(limits.total_bytes) + " are allowed");
    return std::nullopt;
  }
  return list;
}

std::optional<std::string> FieldReader::JsonWithCounts(
    std::string_view key, std::initializer_list<std::string_view> members, int64_t max) {
  const auto* v = Get(key);
  if (v != nullptr && v->is_object()) {
    for (const auto member : members) {
      const auto* m = v->get_object().if_contains(member);
      if (m == nullptr || !m->is_number()) continue;  // not a count: the derived column ignores it
      const double d = m->to_number<double>();
      if (!(d >= 0 && d <= static_cast<double>(max))) {
        const std::string field = std::string(key) + "." + std::string(member);
        Fail(field, PathOf(field) + " must be between 0 and " + std::to_string(max));
        return std::nullopt;
      }
    }
  }
  return Json(key);
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
