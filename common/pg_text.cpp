#include "common/pg_text.hpp"

namespace xtrace::common {

namespace {

void AppendQuoted(std::string& out, const std::string& item) {
  out.push_back('"');
  // Runs without a quote or backslash (nearly everything) are copied whole.
  size_t from = 0;
  for (size_t at = item.find_first_of("\"\\"); at != std::string::npos;
       at = item.find_first_of("\"\\", at + 1)) {
    out.append(item, from, at - from);
    out.push_back('\\');
    from = at;
  }
  out.append(item, from, std::string::npos);
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
