// xtrace-replay: re-project WAL records into PostgreSQL, for backfills and rebuilds.
//
//   xtrace-replay --wal-dir DIR --database-url URL [--from-seq N] [--to-seq M]
//   xtrace-replay --wal-dir DIR --database-url URL --rebuild   (projections and rollups)
//   xtrace-replay --wal-dir DIR --dry-run [--from-seq N] [--to-seq M]
//   xtrace-replay --database-url URL --quarantined   (records the projector set aside)
//   xtrace-replay --database-url URL --derived       (rollups and aggregates from base rows)
//
// Records are folded by the server's own projection loop (projector/stream.hpp): the same
// streams, chunks, quarantine of records PostgreSQL refuses and halt at a record that does not
// decode. Only the cursor differs: a replay starts where it is told and never reads or writes
// the server's.
//
// Safe while the server runs: the WAL is opened read-only, and re-applying a record the
// projection already holds changes nothing (rows remember the last record applied to them), so
// replay and server can overlap.

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>
#include <CLI/CLI.hpp>
#include <pqxx/binarystring>
#include <pqxx/connection>
#include <pqxx/result>
#include <pqxx/transaction>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <future>
#include <map>
#include <mutex>

#include "pg/session.hpp"
#include "pg/watchdog.hpp"
#include "projector/cursor.hpp"
#include "projector/fold.hpp"
#include "projector/pg_sink.hpp"
#include "projector/source.hpp"
#include "projector/stream.hpp"
#include "wal/reader.hpp"

using namespace xtrace;
using projector::Stream;

namespace {

// A bar on a terminal for the records both streams have gone past; nothing otherwise.
class Progress {
 public:
  explicit Progress(uint64_t total) : total_(total), tty_(isatty(STDERR_FILENO) == 1) {}
  void Update(uint64_t done) {
    if (!tty_ || total_ == 0) return;
    std::lock_guard lock(mu_);
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
  std::mutex mu_;
};

int Fail(const std::string& message) {
  std::fprintf(stderr, "xtrace-replay: %s\n", message.c_str());
  return 2;
}

pg::Session ToolSession() {
  return pg::SessionFor(pg::Role::kTool);
}

// The tool's own connection (emptying the projections, --derived, reading the quarantine):
// migrated, the fold statements prepared, and every call on it watched (pg/watchdog.hpp) for as
// long as it lives.
struct Database {
  explicit Database(const std::string& url)
      : conn(projector::ConnectForProjection(url, ToolSession())),
        guard(*conn, ToolSession().call_deadline()) {}
  std::unique_ptr<pqxx::connection> conn;
  pg::CallGuard guard;
};

// Folds nothing and stores nothing: --dry-run reads, decodes and prepares the records exactly as
// a replay would, without a database.
class DryRunSink final : public projector::Sink {
 public:
  explicit DryRunSink(uint64_t start) : start_(start) {}
  Opened Open() override {
    open_ = true;
    return {start_, 0};
  }
  bool IsOpen() const override { return open_; }
  void Close() override { open_ = false; }
  void Fold(projector::Chunk&, uint64_t) override {}
  void Quarantine(const wal::Entry&, const std::exception&, uint64_t) override {}
  void AbandonAt(pg::Clock::time_point) override {}

 private:
  const uint64_t start_;
  bool open_ = false;
};

// How the streams of one projection run ended.
struct Outcome {
  uint64_t records = 0;  // folded
  uint64_t events = 0;
  uint64_t quarantined = 0;
  std::vector<std::string> halted;  // why each stream that halted did
  bool unreadable = false;          // one halted because the log could not be read
};

// One stream's run to the end of the source: what the loop counted, and why it halted if it did.
struct StreamRun {
  projector::StreamLoop::Counts counts;
  std::string halted;
  bool unreadable = false;
};

// Projects `source` from `start` to its end on both streams at once, each with its own sink
// (connection), as the server does. A sink failure that is not the rows' fault (the database
// went away) is thrown.
Outcome Project(const projector::Source& source, uint64_t start,
                const std::function<std::unique_ptr<projector::Sink>(Stream)>& sink_for,
                Progress* progress) {
  constexpr size_t kCount = std::size(projector::kStreams);
  std::array<std::atomic<uint64_t>, kCount> positions;
  for (auto& p : positions) p = start;
  const auto run = [&](size_t i) {
    const Stream stream = projector::kStreams[i];
    const auto sink = sink_for(stream);
    projector::StreamLoop loop(source, stream, *sink, {}, [&, i](uint64_t position) {
      positions[i] = position;
      if (progress == nullptr) return;
      uint64_t done = 0;
      for (const auto& p : positions) done += p - start;
      progress->Update(done);
    });
    StreamRun result;
    try {
      loop.Open();
      while (loop.Step()) {
      }
    } catch (const projector::Halted& e) {
      result.halted = std::string(loop.name()) + ": " + e.what();
      result.unreadable = e.cause() == projector::Halted::Cause::kUnreadable;
    }
    result.counts = loop.counts();
    return result;
  };
  std::vector<std::future<StreamRun>> runs;
  for (size_t i = 0; i < kCount; ++i) runs.push_back(std::async(std::launch::async, run, i));
  Outcome outcome;
  std::exception_ptr failed;
  for (auto& r : runs) {
    try {  // every stream is waited for before anything is thrown
      const StreamRun result = r.get();
      outcome.records += result.counts.records;
      outcome.events += result.counts.events;
      outcome.quarantined += result.counts.quarantined;
      if (!result.halted.empty()) outcome.halted.push_back(result.halted);
      outcome.unreadable = outcome.unreadable || result.unreadable;
    } catch (...) {
      if (!failed) failed = std::current_exception();
    }
  }
  if (failed) std::rethrow_exception(failed);
  return outcome;
}

std::unique_ptr<projector::Sink> ToolSink(const std::string& database_url, const common::Uuid& id,
                                          Stream stream, uint64_t start, bool forget_quarantined) {
  projector::PgSinkOptions options{database_url, ToolSession(), forget_quarantined};
  return std::make_unique<projector::PgSink>(
      id, stream, std::make_unique<projector::ScratchCursor>(start), std::move(options));
}

// --derived: every rollup and aggregate recomputed from the base tables, e.g. after a bulk load
// that wrote traces, observations or points directly.
int RefreshDerived(const std::string& database_url) {
  try {
    Database db(database_url);
    const auto started = std::chrono::steady_clock::now();
    uint64_t points = 0;
    {
      pqxx::work txn(*db.conn);
      points = projector::RebuildRollups(txn);
      txn.commit();
    }
    const uint64_t traces = projector::RefreshAllTraces(*db.conn);
    std::printf("derived data recomputed from %llu traces and %llu metric points in %.1f s\n",
                static_cast<unsigned long long>(traces), static_cast<unsigned long long>(points),
                std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    return 0;
  } catch (const std::exception& e) {
    return Fail(std::string("recomputing derived data failed: ") + e.what());
  }
}

// --quarantined: folds every record in projector_quarantine again through the projection loop,
// each log's records as a source of their own, and removes the records folded in the same
// transaction (typically after an upgrade that accepts what an older build's statements
// refused). Those still refused stay, with the new error. Re-applying is safe in any order:
// rows remember the last record applied to them, so an old record never overrides a newer one.
int ReprojectQuarantined(const std::string& database_url) {
  try {
    std::map<std::string, std::vector<wal::Entry>> by_log;
    uint64_t total = 0;
    {
      Database db(database_url);
      pqxx::work txn(*db.conn);
      for (const auto& row :
           txn.exec("SELECT wal_id::text, seq, record FROM projector_quarantine ORDER BY 1, 2")) {
        by_log[row[0].as<std::string>()].push_back(
            {row[1].as<uint64_t>(), pqxx::binarystring(row[2]).str()});
        ++total;
      }
      txn.commit();
    }
    uint64_t projected = 0;
    bool halted = false;
    for (auto& [wal_id, entries] : by_log) {
      const common::Uuid id = *common::Uuid::Parse(wal_id);
      // The sequences of one log's quarantined records have gaps; each stream takes the records
      // of its kind, whichever stream quarantined them.
      const projector::MemorySource source(id, std::move(entries), /*dense=*/false);
      const Outcome outcome = Project(
          source, 0, [&](Stream stream) { return ToolSink(database_url, id, stream, 0, true); },
          nullptr);
      projected += outcome.records;
      for (const auto& why : outcome.halted) {
        std::fprintf(stderr, "xtrace-replay: log %s: %s\n", wal_id.c_str(), why.c_str());
        halted = true;
      }
    }
    std::printf("quarantined records: %llu projected and removed, %llu still refused\n",
                static_cast<unsigned long long>(projected),
                static_cast<unsigned long long>(total - projected));
    return projected == total && !halted ? 0 : 1;
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
  // What the projection loop reports (a record quarantined, a gap) goes to stderr as the tool's
  // own lines.
  spdlog::set_default_logger(spdlog::stderr_logger_mt("xtrace-replay"));
  spdlog::set_pattern("xtrace-replay: %v");
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

  if (!dry_run) {
    try {
      Database db(database_url);
      if (rebuild) {
        if (first > 1) {
          std::fprintf(stderr,
                       "xtrace-replay: warning: records 1..%llu were trimmed from this WAL; the "
                       "rebuilt projections lack them\n",
                       static_cast<unsigned long long>(first - 1));
        }
        projector::EmptyProjections(*db.conn);
      }
    } catch (const std::exception& e) {
      return Fail(std::string("cannot use the database: ") + e.what());
    }
  }

  const auto started = std::chrono::steady_clock::now();
  const projector::ReaderSource source(**reader, to);
  Progress progress(2 * (to - from + 1));
  Outcome outcome;
  try {
    outcome = Project(
        source, from - 1,
        [&](Stream stream) -> std::unique_ptr<projector::Sink> {
          if (dry_run) return std::make_unique<DryRunSink>(from - 1);
          return ToolSink(database_url, source.id(), stream, from - 1, false);
        },
        &progress);
  } catch (const std::exception& e) {
    progress.Finish();
    return Fail(std::string("projecting records failed: ") + e.what());
  }
  progress.Finish();
  for (const auto& why : outcome.halted) std::fprintf(stderr, "xtrace-replay: %s\n", why.c_str());
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::string notes;
  if (outcome.quarantined > 0) notes += ", " + std::to_string(outcome.quarantined) + " quarantined";
  if (!outcome.halted.empty()) notes += ", halted";
  std::printf("%s %llu records (%llu events) %llu..%llu in %.1f s%s\n",
              dry_run ? "decoded" : (rebuild ? "rebuilt from" : "replayed"),
              static_cast<unsigned long long>(outcome.records),
              static_cast<unsigned long long>(outcome.events),
              static_cast<unsigned long long>(from), static_cast<unsigned long long>(to), seconds,
              notes.c_str());
  if (outcome.unreadable) return 2;
  return outcome.halted.empty() && outcome.quarantined == 0 ? 0 : 1;
}
