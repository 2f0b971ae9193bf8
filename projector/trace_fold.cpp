// Traces and observations, set-based, in waves.
//
// A chunk's events are applied with a handful of statements over parallel arrays (unnest), not
// one statement per row. An entity may occur several times in a chunk (create, then updates);
// its k-th occurrence goes to wave k, so within a wave every entity appears once and waves run
// in order: the result is that of applying the records one by one.
//
// Each wave, in one statement per kind (sql/upsert_traces.sql, sql/upsert_observations.sql):
// INSERT the entities that are new (ON CONFLICT DO NOTHING) and UPDATE the existing ones with the
// merge rules. Every row records the WAL id and the position of the last event applied to it
// (src_wal, src_seq = sequence << 20 | the event's index in its record); an UPDATE from an event
// at or below that position of the same WAL is skipped, which makes re-applying any record, or
// replaying any range, a no-op.
#include "projector/trace_fold.hpp"

#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <pqxx/prepared_statement>
#include <pqxx/result>

#include <algorithm>
#include <map>
#include <optional>
#include <variant>

#include "common/pg_text.hpp"
#include "projector/params.hpp"
#include "projector/sanitize.hpp"
#include "projector/sql.hpp"

namespace xtrace::projector {
namespace {

// The parameter count of each statement ($1 … in its file).
constexpr int kTraceColumns = 21;        // sql/upsert_traces.sql
constexpr int kObservationColumns = 36;  // sql/upsert_observations.sql
constexpr int kPlaceholderColumns = 4;   // sql/insert_placeholders.sql

// Parallel column arrays for one statement, rendered as PostgreSQL array literals (NULL for an
// absent value).
class Columns {
 public:
  explicit Columns(int n) : columns_(static_cast<size_t>(n)) {}
  void AddRow(std::vector<Param> row) {
    for (size_t i = 0; i < columns_.size(); ++i) columns_[i].push_back(std::move(row[i]));
  }
  bool empty() const { return columns_.front().empty(); }
  std::vector<std::string> Literals() const {
    std::vector<std::string> out;
    out.reserve(columns_.size());
    for (const auto& column : columns_) out.push_back(common::PgArrayLiteral(column));
    return out;
  }

 private:
  std::vector<std::vector<Param>> columns_;
};

// The tags array as a JSON array text (one jsonb element per row: rows' arrays differ in length).
Param TagsJson(const schema::Field<std::vector<std::string>>& tags) {
  if (!tags) return std::nullopt;
  boost::json::array a;
  for (const auto& t : *tags) a.emplace_back(boost::json::string(SanitizeText(t)));
  return boost::json::serialize(a);
}

struct Wave {
  Columns traces{kTraceColumns};
  Columns observations{kObservationColumns};
};

// A row of sql/upsert_traces.sql, its parameters in order.
void AddTrace(Wave& w, const schema::WalRecord& rec, const schema::TraceEvent& t,
              const std::string& wal, uint64_t seq, std::set<TraceKey>& touched) {
  touched.insert({Text(t.project_id.value_or(rec.project_id)), t.id});
  w.traces.AddRow({Text(t.project_id.value_or(rec.project_id)),
                   t.id,
                   Time(t.timestamp),
                   Time(rec.received_at),
                   Text(t.environment.value_or(rec.environment)),
                   Text(t.name),
                   Text(t.user_id),
                   Text(t.session_id),
                   Text(t.release),
                   Text(t.version),
                   Text(t.external_id),
                   Json(t.input_json),
                   Json(t.output_json),
                   Json(t.metadata_json),
                   TagsJson(t.tags),
                   Bool(t.is_public),
                   Bool(t.bookmarked),
                   Num(t.latency),
                   Num(t.total_cost),
                   wal,
                   std::to_string(seq)});
}

// A row of sql/upsert_observations.sql, its parameters in order, and of
// sql/insert_placeholders.sql where the observation's trace has no event in the chunk.
void AddObservation(Wave& w, Columns& placeholders, const std::set<TraceKey>& chunk_traces,
                    const schema::WalRecord& rec, const schema::ObservationEvent& o,
                    const std::string& wal, uint64_t seq, std::set<TraceKey>& touched) {
  const std::string project = Text(o.project_id.value_or(rec.project_id));
  const std::string environment = Text(o.environment.value_or(rec.environment));
  const std::string& trace_id = o.trace_id;
  const auto [key, added] = touched.insert({project, trace_id});
  // A trace with an event of its own in this chunk needs no placeholder: the event creates the
  // row as a placeholder replaced by it would end up, so the row is written once.
  if (!chunk_traces.contains(*key)) {
    placeholders.AddRow(
        {project, trace_id, Time(o.start_time ? o.start_time : rec.received_at), environment});
  }
  w.observations.AddRow({project,
                         o.id,
                         trace_id,
                         Text(o.type),
                         environment,
                         Text(o.name),
                         Time(o.start_time),
                         Time(o.end_time),
                         Time(o.completion_start_time),
                         Text(o.model),
                         Json(o.model_parameters_json),
                         Json(o.input_json),
                         Json(o.output_json),
                         Json(o.usage_json),
                         Json(o.metadata_json),
                         Text(o.level),
                         Text(o.status_message),
                         Text(o.parent_observation_id),
                         Text(o.prompt_id),
                         Text(o.prompt_name),
                         Text(o.prompt_version),
                         Text(o.model_id),
                         Num(o.input_price),
                         Num(o.output_price),
                         Num(o.total_price),
                         Num(o.calculated_input_cost),
                         Num(o.calculated_output_cost),
                         Num(o.calculated_total_cost),
                         Num(o.latency),
                         Num(o.time_to_first_token),
                         Num(o.completion_tokens),
                         Num(o.prompt_tokens),
                         Num(o.total_tokens),
                         Text(o.unit),
                         wal,
                         std::to_string(seq)});
}

// src_seq of an event: the WAL sequence in the high bits, the event's position within its record
// in the low 20. Records hold far fewer than 2^20 events (the body limit sees to that); a
// position beyond is clamped, which only loses the ordering among those excess events.
uint64_t EventPosition(uint64_t seq, size_t index) {
  constexpr uint64_t kMaxIndex = (uint64_t{1} << 20) - 1;
  return (seq << 20) | std::min<uint64_t>(index, kMaxIndex);
}

// Runs a statement over prepared array literals; none (no rows) runs nothing.
void Exec(pqxx::work& txn, const sql::Statement& statement,
          const std::vector<std::string>& literals) {
  if (literals.empty()) return;
  txn.exec_prepared(statement.name, pqxx::prepare::make_dynamic_params(literals));
}

void ApplyWave(pqxx::work& txn, const TraceChunk::Wave& wave, std::set<TraceKey>& touched) {
  // Observations first, so that the traces the wave creates are written with their aggregates
  // (the two statements touch different tables: their order changes nothing else).
  if (!wave.observations.empty()) {
    // An observation keeps the trace it was first recorded under, even when a later event names
    // another: the UPDATE returns the stored trace of every row it changed, whose aggregates
    // change too.
    const pqxx::result changed = txn.exec_prepared(
        sql::kUpsertObservations.name, pqxx::prepare::make_dynamic_params(wave.observations));
    const auto project_id = changed.column_number("project_id");
    const auto trace_id = changed.column_number("trace_id");
    for (const auto& row : changed)
      touched.insert({row[project_id].c_str(), row[trace_id].c_str()});
  }
  Exec(txn, sql::kUpsertTraces, wave.traces);
}

}  // namespace

const char* WhyUnfoldable(const schema::WalRecord& record) {
  const auto* batch = std::get_if<schema::EntityBatch>(&record.events);
  if (batch == nullptr) return nullptr;
  for (const auto& event : batch->events) {
    // Scores and deletions come with the front doors that send them; no build writes them
    // before it can fold them, so one here is from a newer build.
    if (std::holds_alternative<schema::ScoreEvent>(event) ||
        std::holds_alternative<schema::DeletionEvent>(event)) {
      return "score and deletion events are not projected by this build";
    }
  }
  return nullptr;
}

TraceChunk PrepareTraceChunk(const std::vector<SequencedRecord>& records, const std::string& wal) {
  TraceChunk chunk;
  std::vector<Wave> waves;
  // Placeholders for the whole chunk, in record order, go in before any wave: the first
  // observation naming an unknown trace decides its placeholder, and a real trace later in the
  // chunk replaces the placeholder exactly as it would have one from an earlier transaction.
  Columns placeholders{kPlaceholderColumns};
  std::map<TraceKey, size_t> trace_occurrences, observation_occurrences;
  std::set<TraceKey> chunk_traces;  // traces with an event of their own in this chunk
  for (const auto& [seq, record] : records) {
    if (const auto* batch = std::get_if<schema::EntityBatch>(&record->events)) {
      for (const auto& event : batch->events) {
        if (const auto* t = std::get_if<schema::TraceEvent>(&event)) {
          chunk_traces.insert({Text(t->project_id.value_or(record->project_id)), t->id});
        }
      }
    }
  }
  auto wave_for = [&](std::map<TraceKey, size_t>& occurrences, TraceKey key) -> Wave& {
    const size_t k = occurrences[key]++;
    if (k >= waves.size()) waves.resize(k + 1);
    return waves[k];
  };
  for (const auto& [seq, record] : records) {
    const auto* batch = std::get_if<schema::EntityBatch>(&record->events);
    if (batch == nullptr) continue;
    // One record may name an entity more than once (a batch listing the same observation
    // twice): each event gets its own position, so the provenance check orders them too.
    for (size_t i = 0; i < batch->events.size(); ++i) {
      const uint64_t position = EventPosition(seq, schema::PositionOf(*record, i));
      if (const auto* t = std::get_if<schema::TraceEvent>(&batch->events[i])) {
        AddTrace(
            wave_for(trace_occurrences, {Text(t->project_id.value_or(record->project_id)), t->id}),
            *record, *t, wal, position, chunk.touched);
      } else if (const auto* o = std::get_if<schema::ObservationEvent>(&batch->events[i])) {
        AddObservation(wave_for(observation_occurrences,
                                {Text(o->project_id.value_or(record->project_id)), o->id}),
                       placeholders, chunk_traces, *record, *o, wal, position, chunk.touched);
      } else {
        throw UnfoldableRecord(seq, WhyUnfoldable(*record));
      }
    }
  }
  if (!placeholders.empty()) chunk.placeholders = placeholders.Literals();
  for (const auto& w : waves) {
    auto& out = chunk.waves.emplace_back();
    if (!w.traces.empty()) out.traces = w.traces.Literals();
    if (!w.observations.empty()) out.observations = w.observations.Literals();
  }
  return chunk;
}

void ApplyTraceChunk(pqxx::work& txn, const TraceChunk& chunk, std::set<TraceKey>& touched) {
  touched.insert(chunk.touched.begin(), chunk.touched.end());
  Exec(txn, sql::kInsertPlaceholders, chunk.placeholders);
  for (const auto& w : chunk.waves) ApplyWave(txn, w, touched);
}

}  // namespace xtrace::projector
