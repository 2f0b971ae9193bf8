#include "pg/conninfo.hpp"

#include <libpq-fe.h>

#include <cstdlib>
#include <memory>
#include <stdexcept>

namespace xtrace::pg {
namespace {

struct OptionsDeleter {
  void operator()(PQconninfoOption* options) const { PQconninfoFree(options); }
};
using Options = std::unique_ptr<PQconninfoOption, OptionsDeleter>;

// libpq's own parser, so both forms (postgresql://… and key=value) and every quoting and
// percent-encoding rule are read exactly as the connection will read them.
Options Parse(const std::string& conninfo) {
  char* error = nullptr;
  Options options(PQconninfoParse(conninfo.c_str(), &error));
  if (!options) {
    std::string why = error != nullptr ? error : "out of memory";
    PQfreemem(error);
    while (!why.empty() && why.back() == '\n') why.pop_back();
    throw std::invalid_argument("cannot parse the database URL: " + why);
  }
  return options;
}

const PQconninfoOption* Find(const Options& options, const std::string& key) {
  for (const PQconninfoOption* o = options.get(); o->keyword != nullptr; ++o) {
    if (key == o->keyword) return o;
  }
  return nullptr;
}

bool IsUrl(const std::string& conninfo) {
  return conninfo.starts_with("postgresql://") || conninfo.starts_with("postgres://");
}

}  // namespace

std::vector<Param> NetworkDefaults() {
  return {
      // Seconds; covers the TCP connect and the start-up exchange, per host address.
      {"connect_timeout", "5"},
      {"keepalives", "1"},
      {"keepalives_idle", "10"},
      {"keepalives_interval", "5"},
      {"keepalives_count", "3"},
      // Milliseconds sent data may stay unacknowledged before the kernel drops the connection.
      {"tcp_user_timeout", "30000"},
  };
}

std::string WithDefaults(const std::string& conninfo, const std::vector<Param>& defaults) {
  const Options options = Parse(conninfo);
  std::string out = conninfo;
  bool url_has_query = IsUrl(conninfo) && conninfo.find('?') != std::string::npos;
  for (const auto& d : defaults) {
    const PQconninfoOption* o = Find(options, d.key);
    if (o == nullptr) continue;  // an older libpq: leave it to its own default
    if (o->val != nullptr && o->val[0] != '\0') continue;
    if (o->envvar != nullptr) {
      const char* env = std::getenv(o->envvar);
      if (env != nullptr && env[0] != '\0') continue;
    }
    // The defaults are plain words and numbers: nothing to quote or percent-encode.
    if (IsUrl(conninfo)) {
      out += (url_has_query ? '&' : '?') + d.key + '=' + d.value;
      url_has_query = true;
    } else {
      out += (out.empty() ? "" : " ") + d.key + '=' + d.value;
    }
  }
  return out;
}

std::string ValueOf(const std::string& conninfo, const std::string& key) {
  const Options options = Parse(conninfo);
  const PQconninfoOption* o = Find(options, key);
  return o != nullptr && o->val != nullptr ? o->val : "";
}

}  // namespace xtrace::pg
