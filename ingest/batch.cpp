#include "ingest/batch.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <cctype>

#include "common/json.hpp"
#include "ingest/json_fields.hpp"

namespace xtrace::ingest {
namespace {

using common::Error;
using common::ErrorCode;

using common::kMaxJsonDepth;  // nesting beyond it is malformed

schema::TraceEvent ReadTrace(FieldReader& f) {
  schema::TraceEvent t;
  f.Require("id");
  if (auto id = f.Uuid("id")) t.id = *id;
  t.timestamp = f.Time("timestamp");
  t.name = f.String("name");
  t.input_json = f.Json("input");
  t.output_json = f.Json("output");
  t.metadata_json = f.Json("metadata");
  // xtrace accepts both spellings of the session key.
  t.session_id = f.String("sessionId");
  if (!t.session_id) t.session_id = f.String("session_id");
  t.release = f.String("release");
  t.version = f.String("version");
  t.user_id = f.String("userId");
  t.tags = f.StringList("tags");
  t.is_public = f.Bool("public");
  t.environment = f.String("environment");
  t.external_id = f.String("externalId");
  t.bookmarked = f.Bool("bookmarked");
  t.latency = f.Number("latency");
  t.total_cost = f.Number("totalCost");
  t.project_id = f.String("projectId");
  return t;
}

schema::ObservationEvent ReadObservation(FieldReader& f) {
  schema::ObservationEvent o;
  f.Require("id");
  if (auto id = f.Uuid("id")) o.id = *id;
  f.Require("traceId");
  if (auto id = f.Uuid("traceId")) o.trace_id = *id;
  o.type = f.String("type");
  o.name = f.String("name");
  o.start_time = f.Time("startTime");
  o.end_time = f.Time("endTime");
  o.completion_start_time = f.Time("completionStartTime");
  o.model = f.String("model");
  o.model_parameters_json = f.Json("modelParameters");
  o.input_json = f.Json("input");
  o.output_json = f.Json("output");
  o.usage_json = f.Json("usage");
  o.metadata_json = f.Json("metadata");
  o.level = f.String("level");
  o.status_message = f.String("statusMessage");
  o.parent_observation_id = f.Uuid("parentObservationId");
  o.prompt_id = f.String("promptId");
  o.prompt_name = f.String("promptName");
  o.prompt_version = f.StringOrInteger("promptVersion");
  o.model_id = f.String("modelId");
  o.input_price = f.Number("inputPrice");
  o.output_price = f.Number("outputPrice");
  o.total_price = f.Number("totalPrice");
  o.calculated_input_cost = f.Number("calculatedInputCost");
  o.calculated_output_cost = f.Number("calculatedOutputCost");
  o.calculated_total_cost = f.Number("calculatedTotalCost");
  o.latency = f.Number("latency");
  o.time_to_first_token = f.Number("timeToFirstToken");
  o.completion_tokens = f.Integer("completionTokens");
  o.prompt_tokens = f.Integer("promptTokens");
  o.total_tokens = f.Integer("totalTokens");
  o.unit = f.String("unit");
  o.environment = f.String("environment");
  o.project_id = f.String("projectId");
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

  schema::TraceBatch batch;
  if (const auto* trace = obj.if_contains("trace"); trace != nullptr && !trace->is_null()) {
    if (!trace->is_object()) return Error::InvalidField("trace", "trace must be an object");
    FieldReader f(trace->get_object(), "trace");
    batch.trace = ReadTrace(f);
    if (f.error()) return *f.error();
  }
  if (const auto* obs = obj.if_contains("observations"); obs != nullptr && !obs->is_null()) {
    if (!obs->is_array()) {
      return Error::InvalidField("observations", "observations must be an array");
    }
    const auto& array = obs->get_array();
    batch.observations.reserve(array.size());
    for (size_t i = 0; i < array.size(); ++i) {
      const std::string path = "observations[" + std::to_string(i) + "]";
      if (!array[i].is_object()) return Error::InvalidField(path, path + " must be an object");
      FieldReader f(array[i].get_object(), path);
      batch.observations.push_back(ReadObservation(f));
      if (f.error()) return *f.error();
    }
  }

  return MakeRecord(ctx, std::move(batch));
}

schema::WalRecord MakeRecord(const IngestContext& ctx,
                             std::variant<schema::TraceBatch, schema::MetricBatch> events) {
  schema::WalRecord record;
  record.received_at = ctx.received_at;
  record.project_id = ctx.project_id;
  record.environment = ctx.environment;
  record.events = std::move(events);
  return record;
}

}  // namespace xtrace::ingest
