#include "projector/params.hpp"

#include "projector/sanitize.hpp"

namespace xtrace::projector {

Param Text(const schema::OptString& s) {
  if (!s) return std::nullopt;
  return SanitizeText(*s);
}

std::string Text(const std::string& s) {
  return SanitizeText(s);
}

Param Json(const schema::OptString& s) {
  if (!s) return std::nullopt;
  return SanitizeJson(*s);
}

Param Time(const schema::Field<common::TimePoint>& t) {
  if (!t) return std::nullopt;
  return common::FormatRfc3339(*t);
}

Param Bool(const schema::Field<bool>& b) {
  if (!b) return std::nullopt;
  return *b ? "true" : "false";
}

std::string TimeText(int64_t us) {
  return common::FormatRfc3339(common::TimePoint(common::Micros(us)));
}

std::string Decimal(double v) {
  char buf[32];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, end);
}

}  // namespace xtrace::projector
