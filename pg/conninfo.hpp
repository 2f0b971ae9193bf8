#pragma once
// Connection parameters for libpq: defaults added to the operator's DATABASE_URL (URL or
// key=value form) for every parameter it does not set itself.

#include <string>
#include <vector>

namespace xtrace::pg {

struct Param {
  std::string key;
  std::string value;
};

// What every xtrace connection uses unless the operator says otherwise (docs/operations.md):
// a bounded connect, TCP keepalives that notice a vanished peer on an idle connection, and a
// bound on unacknowledged sends.
std::vector<Param> NetworkDefaults();

// `conninfo` with each default added whose key it does not set. A key also counts as set when
// the environment sets libpq's variable for it (PGCONNECT_TIMEOUT for connect_timeout), and a key
// this libpq does not know is skipped. Throws std::invalid_argument (libpq's reason) when
// `conninfo` does not parse.
std::string WithDefaults(const std::string& conninfo, const std::vector<Param>& defaults);

// The value `conninfo` gives `key` ("" when it gives none). Throws like WithDefaults.
std::string ValueOf(const std::string& conninfo, const std::string& key);

}  // namespace xtrace::pg
