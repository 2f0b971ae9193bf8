#include "common/json.hpp"

#include <boost/json/serialize.hpp>

#include <charconv>
#include <cmath>

namespace xtrace::common {
namespace {

void AppendDouble(std::string& out, double d) {
  if (!std::isfinite(d)) {  // JSON has no NaN or infinity
    out += "null";
    return;
  }
  char buf[64];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, d);
  const std::string_view text(buf, static_cast<size_t>(end - buf));
  out += text;
  if (text.find_first_of(".eE") == std::string_view::npos) out += ".0";
}

void Append(std::string& out, const boost::json::value& v) {
  switch (v.kind()) {
    case boost::json::kind::null: out += "null"; return;
    case boost::json::kind::bool_: out += v.get_bool() ? "true" : "false"; return;
    case boost::json::kind::int64: out += std::to_string(v.get_int64()); return;
    case boost::json::kind::uint64: out += std::to_string(v.get_uint64()); return;
    case boost::json::kind::double_: AppendDouble(out, v.get_double()); return;
    case boost::json::kind::string: out += boost::json::serialize(v.get_string()); return;
    case boost::json::kind::array: {
      out.push_back('[');
      bool first = true;
      for (const auto& item : v.get_array()) {
        if (!first) out.push_back(',');
        first = false;
        Append(out, item);
      }
      out.push_back(']');
      return;
    }
    case boost::json::kind::object: {
      out.push_back('{');
      bool first = true;
      for (const auto& member : v.get_object()) {
        if (!first) out.push_back(',');
        first = false;
        out += boost::json::serialize(boost::json::string_view(member.key()));
        out.push_back(':');
        Append(out, member.value());
      }
      out.push_back('}');
      return;
    }
  }
}

}  // namespace

std::string SerializeJson(const boost::json::value& value) {
  std::string out;
  out.reserve(256);
  Append(out, value);
  return out;
}

}  // namespace xtrace::common
