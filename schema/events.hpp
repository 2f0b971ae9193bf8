#pragma once
// The normalized events of the write path, independent of any wire format. Each front door (the
// xtrace batch route, the metrics route, later the Langfuse ingestion API and OTLP) is a parser
// that builds them; the codec moves them in and out of WAL records; the projector folds them
// into PostgreSQL.
//
// Every optional field is a Field<T>: absent (the client did not mention it), explicitly null,
// or a value. Which of the first two keeps the stored value is the record's merge rule
// (MergeRuleOf its source): xtrace keeps the stored value on null, Langfuse and OTLP clear it.
// Absent always keeps.

#include <concepts>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "common/time.hpp"

namespace xtrace::schema {

using common::TimePoint;

template <class T>
struct IsOptional : std::false_type {};
template <class T>
struct IsOptional<std::optional<T>> : std::true_type {};

// An optional field with its presence. Reads like std::optional<T> (true and dereferenceable
// only when it holds a value); the null state is asked for by name.
template <class T>
class Field {
 public:
  enum class State : uint8_t { kAbsent, kNull, kValue };

  Field() = default;
  Field(std::nullopt_t) {}  // NOLINT: absent, as for std::optional
  // A value, from anything T is constructible from (a string literal for a Field<std::string>).
  template <class U>
  requires(std::constructible_from<T, U&&> && !std::same_as<std::remove_cvref_t<U>, Field> &&
           !std::same_as<std::remove_cvref_t<U>, std::nullopt_t> &&
           !IsOptional<std::remove_cvref_t<U>>::value)
      Field(U&& value)  // NOLINT: implicit, as for std::optional
      : state_(State::kValue), value_(std::forward<U>(value)) {}
  // nullopt becomes absent: parsers of a dialect in which null keeps the stored value never
  // need the null state.
  Field(std::optional<T> value) {  // NOLINT
    if (value) *this = Field(std::move(*value));
  }

  static Field Null() {
    Field f;
    f.state_ = State::kNull;
    return f;
  }

  State state() const { return state_; }
  bool absent() const { return state_ == State::kAbsent; }
  bool is_null() const { return state_ == State::kNull; }
  bool has_value() const { return state_ == State::kValue; }
  explicit operator bool() const { return has_value(); }

  // Only when has_value(); like std::optional, unchecked.
  const T& operator*() const { return value_; }
  T& operator*() { return value_; }
  const T* operator->() const { return &value_; }
  T* operator->() { return &value_; }

  T value_or(T fallback) const { return has_value() ? value_ : std::move(fallback); }
  // The value, or nullopt for absent and null alike.
  std::optional<T> optional() const {
    return has_value() ? std::optional<T>(value_) : std::nullopt;
  }

  friend bool operator==(const Field& a, const Field& b) {
    return a.state_ == b.state_ && (a.state_ != State::kValue || a.value_ == b.value_);
  }

 private:
  State state_ = State::kAbsent;
  T value_{};
};

using OptString = Field<std::string>;

// Identifiers of traces, observations and scores are opaque strings: UUIDs from the xtrace
// route (canonical lowercase, hyphenated), any string a Langfuse client chose, hex from OTLP.
inline constexpr size_t kMaxIdBytes = 200;

// Langfuse's observation types. The xtrace route stores whatever type text it is sent; the
// other front doors accept exactly these.
enum class ObservationType : uint8_t {
  kSpan,
  kGeneration,
  kEvent,
  kAgent,
  kTool,
  kChain,
  kRetriever,
  kEvaluator,
  kEmbedding,
  kGuardrail,
};
inline constexpr ObservationType kObservationTypes[] = {
    ObservationType::kSpan,      ObservationType::kGeneration, ObservationType::kEvent,
    ObservationType::kAgent,     ObservationType::kTool,       ObservationType::kChain,
    ObservationType::kRetriever, ObservationType::kEvaluator,  ObservationType::kEmbedding,
    ObservationType::kGuardrail,
};
std::string_view NameOf(ObservationType type);  // "SPAN", "GENERATION", ...
// Exact, upper-case names only: what is stored is what the filters compare.
std::optional<ObservationType> ParseObservationType(std::string_view name);

struct TraceEvent {
  std::string id;
  Field<TimePoint> timestamp;
  OptString name, user_id, session_id, release, version, external_id;
  OptString project_id, environment;
  OptString input_json, output_json, metadata_json;  // compact JSON text
  Field<std::vector<std::string>> tags;
  Field<bool> is_public, bookmarked;
  Field<double> latency, total_cost;

  friend bool operator==(const TraceEvent&, const TraceEvent&) = default;
};

struct ObservationEvent {
  std::string id;
  std::string trace_id;
  OptString type;  // absent: GENERATION (applied by the projector on first insert)
  OptString name;
  Field<TimePoint> start_time, end_time, completion_start_time;
  OptString model;
  OptString model_parameters_json, input_json, output_json, usage_json, metadata_json;
  OptString level, status_message;
  OptString parent_observation_id;
  OptString prompt_id, prompt_name, prompt_version, model_id;
  Field<double> input_price, output_price, total_price;
  Field<double> calculated_input_cost, calculated_output_cost, calculated_total_cost;
  Field<double> latency, time_to_first_token;
  Field<int64_t> completion_tokens, prompt_tokens, total_tokens;
  OptString unit;
  OptString project_id, environment;

  friend bool operator==(const ObservationEvent&, const ObservationEvent&) = default;
};

enum class ScoreDataType : uint8_t { kNumeric, kCategorical, kBoolean };

// A score of a trace, an observation or a session (Langfuse's score object).
struct ScoreEvent {
  std::string id;
  Field<TimePoint> timestamp;
  OptString trace_id, observation_id, session_id;
  OptString name;
  Field<ScoreDataType> data_type;
  Field<double> value;        // NUMERIC and BOOLEAN (0 or 1) scores
  OptString string_value;     // CATEGORICAL scores, and the text of BOOLEAN ones
  OptString comment, source;  // source: API, ANNOTATION, EVAL
  OptString config_id, metadata_json;
  OptString project_id, environment;

  friend bool operator==(const ScoreEvent&, const ScoreEvent&) = default;
};

// Deletes an entity and, for a trace, everything that belongs to it.
struct DeletionEvent {
  enum class Entity : uint8_t { kTrace, kObservation, kScore };
  Entity entity = Entity::kTrace;
  std::string id;
  OptString project_id;

  friend bool operator==(const DeletionEvent&, const DeletionEvent&) = default;
};

using EntityEvent = std::variant<TraceEvent, ObservationEvent, ScoreEvent, DeletionEvent>;

// Events of traces, observations, scores and deletions, in the order they apply.
struct EntityBatch {
  std::vector<EntityEvent> events;

  friend bool operator==(const EntityBatch&, const EntityBatch&) = default;
};

struct MetricPoint {
  std::string name;
  std::vector<std::pair<std::string, std::string>> labels;  // sorted by key, unique
  double value = 0;
  TimePoint timestamp;

  friend bool operator==(const MetricPoint&, const MetricPoint&) = default;
};

struct MetricBatch {
  std::vector<MetricPoint> points;

  friend bool operator==(const MetricBatch&, const MetricBatch&) = default;
};

// The front door a record came through.
enum class Source : uint8_t {
  kXtraceBatch,   // POST /v1/l/batch
  kMetricsBatch,  // POST /v1/metrics/batch
  kLangfuse,      // the Langfuse public API (ingestion, scores, deletions)
  kOtlpTraces,    // OTLP/HTTP traces
  kOtlpMetrics,   // OTLP/HTTP metrics
};

// What an explicit null does to a stored value.
enum class MergeRule : uint8_t {
  kNullKeeps,   // xtrace: null is the same as absent
  kNullClears,  // Langfuse and OTLP: null overwrites
};
MergeRule MergeRuleOf(Source source);

// One accepted request: the unit of the WAL.
struct WalRecord {
  uint16_t format_version = 0;  // set by the codec on encode, reported on decode
  TimePoint received_at;
  std::string project_id;   // default for events that name none
  std::string environment;  // default for events that name none
  Source source = Source::kXtraceBatch;
  std::variant<EntityBatch, MetricBatch> events;

  friend bool operator==(const WalRecord&, const WalRecord&) = default;
};

// The position of the index-th event of an entity record, by which provenance (src_seq) orders
// events within a record. Format 1 kept position 0 for the trace whether or not the record had
// one, so its observations count from 1; later formats count every event from 0.
size_t PositionOf(const WalRecord& record, size_t index);

}  // namespace xtrace::schema
