// xtrace-replay: re-project WAL records into PostgreSQL, for backfills and rebuilds.
//
//   xtrace-replay --wal-dir DIR --database-url URL [--from-seq N] [--to-seq M]
//   xtrace-replay --wal-dir DIR --database-url URL --rebuild   (projections and rollups)
//   xtrace-replay --wal-dir DIR --dry-run [--from-seq N] [--to-seq M]
//   xtrace-replay --database-url URL --quarantined   (records the projector set aside)
//
// Safe while the server runs: the WAL is opened read-only, the server's projector cursor is never
// read or written, and re-applying a record the projection already holds changes nothing (rows
// remember the last record applied to them), so replay and server can overlap.

#include <unistd.h>
#include <CLI/CLI.hpp>
#include <pqxx/binarystring>
#include <pqxx/connection>
#include <pqxx/result>
#include <pqxx/transaction>

#include <chrono>
#include <cstdio>
#include <optional>
#include <set>

#include "pg/session.hpp"
#include "pg/watchdog.hpp"
#include "projector/fold.hpp"
#include "projector/migrator.hpp"
#include "schema/codec.hpp"
#include "wal/reader.hpp"

using namespace xtrace;

namespace {

constexpr size_t kChunk = 512;

class Progress {
 public:
  explicit Progress(uint64_t total) : total_(total), tty_(isatty(STDERR_FILENO) == 1) {}
  void Update(uint64_t done) {
    if (!tty_ || total_ == 0) return;
    const int width = 40;
    const int filled = static_cast<int>(width * done / total_);
    std::fprintf(stderr, "\r[%s%s] %llu/%llu",
                 std::string(static_cast<size_t>(filled), '#').c_str(),
                 std::string(static_cast<size_t>(width - filled), ' ').c_str(),
                 static_cast<unsigned long long>(done), static_cast<unsigned long long>(total_));
    std::fflush(stderr);
  }
  void Finish() {
    if (tty_ && total_ > 0) std::fprintf(stderr, "\n");
  }

 private:
  uint64_t total_;
  bool tty_;
};

int Fail(const std::string& message) {
  std::fprintf(stderr, "xtrace-replay: %s\n", message.c_str());
  return 2;
}

// --derived: every rollup and aggregate recomputed from the base tables, e.g. after a bulk load
// that wrote traces, observations or points directly.
int RefreshDerived(const std::string& database_url) {
  try {
    const pg::Session session = pg::SessionFor(pg::Role::kTool);
    const auto owned = pg::Connect(database_url, session);
    pqxx::connection& conn = *owned;
    pg::CallGuard guard(conn, session.call_deadline());
    projector::ApplyMigrations(conn);
    projector::PrepareFoldStatements(conn);
    const auto started = std::chrono::steady_clock::now();
    uint64_t points = 0;
    {
      pqxx::work txn(conn);
      points = projector::RebuildRollups(txn);
      txn.commit();
    }
    const uint64_t traces = projector::RefreshAllTraces(conn);
    std::printf("derived data recomputed from %llu traces and %llu metric points in %.1f s\n",
                static_cast<unsigned long long>(traces), static_cast<unsigned long long>(points),
                std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    return 0;
  } catch (const std::exception& e) {
    return Fail(std::string("recomputing derived data failed: ") + e.what());
  }
}

// --quarantined: folds every record in projector_quarantine again, each in its own transaction,
// and removes those that succeed (typically after an upgrade that accepts what an older build's
// PostgreSQL statements refused). Those still refused stay, with the new error. Re-applying is
// safe in any order: rows remember the last record applied to them, so an old record never
// overrides a newer one.
int ReprojectQuarantined(const std::string& database_url) {
  try {
    const pg::Session session = pg::SessionFor(pg::Role::kTool);
    const auto owned = pg::Connect(database_url, session);
    pqxx::connection& conn = *owned;
    pg::CallGuard guard(conn, session.call_deadline());
    projector::ApplyMigrations(conn);
    projector::PrepareFoldStatements(conn);
    pqxx::result rows;
    {
      pqxx::work txn(conn);
      rows = txn.exec(
          "SELECT wal_id::text, seq, record FROM projector_quarantine ORDER BY wal_id, seq");
      txn.commit();
    }
    projector::SeriesCache series;
    uint64_t projected = 0, refused = 0;
    for (const auto& row : rows) {
      const std::string wal_id = row[0].as<std::string>();
      const auto seq = row[1].as<uint64_t>();
      const auto id = common::Uuid::Parse(wal_id);
      auto record = schema::DecodeRecord(pqxx::binarystring(row[2]).str());
      if (!id || !record) {
        std::fprintf(stderr, "xtrace-replay: quarantined record %s/%llu does not decode: %s\n",
                     wal_id.c_str(), static_cast<unsigned long long>(seq),
                     record ? "bad WAL id" : record.error().message.c_str());
        ++refused;
        continue;
      }
      try {
        pqxx::work txn(conn);
        std::set<projector::TraceKey> touched;
        projector::FoldRecords(txn, {projector::SequencedRecord{seq, &*record}}, *id, touched,
                               series);
        projector::RefreshTraceAggregates(txn, touched);
        txn.exec_params("DELETE FROM projector_quarantine WHERE wal_id = $1::uuid AND seq = $2",
                        wal_id, seq);
        txn.commit();
        series.Commit();
        ++projected;
      } catch (const pqxx::sql_error& e) {
        series.Abandon();
        std::fprintf(stderr, "xtrace-replay: quarantined record %s/%llu still refused: %s\n",
                     wal_id.c_str(), static_cast<unsigned long long>(seq), e.what());
        pqxx::work txn(conn);
        txn.exec_params(
            "UPDATE projector_quarantine SET sqlstate = $3, error = $4 "
            "WHERE wal_id = $1::uuid AND seq = $2",
            wal_id, seq, e.sqlstate(), std::string(e.what()));
        txn.commit();
        ++refused;
      }
    }
    std::printf("quarantined records: %llu projected and removed, %llu still refused\n",
                static_cast<unsigned long long>(projected),
                static_cast<unsigned long long>(refused));
    return refused == 0 ? 0 : 1;
  } catch (const std::exception& e) {
    return Fail(std::string("re-projecting quarantined records failed: ") + e.what());
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"xtrace-replay: re-project retained WAL records into PostgreSQL"};
  std::string wal_dir, database_url;
  uint64_t from = 0, to = 0;
  bool rebuild = false, dry_run = false, derived = false, quarantined = false;
  app.add_option("--wal-dir", wal_dir, "WAL directory (XTRACE_WAL_DIR of the server)");
  app.add_option("--database-url", database_url, "PostgreSQL URL (DATABASE_URL of the server)");
  auto* from_opt = app.add_option("--from-seq", from, "first sequence to replay");
  auto* to_opt = app.add_option("--to-seq", to, "last sequence to replay");
  app.add_flag("--rebuild", rebuild,
               "empty the projections, then rebuild them from every retained record");
  app.add_flag("--dry-run", dry_run, "decode and count only; no database needed");
  app.add_flag("--derived", derived,
               "recompute the derived data (trace aggregates, daily usage and metric step "
               "rollups) from the stored traces, observations and points; no WAL needed");
  app.add_flag("--quarantined", quarantined,
               "fold the records the projector quarantined again and remove those that succeed "
               "(after an upgrade); no WAL needed");
  CLI11_PARSE(app, argc, argv);
  if (quarantined) {
    if (database_url.empty()) return Fail("--quarantined needs --database-url");
    if (rebuild || dry_run || derived || !wal_dir.empty()) {
      return Fail("--quarantined works on the database alone; it takes no other mode or WAL");
    }
    return ReprojectQuarantined(database_url);
  }
  if (derived) {
    if (database_url.empty()) return Fail("--derived needs --database-url");
    if (rebuild || dry_run || !wal_dir.empty()) {
      return Fail("--derived works on the database alone; it takes no WAL options");
    }
    return RefreshDerived(database_url);
  }
  if (wal_dir.empty()) return Fail("--wal-dir is required (or --derived)");
  if (rebuild && (from_opt->count() > 0 || to_opt->count() > 0)) {
    return Fail("--rebuild replays the whole retained log; it takes no range");
  }
  if (!dry_run && database_url.empty()) return Fail("--database-url is required (or --dry-run)");

  auto reader = wal::Reader::Open(wal_dir);
  if (!reader) return Fail(reader.error().message);
  const uint64_t first = (*reader)->FirstSequence(), last = (*reader)->LastSequence();
  if (last == 0) return Fail("the WAL in " + wal_dir + " holds no records");
  if (from_opt->count() == 0) from = first;
  if (to_opt->count() == 0) to = last;
  if (from > to) return Fail("--from-seq is after --to-seq");
  if (from < first || to > last) {
    return Fail("range " + std::to_string(from) + ".." + std::to_string(to) +
                " is outside the retained records " + std::to_string(first) + ".." +
                std::to_string(last));
  }

  std::unique_ptr<pqxx::connection> conn;
  // Watches every call on the connection (pg/watchdog.hpp); ends before the connection does.
  std::optional<pg::CallGuard> guard;
  const pg::Session session = pg::SessionFor(pg::Role::kTool);
  if (!dry_run) {
    try {
      conn = pg::Connect(database_url, session);
      guard.emplace(*conn, session.call_deadline());
      projector::ApplyMigrations(*conn);
      projector::PrepareFoldStatements(*conn);
    } catch (const std::exception& e) {
      return Fail(std::string("cannot use the database: ") + e.what());
    }
    if (rebuild) {
      if (first > 1) {
        std::fprintf(stderr,
                     "xtrace-replay: warning: records 1..%llu were trimmed from this WAL; the "
                     "rebuilt projections lack them\n",
                     static_cast<unsigned long long>(first - 1));
      }
      pqxx::work txn(*conn);
      // The epoch first: it waits for projector transactions holding cached series ids, and
      // makes them start over once this commits.
      txn.exec0("UPDATE projection_epoch SET epoch = epoch + 1");
      txn.exec0(
          "TRUNCATE traces, observations, metric_series, metric_points, metric_rollups, "
          "trace_usage, trace_model_usage, daily_traces, daily_models");
      txn.commit();
    }
  }

  const auto started = std::chrono::steady_clock::now();
  Progress progress(to - from + 1);
  projector::SeriesCache series;
  uint64_t records = 0, events = 0, undecodable = 0, cursor = from - 1;
  while (cursor < to) {
    auto page = (*reader)->Read(cursor, std::min<uint64_t>(kChunk, to - cursor));
    if (!page) return Fail(page.error().message);
    if (page->empty()) break;
    std::vector<schema::WalRecord> decoded;
    std::vector<uint64_t> decoded_seqs;  // an undecodable record leaves a gap
    std::vector<projector::SequencedRecord> batch;
    decoded.reserve(page->size());
    for (const auto& e : *page) {
      auto rec = schema::DecodeRecord(e.bytes);
      if (!rec) {
        std::fprintf(stderr, "xtrace-replay: record %llu does not decode: %s\n",
                     static_cast<unsigned long long>(e.seq), rec.error().message.c_str());
        ++undecodable;
        continue;
      }
      if (const auto* b = std::get_if<schema::EntityBatch>(&rec->events)) {
        events += b->events.size();
      } else {
        events += std::get<schema::MetricBatch>(rec->events).points.size();
      }
      decoded.push_back(std::move(*rec));
      decoded_seqs.push_back(e.seq);
    }
    for (size_t d = 0; d < decoded.size(); ++d) batch.push_back({decoded_seqs[d], &decoded[d]});
    if (conn) {
      try {
        pqxx::work txn(*conn);
        std::set<projector::TraceKey> touched;
        projector::FoldRecords(txn, batch, (*reader)->id(), touched, series);
        projector::RefreshTraceAggregates(txn, touched);
        txn.commit();
        series.Commit();
      } catch (const std::exception& e) {
        progress.Finish();
        return Fail("applying records " + std::to_string(page->front().seq) + ".." +
                    std::to_string(page->back().seq) + " failed: " + e.what());
      }
    }
    records += page->size();
    cursor = page->back().seq;
    progress.Update(cursor - from + 1);
  }
  progress.Finish();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::printf("%s %llu records (%llu events) %llu..%llu in %.1f s%s\n",
              dry_run ? "decoded" : (rebuild ? "rebuilt from" : "replayed"),
              static_cast<unsigned long long>(records), static_cast<unsigned long long>(events),
              static_cast<unsigned long long>(from), static_cast<unsigned long long>(to), seconds,
              undecodable ? (", " + std::to_string(undecodable) + " undecodable").c_str() : "");
  return undecodable == 0 ? 0 : 1;
}
