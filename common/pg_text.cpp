#include "common/pg_text.hpp"

namespace xtrace::common {

namespace {

void AppendQuoted(std::string& out, const std::string& item) {
  out.push_back('"');
  for (char c : item) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('"');
}

}  // namespace

std::string PgTextArrayLiteral(const std::vector<std::string>& items) {
  std::string out = "{";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out.push_back(',');
    AppendQuoted(out, items[i]);
  }
  out.push_back('}');
  return out;
}

std::string PgArrayLiteral(const std::vector<std::optional<std::string>>& items) {
  std::string out = "{";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out.push_back(',');
    if (items[i]) {
      AppendQuoted(out, *items[i]);
    } else {
      out += "NULL";
    }
  }
  out.push_back('}');
  return out;
}

}  // namespace xtrace::common
