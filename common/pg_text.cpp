#include "common/pg_text.hpp"

namespace xtrace::common {

namespace {

void AppendQuoted(std::string& out, const std::string& item) {
  out.push_back('"');
  // Runs without a quote or backslash (nearly everything) are copied whole.
  const char* run = item.data();
  const char* const end = run + item.size();
  for (const char* p = run; p != end; ++p) {
    if (*p == '"' || *p == '\\') {
      out.append(run, p);
      out.push_back('\\');
      run = p;
    }
  }
  out.append(run, end);
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
