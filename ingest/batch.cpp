#include "ingest/batch.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <cctype>

#include "common/json.hpp"
#include "ingest/json_fields.hpp"
#include "ingest/limits.hpp"

namespace xtrace::ingest {
namespace {

using common::Error;
using common::ErrorCode;

using common::kMaxJsonDepth;  // nesting beyond it is malformed

schema::TraceEvent ReadTrace(FieldReader& f) {
  namespace lim = limits;
  schema::TraceEvent t;
  f.Require("id");
  if (auto id = f.Uuid("id")) t.id = id->ToString();
  t.timestamp = f.Time("timestamp");
  t.name = f.Text("name", lim::kNameBytes);
  t.input_json = f.Json("input");
  t.output_json = f.Json("output");
  t.metadata_json = f.Json("metadata");
  // xtrace accepts both spellings of the session key.
  t.session_id = f.Text("sessionId", lim::kSessionIdBytes);
  if (!t.session_id) t.session_id = f.Text("session_id", lim::kSessionIdBytes);
  t.release = f.Text("release", lim::kReleaseBytes);
  t.version = f.Text("version", lim::kVersionBytes);
  t.user_id = f.Text("userId", lim::kUserIdBytes);
  t.tags = f.IdentifierList("tags", {lim::kTagBytes, lim::kTags, lim::kTagsTotalBytes});
  t.is_public = f.Bool("public");
  t.environment = f.Text("environment", lim::kEnvironmentBytes);
  t.external_id = f.String("externalId");
  t.bookmarked = f.Bool("bookmarked");
  t.latency = f.Amount("latency", lim::kMaxAmount);
  t.total_cost = f.Amount("totalCost", lim::kMaxAmount);
  t.project_id = f.Text("projectId", lim::kProjectIdBytes);
  return t;
}

schema::ObservationEvent ReadObservation(FieldReader& f) {
  namespace lim = limits;
  schema::ObservationEvent o;
  f.Require("id");
  if (auto id = f.Uuid("id")) o.id = id->ToString();
  f.Require("traceId");
  if (auto id = f.Uuid("traceId")) o.trace_id = id->ToString();
  o.type = f.String("type");
  o.name = f.Text("name", lim::kNameBytes);
  o.start_time = f.Time("startTime");
  o.end_time = f.Time("endTime");
  o.completion_start_time = f.Time("completionStartTime");
  o.model = f.Text("model", lim::kModelBytes);
  o.model_parameters_json = f.Json("modelParameters");
  o.input_json = f.Json("input");
  o.output_json = f.Json("output");
  // The token members the derived columns read (schema migration 0003).
  o.usage_json = f.JsonWithCounts(
      "usage", {"input", "output", "total", "promptTokens", "completionTokens", "totalTokens"},
      lim::kMaxTokens);
  o.metadata_json = f.Json("metadata");
  o.level = f.String("level");
  o.status_message = f.String("statusMessage");
  if (auto id = f.Uuid("parentObservationId")) o.parent_observation_id = id->ToString();
  o.prompt_id = f.String("promptId");
  o.prompt_name = f.String("promptName");
  o.prompt_version = f.StringOrInteger("promptVersion");
  o.model_id = f.String("modelId");
  o.input_price = f.Amount("inputPrice", lim::kMaxAmount);
  o.output_price = f.Amount("outputPrice", lim::kMaxAmount);
  o.total_price = f.Amount("totalPrice", lim::kMaxAmount);
  o.calculated_input_cost = f.Amount("calculatedInputCost", lim::kMaxAmount);
  o.calculated_output_cost = f.Amount("calculatedOutputCost", lim::kMaxAmount);
  o.calculated_total_cost = f.Amount("calculatedTotalCost", lim::kMaxAmount);
  o.latency = f.Amount("latency", lim::kMaxAmount);
  o.time_to_first_token = f.Amount("timeToFirstToken", lim::kMaxAmount);
  o.completion_tokens = f.Count("completionTokens", lim::kMaxTokens);
  o.prompt_tokens = f.Count("promptTokens", lim::kMaxTokens);
  o.total_tokens = f.Count("totalTokens", lim::kMaxTokens);
  o.unit = f.String("unit");
  o.environment = f.Text("environment", lim::kEnvironmentBytes);
  o.project_id = f.Text("projectId", lim::kProjectIdBytes);
  return o;
}

}  // namespace

bool IsJsonContentType(std::string_view content_type) {
  std::string mime(content_type.substr(0, content_type.find(';')));
  while (!mime.empty() && std::isspace(static_cast<unsigned char>(mime.back()))) mime.pop_back();
  std::transform(mime.begin(), mime.end(), mime.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  const auto start = mime.find_first_not_of(" \t");
  if (start == std::string::npos) return false;
  mime.erase(0, start);
  if (mime == "application/json") return true;
  return mime.starts_with("application/") && mime.ends_with("+json");
}

common::Result<schema::WalRecord> ParseTraceBatch(std::string_view body, const IngestContext& ctx) {
  auto root = ParseObjectBody(body, kMaxJsonDepth);
  if (!root) return root.error();
  const auto& obj = root->get_object();

  // The trace first, then its observations: the order in which the events apply.
  schema::EntityBatch batch;
  if (const auto* trace = obj.if_contains("trace"); trace != nullptr && !trace->is_null()) {
    if (!trace->is_object()) return Error::InvalidField("trace", "trace must be an object");
    FieldReader f(trace->get_object(), "trace");
    batch.events.emplace_back(ReadTrace(f));
    if (f.error()) return *f.error();
  }
  if (const auto* obs = obj.if_contains("observations"); obs != nullptr && !obs->is_null()) {
    if (!obs->is_array()) {
      return Error::InvalidField("observations", "observations must be an array");
    }
    const auto& array = obs->get_array();
    batch.events.reserve(batch.events.size() + array.size());
    for (size_t i = 0; i < array.size(); ++i) {
      const std::string path = "observations[" + std::to_string(i) + "]";
      if (!array[i].is_object()) return Error::InvalidField(path, path + " must be an object");
      FieldReader f(array[i].get_object(), path);
      batch.events.emplace_back(ReadObservation(f));
      if (f.error()) return *f.error();
    }
  }

  return MakeRecord(ctx, schema::Source::kXtraceBatch, std::move(batch));
}

schema::WalRecord MakeRecord(const IngestContext& ctx, schema::Source source,
                             std::variant<schema::EntityBatch, schema::MetricBatch> events) {
  schema::WalRecord record;
  record.source = source;
  record.received_at = ctx.received_at;
  record.project_id = ctx.project_id;
  record.environment = ctx.environment;
  record.events = std::move(events);
  return record;
}

}  // namespace xtrace::ingest
