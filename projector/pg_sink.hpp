#pragma once
// The projection's PostgreSQL side: the connection a stream folds on, its transactions, and the
// tables a rebuild empties.

#include <cstdint>
#include <memory>
#include <string>

#include "common/uuid.hpp"
#include "pg/session.hpp"
#include "pg/watchdog.hpp"
#include "projector/cursor.hpp"
#include "projector/fold.hpp"
#include "projector/sink.hpp"
#include "projector/stream.hpp"

#include <pqxx/connection>

namespace xtrace::projector {

// Every table the fold writes: the projections and their rollups, all derived from the log.
// A rebuild empties exactly these; cursors, quarantine and migrations are not among them.
inline constexpr const char* kProjectionTables[] = {
    "traces",      "observations",      "metric_series", "metric_points", "metric_rollups",
    "trace_usage", "trace_model_usage", "daily_traces",  "daily_models"};

// Empties kProjectionTables in one transaction, after bumping projection_epoch: that waits for
// the projector transactions holding cached series ids, and makes them start over once this
// commits (fold.hpp, SeriesCache).
void EmptyProjections(pqxx::connection& conn);

// A connection ready to fold: opened for `session`, migrated, the fold statements prepared.
// The caller guards its own calls from there (pg::CallGuard). Throws pqxx exceptions.
std::unique_ptr<pqxx::connection> ConnectForProjection(
    const std::string& database_url, const pg::Session& session,
    const pg::Interrupter* interrupter = nullptr);

struct PgSinkOptions {
  std::string database_url;
  pg::Session session = pg::SessionFor(pg::Role::kProjector);
  // Re-projecting quarantined records (xtrace-replay --quarantined): a record folded is removed
  // from projector_quarantine in the same transaction.
  bool forget_quarantined = false;
};

// A stream's PostgreSQL connection, with its series and rollup caches; every call it makes is
// watched (pg::CallGuard with the session's deadline).
class PgSink final : public Sink {
 public:
  PgSink(const common::Uuid& wal_id, Stream stream, std::unique_ptr<CursorStore> cursor,
         PgSinkOptions options);
  ~PgSink() override;

  Opened Open() override;
  bool IsOpen() const override { return conn_ != nullptr; }
  void Close() override { conn_.reset(); }
  void Fold(Chunk& chunk, uint64_t from) override;
  void Quarantine(const wal::Entry& entry, const std::exception& error, uint64_t from) override;
  void AbandonAt(pg::Clock::time_point when) override { interrupter_.InterruptAt(when); }

 private:
  const std::string wal_id_;
  const Stream stream_;
  const std::unique_ptr<CursorStore> cursor_;
  const PgSinkOptions options_;
  pg::Interrupter interrupter_;
  std::unique_ptr<pqxx::connection> conn_;
  SeriesCache series_;
  RollupCache rollups_;
};

}  // namespace xtrace::projector
