// The projector and the query service against a real PostgreSQL (a fresh database per test).
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <pqxx/pqxx>

#include <chrono>
#include <functional>
#include <future>
#include <random>
#include <set>
#include <thread>
#include <tuple>

#include "ingest/batch.hpp"
#include "ingest/metrics.hpp"
#include "projector/cursor.hpp"
#include "projector/projector.hpp"
#include "query/metrics.hpp"
#include "query/traces.hpp"
#include "schema/codec.hpp"
#include "schema/migrations.hpp"
#include "schema/migrator.hpp"
#include "support/command.hpp"
#include "support/pg.hpp"
#include "support/projection_dump.hpp"
#include "support/server_process.hpp"
#include "support/wait.hpp"

namespace xtrace {
namespace {

using testing::TempDir;
using testing::TestDatabase;
using testing::WaitUntil;

constexpr char kTrace[] = "7d0c8a9e-1111-4222-8333-444455556666";
constexpr char kObs1[] = "00000000-0000-0000-0000-000000000001";

TEST(Migrations, ApplyOnceEvenWhenRunTwiceAndConcurrently) {
  TestDatabase db;
  std::vector<std::future<void>> runs;
  for (int i = 0; i < 3; ++i) {
    runs.push_back(std::async(std::launch::async, [&] {
      pqxx::connection conn(db.url());
      schema::ApplyMigrations(conn);
    }));
  }
  for (auto& r : runs) r.get();
  pqxx::connection conn(db.url());
  schema::ApplyMigrations(conn);  // and once more, on an up-to-date database
  pqxx::work txn(conn);
  EXPECT_EQ(txn.exec1("SELECT count(*) FROM schema_migrations")[0].as<size_t>(),
            schema::Migrations().size());
  EXPECT_EQ(txn.exec1("SELECT count(*) FROM traces")[0].as<int>(), 0);
}

// Migration 0015 turns the uuid id columns into text in place: every row is kept, each id reads
// as the canonical text the xtrace route writes, and the fold and refresh work on the result.
TEST(Migrations, UuidIdsBecomeCanonicalTextKeepingEveryRow) {
  TestDatabase db;
  pqxx::connection conn(db.url());
  schema::ApplyMigrations(conn, 14);
  {
    pqxx::work txn(conn);
    // Spelled upper case: the uuid type stores the value, not the spelling.
    txn.exec0(
        "INSERT INTO traces (project_id, id, \"timestamp\", environment) VALUES"
        " ('default', '7D0C8A9E-1111-4222-8333-444455556666', now(), 'default'),"
        " ('other', '00000000-0000-0000-0000-0000000000aa', now(), 'default')");
    txn.exec0(
        "INSERT INTO observations (project_id, id, trace_id, parent_observation_id, type,"
        "  environment, start_time, end_time, calculated_total_cost) VALUES"
        " ('default', '00000000-0000-0000-0000-000000000001',"
        "  '7d0c8a9e-1111-4222-8333-444455556666', NULL, 'GENERATION', 'default',"
        "  '2026-01-01T00:00:00Z', '2026-01-01T00:00:02Z', 0.5),"
        " ('default', '00000000-0000-0000-0000-000000000002',"
        "  '7d0c8a9e-1111-4222-8333-444455556666', '00000000-0000-0000-0000-000000000001',"
        "  'SPAN', 'default', '2026-01-01T00:00:01Z', NULL, NULL)");
    txn.commit();
  }
  schema::ApplyMigrations(conn);
  pqxx::work txn(conn);
  EXPECT_EQ(txn.exec1("SELECT pg_typeof(id)::text FROM traces LIMIT 1")[0].as<std::string>(),
            "text");
  EXPECT_EQ(txn.exec1("SELECT string_agg(id, ',' ORDER BY id) FROM traces")[0].as<std::string>(),
            "00000000-0000-0000-0000-0000000000aa,7d0c8a9e-1111-4222-8333-444455556666");
  EXPECT_EQ(txn.exec1("SELECT parent_observation_id FROM observations WHERE id ="
                      " '00000000-0000-0000-0000-000000000002'")[0]
                .as<std::string>(),
            "00000000-0000-0000-0000-000000000001");
  EXPECT_EQ(txn.exec1("SELECT count(*) FROM observations WHERE trace_id ="
                      " '7d0c8a9e-1111-4222-8333-444455556666'")[0]
                .as<int>(),
            2);
  // The recreated aggregate function reads the converted rows.
  const auto stats = txn.exec1(
      "SELECT * FROM xtrace_observation_stats('default', '7d0c8a9e-1111-4222-8333-444455556666')");
  EXPECT_EQ(stats["latency"].as<double>(), 2.0);
  EXPECT_EQ(stats["total_cost"].as<double>(), 0.5);
  txn.commit();
  // The fold's statements prepare and refresh against the converted tables.
  projector::PrepareFoldStatements(conn);
  pqxx::work refresh(conn);
  projector::RefreshTraceAggregates(refresh, {{"default", "7d0c8a9e-1111-4222-8333-444455556666"}});
  EXPECT_EQ(refresh.exec1("SELECT obs_total_cost FROM traces WHERE project_id = 'default'")[0]
                .as<double>(),
            0.5);
}

// A WAL plus a running projector; Ingest() appends a batch body as the server would.
class ProjectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    wal::Options options;
    options.dir = dir_.path();
    log_ = std::move(*wal::Log::Open(options));
    StartProjector();
  }

  // A new projector on the fixture's log and database (the previous one, if any, stopped).
  void StartProjector() {
    projector::Options popts;
    popts.database_url = db_.url();
    projector_ = std::make_unique<projector::Projector>(*log_, popts);
    projector_->Start();
  }

  // Until every stream has connected: migrated tables, cursor rows.
  void WaitConnected() {
    ASSERT_TRUE(WaitUntil([&] { return projector_->status().database_up; }))
        << "projector did not connect";
  }

  // With the projector connected, then stopped: the stored cursors set by hand.
  void SetStoredCursors(uint64_t traces, uint64_t metrics) {
    WaitConnected();
    projector_->Stop();
    pqxx::connection conn(db_.url());
    pqxx::work txn(conn);
    txn.exec_params(
        "UPDATE projector_cursors SET seq = CASE stream WHEN 'traces' THEN $1::int8 ELSE $2::int8 "
        "END "
        "WHERE wal_id = $3::uuid",
        traces, metrics, log_->id().ToString());
    txn.commit();
  }

  // The single text value a query returns, on a connection of its own.
  std::string QueryText(const std::string& sql) {
    pqxx::connection conn(db_.url());
    pqxx::work txn(conn);
    return txn.exec1(sql)[0].as<std::string>();
  }
  void TearDown() override {
    projector_->Stop();
    log_->Close();
  }

  void Ingest(const std::string& body, int64_t received_us = 1767225600000000) {
    ingest::IngestContext ctx;
    ctx.received_at = common::TimePoint(common::Micros(received_us));
    auto record = body.find("\"metrics\"") != std::string::npos
                      ? ingest::ParseMetricBatch(body, ctx)
                      : ingest::ParseTraceBatch(body, ctx);
    ASSERT_TRUE(record.has_value()) << record.error().message;
    std::promise<void> done;
    log_->Append(schema::EncodeRecord(*record), [&](common::Result<uint64_t> r) {
      EXPECT_TRUE(r.has_value());
      done.set_value();
    });
    done.get_future().get();
  }

  // Waits until everything appended so far is projected.
  void WaitProjected() {
    ASSERT_TRUE(WaitUntil([&] {
      return projector_->status().projected_seq >= log_->LastSequence();
    })) << "projector did not catch up: projected "
        << projector_->status().projected_seq << " of " << log_->LastSequence();
  }

  // Until every stream has begun `passes` more passes of its loop than in `before`: with
  // passes = 2, each has run one whole pass after `before` was taken.
  void WaitAttempts(const projector::Status& before, uint64_t passes) {
    ASSERT_TRUE(WaitUntil([&] {
      const auto now = projector_->status();
      for (size_t i = 0; i < now.streams.size(); ++i) {
        if (now.streams[i].attempts < before.streams[i].attempts + passes) return false;
      }
      return true;
    })) << "the projector streams stopped trying";
  }

  // Lock requests of this database that are waiting (not granted) and match `where` (a condition
  // on pg_locks).
  int WaitingLocks(const std::string& where) {
    return std::stoi(
        QueryText("SELECT count(*) FROM pg_locks WHERE NOT granted AND database = "
                  "(SELECT oid FROM pg_database WHERE datname = current_database()) AND " +
                  where));
  }

  // With the projector stopped: `points` metric records of one point each (value i at second i,
  // labels as given), then a trace record; returns every record of the log, decoded.
  std::vector<schema::WalRecord> IngestPointsThenATrace(int points, const std::string& labels) {
    projector_->Stop();
    for (int i = 1; i <= points; ++i) {
      Ingest(R"({"metrics":[{"name":"m","labels":)" + labels + R"(,"value":)" + std::to_string(i) +
             R"(,"timestamp":"2026-01-01T00:00:0)" + std::to_string(i) + R"(Z"}]})");
    }
    Ingest(R"({"trace":{"id":")" + std::string(kTrace) + R"("}})");
    std::vector<schema::WalRecord> decoded;
    for (const auto& e : *log_->Read(0, 100, 1 << 20)) {
      decoded.push_back(*schema::DecodeRecord(e.bytes));
    }
    return decoded;
  }

  pqxx::row TraceRow(const std::string& columns) {
    pqxx::connection conn(db_.url());
    pqxx::work txn(conn);
    txn.exec0("SET TIME ZONE 'UTC'");
    return txn.exec_params1("SELECT " + columns + " FROM traces WHERE id = $1", kTrace);
  }

  TempDir dir_;
  TestDatabase db_;
  std::unique_ptr<wal::Log> log_;
  std::unique_ptr<projector::Projector> projector_;
};

std::string TraceBody(const std::string& fields) {
  return std::string(R"({"trace":{"id":")") + kTrace + "\"" + fields + "}}";
}

TEST_F(ProjectionTest, PartialUpdatesMergeInsteadOfOverwriting) {
  Ingest(TraceBody(R"(,"timestamp":"2026-01-01T00:00:00Z","name":"chat","userId":"alice",
                   "tags":["b","a"],"metadata":{"x":{"y":1,"z":2},"keep":true},"input":"q")"));
  // xtrace's client sends every unset field as null: nulls must keep stored values.
  Ingest(TraceBody(R"(,"timestamp":"2026-02-02T00:00:00Z","name":null,"userId":null,
                   "tags":["c","a"],"metadata":{"x":{"z":3}},"input":null,"output":"a")"));
  WaitProjected();
  const auto row = TraceRow(
      R"(name, user_id, tags::text, metadata::text, input::text, output::text,
         to_char("timestamp", 'YYYY-MM-DD'))");
  EXPECT_EQ(row[0].as<std::string>(), "chat");
  EXPECT_EQ(row[1].as<std::string>(), "alice");
  EXPECT_EQ(row[2].as<std::string>(), "{a,b,c}");
  EXPECT_EQ(boost::json::parse(row[3].c_str()),
            boost::json::parse(R"({"x":{"y":1,"z":3},"keep":true})"));
  EXPECT_EQ(row[4].as<std::string>(), R"("q")");
  EXPECT_EQ(row[5].as<std::string>(), R"("a")");
  EXPECT_EQ(row[6].as<std::string>(), "2026-01-01");  // the first timestamp stays
}

TEST_F(ProjectionTest, ObservationBeforeTraceCreatesPlaceholderThatTheTraceFillsIn) {
  Ingest(std::string(R"({"observations":[{"id":")") + kObs1 + R"(","traceId":")" + kTrace +
         R"(","startTime":"2025-06-01T00:00:00Z","environment":"prod"}]})");
  WaitProjected();
  EXPECT_TRUE(TraceRow("placeholder")[0].as<bool>());
  Ingest(TraceBody(R"(,"timestamp":"2026-01-01T00:00:00Z","name":"late","environment":"staging")"));
  WaitProjected();
  const auto row =
      TraceRow(R"(placeholder, name, environment, to_char("timestamp", 'YYYY-MM-DD'))");
  EXPECT_FALSE(row[0].as<bool>());
  EXPECT_EQ(row[1].as<std::string>(), "late");
  EXPECT_EQ(row[2].as<std::string>(), "staging");
  EXPECT_EQ(row[3].as<std::string>(), "2026-01-01");
}

TEST_F(ProjectionTest, ReplayingTheSameRecordsChangesNothing) {
  const std::string body = TraceBody(R"(,"name":"n","tags":["t"],"metadata":{"a":[1,2]})");
  Ingest(body);
  WaitProjected();
  const std::string columns = "name, tags::text, metadata::text, \"timestamp\"::text";
  const auto before = TraceRow(columns);
  Ingest(body);
  Ingest(body);
  WaitProjected();
  const auto after = TraceRow(columns);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(before[i].as<std::string>(), after[i].as<std::string>());
}

TEST_F(ProjectionTest, CursorMovesWithTheRowsAndSurvivesRestart) {
  Ingest(TraceBody(R"(,"name":"one")"));
  WaitProjected();
  projector_->Stop();
  Ingest(TraceBody(R"(,"name":"two")"));  // appended while no projector runs
  const std::string cursors =
      "SELECT string_agg(stream || '=' || seq, ',' ORDER BY stream) FROM projector_cursors";
  // Each stream has its own cursor row, and each moved past the record (the metrics stream by
  // skipping it).
  EXPECT_EQ(QueryText(cursors), "metrics=1,traces=1");
  StartProjector();
  WaitProjected();
  EXPECT_EQ(TraceRow("name")[0].as<std::string>(), "two");
  EXPECT_EQ(QueryText(cursors), "metrics=2,traces=2");
}

TEST_F(ProjectionTest, MetricsAreProjectedWhileTraceProjectionIsHeldUp) {
  // A session holding the traces table stalls the trace stream; metric points that arrive after
  // the stalled trace record are still projected, and the trace follows once it is released.
  WaitConnected();
  pqxx::connection blocker(db_.url());
  pqxx::work hold(blocker);
  hold.exec0("LOCK TABLE traces IN EXCLUSIVE MODE");
  Ingest(TraceBody(R"(,"name":"held")"));
  Ingest(R"({"metrics":[{"name":"gpu","labels":{"host":"a"},"value":7,)"
         R"("timestamp":"2026-01-01T00:00:00Z"}]})");
  ASSERT_TRUE(WaitUntil([&] { return QueryText("SELECT count(*) FROM metric_points") == "1"; }))
      << "metrics waited for the traces";
  EXPECT_EQ(projector_->status().projected_seq, 0u) << "the trace record is not projected yet";
  hold.abort();
  WaitProjected();
  EXPECT_EQ(TraceRow("name")[0].as<std::string>(), "held");
}

TEST_F(ProjectionTest, TheWalKeepsItsProjectedSequenceUntilEveryStreamHasConnected) {
  // At start the server tells the WAL the stored cursors. A stream that connects before the
  // other must not make the WAL count the whole retained log as unprojected backlog again.
  Ingest(TraceBody(R"(,"name":"one")"));
  Ingest(R"({"metrics":[{"name":"gpu","value":1,"timestamp":"2026-01-01T00:00:00Z"}]})");
  WaitProjected();
  projector_->Stop();
  ASSERT_EQ(log_->GetStats().projected_seq, 2u);
  // Hold the metrics stream in its connect (it checks metric_rollups there; traces does not).
  pqxx::connection blocker(db_.url());
  pqxx::work hold(blocker);
  hold.exec0("LOCK TABLE metric_rollups IN ACCESS EXCLUSIVE MODE");
  StartProjector();
  ASSERT_TRUE(WaitUntil([&] { return WaitingLocks("relation = 'metric_rollups'::regclass") > 0; }))
      << "the metrics stream never reached the held lock";
  // The traces stream has connected (its connect told the projector its cursor) and begun
  // another pass, so whatever that connect was going to tell the WAL, it has told it.
  uint64_t connect_pass = 0;
  ASSERT_TRUE(WaitUntil([&] {
    const auto traces = projector_->status().streams.at(0);  // reads the cursor, then attempts
    connect_pass = traces.attempts;
    return traces.projected_seq == 2;
  })) << "the traces stream did not connect";
  ASSERT_TRUE(WaitUntil([&] { return projector_->status().streams.at(0).attempts > connect_pass; }))
      << "the traces stream did not go on after connecting";
  EXPECT_EQ(projector_->status().projected_seq, 0u) << "metrics has not read its cursor yet";
  EXPECT_EQ(log_->GetStats().projected_seq, 2u);
  hold.abort();
  WaitProjected();
  EXPECT_EQ(log_->GetStats().projected_seq, 2u);
}

TEST_F(ProjectionTest, StoredCursorsGiveTheLeastAndTheFurthestStream) {
  SetStoredCursors(10, 5);
  pqxx::connection conn(db_.url());
  const auto cursors = projector::LoadCursors(conn, log_->id().ToString());
  EXPECT_EQ(cursors.least, 5u);
  EXPECT_EQ(cursors.furthest, 10u);
  const auto none = projector::LoadCursors(conn, "00000000-0000-4000-8000-000000000000");
  EXPECT_EQ(none.least, 0u);
  EXPECT_EQ(none.furthest, 0u);
}

TEST_F(ProjectionTest, AfterTheLogLostRecordsNewOnesContinueAfterTheStreamFurthestAhead) {
  // As after a WAL directory restored from an older copy: the streams' cursors (traces 5,
  // metrics 3) are ahead of the log (empty). A new record must not take a sequence the traces
  // stream has already passed, or that stream would never project it.
  SetStoredCursors(5, 3);
  StartProjector();
  WaitConnected();
  Ingest(TraceBody(R"(,"name":"after the loss")"));
  EXPECT_EQ(log_->LastSequence(), 6u);
  WaitProjected();
  EXPECT_EQ(TraceRow("name")[0].as<std::string>(), "after the loss");
}

TEST_F(ProjectionTest, NulCharactersAreSanitizedNotRejected) {
  // Neither text nor jsonb can hold NUL; in free text the projector replaces it with U+FFFD.
  // (Names, ids and tags are identifiers: ingest refuses control characters in them.)
  Ingest(TraceBody(R"(,"externalId":"a\u0000b","input":{"k":"x\u0000y"},
                   "metadata":{"literal":"\\u0000"})"));
  WaitProjected();
  const auto row = TraceRow("external_id, input->>'k', metadata->>'literal'");
  EXPECT_EQ(row[0].as<std::string>(),
            "a\xEF\xBF\xBD"
            "b");
  EXPECT_EQ(row[1].as<std::string>(),
            "x\xEF\xBF\xBD"
            "y");
  EXPECT_EQ(row[2].as<std::string>(), "\\u0000") << "an escaped backslash stays literal text";
  EXPECT_EQ(projector_->status().quarantined_records, 0u);
}

TEST_F(ProjectionTest, ARecordPostgresRejectsIsQuarantinedAloneAndItsNeighboursProjected) {
  Ingest(TraceBody(R"(,"name":"before")"));
  // A record the ingest front end would never write (input is not JSON), as an older build or a
  // bug might have: PostgreSQL rejects it.
  schema::WalRecord poison;
  poison.received_at = common::Now();
  poison.project_id = "default";
  poison.environment = "default";
  schema::TraceEvent bad;
  bad.id = "11111111-1111-4111-8111-111111111111";
  bad.input_json = "{not json";
  poison.events = schema::EntityBatch{{bad}};
  std::promise<void> done;
  log_->Append(schema::EncodeRecord(poison), [&](common::Result<uint64_t>) { done.set_value(); });
  done.get_future().get();
  Ingest(TraceBody(R"(,"name":"after")"));
  WaitProjected();
  EXPECT_EQ(TraceRow("name")[0].as<std::string>(), "after");
  EXPECT_EQ(projector_->status().quarantined_records, 1u);
  pqxx::connection conn(db_.url());
  pqxx::work txn(conn);
  const auto q = txn.exec1("SELECT seq, sqlstate, encode(record, 'hex') FROM projector_quarantine");
  EXPECT_EQ(q[0].as<int>(), 2);
  EXPECT_EQ(q[1].as<std::string>(), "22P02");
  // The quarantined bytes are the WAL record itself.
  EXPECT_EQ(q[2].as<std::string>().size(), schema::EncodeRecord(poison).size() * 2);
  EXPECT_EQ(txn.exec1("SELECT count(*) FROM traces "
                      "WHERE id = '11111111-1111-4111-8111-111111111111'")[0]
                .as<int>(),
            0);
}

TEST_F(ProjectionTest, AnUndecodableRecordHaltsProjectionInsteadOfBeingDropped) {
  Ingest(TraceBody(R"(,"name":"first")"));
  WaitProjected();
  std::promise<void> done;
  log_->Append(std::string(64, '\x01'), [&](common::Result<uint64_t>) { done.set_value(); });
  done.get_future().get();
  Ingest(TraceBody(R"(,"name":"second")"));
  // The traces stream reports why it stopped, at which record.
  std::string halted;
  ASSERT_TRUE(testing::WaitUntil([&] {
    for (const auto& s : projector_->status().streams) {
      if (s.name == "traces") halted = s.halted;
    }
    return !halted.empty();
  }));
  EXPECT_NE(halted.find("WAL record 2"), std::string::npos) << halted;
  EXPECT_NE(halted.find("cannot be decoded"), std::string::npos) << halted;
  // Not PostgreSQL's fault, and not reported as such.
  EXPECT_TRUE(projector_->status().database_up);
  // Projection stops before the bad record (sequence 2); nothing after it is applied out of
  // order, and nothing is skipped or quarantined.
  EXPECT_EQ(projector_->status().projected_seq, 1u);
  EXPECT_EQ(projector_->status().quarantined_records, 0u);
  EXPECT_EQ(TraceRow("name")[0].as<std::string>(), "first");
}

// Appends a record straight to the WAL, bypassing ingest validation, as an older build might
// have written it.
void AppendRaw(wal::Log& log, const schema::WalRecord& record) {
  std::promise<void> done;
  log.Append(schema::EncodeRecord(record), [&](common::Result<uint64_t>) { done.set_value(); });
  done.get_future().get();
}

schema::WalRecord RawTrace(const std::string& id,
                           const std::function<void(schema::TraceEvent&)>& f) {
  schema::WalRecord record;
  record.received_at = common::Now();
  record.project_id = "default";
  record.environment = "default";
  schema::TraceEvent t;
  t.id = id;
  f(t);
  record.events = schema::EntityBatch{{t}};
  return record;
}

// Text PostgreSQL cannot compress below the index row limit (a run of one letter would be).
std::string Incompressible(size_t n) {
  std::string s;
  uint64_t x = 0x9E3779B97F4A7C15ull;
  while (s.size() < n) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    s.push_back(static_cast<char>('!' + x % 90));
  }
  return s;
}

std::string NumberedId(int i) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "00000000-0000-4000-8000-%012d", i);
  return buf;
}

// Ids are opaque text (Langfuse clients choose them, OTLP's are hex), and a trace the xtrace route
// stored under a UUID is found by that UUID in any spelling the route accepts.
TEST_F(ProjectionTest, IdsAreOpaqueTextAndUuidsAreFoundInAnySpelling) {
  AppendRaw(*log_, RawTrace("my-request-42", [](schema::TraceEvent& t) { t.name = "chosen"; }));
  AppendRaw(*log_, RawTrace("4bf92f3577b34da6a3ce929d0e0e4736", [](schema::TraceEvent&) {}));
  Ingest(TraceBody(R"(,"name":"by-uuid")"));  // kTrace, through the xtrace route
  WaitProjected();
  query::ConnectionPool pool(
      {db_.url(), 1, std::chrono::milliseconds(5000), std::chrono::milliseconds(5000)});
  query::TraceQueries traces(pool, "default");
  const auto name_of = [&](const std::string& id) -> std::string {
    auto r = traces.Get(id);
    if (!r) return "error " + r.error().message;
    return std::string(boost::json::parse(r->body).at("name").as_string());
  };
  EXPECT_EQ(name_of("my-request-42"), "chosen");
  EXPECT_EQ(traces.Get("MY-REQUEST-42").error().code, common::ErrorCode::kNotFound);
  std::string upper(kTrace), bare;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (char c : std::string(kTrace)) {
    if (c != '-') bare += c;
  }
  EXPECT_EQ(name_of(kTrace), "by-uuid");
  EXPECT_EQ(name_of(upper), "by-uuid");
  EXPECT_EQ(name_of(bare), "by-uuid");
  // A 32-hex OTLP trace id is stored as sent, and found as sent.
  auto otlp = traces.Get("4bf92f3577b34da6a3ce929d0e0e4736");
  ASSERT_TRUE(otlp.has_value());
  EXPECT_EQ(boost::json::parse(otlp->body).at("id"), "4bf92f3577b34da6a3ce929d0e0e4736");
}

TEST_F(ProjectionTest, RefusedRecordsInALargeChunkAreIsolatedAndTheRestProjected) {
  // Classes the projector used to retry forever (54000: an index row over its limit) or that
  // poisoned later records: each refused record is found by bisecting its chunk and set aside;
  // the 200 good records around them are all projected, in one backlog chunk.
  projector_->Stop();
  for (int i = 1; i <= 200; ++i) {
    AppendRaw(*log_, RawTrace(NumberedId(i), [&](schema::TraceEvent& t) {
      t.name = "good-" + std::to_string(i);
    }));
    if (i == 37) {
      AppendRaw(*log_, RawTrace(NumberedId(1000), [](schema::TraceEvent& t) {
        t.name = Incompressible(10000);  // traces_project_name_idx: 54000
      }));
    }
    if (i == 150) {
      AppendRaw(*log_, RawTrace(NumberedId(1001), [](schema::TraceEvent& t) {
        t.user_id = Incompressible(3000);  // both user index and rollup key: 54000
      }));
    }
  }
  StartProjector();
  WaitProjected();
  EXPECT_EQ(projector_->status().quarantined_records, 2u);
  pqxx::connection conn(db_.url());
  pqxx::work txn(conn);
  EXPECT_EQ(txn.exec1("SELECT count(*) FROM traces WHERE name LIKE 'good-%'")[0].as<int>(), 200);
  const auto q = txn.exec("SELECT seq, sqlstate FROM projector_quarantine ORDER BY seq");
  ASSERT_EQ(q.size(), 2u);
  EXPECT_EQ(q[0][0].as<int>(), 38);
  EXPECT_EQ(q[1][0].as<int>(), 152);
  EXPECT_EQ(q[0][1].as<std::string>(), "54000");
  EXPECT_EQ(q[1][1].as<std::string>(), "54000");
}

TEST_F(ProjectionTest, QuarantinedRecordsAreProjectedByReplayOnceAccepted) {
  Ingest(TraceBody(R"(,"name":"neighbour")"));
  // A session id over the index limit: refused by traces_project_session_idx alone.
  AppendRaw(*log_, RawTrace(NumberedId(7),
                            [](schema::TraceEvent& t) { t.session_id = Incompressible(4000); }));
  // Invalid JSON: refused whatever the schema.
  AppendRaw(*log_, RawTrace(NumberedId(8), [](schema::TraceEvent& t) { t.input_json = "{x"; }));
  WaitProjected();
  ASSERT_EQ(projector_->status().quarantined_records, 2u);

  // Nothing changed yet: both are still refused, and stay.
  const std::string replay =
      std::string(XTRACE_REPLAY_BIN) + " --quarantined --database-url '" + db_.url() + "'";
  auto run = testing::RunCommand(replay);
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_NE(run.output.find("0 projected and removed, 2 still refused"), std::string::npos)
      << run.output;

  // The "upgrade": the index that refused the session id goes away.
  {
    pqxx::connection conn(db_.url());
    pqxx::work txn(conn);
    txn.exec0("DROP INDEX traces_project_session_idx");
    txn.commit();
  }
  run = testing::RunCommand(replay);
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_NE(run.output.find("1 projected and removed, 1 still refused"), std::string::npos)
      << run.output;
  pqxx::connection conn(db_.url());
  pqxx::work txn(conn);
  EXPECT_EQ(
      txn.exec_params1("SELECT length(session_id) FROM traces WHERE id = $1", NumberedId(7))[0]
          .as<int>(),
      4000);
  const auto left = txn.exec("SELECT seq FROM projector_quarantine");
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0][0].as<int>(), 3);
}

TEST_F(ProjectionTest, ReplayQuarantinesAndHaltsAtTheRecordsTheServerDoes) {
  // Replay runs the server's projection loop: a record PostgreSQL refuses is quarantined, and a
  // record that does not decode halts both, at the same places.
  Ingest(TraceBody(R"(,"name":"first")"));
  AppendRaw(*log_, RawTrace(NumberedId(8), [](schema::TraceEvent& t) { t.input_json = "{x"; }));
  Ingest(TraceBody(R"(,"name":"second")"));
  std::promise<void> done;
  log_->Append(std::string(64, '\x01'), [&](common::Result<uint64_t>) { done.set_value(); });
  done.get_future().get();
  Ingest(TraceBody(R"(,"name":"third")"));
  ASSERT_TRUE(WaitUntil([&] {
    for (const auto& s : projector_->status().streams) {
      if (s.name == "traces" && s.halted.empty()) return false;
    }
    return projector_->status().quarantined_records == 1;
  })) << "the server did not quarantine record 2 and halt at record 4";

  TestDatabase rebuilt;
  const auto run =
      testing::RunCommand(std::string(XTRACE_REPLAY_BIN) + " --wal-dir '" + dir_.path() +
                          "' --database-url '" + rebuilt.url() + "' --rebuild");
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_NE(run.output.find("1 quarantined"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("halted at WAL record 4: the record cannot be decoded"),
            std::string::npos)
      << run.output;
  const auto state = [](const std::string& url) {
    pqxx::connection conn(url);
    pqxx::work txn(conn);
    return txn
        .exec1(
            "SELECT (SELECT string_agg(id || '=' || coalesce(name, ''), ',' ORDER BY id) "
            "FROM traces) || ' / ' || (SELECT string_agg(seq || ':' || stream || ':' || sqlstate, "
            "',' ORDER BY seq) FROM projector_quarantine)")[0]
        .as<std::string>();
  };
  EXPECT_EQ(state(rebuilt.url()), state(db_.url()));
  EXPECT_NE(state(rebuilt.url()).find("=second / 2:traces:22P02"), std::string::npos)
      << state(rebuilt.url());
}

TEST_F(ProjectionTest, DerivedFieldsFillWhatTheClientDidNotSend) {
  const std::string t = kTrace;
  // Start in one event, end and usage in a later partial update: derived from the merged row.
  Ingest(R"({"trace":{"id":")" + t + R"("},"observations":[
      {"id":"00000000-0000-4000-8000-000000000001","traceId":")" +
         t + R"(",
       "startTime":"2026-01-01T00:00:00Z","completionStartTime":"2026-01-01T00:00:00.25Z",
       "calculatedTotalCost":0.5},
      {"id":"00000000-0000-4000-8000-000000000002","traceId":")" +
         t + R"(",
       "startTime":"2026-01-01T00:00:01Z","endTime":"2026-01-01T00:00:04Z","latency":10,
       "usage":{"promptTokens":5,"completionTokens":6},"calculatedTotalCost":0.25}]})");
  Ingest(R"({"observations":[{"id":"00000000-0000-4000-8000-000000000001","traceId":")" + t +
         R"(","endTime":"2026-01-01T00:00:01.5Z","usage":{"input":3,"output":4}}]})");
  WaitProjected();
  query::ConnectionPool pool(
      {db_.url(), 1, std::chrono::milliseconds(5000), std::chrono::milliseconds(5000)});
  query::TraceQueries traces(pool, "default");
  auto r = traces.Get(t);
  ASSERT_TRUE(r.has_value());
  const auto d = boost::json::parse(r->body);
  const auto& first = d.at("observations").at(0);
  EXPECT_EQ(first.at("latency").as_double(), 1.5);
  EXPECT_EQ(first.at("timeToFirstToken").as_double(), 0.25);
  EXPECT_EQ(first.at("promptTokens").to_number<int>(), 3);
  EXPECT_EQ(first.at("totalTokens").to_number<int>(), 7);  // input + output
  const auto& second = d.at("observations").at(1);
  EXPECT_EQ(second.at("latency").as_double(), 10.0) << "a value the client sent wins";
  EXPECT_EQ(second.at("usage").at("total").to_number<int>(), 11);
  // Trace: earliest start to latest end, and the sum of observation costs.
  EXPECT_EQ(d.at("latency").as_double(), 4.0);
  EXPECT_EQ(d.at("totalCost").as_double(), 0.75);
}

TEST_F(ProjectionTest, MetricPointsAreKeyedSoResendsAreNoOps) {
  const std::string batch = R"({"metrics":[
      {"name":"gpu","labels":{"host":"a","gpu":"0"},"value":1,"timestamp":"2026-01-01T00:00:00Z"},
      {"name":"gpu","labels":{"gpu":"0","host":"a"},"value":2,"timestamp":"2026-01-01T00:01:00Z"},
      {"name":"gpu","labels":{"gpu":"1","host":"a"},"value":3,"timestamp":"2026-01-01T00:00:00Z"},
      {"name":"gpu","labels":{"gpu":"1","host":"a"},"value":99,"timestamp":"2026-01-01T00:00:00Z"}]})";
  Ingest(batch);
  Ingest(batch);  // a client retry
  Ingest(R"({"metrics":[{"name":"gpu","labels":{"host":"a","gpu":"0"},"value":50,
                         "timestamp":"2026-01-01T00:00:00Z"}]})");
  WaitProjected();
  pqxx::connection conn(db_.url());
  pqxx::work txn(conn);
  EXPECT_EQ(txn.exec1("SELECT count(*) FROM metric_series")[0].as<int>(), 2);
  EXPECT_EQ(txn.exec1("SELECT count(*) FROM metric_points")[0].as<int>(), 3);
  // First write wins, within a batch and across batches.
  EXPECT_EQ(txn.exec1("SELECT sum(value) FROM metric_points")[0].as<double>(), 6.0);

  query::ConnectionPool pool(
      {db_.url(), 1, std::chrono::milliseconds(5000), std::chrono::milliseconds(5000)});
  query::MetricQueries queries(pool, "default");
  EXPECT_EQ(queries.Names()->body, R"({"data":["gpu"]})");

  // A resend in a later chunk takes the ON CONFLICT path; a time far beyond 2255 keeps its last
  // microsecond there too (integer microseconds through float8 would not), so it stays one point.
  const std::string far = R"({"metrics":[{"name":"far","value":1,
      "timestamp":"2300-01-01T00:00:00.000001Z"}]})";
  Ingest(far);
  WaitProjected();
  Ingest(far);
  WaitProjected();
  pqxx::connection check_conn(db_.url());
  pqxx::work check(check_conn);
  EXPECT_EQ(check
                .exec1("SELECT count(*) FROM metric_points p JOIN metric_series s "
                       "ON s.id = p.series_id WHERE s.name = 'far'")[0]
                .as<int>(),
            1);
  EXPECT_EQ(check
                .exec1("SELECT sum(r.count) FROM metric_rollups r JOIN metric_series s "
                       "ON s.id = r.series_id WHERE s.name = 'far' AND r.step = 60")[0]
                .as<int>(),
            1);
  EXPECT_EQ(check
                .exec1("SELECT to_char(max(r.last_ts) AT TIME ZONE 'UTC', 'US') "
                       "FROM metric_rollups r JOIN metric_series s ON s.id = r.series_id "
                       "WHERE s.name = 'far'")[0]
                .as<std::string>(),
            "000001");
}

TEST_F(ProjectionTest, QueriesReadTheProjection) {
  Ingest(TraceBody(R"(,"timestamp":"2026-01-01T00:00:00Z","name":"chat","userId":"alice",
                   "sessionId":"s1","tags":["prod","x"],"environment":"prod")"));
  Ingest(
      std::string(
          R"({"trace":{"id":"22222222-2222-4222-8222-222222222222","timestamp":"2026-01-02T00:00:00Z","userId":"bob","tags":["prod"]},
      "observations":[{"id":")") +
      kObs1 + R"(","traceId":"22222222-2222-4222-8222-222222222222",
      "startTime":"2026-01-02T00:00:00Z","promptTokens":3,"completionTokens":4,"totalTokens":7,
      "promptVersion":"5","calculatedTotalCost":0.5}]})");
  WaitProjected();
  query::ConnectionPool pool(
      {db_.url(), 2, std::chrono::milliseconds(5000), std::chrono::milliseconds(5000)});
  query::TraceQueries traces(pool, "default");
  const auto list = [&](const char* query) {
    auto r = traces.List({"/api/public/traces", query, "", ""});
    EXPECT_TRUE(r.has_value());
    return boost::json::parse(r ? r->body : "{}").as_object();
  };
  auto all = list("");
  EXPECT_EQ(all["meta"].at("totalItems").as_int64(), 2);
  EXPECT_EQ(all["data"].as_array()[0].at("userId"), "bob");  // newest first
  EXPECT_EQ(list("userId=alice")["data"].as_array().size(), 1u);
  EXPECT_EQ(list("sessionId=s1")["data"].as_array().size(), 1u);
  EXPECT_EQ(list("tags=prod&tags=x")["data"].as_array().size(), 1u);
  EXPECT_EQ(list("tags=prod")["data"].as_array().size(), 2u);
  EXPECT_EQ(list("environment=prod&environment=qa")["data"].as_array().size(), 1u);
  EXPECT_EQ(list("environment=prod&environment=qa")["meta"].at("totalItems").as_int64(), 1);
  EXPECT_EQ(list("environment=default")["meta"].at("totalItems").as_int64(), 1);
  EXPECT_EQ(list("name=nope")["data"].as_array().size(), 0u);
  auto page2 = list("limit=1&page=2");
  EXPECT_EQ(page2["data"].as_array()[0].at("userId"), "alice");
  EXPECT_EQ(page2["meta"].at("totalPages").as_int64(), 2);

  // totalItems: later pages reuse the count of the filter set's first page (for a few seconds);
  // a first page always counts afresh.
  auto first = list("limit=1");
  EXPECT_EQ(first["meta"].at("totalItems").as_int64(), 2);
  Ingest(
      R"({"trace":{"id":"33333333-3333-4333-8333-333333333333","timestamp":"2025-12-01T00:00:00Z"}})");
  WaitProjected();
  EXPECT_EQ(list("limit=1&page=2")["meta"].at("totalItems").as_int64(), 2);  // reused
  EXPECT_EQ(list("limit=1&page=3")["data"].as_array().size(), 1u);           // rows are current
  EXPECT_EQ(list("limit=1")["meta"].at("totalItems").as_int64(), 3);
  EXPECT_EQ(list("limit=1&page=2")["meta"].at("totalItems").as_int64(), 3);
  EXPECT_EQ(list("limit=1&page=2&userId=bob")["meta"].at("totalItems").as_int64(), 1);  // own key

  // Ordering with the id tie-breaker, fields suppression.
  auto by_name = list("orderBy=userId.asc");
  EXPECT_EQ(by_name["data"].as_array()[0].at("userId"), "alice");
  auto core = list("fields=core");
  const auto& item = core["data"].as_array()[0].as_object();
  EXPECT_FALSE(item.contains("input"));
  EXPECT_EQ(item.at("latency").as_double(), -1.0);
  EXPECT_TRUE(item.at("observations").as_array().empty());
  EXPECT_FALSE(traces.List({"/api/public/traces", "orderBy=bogus", "", ""}).has_value());

  query::MetricQueries metric_queries(pool, "default");
  EXPECT_EQ(metric_queries.Names()->body, R"({"data":[]})");

  auto detail = traces.Get("22222222-2222-4222-8222-222222222222");
  ASSERT_TRUE(detail.has_value());
  auto d = boost::json::parse(detail->body).as_object();
  const auto& obs = d["observations"].as_array()[0].as_object();
  EXPECT_EQ(obs.at("promptVersion").as_int64(), 5);
  EXPECT_EQ(obs.at("usage").at("total").as_int64(), 7);
  EXPECT_EQ(obs.at("costDetails").at("total").as_double(), 0.5);
  EXPECT_EQ(obs.at("level"), "DEFAULT");

  auto missing = traces.Get("99999999-2222-4222-8222-222222222222");
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code, common::ErrorCode::kNotFound);
  // Ids are opaque: a string that is no UUID is looked up as it is (and is not there).
  EXPECT_EQ(traces.Get("not-a-uuid").error().code, common::ErrorCode::kNotFound);
  EXPECT_EQ(traces.Get(std::string(schema::kMaxIdBytes + 1, 'x')).error().code,
            common::ErrorCode::kBadParameter);
}

}  // namespace
}  // namespace xtrace

namespace xtrace {
namespace {

// Pages in every order are a partition of the list: no trace is skipped or repeated, even with
// many equal sort keys.
TEST_F(ProjectionTest, PagesNeverOverlapOrSkipUnderAnyOrder) {
  for (int i = 0; i < 23; ++i) {
    char id[40];
    std::snprintf(id, sizeof id, "%08x-0000-4000-8000-000000000000", i);
    Ingest(std::string(R"({"trace":{"id":")") + id +
           R"(","timestamp":"2026-01-01T00:00:00Z","name":")" + (i % 3 ? "a" : "b") + R"("}})");
  }
  WaitProjected();
  query::ConnectionPool pool(
      {db_.url(), 1, std::chrono::milliseconds(5000), std::chrono::milliseconds(5000)});
  query::TraceQueries traces(pool, "default");
  for (const char* order : {"", "orderBy=name.asc", "orderBy=timestamp", "orderBy=latency.asc"}) {
    std::set<std::string> seen;
    for (int page = 1; page <= 5; ++page) {
      const std::string query = std::string(order) + "&limit=5&page=" + std::to_string(page);
      auto r = traces.List({"/api/public/traces", query, "", ""});
      ASSERT_TRUE(r.has_value());
      const auto body = boost::json::parse(r->body);
      for (const auto& item : body.at("data").as_array()) {
        EXPECT_TRUE(seen.insert(std::string(item.at("id").as_string())).second)
            << "repeated on page " << page << " with " << order;
      }
    }
    EXPECT_EQ(seen.size(), 23u) << order;
  }
}

}  // namespace
}  // namespace xtrace

#include "projector/fold.hpp"
#include "schema/migrator.hpp"

namespace xtrace {
namespace {

using testing::DumpProjections;

// Cached series ids never outlive their series: not across a rolled-back transaction (which
// created the series), and not across a rebuild that empties metric_series.
TEST_F(ProjectionTest, SeriesCacheSurvivesRollbackAndRebuild) {
  // Records 1-3: a point each; record 4: no metric points.
  const auto decoded = IngestPointsThenATrace(3, R"({"h":"a"})");
  pqxx::connection conn(db_.url());
  schema::ApplyMigrations(conn);
  projector::PrepareFoldStatements(conn);
  projector::SeriesCache cache;
  const auto fold = [&](uint64_t seq, bool commit) {
    pqxx::work txn(conn);
    std::set<projector::TraceKey> touched;
    projector::FoldRecords(txn, {{seq, &decoded[seq - 1]}}, log_->id(), touched, cache);
    if (commit) {
      txn.commit();
      cache.Commit();
    }
  };
  const auto points_with_series = [&] {
    pqxx::work txn(conn);
    const auto row = txn.exec1(
        "SELECT count(*), count(s.id) FROM metric_points p "
        "LEFT JOIN metric_series s ON s.id = p.series_id");
    return std::pair(row[0].as<int>(), row[1].as<int>());
  };
  fold(1, false);  // rolled back, series and all
  fold(4, true);   // a chunk without metric points commits next
  fold(2, true);
  EXPECT_EQ(points_with_series(), std::pair(1, 1));
  {
    // What xtrace-replay --rebuild does.
    pqxx::work txn(conn);
    txn.exec0("UPDATE projection_epoch SET epoch = epoch + 1");
    txn.exec0("TRUNCATE metric_series, metric_points, metric_rollups");
    txn.commit();
  }
  fold(3, true);
  EXPECT_EQ(points_with_series(), std::pair(1, 1));
}

// A projector reuses the rollup cells it wrote last instead of reading them back, but only while
// they are what is stored: not after its own transaction rolled back, nor after another writer
// (another node, xtrace-replay) merged into them.
TEST_F(ProjectionTest, RollupCacheIsUsedOnlyWhileNobodyElseWroteTheRollups) {
  // Records 1-5: a point each, one series, one minute; record 6: no metric points.
  const auto decoded = IngestPointsThenATrace(5, "{}");
  pqxx::connection conn(db_.url()), other_conn(db_.url());
  schema::ApplyMigrations(conn);
  projector::PrepareFoldStatements(conn);
  projector::PrepareFoldStatements(other_conn);
  projector::SeriesCache series, other_series;
  projector::RollupCache rollups;
  const auto fold = [&](pqxx::connection& c, projector::SeriesCache& sc, projector::RollupCache* rc,
                        uint64_t seq, bool commit) {
    pqxx::work txn(c);
    std::set<projector::TraceKey> touched;
    auto chunk = projector::PrepareChunk({{seq, &decoded[seq - 1]}}, log_->id());
    projector::ApplyChunk(txn, *chunk, touched, sc, rc);
    if (!commit) return;
    txn.commit();
    sc.Commit();
    if (rc != nullptr) rc->Commit();
  };
  fold(conn, series, &rollups, 1, true);
  fold(conn, series, &rollups, 2, false);  // rolled back
  fold(conn, series, &rollups, 6, true);   // commits without merging anything
  fold(conn, series, &rollups, 3, true);
  fold(other_conn, other_series, nullptr, 4, true);  // another writer
  fold(conn, series, &rollups, 5, true);
  // Every step's cell holds points 1, 3, 4 and 5.
  EXPECT_EQ(QueryText("SELECT string_agg(step || ':' || count || ':' || sum, ',' ORDER BY step) "
                      "FROM metric_rollups"),
            "60:4:13,300:4:13,3600:4:13,86400:4:13");
}

// A rollup rebuild beside a projector: the rebuild takes the rollup lock before its TRUNCATE,
// as the projector takes it before reading the rollups, so the two wait for each other in turn
// instead of deadlocking.
TEST_F(ProjectionTest, RollupRebuildWaitsForAProjectorWithoutDeadlock) {
  Ingest(R"({"metrics":[{"name":"m","value":1,"timestamp":"2026-01-01T00:00:00Z"}]})");
  WaitProjected();
  projector_->Stop();
  pqxx::connection projector_conn(db_.url()), rebuild_conn(db_.url());
  projector::PrepareFoldStatements(rebuild_conn);
  pqxx::work merging(projector_conn);  // a projector between its lock and its rollup read
  merging.exec_params("SELECT pg_advisory_xact_lock($1)", projector::kRollupLockKey);
  const int rebuild_pid = rebuild_conn.backendpid();
  auto rebuild = std::async(std::launch::async, [&] {
    pqxx::work txn(rebuild_conn);
    const uint64_t points = projector::RebuildRollups(txn);
    txn.commit();
    return points;
  });
  const bool rebuild_waits = WaitUntil([&] {
    return WaitingLocks("locktype = 'advisory' AND pid = " + std::to_string(rebuild_pid)) > 0;
  });
  if (!rebuild_waits) merging.abort();  // else the rebuild would never finish
  ASSERT_TRUE(rebuild_waits) << "the rebuild never waited for the projector's rollup lock";
  // Were the rebuild holding metric_rollups, this read would wait for it and PostgreSQL would
  // abort one side as a deadlock after deadlock_timeout (1 s).
  merging.exec0("SET LOCAL statement_timeout = '5s'");
  EXPECT_EQ(merging.exec1("SELECT count(*) FROM metric_rollups")[0].as<int>(), 4);
  merging.commit();
  EXPECT_EQ(rebuild.get(), 1u);
}

// Re-applying any record, in any order, changes nothing: the rows remember the last record
// applied to them.
TEST_F(ProjectionTest, ReapplyingOlderRecordsOutOfOrderChangesNothing) {
  const std::string t = kTrace;
  std::vector<std::string> bodies = {
      R"({"trace":{"id":")" + t + R"(","name":"first","metadata":{"a":1},"tags":["x"]},
          "observations":[{"id":"00000000-0000-4000-8000-000000000001","traceId":")" +
          t + R"(","input":"q1","startTime":"2026-01-01T00:00:00Z"}]})",
      R"({"trace":{"id":")" + t + R"(","name":"second","metadata":{"a":2,"b":1}}})",
      R"({"observations":[{"id":"00000000-0000-4000-8000-000000000001","traceId":")" + t +
          R"(","input":"q2","endTime":"2026-01-01T00:00:02Z"}]})",
      R"({"trace":{"id":")" + t + R"(","name":null,"tags":["y"],"userId":"u"}})"};
  for (const auto& b : bodies) Ingest(b);
  WaitProjected();
  const std::string before = DumpProjections(db_.url());
  ASSERT_NE(before.find("\"second\""), std::string::npos);

  // Fold records 1..3 again, newest first, as a replay of an old range would.
  projector_->Stop();
  auto entries = log_->Read(0, 10, 1 << 20);
  ASSERT_TRUE(entries.has_value());
  std::vector<schema::WalRecord> decoded;
  for (const auto& e : *entries) decoded.push_back(*schema::DecodeRecord(e.bytes));
  pqxx::connection conn(db_.url());
  projector::PrepareFoldStatements(conn);
  projector::SeriesCache series;
  for (int seq : {3, 1, 2, 1}) {
    pqxx::work txn(conn);
    std::set<projector::TraceKey> touched;
    projector::FoldRecords(txn, {{static_cast<uint64_t>(seq), &decoded[seq - 1]}}, log_->id(),
                           touched, series);
    projector::RefreshTraceAggregates(txn, touched);
    txn.commit();
  }
  EXPECT_EQ(DumpProjections(db_.url()), before);
}

}  // namespace
}  // namespace xtrace

namespace xtrace {
namespace {

// Metric queries answered from the step rollups agree with the raw points.
TEST_F(ProjectionTest, MetricQueriesFromRollupsMatchRawPoints) {
  // 3 series (gpu 0/1 on host a, gpu 0 on host b), 120 points each, one every 15 s, in batches
  // that arrive out of order and partly twice.
  std::vector<std::string> batches;
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> value(0, 100);
  std::vector<std::tuple<std::string, std::string, int, double>> points;  // host, gpu, second, v
  for (int batch = 0; batch < 6; ++batch) {
    std::string body = R"({"metrics":[)";
    for (int i = 0; i < 20; ++i) {
      const int second = (batch * 20 + i) * 15;
      for (auto [host, gpu] : {std::pair{"a", "0"}, {"a", "1"}, {"b", "0"}}) {
        const double v = std::round(value(rng) * 1000) / 1000;
        points.emplace_back(host, gpu, second, v);
        char ts[32];
        std::snprintf(ts, sizeof ts, "2026-01-01T%02d:%02d:%02dZ", second / 3600, second / 60 % 60,
                      second % 60);
        if (body.back() != '[') body += ",";
        body += std::string(R"({"name":"gpu_util","labels":{"host":")") + host + R"(","gpu":")" +
                gpu + R"("},"value":)" + std::to_string(v) + R"(,"timestamp":")" + ts + R"("})";
      }
    }
    batches.push_back(body + "]}");
  }
  for (int b : {3, 0, 5, 1, 3, 2, 4, 0}) Ingest(batches[static_cast<size_t>(b)]);  // resends too
  WaitProjected();

  query::ConnectionPool pool(
      {db_.url(), 1, std::chrono::milliseconds(5000), std::chrono::milliseconds(5000)});
  query::MetricQueries metrics(pool, "default");
  const auto now = *common::ParseRfc3339("2026-01-01T00:30:00Z");
  auto run = [&](const std::string& q) {
    auto r = metrics.Query({"/api/public/metrics/query", q, "", ""}, now);
    EXPECT_TRUE(r.has_value()) << q << ": " << (r ? "" : r.error().message);
    return boost::json::parse(r ? r->body : "{}");
  };
  const std::string window = "name=gpu_util&from=2026-01-01T00:00:00Z&to=2026-01-01T00:29:59Z";

  // Exact per-bucket figures from the raw points, for series host=a,gpu=0 at 5m.
  std::map<int, std::vector<double>> by_bucket;
  for (const auto& [host, gpu, second, v] : points) {
    if (host == "a" && gpu == "0") by_bucket[second / 300 * 300].push_back(v);
  }
  for (auto& [b, vs] : by_bucket) std::sort(vs.begin(), vs.end());
  // `points` holds each point once although batches 0 and 3 were sent twice: resends must not
  // count twice in the rollups.

  const auto series_a0 = [&](const boost::json::value& body) {
    for (const auto& s : body.at("data").as_array()) {
      if (s.at("labels") == boost::json::parse(R"({"gpu":"0","host":"a"})")) return s;
    }
    ADD_FAILURE() << "no series a/0 in " << boost::json::serialize(body);
    return boost::json::value();
  };
  auto avg = run(window + "&step=5m&agg=avg");
  EXPECT_EQ(avg.at("meta").at("series_count").to_number<int>(), 3);
  EXPECT_EQ(avg.at("meta").at("truncated"), false);
  EXPECT_EQ(avg.at("meta").at("latest_ts"), "2026-01-01T00:25:00+00:00");
  const auto a0 = series_a0(avg);
  const auto& values = a0.at("values").as_array();
  ASSERT_EQ(values.size(), by_bucket.size());
  size_t i = 0;
  for (const auto& [bucket, vs] : by_bucket) {
    double sum = 0;
    for (double v : vs) sum += v;
    EXPECT_NEAR(values[i].at("value").as_double(), sum / vs.size(), 1e-9);
    ++i;
  }
  for (auto [agg, q] : {std::pair{"p50", 0.5}, {"p90", 0.9}, {"p99", 0.99}}) {
    auto body = run(window + "&step=5m&agg=" + agg);
    const auto series = series_a0(body);
    const auto& pv = series.at("values").as_array();
    size_t j = 0;
    for (const auto& [bucket, vs] : by_bucket) {
      const double exact = vs[static_cast<size_t>(q * (vs.size() - 1))];
      EXPECT_NEAR(pv[j].at("value").as_double(), exact, std::fabs(exact) * 0.01 + 1e-9)
          << agg << " bucket " << bucket;
      ++j;
    }
  }
  auto mx = run(window + "&step=1h&agg=max");
  double exact_max = 0;
  for (const auto& [host, gpu, second, v] : points) {
    if (host == "a" && gpu == "0") exact_max = std::max(exact_max, v);
  }
  EXPECT_EQ(series_a0(mx).at("values").at(0).at("value").as_double(), exact_max);

  // group_by: one series per value of the label, merging the series that share it.
  auto grouped = run(window + "&step=1h&agg=sum&group_by=host");
  ASSERT_EQ(grouped.at("data").as_array().size(), 2u);
  EXPECT_EQ(grouped.at("data").at(0).at("labels"), boost::json::parse(R"({"host":"a"})"));
  double exact_sum_a = 0;
  for (const auto& [host, gpu, second, v] : points) {
    if (host == "a") exact_sum_a += v;
  }
  EXPECT_NEAR(grouped.at("data").at(0).at("values").at(0).at("value").as_double(), exact_sum_a,
              1e-6);
  // Labels containment filter.
  auto filtered = run(window + "&step=1h&labels=%7B%22host%22%3A%22b%22%7D");
  EXPECT_EQ(filtered.at("meta").at("series_count").to_number<int>(), 1);
  // 120 points 15 s apart span 30 one-minute buckets.
  auto minutely = run(window + "&step=1m&agg=last");
  EXPECT_EQ(series_a0(minutely).at("values").as_array().size(), 30u);
  // Nothing there: the reference's empty shape, also for series without data in the window.
  EXPECT_EQ(boost::json::serialize(run("name=nope")),
            R"({"data":[],"meta":{"series_count":0,"truncated":false}})");
  EXPECT_EQ(boost::json::serialize(
                run("name=gpu_util&from=2026-02-01T00:00:00Z&to=2026-02-01T01:00:00Z")),
            R"({"data":[],"meta":{"series_count":0,"truncated":false}})");

  // Rollups are derived data: rebuilt from the points alone (as after the migration that
  // changed their layout), they equal the ones projected incrementally; sums may differ in the
  // last bits, being added in another order.
  pqxx::connection conn(db_.url());
  projector::PrepareFoldStatements(conn);
  const auto dump = [&] {
    pqxx::work txn(conn);
    std::vector<std::string> rows;
    for (const auto& r : txn.exec("SELECT series_id, step, bucket, count, min, max, last, last_ts, "
                                  "sketch, sum FROM metric_rollups ORDER BY 1, 2, 3")) {
      std::string row;
      for (int c = 0; c < 9; ++c) row += std::string(r[c].c_str()) + "|";
      rows.push_back(row + std::to_string(std::round(r[9].as<double>() * 1e6) / 1e6));
    }
    return rows;
  };
  const auto projected = dump();
  ASSERT_EQ(projected.size(), 3u * (30 + 6 + 1 + 1));       // 1m, 5m, 1h, 1d buckets per series
  EXPECT_EQ(projector::RebuildRollupsIfMissing(conn), 0u);  // nothing missing
  {
    pqxx::work txn(conn);
    txn.exec0("TRUNCATE metric_rollups");
    txn.commit();
  }
  EXPECT_EQ(projector::RebuildRollupsIfMissing(conn), points.size());
  EXPECT_EQ(dump(), projected);
}

}  // namespace
}  // namespace xtrace

namespace xtrace {
namespace {

std::string Id(int i) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%08x-0000-4000-8000-000000000000", i);
  return buf;
}

// The daily usage rollups, after creates, partial updates that move traces between filter
// values and days, and model changes, equal a recomputation from the base tables.
TEST_F(ProjectionTest, DailyRollupsEqualRecomputationFromBaseTables) {
  auto trace = [](int i, const std::string& fields) {
    return R"({"trace":{"id":")" + Id(i) + "\"" + fields + "}}";
  };
  auto obs = [](int trace_i, int obs_i, const std::string& fields) {
    return R"({"observations":[{"id":")" + Id(1000 + obs_i) + R"(","traceId":")" + Id(trace_i) +
           "\"" + fields + "}]}";
  };
  Ingest(
      trace(1, R"(,"timestamp":"2026-01-01T10:00:00Z","name":"chat","userId":"a","tags":["p"])"));
  Ingest(
      trace(2, R"(,"timestamp":"2026-01-01T11:00:00Z","name":"chat","userId":"b","totalCost":2)"));
  Ingest(trace(
      3,
      R"(,"timestamp":"2026-01-02T09:00:00Z","name":"search","userId":"a","environment":"dev")"));
  Ingest(obs(1, 1,
             R"(,"model":"m1","promptTokens":10,"completionTokens":5,"calculatedTotalCost":0.5)"));
  Ingest(obs(1, 2, R"(,"model":"m2","usage":{"input":3,"output":4})"));
  Ingest(obs(2, 3, R"(,"model":"m1","totalTokens":9,"calculatedTotalCost":0.25)"));
  Ingest(obs(3, 4, R"(,"type":"SPAN")"));
  Ingest(
      obs(4, 5,
          R"(,"model":"m3","promptTokens":1,"startTime":"2026-01-03T00:00:00Z")"));  // placeholder
  // Updates: trace 1 changes user and tags; observation 2 changes model; trace 4 arrives late.
  Ingest(trace(1, R"(,"userId":"c","tags":["q"])"));
  Ingest(obs(1, 2, R"(,"model":"m1","completionTokens":6)"));
  Ingest(trace(4, R"(,"timestamp":"2026-01-02T12:00:00Z","name":"chat")"));
  WaitProjected();

  query::ConnectionPool pool(
      {db_.url(), 1, std::chrono::milliseconds(5000), std::chrono::milliseconds(5000)});
  query::MetricQueries metrics(pool, "default");
  const auto now = *common::ParseRfc3339("2026-01-10T00:00:00Z");
  auto daily = [&](const std::string& q) {
    auto r = metrics.Daily({"/api/public/metrics/daily", q, "", ""}, now);
    EXPECT_TRUE(r.has_value()) << q;
    return boost::json::parse(r ? r->body : "{}");
  };

  // The same figures straight from traces and observations.
  auto recompute = [&](const std::string& trace_filter) {
    pqxx::connection conn(db_.url());
    pqxx::work txn(conn);
    const auto days = txn.exec(
        "SELECT (t.\"timestamp\" AT TIME ZONE 'UTC')::date::text AS day, count(*),"
        " sum((SELECT count(*) FROM observations o WHERE o.trace_id = t.id)),"
        " sum(COALESCE(t.total_cost, t.obs_total_cost, 0))"
        " FROM traces t WHERE " +
        trace_filter + " GROUP BY 1 ORDER BY 1 DESC");
    boost::json::array out;
    for (const auto& d : days) {
      boost::json::array usage;
      for (const auto& m : txn.exec_params(
               "SELECT COALESCE(o.model, 'unknown'), count(DISTINCT t.id), count(*),"
               " COALESCE(sum(o.input_tokens_d), 0), COALESCE(sum(o.output_tokens_d), 0),"
               " COALESCE(sum(o.total_tokens_d), 0), COALESCE(sum(o.calculated_total_cost), 0)"
               " FROM traces t JOIN observations o ON o.trace_id = t.id"
               " WHERE o.type = 'GENERATION' AND (t.\"timestamp\" AT TIME ZONE 'UTC')::date = "
               "$1::date AND " +
                   trace_filter + " GROUP BY 1 ORDER BY 7 DESC, 1",
               d[0].c_str())) {
        usage.emplace_back(boost::json::object{{"countObservations", m[2].as<int64_t>()},
                                               {"countTraces", m[1].as<int64_t>()},
                                               {"inputUsage", m[3].as<int64_t>()},
                                               {"model", m[0].c_str()},
                                               {"outputUsage", m[4].as<int64_t>()},
                                               {"totalCost", m[6].as<double>()},
                                               {"totalUsage", m[5].as<int64_t>()}});
      }
      out.emplace_back(boost::json::object{{"date", d[0].c_str()},
                                           {"countTraces", d[1].as<int64_t>()},
                                           {"countObservations", d[2].as<int64_t>()},
                                           {"totalCost", d[3].as<double>()},
                                           {"usage", usage}});
    }
    return boost::json::value(out);
  };

  EXPECT_EQ(daily("").at("data"), recompute("TRUE"));

  // An update that names another trace still changes the observation's own (first) trace, in a
  // later transaction of its own.
  Ingest(obs(9, 1, R"(,"model":"m1","promptTokens":100)"));
  WaitProjected();
  EXPECT_EQ(daily("").at("data"), recompute("TRUE"));
  // Two days: trace 4's placeholder (2026-01-03) moved to its real day when the trace arrived.
  EXPECT_EQ(daily("").at("meta").at("totalItems").to_number<int>(), 2);
  EXPECT_EQ(daily("userId=c").at("data"), recompute("t.user_id = 'c'"));
  EXPECT_EQ(daily("userId=a").at("data"), recompute("t.user_id = 'a'"));
  EXPECT_EQ(daily("traceName=chat").at("data"), recompute("t.name = 'chat'"));
  EXPECT_EQ(daily("tags=q").at("data"), recompute("t.tags @> '{q}'"));
  EXPECT_EQ(daily("tags=p&tags=q").at("data"), recompute("t.tags @> '{p,q}'"));  // unioned
  EXPECT_EQ(daily("environment=dev").at("data"), recompute("t.environment = 'dev'"));
  EXPECT_EQ(daily("fromTimestamp=2026-01-02T00:00:00Z").at("data"),
            recompute("t.\"timestamp\" >= '2026-01-02'"));
  auto page2 = daily("limit=1&page=2");
  EXPECT_EQ(page2.at("data").at(0).at("date"), "2026-01-01");
  EXPECT_EQ(page2.at("meta").at("totalPages").to_number<int>(), 2);
}

}  // namespace
}  // namespace xtrace
