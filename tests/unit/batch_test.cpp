#include <gtest/gtest.h>

#include "ingest/batch.hpp"
#include "ingest/ingestor.hpp"
#include "schema/codec.hpp"

namespace xtrace::ingest {
namespace {

using common::ErrorCode;

const IngestContext kCtx{"default", "default", common::TimePoint(common::Micros(42))};

constexpr char kTraceId[] = "7d0c8a9e-1111-4222-8333-444455556666";

// The xtrace route's events, as the route puts them: at most one trace, first, then the
// observations.
struct Parsed {
  std::optional<schema::TraceEvent> trace;
  std::vector<schema::ObservationEvent> observations;
};
Parsed Split(const schema::WalRecord& record) {
  Parsed parsed;
  const auto& events = std::get<schema::EntityBatch>(record.events).events;
  for (size_t i = 0; i < events.size(); ++i) {
    if (const auto* t = std::get_if<schema::TraceEvent>(&events[i])) {
      EXPECT_EQ(i, 0u) << "the trace comes first";
      parsed.trace = *t;
    } else {
      parsed.observations.push_back(std::get<schema::ObservationEvent>(events[i]));
    }
  }
  return parsed;
}

common::Error ErrorOf(std::string_view body) {
  auto r = ParseTraceBatch(body, kCtx);
  EXPECT_FALSE(r.has_value()) << body;
  return r ? common::Error{} : r.error();
}

TEST(TraceBatch, ParsesEveryReferenceField) {
  const std::string body = std::string(R"({"trace":{"id":")") + kTraceId + R"(",
    "timestamp":"2026-01-01T00:00:00Z","name":"chat","input":{"q":1},"output":"hi",
    "metadata":{"turn_id":"t1"},"session_id":"s1","release":"r","version":"v","userId":"alice",
    "tags":["prod","x"],"public":true,"environment":"staging","externalId":"e","bookmarked":false,
    "latency":1.5,"totalCost":0.25,"projectId":"p2","unknownKey":1},
    "observations":[{"id":"00000000-0000-0000-0000-000000000002","traceId":")" +
                           kTraceId + R"(",
    "type":"SPAN","name":"step","startTime":"2026-01-01T00:00:00Z","endTime":"2026-01-01T00:00:01Z",
    "completionStartTime":"2026-01-01T00:00:00.5Z","model":"m","modelParameters":{"t":0.1},
    "input":[1],"output":null,"usage":{"input":3},"metadata":{},"level":"DEBUG",
    "statusMessage":"ok","parentObservationId":"00000000-0000-0000-0000-000000000001",
    "promptId":"pi","promptName":"pn","promptVersion":"7","modelId":"mi","inputPrice":1,
    "outputPrice":2,"totalPrice":3,"calculatedInputCost":4,"calculatedOutputCost":5,
    "calculatedTotalCost":6,"latency":1,"timeToFirstToken":0.5,"completionTokens":5,
    "promptTokens":3,"totalTokens":8,"unit":"TOKENS","environment":"e2","projectId":"p3"}]})";
  auto r = ParseTraceBatch(body, kCtx);
  ASSERT_TRUE(r.has_value()) << r.error().field << ": " << r.error().message;
  const Parsed b = Split(*r);
  ASSERT_TRUE(b.trace.has_value());
  EXPECT_EQ(b.trace->id, kTraceId);
  EXPECT_EQ(b.trace->session_id, "s1");
  EXPECT_EQ(b.trace->user_id, "alice");
  EXPECT_EQ(b.trace->input_json, R"({"q":1})");
  EXPECT_EQ(b.trace->output_json, R"("hi")");
  EXPECT_EQ(b.trace->tags, (std::vector<std::string>{"prod", "x"}));
  EXPECT_EQ(b.trace->is_public, true);
  EXPECT_EQ(b.trace->bookmarked, false);
  EXPECT_EQ(b.trace->project_id, "p2");
  EXPECT_EQ(b.trace->environment, "staging");
  ASSERT_EQ(b.observations.size(), 1u);
  const auto& o = b.observations[0];
  EXPECT_EQ(o.type, "SPAN");
  EXPECT_FALSE(o.output_json.has_value());  // null is absent
  EXPECT_EQ(o.prompt_version, "7");
  EXPECT_EQ(o.total_tokens, 8);
  EXPECT_EQ(o.time_to_first_token, 0.5);
  EXPECT_EQ(o.parent_observation_id, "00000000-0000-0000-0000-000000000001");
  EXPECT_EQ(r->received_at, kCtx.received_at);
  EXPECT_EQ(r->project_id, "default");
}

TEST(TraceBatch, AcceptsEmptyObjectAndNulls) {
  auto r = ParseTraceBatch(R"({})", kCtx);
  ASSERT_TRUE(r.has_value());
  r = ParseTraceBatch(R"({"trace":null,"observations":null})", kCtx);
  ASSERT_TRUE(r.has_value());
  const Parsed b = Split(*r);
  EXPECT_FALSE(b.trace.has_value());
  EXPECT_TRUE(b.observations.empty());
}

TEST(TraceBatch, NullFieldsAreAbsentSoTheyKeepStoredValues) {
  auto r = ParseTraceBatch(std::string(R"({"trace":{"id":")") + kTraceId +
                               R"(","name":null,"tags":null,"metadata":null,"sessionId":null}})",
                           kCtx);
  ASSERT_TRUE(r.has_value());
  const auto t = *Split(*r).trace;
  EXPECT_FALSE(t.name || t.tags || t.metadata_json || t.session_id);
  // Absent, not null: xtrace's null keeps the stored value whatever the record's merge rule.
  EXPECT_TRUE(t.name.absent() && t.tags.absent() && t.metadata_json.absent());
  EXPECT_EQ(r->source, schema::Source::kXtraceBatch);
}

TEST(TraceBatch, IntegerPromptVersionAndIntegralTokenFloatsAreAccepted) {
  auto r =
      ParseTraceBatch(std::string(R"({"observations":[{"id":")") + kTraceId + R"(","traceId":")" +
                          kTraceId + R"(","promptVersion":3,"totalTokens":12.0}]})",
                      kCtx);
  ASSERT_TRUE(r.has_value());
  const auto o = Split(*r).observations[0];
  EXPECT_EQ(o.prompt_version, "3");
  EXPECT_EQ(o.total_tokens, 12);
}

TEST(TraceBatch, MalformedJsonIsA400Kind) {
  EXPECT_EQ(ErrorOf("{").code, ErrorCode::kMalformedJson);
  EXPECT_EQ(ErrorOf("").code, ErrorCode::kMalformedJson);
  EXPECT_EQ(ErrorOf(R"({"trace":})").code, ErrorCode::kMalformedJson);
  // Nesting beyond the parser's depth limit is rejected, not recursed into.
  EXPECT_EQ(ErrorOf(std::string(100, '[') + std::string(100, ']')).code, ErrorCode::kMalformedJson);
}

TEST(TraceBatch, WrongShapesNameTheField) {
  const std::string id = kTraceId;
  const struct {
    std::string body;
    std::string field;
  } cases[] = {
      {"[]", ""},
      {R"({"trace":[]})", "trace"},
      {R"({"trace":{}})", "trace.id"},
      {R"({"trace":{"id":"nope"}})", "trace.id"},
      {R"({"trace":{"id":")" + id + R"(","timestamp":"2026-01-01"}})", "trace.timestamp"},
      {R"({"trace":{"id":")" + id + R"(","tags":["a",1]}})", "trace.tags[1]"},
      {R"({"trace":{"id":")" + id + R"(","public":"yes"}})", "trace.public"},
      {R"({"trace":{"id":")" + id + R"(","latency":"1"}})", "trace.latency"},
      {R"({"observations":{}})", "observations"},
      {R"({"observations":[1]})", "observations[0]"},
      {R"({"observations":[{"id":")" + id + R"(","traceId":")" + id + R"("},{"id":")" + id +
           R"("}]})",
       "observations[1].traceId"},
      {R"({"observations":[{"id":")" + id + R"(","traceId":")" + id +
           R"(","completionTokens":1.5}]})",
       "observations[0].completionTokens"},
      {R"({"observations":[{"id":")" + id + R"(","traceId":")" + id + R"(","promptVersion":1.5}]})",
       "observations[0].promptVersion"},
      {R"({"trace":{"id":")" + id + R"(","metadata":{"a":[1,1e999]}}})", "trace.metadata"},
      {R"({"trace":{"id":")" + id + R"(","latency":1e999}})", "trace.latency"},
  };
  for (const auto& c : cases) {
    const auto e = ErrorOf(c.body);
    EXPECT_EQ(e.code, ErrorCode::kInvalidField) << c.body;
    EXPECT_EQ(e.field, c.field) << c.body;
  }
}

TEST(ContentType, AcceptsJsonVariantsOnly) {
  EXPECT_TRUE(IsJsonContentType("application/json"));
  EXPECT_TRUE(IsJsonContentType("Application/JSON; charset=utf-8"));
  EXPECT_TRUE(IsJsonContentType("application/vnd.api+json"));
  EXPECT_FALSE(IsJsonContentType(""));
  EXPECT_FALSE(IsJsonContentType("text/plain"));
  EXPECT_FALSE(IsJsonContentType("application/x-www-form-urlencoded"));
}

// A fake log: records appends and completes them as told.
class FakeAppender : public wal::Appender {
 public:
  void Append(std::string record, wal::AppendCallback done) override {
    records.push_back(std::move(record));
    if (fail) {
      done(common::Error::Unavailable("disk on fire"));
    } else {
      done(static_cast<uint64_t>(records.size()));
    }
  }
  std::vector<std::string> records;
  bool fail = false;
};

common::Result<common::ApiResponse> Submit(Ingestor& ingestor, std::string_view content_type,
                                           std::string_view body) {
  std::optional<common::Result<common::ApiResponse>> out;
  ingestor.TraceBatch({"/v1/l/batch", "", content_type, body},
                      [&](common::Result<common::ApiResponse> r) { out = std::move(r); });
  EXPECT_TRUE(out.has_value()) << "respond was not called";
  return out.value_or(common::Error::Internal("no response"));
}

TEST(Ingestor, AcknowledgesOnlyAfterTheAppendSucceeded) {
  FakeAppender wal;
  Ingestor ingestor(wal, "proj");
  const std::string body = std::string(R"({"trace":{"id":")") + kTraceId + R"("}})";
  auto ok = Submit(ingestor, "application/json", body);
  ASSERT_TRUE(ok.has_value());
  EXPECT_EQ(ok->body, R"({"message":"Request Successful."})");
  ASSERT_EQ(wal.records.size(), 1u);
  const auto decoded = schema::DecodeRecord(wal.records[0]);
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(decoded->project_id, "proj");

  wal.fail = true;
  auto failed = Submit(ingestor, "application/json", body);
  ASSERT_FALSE(failed.has_value());
  EXPECT_EQ(failed.error().code, ErrorCode::kUnavailable);
}

TEST(Ingestor, InvalidInputAppendsNothing) {
  FakeAppender wal;
  Ingestor ingestor(wal, "proj");
  EXPECT_EQ(Submit(ingestor, "text/plain", "{}").error().code, ErrorCode::kUnsupportedMediaType);
  EXPECT_EQ(Submit(ingestor, "application/json", "{").error().code, ErrorCode::kMalformedJson);
  EXPECT_EQ(Submit(ingestor, "application/json", R"({"trace":{}})").error().code,
            ErrorCode::kInvalidField);
  EXPECT_TRUE(wal.records.empty());
}

}  // namespace
}  // namespace xtrace::ingest

#include "ingest/metrics.hpp"

namespace xtrace::ingest {
namespace {

TEST(MetricBatch, ParsesPointsWithSortedLabels) {
  auto r = ParseMetricBatch(R"({"metrics":[
      {"name":"gpu_util","labels":{"host":"a","gpu":"0"},"value":0.5,"timestamp":"2026-01-01T00:00:00Z"},
      {"name":"up","value":1,"timestamp":"2026-01-01T00:00:01+01:00","labels":null}]})",
                            kCtx);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  const auto& points = std::get<schema::MetricBatch>(r->events).points;
  ASSERT_EQ(points.size(), 2u);
  EXPECT_EQ(points[0].labels,
            (std::vector<std::pair<std::string, std::string>>{{"gpu", "0"}, {"host", "a"}}));
  EXPECT_EQ(points[0].value, 0.5);
  EXPECT_TRUE(points[1].labels.empty());
  EXPECT_EQ(points[1].timestamp.time_since_epoch().count(), 1767222001000000);
}

TEST(MetricBatch, RejectsMissingAndMistypedFieldsByPath) {
  const std::pair<const char*, const char*> cases[] = {
      {R"({})", "metrics"},
      {R"({"metrics":null})", "metrics"},
      {R"({"metrics":{}})", "metrics"},
      {R"({"metrics":[{"value":1,"timestamp":"2026-01-01T00:00:00Z"}]})", "metrics[0].name"},
      {R"({"metrics":[{"name":"a","timestamp":"2026-01-01T00:00:00Z"}]})", "metrics[0].value"},
      {R"({"metrics":[{"name":"a","value":1}]})", "metrics[0].timestamp"},
      {R"({"metrics":[{"name":"a","value":"1","timestamp":"2026-01-01T00:00:00Z"}]})",
       "metrics[0].value"},
      {R"({"metrics":[{"name":"a","value":1,"timestamp":"2026-01-01T00:00:00Z","labels":{"k":1}}]})",
       "metrics[0].labels.k"},
      {R"({"metrics":[{"name":"a","value":1,"timestamp":"2026-01-01T00:00:00Z","labels":[]}]})",
       "metrics[0].labels"},
  };
  for (const auto& [body, field] : cases) {
    auto r = ParseMetricBatch(body, kCtx);
    ASSERT_FALSE(r.has_value()) << body;
    EXPECT_EQ(r.error().code, common::ErrorCode::kInvalidField) << body;
    EXPECT_EQ(r.error().field, field) << body;
  }
  EXPECT_EQ(ParseMetricBatch("nope", kCtx).error().code, common::ErrorCode::kMalformedJson);
}

// The limits of docs/api.md at their edge: the limit itself is accepted, one more is refused with
// the field named. (The generative e2e test covers them through the server and PostgreSQL.)
std::string TraceWith(const std::string& members) {
  return std::string(R"({"trace":{"id":")") + kTraceId + "\"," + members + "}}";
}
std::string ObservationWith(const std::string& members) {
  return std::string(
             R"({"observations":[{"id":"00000000-0000-0000-0000-000000000002","traceId":")") +
         kTraceId + "\"," + members + "}]}";
}

TEST(TraceBatch, TextLimitsAcceptTheLimitAndRefuseOneByteMore) {
  const std::pair<const char*, size_t> kLimits[] = {
      {"name", 512},    {"userId", 256},  {"sessionId", 256}, {"environment", 64},
      {"release", 128}, {"version", 128}, {"projectId", 128}};
  for (const auto& [key, limit] : kLimits) {
    // Multi-byte characters count as their UTF-8 bytes: "é" is two.
    const std::string at = std::string(limit - 2, 'a') + "é";
    EXPECT_TRUE(ParseTraceBatch(TraceWith("\"" + std::string(key) + "\":\"" + at + "\""), kCtx))
        << key;
    const auto e = ErrorOf(TraceWith("\"" + std::string(key) + "\":\"" + at + "b\""));
    EXPECT_EQ(e.code, ErrorCode::kInvalidField) << key;
    EXPECT_EQ(e.field, std::string("trace.") + key);
  }
  const auto model = ErrorOf(ObservationWith(R"("model":")" + std::string(257, 'm') + "\""));
  EXPECT_EQ(model.field, "observations[0].model");
}

TEST(TraceBatch, IdentifiersRefuseControlCharactersFreeTextKeepsThem) {
  for (const char* bad :
       {R"(a\u0000b)", R"(a\u0001b)", R"(tab\there)", R"(del\u007f)", R"(c1\u0085)"}) {
    const auto e = ErrorOf(TraceWith(R"("name":")" + std::string(bad) + "\""));
    EXPECT_EQ(e.field, "trace.name") << bad;
    EXPECT_EQ(ErrorOf(TraceWith(R"("tags":["ok",")" + std::string(bad) + "\"]")).field,
              "trace.tags[1]")
        << bad;
  }
  EXPECT_TRUE(ParseTraceBatch(TraceWith(R"("externalId":"a\u0000b\nc")"), kCtx));
  EXPECT_TRUE(ParseTraceBatch(TraceWith(R"("name":"ünïcødé 字 😀")"), kCtx));
}

TEST(TraceBatch, TagLimits) {
  std::string tags;
  for (int i = 0; i < 33; ++i) tags += (i ? ",\"t" : "\"t") + std::to_string(i) + "\"";
  EXPECT_EQ(ErrorOf(TraceWith(R"("tags":[)" + tags + "]")).field, "trace.tags");
  EXPECT_EQ(ErrorOf(TraceWith(R"("tags":[")" + std::string(129, 't') + "\"]")).field,
            "trace.tags[0]");
  std::string wide;  // 7 tags of 120 bytes: each fine, together over 768
  for (int i = 0; i < 7; ++i) wide += (i ? ",\"" : "\"") + std::string(120, 'a' + i) + "\"";
  EXPECT_EQ(ErrorOf(TraceWith(R"("tags":[)" + wide + "]")).field, "trace.tags");
  std::string fits;  // 6 of 128 = 768
  for (int i = 0; i < 6; ++i) fits += (i ? ",\"" : "\"") + std::string(128, 'a' + i) + "\"";
  EXPECT_TRUE(ParseTraceBatch(TraceWith(R"("tags":[)" + fits + "]"), kCtx));
}

TEST(TraceBatch, NumbersStayInRangesNoRollupSumCanOverflow) {
  EXPECT_TRUE(ParseTraceBatch(ObservationWith(R"("promptTokens":1000000000000)"), kCtx));
  EXPECT_TRUE(ParseTraceBatch(ObservationWith(R"("calculatedTotalCost":1e12)"), kCtx));
  const std::pair<const char*, const char*> kRefused[] = {
      {R"("promptTokens":1000000000001)", "observations[0].promptTokens"},
      {R"("completionTokens":-1)", "observations[0].completionTokens"},
      {R"("totalTokens":9223372036854775807)", "observations[0].totalTokens"},
      {R"("calculatedTotalCost":1.7e308)", "observations[0].calculatedTotalCost"},
      {R"("inputPrice":-0.01)", "observations[0].inputPrice"},
      {R"("timeToFirstToken":-1)", "observations[0].timeToFirstToken"},
      {R"("usage":{"input":1e13})", "observations[0].usage.input"},
      {R"("usage":{"promptTokens":-5})", "observations[0].usage.promptTokens"},
  };
  for (const auto& [member, field] : kRefused) {
    EXPECT_EQ(ErrorOf(ObservationWith(member)).field, field) << member;
  }
  EXPECT_EQ(ErrorOf(TraceWith(R"("totalCost":-1)")).field, "trace.totalCost");
  // Usage members that are not numbers are not counts: kept as JSON, ignored by the rollups.
  EXPECT_TRUE(ParseTraceBatch(ObservationWith(R"("usage":{"input":"12","unit":"TOKENS"})"), kCtx));
}

TEST(TraceBatch, TimestampsOutsideYearsOneToNineThousandNineHundredNinetyNineInUtcAreRefused) {
  EXPECT_EQ(ErrorOf(TraceWith(R"("timestamp":"0001-01-01T00:00:00+01:00")")).field,
            "trace.timestamp");
  EXPECT_EQ(ErrorOf(ObservationWith(R"("endTime":"9999-12-31T23:59:59-01:00")")).field,
            "observations[0].endTime");
}

TEST(MetricBatch, NameAndLabelLimits) {
  auto field_of = [](const std::string& point) {
    auto r = ParseMetricBatch(
        R"({"metrics":[{"value":1,"timestamp":"2026-01-01T00:00:00Z",)" + point + "}]}", kCtx);
    return r ? std::string("<accepted>") : r.error().field;
  };
  EXPECT_EQ(field_of(R"("name":")" + std::string(256, 'n') + "\""), "<accepted>");
  EXPECT_EQ(field_of(R"("name":")" + std::string(257, 'n') + "\""), "metrics[0].name");
  // NUL used to cut the name short and merge it into another series.
  EXPECT_EQ(field_of(R"("name":"cpu\u0000x")"), "metrics[0].name");
  EXPECT_EQ(field_of(R"("name":"m","labels":{"a\u0000b":"v"})"), "metrics[0].labels.<key>");
  EXPECT_EQ(field_of(R"("name":"m","labels":{"k":"a\u0000b"})"), "metrics[0].labels.k");
  EXPECT_EQ(field_of(R"("name":"m","labels":{"k":"tab\tand\nnewline"})"), "<accepted>");
  std::string many;
  for (int i = 0; i < 33; ++i) many += (i ? ",\"k" : "\"k") + std::to_string(i) + "\":\"v\"";
  EXPECT_EQ(field_of(R"("name":"m","labels":{)" + many + "}"), "metrics[0].labels");
  EXPECT_EQ(field_of(R"("name":"m","labels":{")" + std::string(129, 'k') + "\":\"v\"}"),
            "metrics[0].labels.<key>");
  EXPECT_EQ(field_of(R"("name":"m","labels":{"k":")" + std::string(257, 'v') + "\"}"),
            "metrics[0].labels.k");
  std::string wide;  // 7 values of 250 bytes: each fine, together over 1536
  for (int i = 0; i < 7; ++i)
    wide += (i ? ",\"k" : "\"k") + std::to_string(i) + "\":\"" + std::string(250, 'v') + "\"";
  EXPECT_EQ(field_of(R"("name":"m","labels":{)" + wide + "}"), "metrics[0].labels");
  auto value_field = [](const std::string& value) {
    auto r = ParseMetricBatch(R"({"metrics":[{"name":"m","timestamp":"2026-01-01T00:00:00Z",)"
                              R"("value":)" +
                                  value + "}]}",
                              kCtx);
    return r ? std::string("<accepted>") : r.error().field;
  };
  EXPECT_EQ(value_field("1e100"), "<accepted>");
  EXPECT_EQ(value_field("-1e100"), "<accepted>");
  EXPECT_EQ(value_field("1.7e308"), "metrics[0].value");
  EXPECT_EQ(value_field("-1e101"), "metrics[0].value");
}

}  // namespace
}  // namespace xtrace::ingest
