#include "projector/pg_sink.hpp"

#include <spdlog/spdlog.h>
#include <pqxx/except>
#include <pqxx/transaction>

#include <set>

#include "schema/migrator.hpp"

namespace xtrace::projector {
namespace {

std::string Hex(const std::string& bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    hex.push_back(kHex[c >> 4]);
    hex.push_back(kHex[c & 0x0F]);
  }
  return hex;
}

// {1,2,3}: a bigint[] parameter.
std::string SequenceArray(const std::vector<wal::Entry>& entries) {
  std::string out = "{";
  for (const auto& e : entries) {
    if (out.size() > 1) out += ',';
    out += std::to_string(e.seq);
  }
  return out + "}";
}

}  // namespace

void EmptyProjections(pqxx::connection& conn) {
  std::string tables;
  for (const char* table : kProjectionTables) {
    if (!tables.empty()) tables += ", ";
    tables += table;
  }
  pqxx::work txn(conn);
  txn.exec0("UPDATE projection_epoch SET epoch = epoch + 1");
  txn.exec0("TRUNCATE " + tables);
  txn.commit();
}

std::unique_ptr<pqxx::connection> ConnectForProjection(const std::string& database_url,
                                                       const pg::Session& session,
                                                       const pg::Interrupter* interrupter) {
  auto conn = pg::Connect(database_url, session, interrupter);
  pg::CallGuard guard(*conn, session.call_deadline(), interrupter);
  schema::ApplyMigrations(*conn);
  PrepareFoldStatements(*conn);
  return conn;
}

PgSink::PgSink(const common::Uuid& wal_id, Stream stream, std::unique_ptr<CursorStore> cursor,
               PgSinkOptions options)
    : wal_id_(wal_id.ToString()),
      stream_(stream),
      cursor_(std::move(cursor)),
      options_(std::move(options)) {}

PgSink::~PgSink() = default;

Sink::Opened PgSink::Open() {
  conn_.reset();
  auto conn = ConnectForProjection(options_.database_url, options_.session, &interrupter_);
  pg::CallGuard guard(*conn, options_.session.call_deadline(), &interrupter_);
  Opened opened;
  {
    pqxx::work txn(*conn);
    opened.cursor = cursor_->Load(txn);
    opened.quarantined =
        txn.exec_params1(
               "SELECT count(*) FROM projector_quarantine WHERE wal_id = $1::uuid AND stream = $2",
               wal_id_, StreamName(stream_))[0]
            .as<uint64_t>();
    txn.commit();
  }
  if (stream_ == Stream::kMetrics) {
    if (const uint64_t points = RebuildRollupsIfMissing(*conn); points > 0) {
      spdlog::info("projector[{}]: rebuilt metric rollups from {} stored points",
                   StreamName(stream_), points);
    }
  }
  conn_ = std::move(conn);
  return opened;
}

void PgSink::Fold(Chunk& chunk, uint64_t from) {
  // A PostgreSQL that stops answering mid-transaction ends it as an outage.
  pg::CallGuard guard(*conn_, options_.session.call_deadline(), &interrupter_);
  pqxx::work txn(*conn_);
  if (!chunk.prepared) {  // nothing to fold: the position alone
    cursor_->Advance(txn, from, chunk.to);
    txn.commit();
    return;
  }
  std::set<TraceKey> touched;
  try {
    ApplyChunk(txn, *chunk.prepared, touched, series_, &rollups_);
    RefreshTraceAggregates(txn, touched);
    if (options_.forget_quarantined && !chunk.records.empty()) {
      txn.exec_params(
          "DELETE FROM projector_quarantine WHERE wal_id = $1::uuid AND seq = ANY($2::bigint[])",
          wal_id_, SequenceArray(chunk.records));
    }
    cursor_->Advance(txn, from, chunk.to);
    txn.commit();
  } catch (...) {
    // What this transaction learnt or wrote is gone with it.
    series_.Abandon();
    rollups_.Abandon();
    throw;
  }
  series_.Commit();
  rollups_.Commit();
}

void PgSink::Quarantine(const wal::Entry& entry, const std::exception& error, uint64_t from) {
  const auto* sql = dynamic_cast<const pqxx::sql_error*>(&error);
  const std::string sqlstate = sql != nullptr ? sql->sqlstate() : "";
  pg::CallGuard guard(*conn_, options_.session.call_deadline(), &interrupter_);
  pqxx::work txn(*conn_);
  // A record set aside before (by a replay, or an earlier run) keeps its row and gets the latest
  // error and the stream that refused it.
  txn.exec_params(
      "INSERT INTO projector_quarantine (wal_id, seq, stream, sqlstate, error, record) "
      "VALUES ($1::uuid, $2, $3, $4, $5, decode($6, 'hex')) ON CONFLICT (wal_id, seq) DO UPDATE "
      "SET stream = EXCLUDED.stream, sqlstate = EXCLUDED.sqlstate, error = EXCLUDED.error",
      wal_id_, entry.seq, StreamName(stream_), sqlstate, std::string(error.what()),
      Hex(entry.bytes));
  cursor_->Advance(txn, from, entry.seq);
  txn.commit();
}

}  // namespace xtrace::projector
