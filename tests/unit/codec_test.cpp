#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>

#include "common/uuid.hpp"
#include "schema/codec.hpp"

namespace xtrace::schema {
namespace {

WalRecord FullTraceRecord() {
  WalRecord r;
  r.received_at = TimePoint(common::Micros(1767225600123456));
  r.project_id = "proj";
  r.environment = "default";
  r.source = Source::kXtraceBatch;
  EntityBatch b;
  TraceEvent t;
  t.id = "7d0c8a9e-1111-4222-8333-444455556666";
  t.timestamp = TimePoint(common::Micros(1767225600000000));
  t.name = "chat";
  t.user_id = "";  // present but empty is not absent
  t.session_id = "s1";
  t.tags = std::vector<std::string>{"a", "b"};
  t.metadata_json = R"({"k":[1,2]})";
  t.is_public = false;  // present false is not absent
  t.latency = 0.0;
  b.events.emplace_back(t);
  ObservationEvent o;
  o.id = "00000000-0000-0000-0000-000000000002";
  o.trace_id = t.id;
  o.type = "SPAN";
  o.start_time = TimePoint(common::Micros(5));
  o.parent_observation_id = "00000000-0000-0000-0000-000000000001";
  o.prompt_tokens = 0;
  o.total_tokens = 1LL << 40;
  o.calculated_total_cost = 0.25;
  o.usage_json = R"({"input":1})";
  o.environment = "prod";
  ObservationEvent bare;  // only the required ids
  bare.id = "00000000-0000-0000-0000-000000000003";
  bare.trace_id = t.id;
  b.events.emplace_back(o);
  b.events.emplace_back(bare);
  r.events = b;
  return r;
}

const auto& Events(const WalRecord& r) {
  return std::get<EntityBatch>(r.events).events;
}

TEST(Codec, EntityBatchRoundTripsKeepingAbsentDistinctFromZero) {
  const WalRecord in = FullTraceRecord();
  const auto out = DecodeRecord(EncodeRecord(in));
  ASSERT_TRUE(out.has_value()) << out.error().message;
  WalRecord expected = in;
  expected.format_version = kFormatVersion;
  EXPECT_EQ(*out, expected);
  const auto& trace = std::get<TraceEvent>(Events(*out)[0]);
  EXPECT_TRUE(trace.user_id.has_value());
  EXPECT_TRUE(trace.release.absent());
  const auto& bare = std::get<ObservationEvent>(Events(*out)[2]);
  EXPECT_TRUE(bare.type.absent());
  EXPECT_TRUE(bare.prompt_tokens.absent());
}

// Langfuse and OTLP clients clear a stored value with an explicit null: the WAL keeps null
// apart from absent for every kind of field, and ids of any shape.
TEST(Codec, ExplicitNullsAndOpaqueIdsRoundTrip) {
  WalRecord in;
  in.source = Source::kLangfuse;
  in.project_id = "p";
  EntityBatch b;
  TraceEvent t;
  t.id = "my-request-42";
  t.name = OptString::Null();
  t.timestamp = Field<TimePoint>::Null();
  t.tags = Field<std::vector<std::string>>::Null();
  t.is_public = Field<bool>::Null();
  t.total_cost = Field<double>::Null();
  t.user_id = "u";
  b.events.emplace_back(t);
  ObservationEvent o;
  o.id = "00f067aa0ba902b7";
  o.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
  o.parent_observation_id = OptString::Null();
  o.prompt_tokens = Field<int64_t>::Null();
  o.end_time = Field<TimePoint>::Null();
  b.events.emplace_back(o);
  ScoreEvent score;
  score.id = "score-1";
  score.trace_id = "my-request-42";
  score.name = "quality";
  score.data_type = ScoreDataType::kCategorical;
  score.string_value = "good";
  score.value = Field<double>::Null();
  score.comment = OptString::Null();
  b.events.emplace_back(score);
  b.events.emplace_back(DeletionEvent{DeletionEvent::Entity::kObservation, "obs-9", "p2"});
  in.events = b;

  const auto out = DecodeRecord(EncodeRecord(in));
  ASSERT_TRUE(out.has_value()) << out.error().message;
  in.format_version = kFormatVersion;
  EXPECT_EQ(*out, in);
  const auto& trace = std::get<TraceEvent>(Events(*out)[0]);
  EXPECT_TRUE(trace.name.is_null());
  EXPECT_TRUE(trace.tags.is_null());
  EXPECT_TRUE(trace.release.absent());
  EXPECT_TRUE(std::get<ObservationEvent>(Events(*out)[1]).parent_observation_id.is_null());
  EXPECT_TRUE(std::get<ScoreEvent>(Events(*out)[2]).comment.is_null());
  EXPECT_EQ(MergeRuleOf(out->source), MergeRule::kNullClears);
}

TEST(Codec, RejectsIdsOutsideTheirBounds) {
  for (const std::string& id : {std::string(), std::string(kMaxIdBytes + 1, 'x')}) {
    WalRecord in;
    TraceEvent t;
    t.id = id;
    in.events = EntityBatch{{t}};
    EXPECT_FALSE(DecodeRecord(EncodeRecord(in)).has_value()) << id.size();
  }
}

// Records written before ids became text (format 1, the fuzz corpus's seeds were encoded by that
// build) decode into today's events: the trace first, ids as canonical UUID text.
TEST(Codec, DecodesFormat1Records) {
  std::ifstream in(
      std::string(XTRACE_SOURCE_DIR) + "/tests/fuzz/corpus/wal_record/trace_full_observation.bin",
      std::ios::binary);
  ASSERT_TRUE(in);
  const std::string bytes(std::istreambuf_iterator<char>(in), {});
  const auto out = DecodeRecord(bytes);
  ASSERT_TRUE(out.has_value()) << out.error().message;
  EXPECT_EQ(out->format_version, 1);
  EXPECT_EQ(out->source, Source::kXtraceBatch);
  const auto& events = Events(*out);
  ASSERT_FALSE(events.empty());
  for (const auto& event : events) {
    const auto* o = std::get_if<ObservationEvent>(&event);
    if (!o) continue;
    EXPECT_EQ(o->id.size(), 36u) << o->id;
    EXPECT_EQ(common::Uuid::Parse(o->id)->ToString(), o->id);
    EXPECT_EQ(common::Uuid::Parse(o->trace_id)->ToString(), o->trace_id);
  }
  EXPECT_EQ(PeekRecordKind(bytes).value(), RecordKind::kEntities);
}

TEST(Codec, MetricBatchRoundTrips) {
  WalRecord in;
  in.received_at = TimePoint(common::Micros(7));
  in.project_id = "p";
  in.environment = "e";
  in.source = Source::kMetricsBatch;
  in.events = MetricBatch{{MetricPoint{"gpu_util",
                                       {{"gpu", "0"}, {"host", "a"}},
                                       0.5,
                                       TimePoint(common::Micros(1767225600000000))}}};
  auto out = DecodeRecord(EncodeRecord(in));
  ASSERT_TRUE(out.has_value());
  in.format_version = kFormatVersion;
  EXPECT_EQ(*out, in);
}

// Found by the metric_batch fuzz harness: ingest accepts `\u0000` in a metric name or label, and
// decoding cut those strings at the NUL, so the stored series was not the one the client sent.
TEST(Codec, MetricTextKeepsEmbeddedNul) {
  using namespace std::string_literals;
  WalRecord in;
  in.project_id = "p\0q"s;
  in.environment = "e\0f"s;
  in.source = Source::kMetricsBatch;
  in.events = MetricBatch{{MetricPoint{"c\0pu"s, {{"k\0ey"s, "va\0lue"s}}, 1, TimePoint()}}};
  auto out = DecodeRecord(EncodeRecord(in));
  ASSERT_TRUE(out.has_value());
  in.format_version = kFormatVersion;
  EXPECT_EQ(*out, in);
}

TEST(Codec, DecodesFromUnalignedBuffers) {
  const std::string bytes = EncodeRecord(FullTraceRecord());
  auto storage = std::make_unique<char[]>(bytes.size() + 1);
  std::memcpy(storage.get() + 1, bytes.data(), bytes.size());
  const auto out = DecodeRecord(std::string_view(storage.get() + 1, bytes.size()));
  ASSERT_TRUE(out.has_value()) << out.error().message;
  EXPECT_EQ(Events(*out).size(), 3u);
}

TEST(Codec, RejectsTruncatedAndGarbageInputWithoutThrowing) {
  const std::string bytes = EncodeRecord(FullTraceRecord());
  EXPECT_FALSE(DecodeRecord("").has_value());
  EXPECT_FALSE(DecodeRecord(bytes.substr(0, bytes.size() - 3)).has_value());
  EXPECT_FALSE(DecodeRecord(bytes.substr(0, bytes.size() - 8)).has_value());
  EXPECT_FALSE(DecodeRecord(std::string(64, '\xff')).has_value());
}

TEST(Codec, RejectsNewerFormatVersion) {
  std::string bytes = EncodeRecord(FullTraceRecord());
  // Root struct data section starts after the 8-byte segment table and 8-byte root pointer;
  // formatVersion is its first 16 bits.
  bytes[16] = static_cast<char>(kFormatVersion + 1);
  const auto out = DecodeRecord(bytes);
  ASSERT_FALSE(out.has_value());
  EXPECT_NE(out.error().message.find("format version"), std::string::npos);
}

// A 168-byte damaged record (found by the wal_record fuzzer) whose events point three times at one
// list of 1.7 million empty structs. Read with Cap'n Proto's default limits it decoded as 1.7
// million metric points, 110 MB once re-encoded. A record may not decode into more than it holds.
TEST(Codec, RejectsRecordsThatDecodeLargerThanTheyAre) {
  const std::string bytes(
      "\x00\x00\x00\x00\x14\x00\x00\x00"
      "\x00\x00\x00\x00\x02\x00\x04\x00"
      "\x01\x00\x01\x00\x01\x00\x00\x00"
      "\x20\xe1\x27\x46\x48\x47\x06\x00"
      "\x0d\x00\x00\x00\x42\x00\x00\x00"
      "\x0d\x00\x00\x00\x42\x00\x00\x00"
      "\x0d\x00\x00\x00\x27\x00\x00\x00"
      "\x00\x00\x00\x00\x00\x00\x00\x00"
      "\x64\x65\x66\x61\x75\x6c\x74\x00"
      "\x64\x65\x66\x61\x75\x6c\x74\x00"
      "\x04\x70\x69\x00\x00\x00\x00\x00"
      "\x00\x70\x6e\x00\x00\x00\x00\x00"
      "\x00\x37\x00\x00\x00\x00\x00\x00"
      "\x00\x6d\x69\x00\x00\x00\x00\x00"
      "\x00\x00\x00\x00\x00\x00\x00\xf0"
      "\x3f\x00\x00\x00\x00\x00\x00\x00"
      "\x40\x00\x00\x00\x00\x00\x00\x08"
      "\x40\x00\x00\x00\x00\x00\x00\x00"
      "\x05\x00\x00\x00\x12\x00\x00\x00"
      "\x6b\x00\x00\x00\x00\x00\x00\x00"
      "\x32\x00\x00\x00\x00\x00\x00\x00",
      168);
  const auto out = DecodeRecord(bytes);
  ASSERT_FALSE(out.has_value());
  EXPECT_NE(out.error().message.find("traversal limit"), std::string::npos) << out.error().message;
}

}  // namespace
}  // namespace xtrace::schema
