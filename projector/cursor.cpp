#include "projector/cursor.hpp"

#include <pqxx/result>
#include <pqxx/transaction>

#include <algorithm>

#include "projector/projector.hpp"

namespace xtrace::projector {

uint64_t TableCursor::Load(pqxx::transaction_base& txn) {
  txn.exec_params(
      "INSERT INTO projector_cursors (wal_id, stream, seq) VALUES ($1::uuid, $2, 0) "
      "ON CONFLICT (wal_id, stream) DO NOTHING",
      wal_id_, stream_);
  return txn
      .exec_params1("SELECT seq FROM projector_cursors WHERE wal_id = $1::uuid AND stream = $2",
                    wal_id_, stream_)[0]
      .as<uint64_t>();
}

void TableCursor::Advance(pqxx::transaction_base& txn, uint64_t from, uint64_t to) {
  const auto result = txn.exec_params(
      "UPDATE projector_cursors SET seq = $1, updated_at = now() "
      "WHERE wal_id = $2::uuid AND stream = $3 AND seq = $4",
      to, wal_id_, stream_, from);
  if (result.affected_rows() != 1) throw CursorFenced();
}

void Cursor::Stored(uint64_t seq, Clock::time_point now) {
  position_ = stored_ = seq;
  stored_at_ = now;
}

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
