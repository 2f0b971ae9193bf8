#include "projector/stream.hpp"

#include <spdlog/spdlog.h>

#include <variant>

#include "projector/failure.hpp"
#include "schema/codec.hpp"

namespace xtrace::projector {
namespace {

using Clock = std::chrono::steady_clock;

double MillisSince(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

uint64_t Events(const schema::WalRecord& record) {
  if (const auto* batch = std::get_if<schema::EntityBatch>(&record.events)) {
    return batch->events.size();
  }
  return std::get<schema::MetricBatch>(record.events).points.size();
}

}  // namespace

const char* StreamName(Stream stream) {
  return stream == Stream::kTraces ? "traces" : "metrics";
}

StreamLoop::StreamLoop(const Source& source, Stream stream, Sink& sink, LoopOptions options,
                       std::function<void(uint64_t)> moved)
    : source_(source),
      stream_(stream),
      name_(StreamName(stream)),
      sink_(sink),
      options_(options),
      moved_(std::move(moved)),
      cursor_(options.cursor_lag_records, options.cursor_lag_interval) {}

StreamLoop::~StreamLoop() {
  DropPrefetch();
}

void StreamLoop::Open() {
  DropPrefetch();
  const Sink::Opened opened = sink_.Open();
  cursor_.Stored(opened.cursor, Clock::now());
  quarantined_ = opened.quarantined;
  Moved();
}

void StreamLoop::Close() {
  DropPrefetch();
  sink_.Close();
}

void StreamLoop::DropPrefetch() {
  if (next_.valid()) next_.wait();  // its thread reads the source: let it finish first
  next_ = {};
}

void StreamLoop::Moved() {
  if (moved_) moved_(cursor_.position());
}

void StreamLoop::StartLoad(uint64_t after) {
  next_ = std::async(std::launch::async, [this, after] { return Load(after); });
}

StreamLoop::Loaded StreamLoop::Load(uint64_t after) const {
  const auto t0 = Clock::now();
  Loaded loaded;
  Chunk& chunk = loaded.chunk;
  chunk.after = chunk.to = after;
  auto entries = source_.Read(after, options_.chunk_records, options_.chunk_bytes);
  if (!entries) {
    loaded.halt.emplace(after + 1, Halted::Cause::kUnreadable,
                        "the WAL cannot be read: " + entries.error().message);
    return loaded;
  }
  if (entries->empty()) return loaded;
  if (entries->front().seq != after + 1 && source_.Dense()) {
    // Records below the first retained one were trimmed; only possible if the cursor row was
    // reset by hand. Resume from what the log still has.
    spdlog::error("projector[{}]: WAL has no record {} (next is {}); skipping the gap", name_,
                  after + 1, entries->front().seq);
  }
  const auto own =
      stream_ == Stream::kTraces ? schema::RecordKind::kEntities : schema::RecordKind::kMetrics;
  for (auto& e : *entries) {
    // The kind is in the record's header: the other kind's records are never decoded here.
    const auto kind = schema::PeekRecordKind(e.bytes);
    if (!kind) {
      loaded.halt.emplace(e.seq, Halted::Cause::kUndecodable,
                          "the record cannot be decoded: " + kind.error().message);
      break;
    }
    chunk.to = e.seq;
    if (*kind == own) chunk.records.push_back(std::move(e));
  }
  if (auto halt = Prepare(chunk)) loaded.halt = std::move(halt);
  loaded.prepare_ms = MillisSince(t0);
  return loaded;
}

std::optional<Halted> StreamLoop::Prepare(Chunk& chunk) const {
  std::optional<Halted> halt;
  std::vector<schema::WalRecord> decoded;
  decoded.reserve(chunk.records.size());
  chunk.events = 0;
  for (const auto& e : chunk.records) {
    auto record = schema::DecodeRecord(e.bytes);
    const char* unfoldable = record ? WhyUnfoldable(*record) : nullptr;
    if (!record || unfoldable) {
      halt.emplace(e.seq, Halted::Cause::kUndecodable,
                   record ? std::string("the record cannot be projected: ") + unfoldable
                          : "the record cannot be decoded: " + record.error().message);
      chunk.to = e.seq - 1;
      chunk.records.resize(decoded.size());
      break;
    }
    chunk.events += Events(*record);
    decoded.push_back(std::move(*record));
  }
  std::vector<SequencedRecord> records;
  records.reserve(decoded.size());
  for (size_t i = 0; i < decoded.size(); ++i)
    records.push_back({chunk.records[i].seq, &decoded[i]});
  chunk.prepared = PrepareChunk(records, source_.id());
  return halt;
}

bool StreamLoop::Step() {
  if (!next_.valid()) {
    if (source_.End() <= cursor_.position()) return false;
    StartLoad(cursor_.position());
  }
  Loaded loaded = next_.get();
  Chunk& chunk = loaded.chunk;
  if (chunk.after != cursor_.position()) return true;  // read for another position: read again
  if (chunk.to == chunk.after) {
    if (loaded.halt) throw *loaded.halt;
    return false;
  }
  // The next chunk is read and prepared on another thread while this one's transaction runs.
  if (!loaded.halt && source_.End() > chunk.to) StartLoad(chunk.to);
  try {
    Apply(chunk, loaded.prepare_ms);
  } catch (const std::exception& e) {
    if (ClassifyFailure(e) != FailureKind::kData) throw;
    spdlog::warn("projector[{}]: records {}..{} refused ({}); isolating the record responsible",
                 name_, chunk.after + 1, chunk.to, e.what());
    const std::span<const wal::Entry> mine(chunk.records);
    const size_t half = mine.size() / 2;
    if (half == 0) {
      Isolate(mine, chunk.to);
    } else {
      Isolate(mine.first(half), mine[half - 1].seq);
      Isolate(mine.subspan(half), chunk.to);
    }
  }
  if (loaded.halt) throw *loaded.halt;  // right after the records before it
  return true;
}

void StreamLoop::Apply(Chunk& chunk, double prepare_ms) {
  const auto t0 = Clock::now();
  if (chunk.records.empty() && cursor_.MayDefer(chunk.to, t0)) {
    // Only the other kind's records: nothing to write but the position, which may follow later.
    cursor_.MovedInMemory(chunk.to);
    Moved();
    return;
  }
  sink_.Fold(chunk, cursor_.stored());
  cursor_.Stored(chunk.to, Clock::now());
  counts_.records += chunk.records.size();
  counts_.events += chunk.events;
  Moved();
  spdlog::debug(
      "projector[{}]: {} records to {}: prepare {:.1f} ms (beside the previous chunk), "
      "fold and commit {:.1f} ms",
      name_, chunk.records.size(), chunk.to, prepare_ms, MillisSince(t0));
}

void StreamLoop::Isolate(std::span<const wal::Entry> records, uint64_t to) {
  // Folds `records` and moves the position to `to` in one transaction; when the sink refuses the
  // rows, bisects: a refused chunk of n records costs about 2 log2(n) transactions to find its
  // one bad record, and the good ones around it are folded in as few transactions as possible.
  Chunk chunk;
  chunk.after = cursor_.position();
  chunk.to = to;
  chunk.records.assign(records.begin(), records.end());
  if (auto halt = Prepare(chunk)) throw *halt;  // decoded once already: cannot happen
  try {
    Apply(chunk, 0);
    return;
  } catch (const std::exception& e) {
    if (ClassifyFailure(e) != FailureKind::kData || records.empty()) throw;
    if (records.size() == 1) {
      Quarantine(records.front(), e);
      if (cursor_.position() < to) Isolate({}, to);  // past the other kind's records after it
      return;
    }
  }
  const size_t half = records.size() / 2;
  Isolate(records.first(half), records[half - 1].seq);
  Isolate(records.subspan(half), to);
}

void StreamLoop::Quarantine(const wal::Entry& entry, const std::exception& error) {
  // The record alone is refused: set it aside with its bytes and the error, so its neighbours
  // are not held back. It stays in projector_quarantine until xtrace-replay --quarantined
  // projects it (after an upgrade that accepts it) or an operator deletes it.
  spdlog::error("projector[{}]: WAL record {} refused by PostgreSQL, quarantined: {}", name_,
                entry.seq, error.what());
  sink_.Quarantine(entry, error, cursor_.stored());
  cursor_.Stored(entry.seq, Clock::now());
  ++quarantined_;
  ++counts_.quarantined;
  Moved();
}

void StreamLoop::StoreCursor() {
  if (!sink_.IsOpen() || !cursor_.lagging()) return;
  Chunk chunk;  // no records: the transaction moves the stored position alone
  chunk.after = chunk.to = cursor_.position();
  sink_.Fold(chunk, cursor_.stored());
  cursor_.Stored(chunk.to, Clock::now());
  Moved();
}

}  // namespace xtrace::projector
