// Property test of the fold: random interleavings of creates, partial updates, resends and
// out-of-order events go through the real projector into PostgreSQL, and every row must equal a
// simple in-memory fold of the same events under the merge rules of API.md.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <pqxx/pqxx>

#include <chrono>
#include <future>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "ingest/batch.hpp"
#include "projector/projector.hpp"
#include "schema/codec.hpp"
#include "support/pg.hpp"
#include "support/server_process.hpp"
#include "support/wait.hpp"

namespace xtrace {
namespace {

namespace json = boost::json;
using schema::ObservationEvent;
using schema::TraceEvent;

// ---- the reference fold -------------------------------------------------------------------------

json::value DeepMerge(const json::value& stored, const json::value& incoming) {
  if (!stored.is_object() || !incoming.is_object()) return incoming;
  json::object out = stored.as_object();
  for (const auto& m : incoming.as_object()) {
    auto* existing = out.if_contains(m.key());
    out[m.key()] = existing != nullptr ? DeepMerge(*existing, m.value()) : m.value();
  }
  return out;
}

struct RefTrace {
  bool placeholder = false;
  int64_t timestamp_us = 0;
  std::string environment;
  std::optional<std::string> name, user_id;
  std::set<std::string> tags;
  std::optional<json::value> metadata, input;
};

struct RefObservation {
  std::string trace_id;
  std::string type = "GENERATION";
  std::optional<int64_t> start_us, end_us;
  std::optional<std::string> model;
  std::optional<json::value> input, metadata;
  std::optional<int64_t> prompt_tokens;
};

template <class T>
void Latest(std::optional<T>& stored, const schema::Field<T>& incoming) {
  if (incoming) stored = *incoming;
}

struct Reference {
  std::map<std::string, RefTrace> traces;
  std::map<std::string, RefObservation> observations;

  void Apply(const schema::WalRecord& rec) {
    for (const auto& event : std::get<schema::EntityBatch>(rec.events).events) {
      if (const auto* t = std::get_if<TraceEvent>(&event)) ApplyTrace(rec, *t);
      if (const auto* o = std::get_if<ObservationEvent>(&event)) ApplyObservation(rec, *o);
    }
  }

  void ApplyTrace(const schema::WalRecord& rec, const TraceEvent& e) {
    const int64_t received = rec.received_at.time_since_epoch().count();
    {
      const std::string& id = e.id;
      const int64_t ts = e.timestamp ? e.timestamp->time_since_epoch().count() : received;
      const std::string env = e.environment.value_or(rec.environment);
      auto it = traces.find(id);
      if (it == traces.end()) {
        it = traces.emplace(id, RefTrace{false, ts, env, {}, {}, {}, {}, {}}).first;
      } else if (it->second.placeholder) {
        it->second.placeholder = false;
        it->second.timestamp_us = ts;
        it->second.environment = env;
      }
      RefTrace& t = it->second;
      Latest(t.name, e.name);
      Latest(t.user_id, e.user_id);
      if (e.tags) t.tags.insert(e.tags->begin(), e.tags->end());
      if (e.metadata_json) {
        const auto incoming = json::parse(*e.metadata_json);
        t.metadata = t.metadata ? DeepMerge(*t.metadata, incoming) : incoming;
      }
      if (e.input_json) t.input = json::parse(*e.input_json);
    }
  }

  void ApplyObservation(const schema::WalRecord& rec, const ObservationEvent& o) {
    const int64_t received = rec.received_at.time_since_epoch().count();
    {
      const std::string& trace_id = o.trace_id;
      if (!traces.contains(trace_id)) {
        const int64_t ts = o.start_time ? o.start_time->time_since_epoch().count() : received;
        traces.emplace(
            trace_id,
            RefTrace{true, ts, o.environment.value_or(rec.environment), {}, {}, {}, {}, {}});
      }
      auto [it, created] = observations.try_emplace(o.id);
      RefObservation& r = it->second;
      if (created) r.trace_id = trace_id;
      if (o.type) r.type = *o.type;
      if (!r.start_us && o.start_time) r.start_us = o.start_time->time_since_epoch().count();
      if (o.end_time) r.end_us = o.end_time->time_since_epoch().count();
      Latest(r.model, o.model);
      Latest(r.prompt_tokens, o.prompt_tokens);
      if (o.input_json) r.input = json::parse(*o.input_json);
      if (o.metadata_json) {
        const auto incoming = json::parse(*o.metadata_json);
        r.metadata = r.metadata ? DeepMerge(*r.metadata, incoming) : incoming;
      }
    }
  }
};

// ---- random events ------------------------------------------------------------------------------

class Generator {
 public:
  explicit Generator(uint32_t seed) : rng_(seed) {}

  std::string Body() {
    // A resend of an earlier body, exactly as a client retry would.
    if (!sent_.empty() && Chance(0.15)) return sent_[Pick(sent_.size())];
    std::string body;
    if (Chance(0.5)) {
      body = R"({"trace":)" + Trace() + "}";
    } else {
      std::string list;
      const size_t n = 1 + Pick(3);
      for (size_t i = 0; i < n; ++i) list += (i ? "," : "") + Observation();
      body = R"({"observations":[)" + list + "]}";
      if (Chance(0.3)) body = R"({"trace":)" + Trace() + R"(,"observations":[)" + list + "]}";
    }
    sent_.push_back(body);
    return body;
  }

 private:
  bool Chance(double p) { return std::uniform_real_distribution<double>(0, 1)(rng_) < p; }
  size_t Pick(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng_); }
  std::string Id(const char* kind, size_t n) {
    char buf[40];
    std::snprintf(buf, sizeof buf, "%s-0000-4000-8000-%012zx", kind, Pick(n));
    return buf;
  }
  std::string Time() {
    char buf[40];
    std::snprintf(buf, sizeof buf, "\"2026-01-0%zuT00:00:%02zuZ\"", 1 + Pick(3), Pick(60));
    return buf;
  }
  std::string Maybe(const char* key, const std::string& value, double p = 0.5) {
    if (!Chance(p)) return "";
    return std::string(",\"") + key + "\":" + (Chance(0.2) ? "null" : value);
  }
  std::string Metadata() {
    static const char* kKeys[] = {"a", "b", "c"};
    std::string out = "{";
    const size_t n = Pick(3);
    for (size_t i = 0; i < n; ++i) {
      out += std::string(i ? "," : "") + "\"" + kKeys[Pick(3)] + "\":";
      out += Chance(0.4)
                 ? "{\"x\":" + std::to_string(Pick(5)) + ",\"y\":" + std::to_string(Pick(5)) + "}"
                 : std::to_string(Pick(10));
    }
    return out + "}";
  }
  std::string Trace() {
    static const char* kNames[] = {"\"chat\"", "\"search\"", "\"\""};
    static const char* kTags[] = {"[\"p\"]", "[\"q\",\"p\"]", "[]", "[\"r\"]"};
    return std::string("{\"id\":\"") + Id("00000001", 4) + "\"" + Maybe("timestamp", Time()) +
           Maybe("name", kNames[Pick(3)]) +
           Maybe("userId", "\"u" + std::to_string(Pick(3)) + "\"") + Maybe("tags", kTags[Pick(4)]) +
           Maybe("metadata", Metadata()) + Maybe("input", "[" + std::to_string(Pick(100)) + "]") +
           Maybe("environment", Chance(0.5) ? "\"prod\"" : "\"dev\"", 0.3) + "}";
  }
  std::string Observation() {
    static const char* kTypes[] = {"\"SPAN\"", "\"GENERATION\"", "\"EVENT\""};
    return std::string("{\"id\":\"") + Id("00000002", 6) + "\",\"traceId\":\"" + Id("00000001", 5) +
           "\"" + Maybe("type", kTypes[Pick(3)]) + Maybe("startTime", Time()) +
           Maybe("endTime", Time()) + Maybe("model", "\"m" + std::to_string(Pick(3)) + "\"") +
           Maybe("input", "{\"q\":" + std::to_string(Pick(100)) + "}") +
           Maybe("metadata", Metadata()) + Maybe("promptTokens", std::to_string(Pick(1000))) + "}";
  }

  std::mt19937 rng_;
  std::vector<std::string> sent_;
};

// ---- the test -----------------------------------------------------------------------------------

class FoldProperty : public ::testing::TestWithParam<uint32_t> {};

std::optional<json::value> JsonOrNull(const pqxx::field& f) {
  if (f.is_null()) return std::nullopt;
  return json::parse(f.c_str());
}

TEST_P(FoldProperty, ProjectionEqualsReferenceFold) {
  testing::TestDatabase db;
  testing::TempDir dir;
  wal::Options options;
  options.dir = dir.path();
  auto log = std::move(*wal::Log::Open(options));
  projector::Options popts;
  popts.database_url = db.url();
  popts.chunk_records = 7;  // many chunk boundaries, so waves and chunks both get exercised
  projector::Projector projector(*log, popts);

  Generator gen(GetParam());
  Reference ref;
  for (int i = 0; i < 150; ++i) {
    const std::string body = gen.Body();
    ingest::IngestContext ctx;
    ctx.received_at = common::TimePoint(common::Micros(1767225600000000 + i * 1000000LL));
    auto rec = ingest::ParseTraceBatch(body, ctx);
    ASSERT_TRUE(rec.has_value()) << body << ": " << rec.error().message;
    ref.Apply(*rec);
    std::promise<void> done;
    log->Append(schema::EncodeRecord(*rec), [&](common::Result<uint64_t>) { done.set_value(); });
    done.get_future().get();
    if (i == 75) projector.Start();  // half the log is a backlog, half arrives live
  }
  ASSERT_TRUE(
      testing::WaitUntil([&] { return projector.status().projected_seq >= log->LastSequence(); },
                         std::chrono::seconds(30)))
      << "projector did not catch up: projected " << projector.status().projected_seq << " of "
      << log->LastSequence();
  projector.Stop();

  pqxx::connection conn(db.url());
  pqxx::work txn(conn);
  const auto traces = txn.exec(
      "SELECT id::text, placeholder, (EXTRACT(EPOCH FROM \"timestamp\") * 1000000)::int8, "
      "environment, name, user_id, array_to_json(tags)::text, metadata::text, input::text "
      "FROM traces ORDER BY id");
  ASSERT_EQ(traces.size(), ref.traces.size());
  for (const auto& row : traces) {
    SCOPED_TRACE(std::string("trace ") + row[0].c_str());
    const RefTrace& t = ref.traces.at(row[0].c_str());
    EXPECT_EQ(row[1].as<bool>(), t.placeholder);
    EXPECT_EQ(row[2].as<int64_t>(), t.timestamp_us);
    EXPECT_EQ(row[3].as<std::string>(), t.environment);
    EXPECT_EQ(row[4].is_null() ? std::nullopt : std::optional(row[4].as<std::string>()), t.name);
    EXPECT_EQ(row[5].is_null() ? std::nullopt : std::optional(row[5].as<std::string>()), t.user_id);
    json::array tags;
    for (const auto& tag : t.tags) tags.emplace_back(json::string(tag));
    EXPECT_EQ(json::parse(row[6].c_str()), json::value(tags));
    EXPECT_EQ(JsonOrNull(row[7]), t.metadata);
    EXPECT_EQ(JsonOrNull(row[8]), t.input);
  }
  const auto observations = txn.exec(
      "SELECT id::text, trace_id::text, type, (EXTRACT(EPOCH FROM start_time) * 1000000)::int8, "
      "(EXTRACT(EPOCH FROM end_time) * 1000000)::int8, model, input::text, metadata::text, "
      "prompt_tokens FROM observations ORDER BY id");
  ASSERT_EQ(observations.size(), ref.observations.size());
  for (const auto& row : observations) {
    SCOPED_TRACE(std::string("observation ") + row[0].c_str());
    const RefObservation& o = ref.observations.at(row[0].c_str());
    EXPECT_EQ(row[1].as<std::string>(), o.trace_id);
    EXPECT_EQ(row[2].as<std::string>(), o.type);
    EXPECT_EQ(row[3].is_null() ? std::nullopt : std::optional(row[3].as<int64_t>()), o.start_us);
    EXPECT_EQ(row[4].is_null() ? std::nullopt : std::optional(row[4].as<int64_t>()), o.end_us);
    EXPECT_EQ(row[5].is_null() ? std::nullopt : std::optional(row[5].as<std::string>()), o.model);
    EXPECT_EQ(JsonOrNull(row[6]), o.input);
    EXPECT_EQ(JsonOrNull(row[7]), o.metadata);
    EXPECT_EQ(row[8].is_null() ? std::nullopt : std::optional(row[8].as<int64_t>()),
              o.prompt_tokens);
  }
}

INSTANTIATE_TEST_SUITE_P(Seeds, FoldProperty, ::testing::Values(1u, 2u, 3u, 4u, 5u));

}  // namespace
}  // namespace xtrace
