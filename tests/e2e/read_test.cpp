// Reads through the real xtrace-server binary against a real PostgreSQL: stored JSON comes back
// as it was stored, at every depth ingest accepts, and reading a trace of any size leaves the
// server's memory where it was.
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <thread>

#include "support/http_client.hpp"
#include "support/server_fixture.hpp"

namespace xtrace {
namespace {

using testing::HttpResult;

constexpr char kToken[] = "read-token";

class ReadTest : public testing::ServerFixture {
 protected:
  ReadTest() : ServerFixture(kToken) {}

  // The server's resident set size, from /proc/<pid>/status.
  int64_t RssBytes() const {
    std::ifstream status("/proc/" + std::to_string(server_->pid()) + "/status");
    std::string line;
    while (std::getline(status, line)) {
      if (line.starts_with("VmRSS:")) return std::stoll(line.substr(6)) * 1024;
    }
    return -1;
  }
};

// The batch whose rendering is pinned below: every kind of trace and observation field, strings
// that need escaping, keys out of order, nested documents and numbers of every JSON form.
const std::string kRichBatch =
    R"({"trace":{"id":"aaaaaaaa-1111-4222-8333-444455556666","name":"render",)"
    R"("userId":"u\"1","sessionId":"s\\1","release":"r1","version":"v1","tags":["b",)"
    R"("a","with space"],"timestamp":"2026-01-01T00:00:00.123456Z","environment":"prod",)"
    R"("public":true,"bookmarked":false,"externalId":"ext-1","input":{"z":1,"a":[1.5,)"
    R"(100,-2,0.25,true,false,null,"x\ny\t\"q\"\\ \u0001 \u007f é 😀 \u2028"],)"
    R"("nested":{"b":{"c":[]},"a":{}}},"output":"plain text","metadata":{"k2":"v",)"
    R"("k1":{"deep":[1,[2,[3]]]},"num":3.0,"big":12345678901234567890,"pi":3.141592653589793,)"
    R"("third":0.1}},)"
    R"("observations":[)"
    R"({"id":"aaaaaaaa-0000-4000-8000-000000000001","traceId":"aaaaaaaa-1111-4222-8333-444455556666",)"
    R"("type":"GENERATION","name":"llm","startTime":"2026-01-01T00:00:00Z","endTime":"2026-01-01T00:00:01.5Z",)"
    R"("completionStartTime":"2026-01-01T00:00:00.25Z","model":"gpt-4o","modelParameters":{"temperature":0.7,)"
    R"("max_tokens":256,"stop":["\n"]},"input":[{"role":"user","content":"hi"}],)"
    R"("output":{"role":"assistant","content":"hello"},"metadata":{"b":1,"a":2},)"
    R"("usage":{"input":10,"output":20,"total":30,"unit":"TOKENS"},"level":"WARNING",)"
    R"("statusMessage":"slow","promptName":"p","promptVersion":"3","promptId":"pid",)"
    R"("modelId":"mid","inputPrice":0.001,"outputPrice":0.002,"totalPrice":0.003,)"
    R"("calculatedInputCost":0.01,"calculatedOutputCost":0.02,"calculatedTotalCost":0.03,)"
    R"("promptTokens":10,"completionTokens":20,"totalTokens":30,"unit":"TOKENS",)"
    R"("environment":"prod"},)"
    R"({"id":"aaaaaaaa-0000-4000-8000-000000000002","traceId":"aaaaaaaa-1111-4222-8333-444455556666",)"
    R"("type":"SPAN","name":"child","parentObservationId":"aaaaaaaa-0000-4000-8000-000000000001",)"
    R"("startTime":"2026-01-01T00:00:02Z","promptVersion":"v2","latency":1.25,)"
    R"("timeToFirstToken":0.5},)"
    R"({"id":"aaaaaaaa-0000-4000-8000-000000000003","traceId":"aaaaaaaa-1111-4222-8333-444455556666",)"
    R"("type":"EVENT","startTime":"2026-01-01T00:00:02Z","input":"s","output":42,)"
    R"("metadata":null,"modelParameters":[]})"
    R"(]})";

// Replaces the values of createdAt and updatedAt (the time the row was written) with "T".
std::string WithoutWriteTimes(std::string body) {
  for (const std::string key : {"\"createdAt\":\"", "\"updatedAt\":\""}) {
    for (size_t at = body.find(key); at != std::string::npos; at = body.find(key, at + 1)) {
      const size_t start = at + key.size();
      body.replace(start, body.find('"', start) - start, "T");
    }
  }
  return body;
}

// The detail's bytes, as the server rendered them when it parsed every stored document and
// serialized it again; passing the stored text through must not change them.
TEST_F(ReadTest, StoredDocumentsAndEveryFieldRenderAsBefore) {
  ASSERT_EQ(PostBatch(kRichBatch).status, 200);
  ASSERT_TRUE(WaitProjected(std::chrono::seconds(20)));
  const auto detail = Get("/api/public/traces/aaaaaaaa-1111-4222-8333-444455556666");
  ASSERT_EQ(detail.status, 200) << detail.body;
  const std::string expected =
      R"({"id":"aaaaaaaa-1111-4222-8333-444455556666","timestamp":"2026-01-01T00:00:00.123456Z",)"
      R"("name":"render","input":{"a":[1.5,100,-2,0.25,true,false,null,"x\ny\t\"q\"\\ \u0001 )"
      "\x7f"
      R"( é 😀 )"
      "\u2028"
      R"("],"z":1,"nested":{"a":{},"b":{"c":[]}}},"output":"plain text","sessionId":"s\\1",)"
      R"("release":"r1","version":"v1","userId":"u\"1","metadata":{"k1":{"deep":[1,)"
      R"([2,[3]]]},"k2":"v","pi":3.141592653589793,"big":12345678901234567890,"num":3,)"
      R"("third":0.1},"tags":["a","b","with space"],"public":true,"projectId":"default",)"
      R"("externalId":"ext-1","bookmarked":false,"environment":"prod","htmlPath":"/project/default/traces/aaaaaaaa-1111-4222-8333-444455556666",)"
      R"("latency":1.5,"totalCost":0.03,"createdAt":"T","updatedAt":"T","observations":[{"id":"aaaaaaaa-0000-4000-8000-000000000001",)"
      R"("traceId":"aaaaaaaa-1111-4222-8333-444455556666","type":"GENERATION","name":"llm",)"
      R"("startTime":"2026-01-01T00:00:00Z","endTime":"2026-01-01T00:00:01.500Z",)"
      R"("completionStartTime":"2026-01-01T00:00:00.250Z","model":"gpt-4o","modelParameters":{"stop":["\n"],)"
      R"("max_tokens":256,"temperature":0.7},"input":[{"role":"user","content":"hi"}],)"
      R"("version":null,"metadata":{"a":2,"b":1},"output":{"role":"assistant","content":"hello"},)"
      R"("usage":{"input":10,"output":20,"total":30,"unit":"TOKENS","inputCost":0.01,)"
      R"("outputCost":0.02,"totalCost":0.03},"level":"WARNING","statusMessage":"slow",)"
      R"("parentObservationId":null,"promptId":"pid","promptName":"p","promptVersion":3,)"
      R"("modelId":"mid","inputPrice":0.001,"outputPrice":0.002,"totalPrice":0.003,)"
      R"("calculatedInputCost":0.01,"calculatedOutputCost":0.02,"calculatedTotalCost":0.03,)"
      R"("latency":1.5,"timeToFirstToken":0.25,"promptTokens":10,"completionTokens":20,)"
      R"("totalTokens":30,"usageDetails":{"input":10,"output":20,"total":30},"costDetails":{"input":0.01,)"
      R"("output":0.02,"total":0.03},"environment":"prod"},{"id":"aaaaaaaa-0000-4000-8000-000000000002",)"
      R"("traceId":"aaaaaaaa-1111-4222-8333-444455556666","type":"SPAN","name":"child",)"
      R"("startTime":"2026-01-01T00:00:02Z","endTime":null,"completionStartTime":null,)"
      R"("model":null,"modelParameters":{},"input":null,"version":null,"metadata":null,)"
      R"("output":null,"usage":{"input":0,"output":0,"total":0,"unit":null,"inputCost":null,)"
      R"("outputCost":null,"totalCost":null},"level":"DEFAULT","statusMessage":null,)"
      R"("parentObservationId":"aaaaaaaa-0000-4000-8000-000000000001","promptId":null,)"
      R"("promptName":null,"promptVersion":null,"modelId":null,"inputPrice":null,)"
      R"("outputPrice":null,"totalPrice":null,"calculatedInputCost":null,"calculatedOutputCost":null,)"
      R"("calculatedTotalCost":null,"latency":1.25,"timeToFirstToken":0.5,"promptTokens":0,)"
      R"("completionTokens":0,"totalTokens":0,"usageDetails":{"input":0,"output":0,)"
      R"("total":0},"costDetails":{"input":0.0,"output":0.0,"total":0.0},"environment":"default"},)"
      R"({"id":"aaaaaaaa-0000-4000-8000-000000000003","traceId":"aaaaaaaa-1111-4222-8333-444455556666",)"
      R"("type":"EVENT","name":null,"startTime":"2026-01-01T00:00:02Z","endTime":null,)"
      R"("completionStartTime":null,"model":null,"modelParameters":[],"input":"s",)"
      R"("version":null,"metadata":null,"output":42,"usage":{"input":0,"output":0,)"
      R"("total":0,"unit":null,"inputCost":null,"outputCost":null,"totalCost":null},)"
      R"("level":"DEFAULT","statusMessage":null,"parentObservationId":null,"promptId":null,)"
      R"("promptName":null,"promptVersion":null,"modelId":null,"inputPrice":null,)"
      R"("outputPrice":null,"totalPrice":null,"calculatedInputCost":null,"calculatedOutputCost":null,)"
      R"("calculatedTotalCost":null,"latency":null,"timeToFirstToken":null,"promptTokens":0,)"
      R"("completionTokens":0,"totalTokens":0,"usageDetails":{"input":0,"output":0,)"
      R"("total":0},"costDetails":{"input":0.0,"output":0.0,"total":0.0},"environment":"default"}],)"
      R"("scores":[]})";
  EXPECT_EQ(WithoutWriteTimes(detail.body), expected);

  // The list item is the same trace with the observation ids; `fields` leaves members out
  // without moving the others.
  const auto list = Get("/api/public/traces");
  ASSERT_EQ(list.status, 200) << list.body;
  const std::string trace_members = expected.substr(0, expected.find(R"(,"observations":)"));
  EXPECT_EQ(WithoutWriteTimes(list.body),
            "{\"data\":[" + trace_members +
                R"(,"observations":["aaaaaaaa-0000-4000-8000-000000000001",)"
                R"("aaaaaaaa-0000-4000-8000-000000000002","aaaaaaaa-0000-4000-8000-000000000003"],)"
                R"("scores":[]}],"meta":{"page":1,"limit":50,"totalItems":1,"totalPages":1}})");
  const auto core = Get("/api/public/traces?fields=core");
  ASSERT_EQ(core.status, 200) << core.body;
  EXPECT_EQ(WithoutWriteTimes(core.body),
            R"({"data":[{"id":"aaaaaaaa-1111-4222-8333-444455556666",)"
            R"("timestamp":"2026-01-01T00:00:00.123456Z","name":"render","sessionId":"s\\1",)"
            R"("release":"r1","version":"v1","userId":"u\"1","tags":["a","b","with space"],)"
            R"("public":true,"projectId":"default","externalId":"ext-1","bookmarked":false,)"
            R"("environment":"prod",)"
            R"("htmlPath":"/project/default/traces/aaaaaaaa-1111-4222-8333-444455556666",)"
            R"("latency":-1.0,"totalCost":-1.0,"createdAt":"T","updatedAt":"T",)"
            R"("observations":[],"scores":[]}],)"
            R"("meta":{"page":1,"limit":50,"totalItems":1,"totalPages":1}})");
}

// Numbers keep the value sent. PostgreSQL stores JSON numbers as decimals and prints them in
// plain decimal form, so some come back spelled differently (1e20 as 100000000000000000000),
// and integers beyond 64 bits keep every digit.
TEST_F(ReadTest, NumbersInStoredDocumentsKeepTheirValue) {
  ASSERT_EQ(PostBatch(R"({"trace":{"id":"bbbbbbbb-1111-4222-8333-444455556666","metadata":)"
                      R"({"exp":1e20,"small":0.000001,"tiny":1.5e-300,"neg":-0.0,"half":0.5,)"
                      R"("huge":123456789012345678901234567890,"big":12345678901234567890}}})")
                .status,
            200);
  ASSERT_TRUE(WaitProjected(std::chrono::seconds(20)));
  const auto detail = Get("/api/public/traces/bbbbbbbb-1111-4222-8333-444455556666");
  ASSERT_EQ(detail.status, 200) << detail.body;
  const auto metadata = boost::json::parse(detail.body).at("metadata");
  EXPECT_EQ(metadata.at("exp").to_number<double>(), 1e20);
  EXPECT_EQ(metadata.at("small").to_number<double>(), 0.000001);
  EXPECT_EQ(metadata.at("tiny").to_number<double>(), 1.5e-300);
  EXPECT_EQ(metadata.at("neg").to_number<double>(), 0.0);
  EXPECT_EQ(metadata.at("half").to_number<double>(), 0.5);
  EXPECT_EQ(metadata.at("huge").to_number<double>(), 123456789012345678901234567890.0);
  EXPECT_EQ(metadata.at("big").as_uint64(), 12345678901234567890u);
}

// `containers` objects and arrays nested alternately around the number 7, e.g. for 3:
// {"k":[{"k":7}]}.
std::string Nested(int containers) {
  std::string open, close;
  for (int i = 0; i < containers; ++i) {
    open += i % 2 == 0 ? R"({"k":)" : "[";
    close += i % 2 == 0 ? "}" : "]";
  }
  std::reverse(close.begin(), close.end());
  return open + "7" + close;
}

// How many containers deep `v` is, following the first member or element.
int DepthOf(const boost::json::value& v) {
  if (v.is_object() && !v.get_object().empty()) return 1 + DepthOf(v.get_object().begin()->value());
  if (v.is_array() && !v.get_array().empty()) return 1 + DepthOf(v.get_array()[0]);
  return v.is_structured() ? 1 : 0;
}

boost::json::value ParseDeep(const std::string& text) {
  boost::json::parse_options options;
  options.max_depth = 256;  // deeper than anything the server accepts
  return boost::json::parse(text, {}, options);
}

// Stored JSON documents as deep as ingest accepts are readable on every read route. The request
// limit is 64 levels for the whole body, so a trace's fields, which sit two objects deep in the
// batch, hold at most 62 levels and an observation's (inside the observations array) 61.
TEST_F(ReadTest, TheDeepestDocumentsIngestAcceptsAreReadableThroughListAndDetail) {
  constexpr char kTraceId[] = "dddddddd-1111-4222-8333-444455556666";
  constexpr char kObsId[] = "dddddddd-0000-4000-8000-000000000001";
  const std::string trace_head =
      std::string(R"({"trace":{"id":")") + kTraceId + R"(","name":"deep",)";

  // One level more than that is refused as malformed: 62 is the deepest a trace field is stored.
  const auto refused = PostBatch(trace_head + R"("metadata":)" + Nested(63) + "}}");
  EXPECT_EQ(refused.status, 400) << refused.body;

  const std::string t = Nested(62);
  const std::string o = Nested(61);
  const auto ack = PostBatch(
      trace_head + R"("input":)" + t + R"(,"output":)" + t + R"(,"metadata":)" + t +
      R"(},"observations":[{"id":")" + kObsId + R"(","traceId":")" + kTraceId +
      R"(","type":"SPAN","startTime":"2026-01-01T00:00:00Z","input":)" + o + R"(,"output":)" + o +
      R"(,"metadata":)" + o + R"(,"modelParameters":)" + o + R"(,"usage":)" + o + "}]}");
  ASSERT_EQ(ack.status, 200) << ack.body;
  ASSERT_TRUE(WaitProjected(std::chrono::seconds(20)));

  for (const char* target : {"/api/public/traces", "/api/public/traces?name=deep&fields=io"}) {
    const auto list = Get(target);
    ASSERT_EQ(list.status, 200) << target << ": " << list.body;
    const auto body = ParseDeep(list.body);
    ASSERT_EQ(body.at("data").as_array().size(), 1u) << target;
    const auto& trace = body.at("data").at(0);
    for (const char* field : {"input", "output", "metadata"}) {
      EXPECT_EQ(DepthOf(trace.at(field)), 62) << target << " " << field;
      EXPECT_EQ(trace.at(field), ParseDeep(t)) << target << " " << field;
    }
  }

  const auto detail = Get(std::string("/api/public/traces/") + kTraceId);
  ASSERT_EQ(detail.status, 200) << detail.body;
  const auto trace = ParseDeep(detail.body);
  for (const char* field : {"input", "output", "metadata"}) {
    EXPECT_EQ(trace.at(field), ParseDeep(t)) << field;
  }
  ASSERT_EQ(trace.at("observations").as_array().size(), 1u);
  const auto& obs = trace.at("observations").at(0);
  for (const char* field : {"input", "output", "metadata", "modelParameters"}) {
    EXPECT_EQ(DepthOf(obs.at(field)), 61) << field;
    EXPECT_EQ(obs.at(field), ParseDeep(o)) << field;
  }
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(memory_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#else
constexpr bool kSanitized = false;
#endif

// A trace with 100 000 observations (a 15 MB batch; its detail is 89 MB of JSON) read five
// times leaves the server's resident memory near where it was before the reads. Operators size
// the machine for the idle server plus the responses in flight, not for every large response
// ever served. tools/measure-read-memory.sh prints the same figures with the peak.
TEST_F(ReadTest, ReadingAHugeTraceLeavesTheServerMemoryWhereItWas) {
  // Sanitizers replace the allocator this is about (and hold freed memory in quarantine).
  if (kSanitized) GTEST_SKIP() << "measures glibc malloc, which sanitizers replace";
  constexpr int kObservations = 100'000;
  constexpr char kTraceId[] = "eeeeeeee-1111-4222-8333-444455556666";
  std::string batch = std::string(R"({"trace":{"id":")") + kTraceId + R"(","name":"huge"},)" +
                      R"("observations":[)";
  for (int i = 0; i < kObservations; ++i) {
    char obs[200];
    std::snprintf(obs, sizeof obs,
                  R"(%s{"id":"00000000-0000-4000-8000-%012x","traceId":"%s","type":"SPAN",)"
                  R"("startTime":"2026-01-01T%02d:%02d:%02d.%03dZ"})",
                  i == 0 ? "" : ",", i, kTraceId, i / 3'600'000, i / 60'000 % 60, i / 1000 % 60,
                  i % 1000);
    batch += obs;
  }
  batch += "]}";
  const auto ack = PostBatch(batch);
  ASSERT_EQ(ack.status, 200) << ack.body;
  ASSERT_TRUE(WaitProjected(std::chrono::seconds(40)));

  const int64_t idle = RssBytes();
  ASSERT_GT(idle, 0);
  // The highest resident size seen while the reads run, for the record (not asserted: it is
  // the response in flight).
  std::atomic<bool> reading{true};
  std::atomic<int64_t> peak{idle};
  std::thread sampler([&] {
    while (reading) {
      peak = std::max<int64_t>(peak, RssBytes());
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  for (int i = 0; i < 5; ++i) {
    const auto r = Get(std::string("/api/public/traces/") + kTraceId);
    ASSERT_EQ(r.status, 200) << r.body.substr(0, 200);
    size_t observations = 0;
    for (size_t at = r.body.find(R"("type":"SPAN")"); at != std::string::npos;
         at = r.body.find(R"("type":"SPAN")", at + 1)) {
      ++observations;
    }
    EXPECT_EQ(observations, static_cast<size_t>(kObservations));
  }
  reading = false;
  sampler.join();
  const int64_t after = RssBytes();
  constexpr int64_t kMiB = 1 << 20;
  std::cout << "server VmRSS: idle " << idle / kMiB << " MiB, peak " << peak / kMiB
            << " MiB, after 5 reads " << after / kMiB << " MiB\n";
  // Generous on purpose: glibc may keep some freed memory cached (in its arenas, one per thread
  // that allocated), and how much differs between machines and builds. What must not happen is
  // memory that each read adds and keeps: even one retained 89 MB response per read exceeds the
  // bound by the third read (the server used to keep ~700 MB per read, 3.4 GB after five).
  EXPECT_LE(after, idle + 200 * kMiB)
      << "idle " << idle / kMiB << " MiB, after " << after / kMiB << " MiB";
}

}  // namespace
}  // namespace xtrace
