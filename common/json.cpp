#include "common/json.hpp"

#include <boost/json/parse.hpp>
#include <boost/system/system_error.hpp>

#include <charconv>
#include <cmath>

namespace xtrace::common {
namespace {

boost::json::parse_options DepthLimited() {
  boost::json::parse_options options;
  options.max_depth = kMaxJsonDepth;
  return options;
}

bool IsJsonWhitespace(char c) {
  return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

void Append(std::string& out, const boost::json::value& v) {
  switch (v.kind()) {
    case boost::json::kind::null: out += "null"; return;
    case boost::json::kind::bool_: out += v.get_bool() ? "true" : "false"; return;
    case boost::json::kind::int64: out += std::to_string(v.get_int64()); return;
    case boost::json::kind::uint64: out += std::to_string(v.get_uint64()); return;
    case boost::json::kind::double_: AppendJsonDouble(out, v.get_double()); return;
    case boost::json::kind::string: AppendJsonString(out, v.get_string()); return;
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
        AppendJsonString(out, member.key());
        out.push_back(':');
        Append(out, member.value());
      }
      out.push_back('}');
      return;
    }
  }
}

}  // namespace

boost::json::value ParseJson(std::string_view text, boost::system::error_code& ec) {
  return boost::json::parse(text, ec, {}, DepthLimited());
}

boost::json::value ParseJson(std::string_view text) {
  boost::system::error_code ec;
  auto value = ParseJson(text, ec);
  if (ec) throw boost::system::system_error(ec);
  return value;
}

std::string SerializeJson(const boost::json::value& value) {
  std::string out;
  out.reserve(256);
  Append(out, value);
  return out;
}

void AppendJsonString(std::string& out, std::string_view s) {
  // The escapes Boost.JSON's serializer writes, so both writers produce the same bytes.
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  size_t run = 0;  // start of the bytes not yet copied
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(s.data() + run, i - run);
    run = i + 1;
    out.push_back('\\');
    switch (c) {
      case '"': out.push_back('"'); break;
      case '\\': out.push_back('\\'); break;
      case '\b': out.push_back('b'); break;
      case '\t': out.push_back('t'); break;
      case '\n': out.push_back('n'); break;
      case '\f': out.push_back('f'); break;
      case '\r': out.push_back('r'); break;
      default:
        out += "u00";
        out.push_back(kHex[c >> 4]);
        out.push_back(kHex[c & 15]);
    }
  }
  out.append(s.data() + run, s.size() - run);
  out.push_back('"');
}

void AppendJsonDouble(std::string& out, double d) {
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

void AppendCompactJson(std::string& out, std::string_view json) {
  // Copies runs of bytes between whitespace; a string is skipped over whole (its closing quote
  // is the first '"' not escaped by a backslash), so whitespace inside it is kept.
  size_t run = 0;
  size_t i = 0;
  while (i < json.size()) {
    const char c = json[i];
    if (c == '"') {
      for (++i; i < json.size() && json[i] != '"'; ++i) {
        if (json[i] == '\\') ++i;
      }
      ++i;
    } else if (IsJsonWhitespace(c)) {
      out.append(json.data() + run, i - run);
      while (i < json.size() && IsJsonWhitespace(json[i])) ++i;
      run = i;
    } else {
      ++i;
    }
  }
  if (run < json.size()) out.append(json.data() + run, json.size() - run);
}

}  // namespace xtrace::common
