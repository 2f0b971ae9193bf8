// Acknowledged means projected, tried generatively against the real server and PostgreSQL.
//
// The generator writes requests at every ingest limit, one step beyond it, and random valid ones
// in between, on every write route. Each request is either refused (422/400 naming the field,
// and then nothing of it may appear) or acknowledged; everything acknowledged must then be
// readable through the read API, with nothing quarantined and no stream halted. The seed is
// printed; XTRACE_GEN_SEED replays a run.

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <iterator>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "support/http_client.hpp"
#include "support/server_fixture.hpp"
#include "support/wait.hpp"

namespace xtrace {
namespace {

namespace json = boost::json;
using testing::Http;
using testing::HttpResult;

constexpr char kToken[] = "gen-token";

// The limits of docs/api.md, written out again here on purpose: the test checks the documented
// contract, not whatever the code's constants say.
constexpr size_t kName = 512, kUserId = 256, kSessionId = 256, kEnvironment = 64, kRelease = 128,
                 kVersion = 128, kModel = 256, kTag = 128, kTags = 32, kTagsTotal = 768;
constexpr size_t kMetricName = 256, kLabels = 32, kLabelKey = 128, kLabelValue = 256,
                 kLabelsTotal = 1536;
constexpr int64_t kMaxTokens = 1'000'000'000'000;
constexpr double kMaxAmount = 1e12;
constexpr double kMaxMetric = 1e100;
constexpr int kMaxBodyDepth = 64;

json::value Parse(const std::string& text) {
  json::parse_options options;
  options.max_depth = 256;
  return json::parse(text, {}, options);
}

class Generator {
 public:
  explicit Generator(uint32_t seed) : rng_(seed) {}

  size_t Below(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng_); }
  bool Coin() { return Below(2) == 0; }

  // Exactly `bytes` bytes of UTF-8 text mixing 1- to 4-byte characters and characters JSON
  // escapes; no control characters unless `control` (then one C0 character somewhere).
  std::string Text(size_t bytes, bool control = false) {
    if (control && bytes > 0) {
      const std::string c(1, static_cast<char>(1 + Below(31)));
      return Text(bytes / 2) + c + Text(bytes - bytes / 2 - 1);
    }
    static const std::vector<std::string> kPieces = {"a", "Z", "7", " ", "\"", "\\", "/", "<",
                                                     "é", "€", "😀", "'", ";",  "ß",  "字"};
    std::string out;
    while (out.size() < bytes) {
      const std::string& p = kPieces[Below(kPieces.size())];
      if (out.size() + p.size() <= bytes)
        out += p;
      else
        out.push_back('x');
    }
    return out;
  }
  // A length around `limit`: one of the edges or anything in between.
  size_t LengthUpTo(size_t limit) {
    switch (Below(4)) {
      case 0: return limit;
      case 1: return 1;
      default: return 1 + Below(limit);
    }
  }
  std::string Uuid() {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string s;
    for (int i = 0; i < 32; ++i) s.push_back(kHex[Below(16)]);
    s[12] = '4';
    return s.substr(0, 8) + "-" + s.substr(8, 4) + "-" + s.substr(12, 4) + "-" + s.substr(16, 4) +
           "-" + s.substr(20);
  }
  std::string Time() {
    static const std::vector<std::string> kEdges = {
        "0001-01-01T00:00:00Z",      "9999-12-31T23:59:59.999999Z",
        "0001-01-01T01:00:00+01:00", "9999-12-31T22:59:59-01:00",
        "1970-01-01T00:00:00Z",      "2026-03-01T12:34:56.789+05:30"};
    if (Coin()) return kEdges[Below(kEdges.size())];
    char buf[40];
    std::snprintf(buf, sizeof buf, "%04zu-%02zu-%02zuT%02zu:%02zu:%02zuZ", 1 + Below(9999),
                  1 + Below(12), 1 + Below(28), Below(24), Below(60), Below(60));
    return buf;
  }
  int64_t Tokens() {
    switch (Below(4)) {
      case 0: return kMaxTokens;
      case 1: return 0;
      default: return static_cast<int64_t>(Below(100000));
    }
  }
  double Amount() {
    switch (Below(4)) {
      case 0: return kMaxAmount;
      case 1: return 0;
      default: return static_cast<double>(Below(1000000)) / 1000;
    }
  }
  json::value Nested(int depth) {  // `depth` levels of arrays and objects
    json::value v = json::string(Text(8));
    for (int i = 0; i < depth; ++i) {
      if (i % 2 == 0)
        v = json::array{v};
      else
        v = json::object{{"k", v}};
    }
    return v;
  }

 private:
  std::mt19937 rng_;
};

// One acknowledged trace and what the read API must show of it.
struct ExpectedTrace {
  std::string id;
  json::object trace;  // the keys sent
  std::vector<json::object> observations;
  int metadata_depth = 0;
};

// One acknowledged metric point.
struct ExpectedPoint {
  std::string name;
  json::object labels;
  double value;
  std::string timestamp;
};

class AckedProjectedTest : public testing::ServerFixture {
 protected:
  AckedProjectedTest() : ServerFixture(kToken) {}
  std::map<std::string, std::string> ExtraEnv() const override {
    return {{"RATE_LIMIT_QPS", "100000"}, {"RATE_LIMIT_BURST", "100000"}};
  }
  void SetUp() override {
    const char* env_seed = std::getenv("XTRACE_GEN_SEED");
    seed_ = env_seed != nullptr ? static_cast<uint32_t>(std::strtoul(env_seed, nullptr, 10))
                                : std::random_device{}();
    std::cerr << "generative seed: " << seed_ << " (XTRACE_GEN_SEED replays it)\n";
    ServerFixture::SetUp();
  }

  HttpResult Post(const std::string& route, const json::value& body) {
    return Http(server_->port(), "POST", route, json::serialize(body), auth_json_);
  }

  // Sends a request that must be refused with `status`, naming `field`.
  void ExpectRefused(const std::string& route, const json::value& body, int status,
                     const std::string& field, const std::string& what) {
    const auto r = Post(route, body);
    EXPECT_EQ(r.status, status) << what << ": " << r.body.substr(0, 300);
    if (r.status == 422) {
      EXPECT_EQ(Parse(r.body).as_object().at("field"), field.c_str()) << what << ": " << r.body;
    }
  }

  // A valid trace with random fields; `at_limit` puts every text field at its limit at once,
  // which gives the widest rollup and index keys.
  ExpectedTrace RandomTrace(Generator& g, bool at_limit) {
    ExpectedTrace t;
    t.id = g.Uuid();
    json::object& o = t.trace;
    o["id"] = t.id;
    auto len = [&](size_t limit) { return at_limit ? limit : g.LengthUpTo(limit); };
    o["name"] = g.Text(len(kName));
    o["userId"] = g.Text(len(kUserId));
    o["sessionId"] = g.Text(len(kSessionId));
    o["environment"] = g.Text(len(kEnvironment));
    o["release"] = g.Text(len(kRelease));
    o["version"] = g.Text(len(kVersion));
    o["timestamp"] = g.Time();
    json::array tags;
    const size_t count = at_limit ? kTags : g.Below(kTags + 1);
    size_t left = kTagsTotal;
    for (size_t i = 0; i < count && left > 0; ++i) {
      const size_t n = at_limit ? kTagsTotal / kTags : std::min(left, 1 + g.Below(kTag));
      // Distinct tags: the projection keeps a set.
      std::string tag = std::to_string(i) + "-" + g.Text(n > 4 ? n - 4 : 0);
      tag.resize(std::min(tag.size(), n));
      while (!tag.empty() && (static_cast<unsigned char>(tag.back()) & 0xC0) == 0x80)
        tag.pop_back();
      while (!tag.empty() && static_cast<unsigned char>(tag.back()) >= 0xC0) tag.pop_back();
      left -= tag.size();
      tags.emplace_back(tag);
    }
    o["tags"] = tags;
    t.metadata_depth = at_limit ? kMaxBodyDepth - 2 : static_cast<int>(g.Below(kMaxBodyDepth - 1));
    o["metadata"] = g.Nested(t.metadata_depth);
    o["input"] = json::object{{"text", g.Text(g.Below(2000))}};
    o["latency"] = g.Amount();
    o["totalCost"] = g.Amount();
    const size_t observations = at_limit ? 3 : g.Below(4);
    for (size_t i = 0; i < observations; ++i) {
      json::object ob;
      ob["id"] = g.Uuid();
      ob["traceId"] = t.id;
      ob["type"] = "GENERATION";
      ob["name"] = g.Text(len(kName));
      ob["model"] = g.Text(len(kModel));
      ob["environment"] = g.Text(len(kEnvironment));
      ob["startTime"] = g.Time();
      ob["promptTokens"] = at_limit ? kMaxTokens : g.Tokens();
      ob["completionTokens"] = at_limit ? kMaxTokens : g.Tokens();
      ob["totalTokens"] = at_limit ? kMaxTokens : g.Tokens();
      ob["calculatedTotalCost"] = at_limit ? kMaxAmount : g.Amount();
      ob["inputPrice"] = g.Amount();
      ob["timeToFirstToken"] = g.Amount();
      ob["usage"] = json::object{{"input", g.Tokens()}, {"output", g.Tokens()}};
      ob["metadata"] = g.Nested(at_limit ? kMaxBodyDepth - 4 : 3);
      t.observations.push_back(std::move(ob));
    }
    return t;
  }
  json::object Body(const ExpectedTrace& t) {
    json::array obs;
    for (const auto& o : t.observations) obs.push_back(o);
    return {{"trace", t.trace}, {"observations", obs}};
  }

  ExpectedPoint RandomPoint(Generator& g, bool at_limit) {
    ExpectedPoint p;
    // A prefix keeps names distinct: each point is its own series.
    const std::string prefix = std::to_string(points_.size()) + "-";
    const size_t length = at_limit ? kMetricName : g.LengthUpTo(kMetricName);
    p.name = prefix + g.Text(length > prefix.size() ? length - prefix.size() : 0);
    // At the limit: the widest key and value, then labels that use up the total exactly.
    size_t left = kLabelsTotal;
    size_t count = g.Below(kLabels + 1);
    if (at_limit) {
      p.labels[g.Text(kLabelKey)] = g.Text(kLabelValue);
      left -= kLabelKey + kLabelValue;
      count = kLabels;
    }
    for (size_t i = p.labels.size(); i < count; ++i) {
      const std::string key = "k" + std::to_string(i);
      if (left < key.size()) break;
      size_t n = g.Below(kLabelValue);
      if (at_limit) n = i + 1 == count ? left - key.size() : left / (count - i) - key.size();
      n = std::min({n, kLabelValue, left - key.size()});
      p.labels[key] = g.Text(n);
      left -= key.size() + n;
    }
    switch (g.Below(4)) {
      case 0: p.value = kMaxMetric; break;
      case 1: p.value = -kMaxMetric; break;
      default: p.value = static_cast<double>(g.Below(1000)) / 7;
    }
    p.timestamp = g.Time();
    return p;
  }
  static json::object PointJson(const ExpectedPoint& p) {
    return {{"name", p.name}, {"labels", p.labels}, {"value", p.value}, {"timestamp", p.timestamp}};
  }

  // Waits until both streams projected everything the WAL holds.
  void WaitAllProjected() {
    json::object status;
    const bool done = testing::WaitUntil(
        [&] {
          const auto r = Get("/api/internal/status");
          if (r.status != 200) return false;
          status = Parse(r.body).as_object();
          return status.at("projector").at("projectedSequence") ==
                 status.at("wal").at("lastSequence");
        },
        std::chrono::seconds(60));
    ASSERT_TRUE(done) << json::serialize(status);
    EXPECT_EQ(status.at("projector").at("quarantinedEvents").to_number<int64_t>(), 0)
        << json::serialize(status);
    EXPECT_TRUE(status.at("projector").at("halted").as_object().empty()) << json::serialize(status);
    const auto ready = Parse(Get("/readyz").body).as_object();
    EXPECT_EQ(ready.at("projector").at("quarantinedEvents").to_number<int64_t>(), 0);
  }

  void CheckTraceReadable(const ExpectedTrace& t) {
    const auto r = Get("/api/public/traces/" + t.id);
    ASSERT_EQ(r.status, 200) << "acknowledged trace " << t.id
                             << " is not readable: " << r.body.substr(0, 300);
    const auto got = Parse(r.body).as_object();
    for (const char* key : {"name", "userId", "sessionId", "release", "version", "environment"}) {
      EXPECT_EQ(got.at(key), t.trace.at(key)) << t.id << " " << key;
    }
    EXPECT_EQ(got.at("metadata"), t.trace.at("metadata")) << t.id;
    std::set<std::string> sent_tags, read_tags;
    for (const auto& tag : t.trace.at("tags").as_array()) sent_tags.insert(tag.as_string().c_str());
    for (const auto& tag : got.at("tags").as_array()) read_tags.insert(tag.as_string().c_str());
    std::vector<std::string> missing, extra;
    std::set_difference(sent_tags.begin(), sent_tags.end(), read_tags.begin(), read_tags.end(),
                        std::back_inserter(missing));
    std::set_difference(read_tags.begin(), read_tags.end(), sent_tags.begin(), sent_tags.end(),
                        std::back_inserter(extra));
    EXPECT_TRUE(missing.empty() && extra.empty())
        << t.id << ": tags sent but not read: " << json::serialize(json::value_from(missing))
        << "; read but not sent: " << json::serialize(json::value_from(extra));
    const auto& observations = got.at("observations").as_array();
    ASSERT_EQ(observations.size(), t.observations.size()) << t.id;
    std::map<std::string, const json::object*> by_id;
    for (const auto& o : observations) by_id[o.at("id").as_string().c_str()] = &o.as_object();
    for (const auto& sent : t.observations) {
      const auto it = by_id.find(sent.at("id").as_string().c_str());
      ASSERT_NE(it, by_id.end()) << "observation " << sent.at("id") << " of " << t.id;
      const auto& o = *it->second;
      EXPECT_EQ(o.at("name"), sent.at("name"));
      EXPECT_EQ(o.at("model"), sent.at("model"));
      EXPECT_EQ(o.at("promptTokens").to_number<int64_t>(),
                sent.at("promptTokens").to_number<int64_t>());
      EXPECT_EQ(o.at("metadata"), sent.at("metadata"));
    }
  }

  void CheckPointReadable(const ExpectedPoint& p) {
    // The query window is the point's own minute, whatever its year.
    const std::string labels = json::serialize(p.labels);
    std::string target = "/api/public/metrics/query?step=1m&agg=sum&name=" + Escape(p.name) +
                         "&labels=" + Escape(labels) + "&from=" + Escape(p.timestamp) +
                         "&to=" + Escape(p.timestamp);
    const auto r = Get(target);
    ASSERT_EQ(r.status, 200) << p.name << ": " << r.body.substr(0, 300);
    const auto got = Parse(r.body).as_object();
    ASSERT_EQ(got.at("data").as_array().size(), 1u)
        << "acknowledged point of " << p.name << " is not readable: " << r.body;
  }

  static std::string Escape(const std::string& s) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : s) {
      if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
        out.push_back(static_cast<char>(c));
      } else {
        out += '%';
        out.push_back(kHex[c >> 4]);
        out.push_back(kHex[c & 15]);
      }
    }
    return out;
  }

  uint32_t seed_ = 0;
  std::vector<ExpectedTrace> traces_;
  std::vector<ExpectedPoint> points_;
};

TEST_F(AckedProjectedTest, EveryAcknowledgedEventIsProjectedAndReadable) {
  Generator g(seed_);

  // Traces: all fields at their limits at once, then random valid ones.
  for (int i = 0; i < 300; ++i) {
    ExpectedTrace t = RandomTrace(g, i < 8);
    const auto r = Post("/v1/l/batch", Body(t));
    ASSERT_EQ(r.status, 200) << "a valid trace was refused: " << r.body.substr(0, 300);
    traces_.push_back(std::move(t));
  }

  // One step beyond each limit: refused, naming the field.
  struct Beyond {
    std::string key;
    size_t limit;
  };
  for (const Beyond& b : {Beyond{"name", kName}, Beyond{"userId", kUserId},
                          Beyond{"sessionId", kSessionId}, Beyond{"environment", kEnvironment},
                          Beyond{"release", kRelease}, Beyond{"version", kVersion}}) {
    ExpectedTrace t = RandomTrace(g, false);
    t.trace[b.key] = g.Text(b.limit + 1);
    ExpectRefused("/v1/l/batch", Body(t), 422, "trace." + b.key, b.key + " over its limit");
    t.trace[b.key] = g.Text(8, /*control=*/true);
    ExpectRefused("/v1/l/batch", Body(t), 422, "trace." + b.key, b.key + " with a control char");
    t.trace[b.key] = std::string("cpu\0x", 5);
    ExpectRefused("/v1/l/batch", Body(t), 422, "trace." + b.key, b.key + " with NUL");
  }
  {
    ExpectedTrace t = RandomTrace(g, false);
    json::array tags;
    for (size_t i = 0; i <= kTags; ++i) tags.emplace_back("t" + std::to_string(i));
    t.trace["tags"] = tags;
    ExpectRefused("/v1/l/batch", Body(t), 422, "trace.tags", "too many tags");
    t.trace["tags"] = json::array{g.Text(kTag + 1)};
    ExpectRefused("/v1/l/batch", Body(t), 422, "trace.tags[0]", "a tag over its limit");
    json::array wide;
    for (size_t i = 0; i < 7; ++i) wide.emplace_back(std::to_string(i) + g.Text(kTag - 1));
    t.trace["tags"] = wide;  // 7 x 128 > 768
    ExpectRefused("/v1/l/batch", Body(t), 422, "trace.tags", "tags over their total");
  }
  for (const char* key : {"latency", "totalCost"}) {
    ExpectedTrace t = RandomTrace(g, false);
    t.trace[key] = -1;
    ExpectRefused("/v1/l/batch", Body(t), 422, std::string("trace.") + key, "negative");
    t.trace[key] = 1.7e308;
    ExpectRefused("/v1/l/batch", Body(t), 422, std::string("trace.") + key, "near double max");
  }
  for (const char* ts :
       {"0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "0000-12-31T23:59:59Z"}) {
    ExpectedTrace t = RandomTrace(g, false);
    t.trace["timestamp"] = ts;
    ExpectRefused("/v1/l/batch", Body(t), 422, "trace.timestamp", ts);
  }
  {
    ExpectedTrace t = RandomTrace(g, false);
    t.trace["metadata"] = g.Nested(kMaxBodyDepth - 1);  // the body nests one level too deep
    ExpectRefused("/v1/l/batch", Body(t), 400, "", "metadata one level too deep");
  }
  {
    ExpectedTrace t = RandomTrace(g, false);
    t.observations.assign(1, RandomTrace(g, true).observations.front());
    t.observations[0]["traceId"] = t.id;
    const std::string path = "observations[0].";
    auto refuse = [&](const std::string& key, auto v, const std::string& field) {
      json::object saved = t.observations[0];
      t.observations[0][key] = json::value_from(v);
      ExpectRefused("/v1/l/batch", Body(t), 422, field, key);
      t.observations[0] = saved;
    };
    refuse("model", g.Text(kModel + 1), path + "model");
    refuse("model", g.Text(6, true), path + "model");
    refuse("name", g.Text(kName + 1), path + "name");
    refuse("environment", g.Text(kEnvironment + 1), path + "environment");
    for (const char* key : {"promptTokens", "completionTokens", "totalTokens"}) {
      refuse(key, kMaxTokens + 1, path + key);
      refuse(key, -1, path + key);
      refuse(key, INT64_MAX, path + key);
    }
    for (const char* key : {"calculatedTotalCost", "inputPrice", "latency", "timeToFirstToken"}) {
      refuse(key, -0.5, path + key);
      refuse(key, 1.7e308, path + key);
    }
    refuse("usage", json::object{{"input", kMaxTokens + 1}}, path + "usage.input");
    refuse("usage", json::object{{"totalTokens", -3}}, path + "usage.totalTokens");
    refuse("startTime", "0001-01-01T00:00:00+00:01", path + "startTime");
  }

  // Metric points, at their limits and random, in requests of several points.
  for (int request = 0; request < 60; ++request) {
    json::array metrics;
    std::vector<ExpectedPoint> batch;
    for (int i = 0; i < 8; ++i) {
      batch.push_back(RandomPoint(g, request < 2));
      points_.push_back(batch.back());
      metrics.push_back(PointJson(batch.back()));
    }
    const auto r = Post("/v1/metrics/batch", json::object{{"metrics", metrics}});
    ASSERT_EQ(r.status, 200) << "valid points were refused: " << r.body.substr(0, 300);
  }
  {
    ExpectedPoint p = RandomPoint(g, false);
    auto refuse = [&](const ExpectedPoint& bad, const std::string& field, const std::string& what) {
      ExpectRefused("/v1/metrics/batch", json::object{{"metrics", json::array{PointJson(bad)}}},
                    422, field, what);
    };
    ExpectedPoint bad = p;
    bad.name = g.Text(kMetricName + 1);
    refuse(bad, "metrics[0].name", "name over its limit");
    bad.name = std::string("cpu\0x", 5);
    refuse(bad, "metrics[0].name", "NUL in a metric name");
    bad = p;
    bad.labels = {};
    for (size_t i = 0; i <= kLabels; ++i) bad.labels["k" + std::to_string(i)] = "v";
    refuse(bad, "metrics[0].labels", "too many labels");
    bad.labels = {{g.Text(kLabelKey + 1), "v"}};
    refuse(bad, "metrics[0].labels.<key>", "label key over its limit");
    bad.labels = {{std::string("a\0b", 3), "v"}};
    refuse(bad, "metrics[0].labels.<key>", "NUL in a label key");
    bad.labels = {{"k", g.Text(kLabelValue + 1)}};
    refuse(bad, "metrics[0].labels.k", "label value over its limit");
    bad.labels = {{"k", std::string("a\0b", 3)}};
    refuse(bad, "metrics[0].labels.k", "NUL in a label value");
    bad.labels = {};
    for (size_t i = 0; i < 8; ++i) bad.labels["k" + std::to_string(i)] = g.Text(kLabelValue - 10);
    refuse(bad, "metrics[0].labels", "labels over their total");
    bad = p;
    bad.value = 1.7e308;
    refuse(bad, "metrics[0].value", "value near double max");
    bad = p;
    bad.timestamp = "9999-12-31T23:59:59-01:00";
    refuse(bad, "metrics[0].timestamp", "timestamp past year 9999 in UTC");
  }

  WaitAllProjected();
  for (const auto& t : traces_) CheckTraceReadable(t);
  for (const auto& p : points_) CheckPointReadable(p);

  // Every page of the list renders (metadata at the depth limit included) and holds every trace.
  std::set<std::string> listed;
  for (int page = 1;; ++page) {
    const auto r = Get("/api/public/traces?limit=100&page=" + std::to_string(page));
    ASSERT_EQ(r.status, 200) << "trace list page " << page << ": " << r.body.substr(0, 300);
    const auto data = Parse(r.body).at("data").as_array();
    if (data.empty()) break;
    for (const auto& t : data) listed.insert(t.at("id").as_string().c_str());
  }
  for (const auto& t : traces_) EXPECT_TRUE(listed.count(t.id)) << t.id << " missing from list";
  EXPECT_EQ(listed.size(), traces_.size()) << "a refused request left a trace behind";
}

}  // namespace
}  // namespace xtrace
