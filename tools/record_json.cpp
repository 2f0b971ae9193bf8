#include "record_json.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value_from.hpp>

#include "common/json.hpp"
#include "common/time.hpp"

namespace xtrace::tools {
namespace {

namespace json = boost::json;

class Writer {
 public:
  explicit Writer(json::object& o) : o_(o) {}
  void Text(const char* key, const schema::OptString& v) {
    if (v) o_[key] = *v;
  }
  void Json(const char* key, const schema::OptString& v) {
    if (!v) return;
    boost::system::error_code ec;
    auto parsed = common::ParseJson(*v, ec);
    o_[key] = ec ? json::value(*v) : std::move(parsed);
  }
  void Time(const char* key, const std::optional<common::TimePoint>& v) {
    if (v) o_[key] = common::FormatRfc3339(*v);
  }
  template <class T>
  void Value(const char* key, const std::optional<T>& v) {
    if (v) o_[key] = *v;
  }

 private:
  json::object& o_;
};

json::object TraceJson(const schema::TraceEvent& t) {
  json::object o;
  o["id"] = t.id.ToString();
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
  if (t.tags) o["tags"] = json::value_from(*t.tags);
  w.Value("public", t.is_public);
  w.Value("bookmarked", t.bookmarked);
  w.Value("latency", t.latency);
  w.Value("totalCost", t.total_cost);
  return o;
}

json::object ObservationJson(const schema::ObservationEvent& x) {
  json::object o;
  o["id"] = x.id.ToString();
  o["traceId"] = x.trace_id.ToString();
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
  if (x.parent_observation_id) o["parentObservationId"] = x.parent_observation_id->ToString();
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

}  // namespace

json::object RecordToJson(uint64_t seq, const schema::WalRecord& record) {
  json::object o;
  o["seq"] = seq;
  o["formatVersion"] = record.format_version;
  o["receivedAt"] = common::FormatRfc3339(record.received_at);
  o["projectId"] = record.project_id;
  o["environment"] = record.environment;
  if (const auto* batch = std::get_if<schema::TraceBatch>(&record.events)) {
    o["source"] = "xtraceBatch";
    if (batch->trace) o["trace"] = TraceJson(*batch->trace);
    json::array observations;
    for (const auto& x : batch->observations) observations.emplace_back(ObservationJson(x));
    o["observations"] = std::move(observations);
  } else {
    o["source"] = "metricsBatch";
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
