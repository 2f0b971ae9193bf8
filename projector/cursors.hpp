#pragma once
// The stored positions of the projector streams of a WAL (projector_cursors).

#include <pqxx/connection>

#include <cstdint>
#include <string>

namespace xtrace::projector {

// `least` is what every stream has projected (0 when one has none yet), `furthest` the position
// of the stream furthest ahead.
struct StoredCursors {
  uint64_t least = 0;
  uint64_t furthest = 0;
};
StoredCursors LoadCursors(pqxx::connection& conn, const std::string& wal_id);

}  // namespace xtrace::projector
