#include "query/params.hpp"

#include <boost/url/params_view.hpp>
#include <boost/url/parse_query.hpp>

#include <charconv>

namespace xtrace::query {

using common::Error;

common::Result<QueryParams> QueryParams::Parse(std::string_view query) {
  if (query.empty()) return QueryParams{};
  // Boost.URL 1.81 measures some string_view arguments with strlen, so it gets a NUL-terminated
  // copy rather than a view into the request buffer.
  const std::string text(query);
  // Validate first: the params_view constructor below throws on invalid input. (The overload
  // taking the parsed view is declared but not exported by the Boost 1.81 library.)
  if (!boost::urls::parse_query(text)) {
    return Error::BadParameter("", "the query string is not valid");
  }
  boost::urls::encoding_opts opts;
  opts.space_as_plus = true;
  QueryParams out;
  for (const auto& p : boost::urls::params_view(text, opts)) {
    out.items_.emplace_back(p.key, p.has_value ? p.value : std::string());
  }
  return out;
}

common::Result<std::optional<std::string>> QueryParams::One(std::string_view name) const {
  std::optional<std::string> found;
  for (const auto& [k, v] : items_) {
    if (k != name) continue;
    if (found) return Error::BadParameter(std::string(name), std::string(name) + " is given twice");
    found = v;
  }
  return found;
}

std::vector<std::string> QueryParams::All(std::string_view name) const {
  std::vector<std::string> out;
  for (const auto& [k, v] : items_) {
    if (k == name) out.push_back(v);
  }
  return out;
}

common::Result<std::optional<int64_t>> QueryParams::Integer(std::string_view name) const {
  auto value = One(name);
  if (!value) return value.error();
  if (!*value) return std::optional<int64_t>();
  const std::string& s = **value;
  int64_t n = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc() || end != s.data() + s.size()) {
    return Error::BadParameter(std::string(name), std::string(name) + " must be an integer");
  }
  return std::optional<int64_t>(n);
}

common::Result<std::optional<common::TimePoint>> QueryParams::Time(std::string_view name) const {
  auto value = One(name);
  if (!value) return value.error();
  if (!*value) return std::optional<common::TimePoint>();
  auto t = common::ParseRfc3339(**value);
  if (!t) {
    return Error::BadParameter(std::string(name),
                               std::string(name) + " must be an RFC 3339 timestamp with an offset");
  }
  return std::optional<common::TimePoint>(*t);
}

}  // namespace xtrace::query
