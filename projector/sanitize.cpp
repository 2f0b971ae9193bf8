#include "projector/sanitize.hpp"

namespace xtrace::projector {

std::string SanitizeText(std::string_view text) {
  if (text.find('\0') == std::string_view::npos) return std::string(text);  // nearly always
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == '\0') {
      out += "\xEF\xBF\xBD";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string SanitizeJson(std::string_view json) {
  if (json.find("\\u0000") == std::string_view::npos) return std::string(json);  // nearly always
  std::string out;
  out.reserve(json.size());
  for (size_t i = 0; i < json.size(); ++i) {
    if (json[i] != '\\' || i + 1 >= json.size()) {
      out.push_back(json[i]);
      continue;
    }
    // An escape: copy it whole, so an escaped backslash is never read as the start of another.
    if (json.substr(i + 1, 5) == "u0000") {
      out += "\\ufffd";
      i += 5;
    } else {
      out.push_back('\\');
      out.push_back(json[i + 1]);
      ++i;
    }
  }
  return out;
}

}  // namespace xtrace::projector
