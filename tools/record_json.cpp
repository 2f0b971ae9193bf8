#include "record_json.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value_from.hpp>

#include "common/json.hpp"
#include "common/time.hpp"

namespace xtrace::tools {
namespace {

namespace json = boost::json;

// Writes the fields a client mentioned: a value, or JSON null when it sent an explicit null.
class Writer {
 public:
  explicit Writer(json::object& o) : o_(o) {}
  void Text(const char* key, const schema::OptString& v) {
    Put(key, v, [&] { return *v; });
  }
  void Json(const char* key, const schema::OptString& v) {
    Put(key, v, [&] {
      boost::system::error_code ec;
      auto parsed = common::ParseJson(*v, ec);
      return ec ? json::value(*v) : std::move(parsed);
    });
  }
  void Time(const char* key, const schema::Field<common::TimePoint>& v) {
    Put(key, v, [&] { return common::FormatRfc3339(*v); });
  }
  template <class T>
  void Value(const char* key, const schema::Field<T>& v) {
    Put(key, v, [&] { return json::value_from(*v); });
  }

 private:
  template <class T, class Render>
  void Put(const char* key, const schema::Field<T>& v, Render render) {
    if (v.is_null()) o_[key] = nullptr;
    if (v.has_value()) o_[key] = render();
  }

  json::object& o_;
};

json::object TraceJson(const schema::TraceEvent& t) {
  json::object o;
  o["id"] = t.id;
  Writer w(o);
  w.Time("timestamp", t.timestamp);
  w.Text("name", t.name);
  w.Text("userId", t.user_id);
  w.Text("sessionId", t.session_id);
  w.Text("release", t.release);
  w.Text("version", t.version);
  w.Text("externalId", t.external_id);
  w.Text("projectId", t.project_id);
  w.Text("environment", t.environment);
  w.Json("input", t.input_json);
  w.Json("output", t.output_json);
  w.Json("metadata", t.metadata_json);
  w.Value("tags", t.tags);
  w.Value("public", t.is_public);
  w.Value("bookmarked", t.bookmarked);
  w.Value("latency", t.latency);
  w.Value("totalCost", t.total_cost);
  return o;
}

json::object ObservationJson(const schema::ObservationEvent& x) {
  json::object o;
  o["id"] = x.id;
  o["traceId"] = x.trace_id;
  Writer w(o);
  w.Text("type", x.type);
  w.Text("name", x.name);
  w.Time("startTime", x.start_time);
  w.Time("endTime", x.end_time);
  w.Time("completionStartTime", x.completion_start_time);
  w.Text("model", x.model);
  w.Json("modelParameters", x.model_parameters_json);
  w.Json("input", x.input_json);
  w.Json("output", x.output_json);
  w.Json("usage", x.usage_json);
  w.Json("metadata", x.metadata_json);
  w.Text("level", x.level);
  w.Text("statusMessage", x.status_message);
  w.Text("parentObservationId", x.parent_observation_id);
  w.Text("promptId", x.prompt_id);
  w.Text("promptName", x.prompt_name);
  w.Text("promptVersion", x.prompt_version);
  w.Text("modelId", x.model_id);
  w.Value("inputPrice", x.input_price);
  w.Value("outputPrice", x.output_price);
  w.Value("totalPrice", x.total_price);
  w.Value("calculatedInputCost", x.calculated_input_cost);
  w.Value("calculatedOutputCost", x.calculated_output_cost);
  w.Value("calculatedTotalCost", x.calculated_total_cost);
  w.Value("latency", x.latency);
  w.Value("timeToFirstToken", x.time_to_first_token);
  w.Value("completionTokens", x.completion_tokens);
  w.Value("promptTokens", x.prompt_tokens);
  w.Value("totalTokens", x.total_tokens);
  w.Text("unit", x.unit);
  w.Text("projectId", x.project_id);
  w.Text("environment", x.environment);
  return o;
}

const char* NameOf(schema::ScoreDataType t) {
  switch (t) {
    case schema::ScoreDataType::kNumeric: return "NUMERIC";
    case schema::ScoreDataType::kCategorical: return "CATEGORICAL";
    case schema::ScoreDataType::kBoolean: return "BOOLEAN";
  }
  return "NUMERIC";
}

json::object ScoreJson(const schema::ScoreEvent& s) {
  json::object o;
  o["id"] = s.id;
  Writer w(o);
  w.Time("timestamp", s.timestamp);
  w.Text("traceId", s.trace_id);
  w.Text("observationId", s.observation_id);
  w.Text("sessionId", s.session_id);
  w.Text("name", s.name);
  if (s.data_type.is_null()) o["dataType"] = nullptr;
  if (s.data_type) o["dataType"] = NameOf(*s.data_type);
  w.Value("value", s.value);
  w.Text("stringValue", s.string_value);
  w.Text("comment", s.comment);
  w.Text("source", s.source);
  w.Text("configId", s.config_id);
  w.Json("metadata", s.metadata_json);
  w.Text("projectId", s.project_id);
  w.Text("environment", s.environment);
  return o;
}

json::object DeletionJson(const schema::DeletionEvent& d) {
  static constexpr const char* kEntities[] = {"trace", "observation", "score"};
  json::object o;
  o["entity"] = kEntities[static_cast<size_t>(d.entity)];
  o["id"] = d.id;
  Writer(o).Text("projectId", d.project_id);
  return o;
}

// One event as {"<kind>": {...}}.
json::object EventJson(const schema::EntityEvent& event) {
  return std::visit(
      [](const auto& e) -> json::object {
        using E = std::decay_t<decltype(e)>;
        if constexpr (std::is_same_v<E, schema::TraceEvent>) return {{"trace", TraceJson(e)}};
        if constexpr (std::is_same_v<E, schema::ObservationEvent>) {
          return {{"observation", ObservationJson(e)}};
        }
        if constexpr (std::is_same_v<E, schema::ScoreEvent>) return {{"score", ScoreJson(e)}};
        if constexpr (std::is_same_v<E, schema::DeletionEvent>) {
          return {{"deletion", DeletionJson(e)}};
        }
      },
      event);
}

const char* NameOf(schema::Source source) {
  switch (source) {
    case schema::Source::kXtraceBatch: return "xtraceBatch";
    case schema::Source::kMetricsBatch: return "metricsBatch";
    case schema::Source::kLangfuse: return "langfuse";
    case schema::Source::kOtlpTraces: return "otlpTraces";
    case schema::Source::kOtlpMetrics: return "otlpMetrics";
  }
  return "unknown";
}

}  // namespace

json::object RecordToJson(uint64_t seq, const schema::WalRecord& record) {
  json::object o;
  o["seq"] = seq;
  o["formatVersion"] = record.format_version;
  o["receivedAt"] = common::FormatRfc3339(record.received_at);
  o["projectId"] = record.project_id;
  o["environment"] = record.environment;
  o["source"] = NameOf(record.source);
  if (const auto* batch = std::get_if<schema::EntityBatch>(&record.events)) {
    json::array events;
    for (const auto& e : batch->events) events.emplace_back(EventJson(e));
    o["events"] = std::move(events);
  } else {
    json::array points;
    for (const auto& p : std::get<schema::MetricBatch>(record.events).points) {
      json::object labels;
      for (const auto& [k, v] : p.labels) labels[k] = v;
      points.emplace_back(json::object{{"name", p.name},
                                       {"labels", std::move(labels)},
                                       {"value", p.value},
                                       {"timestamp", common::FormatRfc3339(p.timestamp)}});
    }
    o["metrics"] = std::move(points);
  }
  return o;
}

}  // namespace xtrace::tools
