#include "projector/cursors.hpp"

#include <pqxx/result>
#include <pqxx/transaction>

#include <algorithm>

#include "projector/projector.hpp"

namespace xtrace::projector {

StoredCursors LoadCursors(pqxx::connection& conn, const std::string& wal_id) {
  pqxx::work txn(conn);
  const auto rows =
      txn.exec_params("SELECT stream, seq FROM projector_cursors WHERE wal_id = $1::uuid", wal_id);
  StoredCursors out{UINT64_MAX, 0};
  for (const Stream stream : kStreams) {
    uint64_t seq = 0;  // a stream without a row has projected nothing yet
    for (const auto& row : rows) {
      if (row["stream"].as<std::string>() == StreamName(stream)) seq = row["seq"].as<uint64_t>();
    }
    out.least = std::min(out.least, seq);
    out.furthest = std::max(out.furthest, seq);
  }
  return out;
}

}  // namespace xtrace::projector
