#pragma once
// The projection tables of a database as text, for tests that compare two projections (a rebuild
// against the server's, a replay against a checked-in expectation).

#include <string>

namespace xtrace::testing {

// One JSON object or array per row, one row per line, in a fixed order: every projection table
// (traces, observations, metric points and rollups, the usage tables and daily rollups), without
// the bookkeeping columns (created_at, updated_at) and serial ids that differ between databases
// holding the same data.
std::string DumpProjections(const std::string& database_url);

}  // namespace xtrace::testing
