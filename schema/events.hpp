#pragma once
// The normalized events of the write path, independent of any wire format. The ingest front end
// builds them from request bodies; the codec moves them in and out of WAL records; the projector
// folds them into PostgreSQL. std::nullopt always means "the client did not say" (absent or null),
// which the merge rules treat as "keep what is stored".

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "common/time.hpp"
#include "common/uuid.hpp"

namespace xtrace::schema {

using common::TimePoint;
using common::Uuid;
using OptString = std::optional<std::string>;

struct TraceEvent {
  Uuid id;
  std::optional<TimePoint> timestamp;
  OptString name, user_id, session_id, release, version, external_id;
  OptString project_id, environment;
  OptString input_json, output_json, metadata_json;  // compact JSON text
  std::optional<std::vector<std::string>> tags;
  std::optional<bool> is_public, bookmarked;
  std::optional<double> latency, total_cost;

  friend bool operator==(const TraceEvent&, const TraceEvent&) = default;
};

struct ObservationEvent {
  Uuid id;
  Uuid trace_id;
  OptString type;  // absent: GENERATION (applied by the projector on first insert)
  OptString name;
  std::optional<TimePoint> start_time, end_time, completion_start_time;
  OptString model;
  OptString model_parameters_json, input_json, output_json, usage_json, metadata_json;
  OptString level, status_message;
  std::optional<Uuid> parent_observation_id;
  OptString prompt_id, prompt_name, prompt_version, model_id;
  std::optional<double> input_price, output_price, total_price;
  std::optional<double> calculated_input_cost, calculated_output_cost, calculated_total_cost;
  std::optional<double> latency, time_to_first_token;
  std::optional<int64_t> completion_tokens, prompt_tokens, total_tokens;
  OptString unit;
  OptString project_id, environment;

  friend bool operator==(const ObservationEvent&, const ObservationEvent&) = default;
};

struct MetricPoint {
  std::string name;
  std::vector<std::pair<std::string, std::string>> labels;  // sorted by key, unique
  double value = 0;
  TimePoint timestamp;

  friend bool operator==(const MetricPoint&, const MetricPoint&) = default;
};

struct TraceBatch {
  std::optional<TraceEvent> trace;
  std::vector<ObservationEvent> observations;

  friend bool operator==(const TraceBatch&, const TraceBatch&) = default;
};

struct MetricBatch {
  std::vector<MetricPoint> points;

  friend bool operator==(const MetricBatch&, const MetricBatch&) = default;
};

// One accepted request: the unit of the WAL.
struct WalRecord {
  uint16_t format_version = 0;  // set by the codec on encode, reported on decode
  TimePoint received_at;
  std::string project_id;   // default for events that name none
  std::string environment;  // default for events that name none
  std::variant<TraceBatch, MetricBatch> events;

  friend bool operator==(const WalRecord&, const WalRecord&) = default;
};

}  // namespace xtrace::schema
