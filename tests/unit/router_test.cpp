// The route table and the router's order of checks: which path and method reach which route,
// what `{id}` captures, 404 before 405 before 401 (and the rate limit after credentials), and
// that RefuseCredentials, which sees only the header, refuses exactly what Handle refuses.
// The router under test is the real one over a real WAL in a temporary directory; no request
// here reaches PostgreSQL (the database URL points nowhere).
#include <gtest/gtest.h>

#include <boost/asio/thread_pool.hpp>

#include <future>
#include <memory>
#include <set>

#include "server/router.hpp"
#include "support/server_process.hpp"
#include "support/wait.hpp"

namespace xtrace::server {
namespace {

constexpr char kTraceId[] = "7d0c8a9e-1111-4222-8333-444455556666";
constexpr char kBearer[] = "Bearer tok";
constexpr char kBasic[] = "Basic cGs6c2s=";  // pk:sk
constexpr char kTraceBatch[] = R"({"trace":{"id":"7d0c8a9e-1111-4222-8333-444455556666"}})";
constexpr char kMetricBatch[] =
    R"({"metrics":[{"name":"m","value":1,"timestamp":"2026-01-01T00:00:00Z"}]})";

// The request path of a route: its pattern with `{id}` filled in.
std::string PathOf(const Route& route) {
  std::string path(route.pattern);
  if (const auto at = path.find("{id}"); at != std::string::npos) path.replace(at, 4, kTraceId);
  return path;
}

// ---- The table, matched without a router ----

TEST(RouteTable, EveryRouteAndWhoMayCallIt) {
  using enum Access;
  const std::set<std::tuple<std::string_view, std::string_view, Access>> expected = {
      {"GET", "/healthz", kOpen},
      {"GET", "/readyz", kOpen},
      {"POST", "/v1/l/batch", kCredentials},
      {"POST", "/v1/metrics/batch", kCredentials},
      {"GET", "/api/internal/status", kCredentials},
      {"GET", "/api/internal/rate_limit_stats", kCredentials},
      {"GET", "/api/public/projects", kCompatOpenable},
      {"GET", "/api/public/traces", kRateLimited},
      {"GET", "/api/public/traces/{id}", kRateLimited},
      {"GET", "/api/public/metrics/daily", kRateLimited},
      {"GET", "/api/public/metrics/query", kRateLimited},
      {"GET", "/api/public/metrics/names", kRateLimited},
  };
  std::set<std::tuple<std::string_view, std::string_view, Access>> actual;
  for (const Route& r : Router::Routes()) {
    EXPECT_TRUE(actual.emplace(r.method, r.pattern, r.access).second) << r.pattern;
    EXPECT_NE(r.handler, nullptr) << r.pattern;
  }
  EXPECT_EQ(actual, expected);
}

TEST(RouteTable, EveryRouteIsReachedByItsOwnPath) {
  for (const Route& route : Router::Routes()) {
    const auto m = MatchRoute(Router::Routes(), route.method, PathOf(route));
    ASSERT_EQ(m.outcome, RouteMatch::Outcome::kFound) << route.pattern;
    EXPECT_EQ(m.route, &route) << route.pattern;
  }
}

TEST(RouteTable, IdSegmentIsCapturedAsSent) {
  // The match refers to the path it was given (as to a request's target): keep it alive.
  const std::string path = std::string("/api/public/traces/") + kTraceId;
  const auto m = MatchRoute(Router::Routes(), "GET", path);
  ASSERT_EQ(m.outcome, RouteMatch::Outcome::kFound);
  EXPECT_EQ(m.route->pattern, "/api/public/traces/{id}");
  EXPECT_EQ(m.id, kTraceId);
  // Any non-empty segment: ids are opaque, the handler checks their length, and nothing is
  // percent-decoded on the way.
  EXPECT_EQ(MatchRoute(Router::Routes(), "GET", "/api/public/traces/not-a-uuid").id, "not-a-uuid");
  EXPECT_EQ(MatchRoute(Router::Routes(), "GET", "/api/public/traces/%61bc").id, "%61bc");
  EXPECT_EQ(MatchRoute(Router::Routes(), "GET", "/api/public/traces/a%2Fb").id, "a%2Fb");
  // Exact routes capture nothing.
  EXPECT_EQ(MatchRoute(Router::Routes(), "GET", "/api/public/traces").id, "");
  EXPECT_EQ(MatchRoute(Router::Routes(), "GET", "/api/public/traces").route->pattern,
            "/api/public/traces");
}

TEST(RouteTable, PathsAreMatchedExactlyAsSent) {
  for (const char* path : {
           "/no/such/route", "/", "",
           "/healthz/",                     // a trailing slash is another path
           "/api/public/traces/",           // an empty {id}
           "/api/public/traces/abc/",       // {id} is one segment
           "/api/public/traces/abc/extra",  //
           "//healthz",                     //
           "/HEALTHZ",                      // case-sensitive
           "/heal%74hz",                    // not percent-decoded
           "/healthz?x=1",                  // the router gets the path without the query
           "/v1/l/batch/",                  //
           "/api/public",                   // a prefix of routes is not a route
           "/api/public/tracesx",           //
           "http://host/healthz",           // absolute-form targets are not routed
       }) {
    const auto m = MatchRoute(Router::Routes(), "GET", path);
    EXPECT_EQ(m.outcome, RouteMatch::Outcome::kNotFound) << path;
    EXPECT_EQ(m.route, nullptr) << path;
  }
}

TEST(RouteTable, GetRoutesAnswerHeadAndOtherMethodsAre405WithAllow) {
  EXPECT_EQ(MatchRoute(Router::Routes(), "HEAD", "/healthz").outcome, RouteMatch::Outcome::kFound);
  EXPECT_EQ(MatchRoute(Router::Routes(), "HEAD", std::string("/api/public/traces/") + kTraceId).id,
            kTraceId);

  const auto post_on_get = MatchRoute(Router::Routes(), "POST", "/healthz");
  EXPECT_EQ(post_on_get.outcome, RouteMatch::Outcome::kMethodNotAllowed);
  EXPECT_EQ(post_on_get.allow, "GET");
  const auto delete_on_post = MatchRoute(Router::Routes(), "DELETE", "/v1/l/batch");
  EXPECT_EQ(delete_on_post.outcome, RouteMatch::Outcome::kMethodNotAllowed);
  EXPECT_EQ(delete_on_post.allow, "POST");
  // HEAD is GET without the body; a POST route does not answer it.
  EXPECT_EQ(MatchRoute(Router::Routes(), "HEAD", "/v1/l/batch").allow, "POST");
  EXPECT_EQ(MatchRoute(Router::Routes(), "get", "/healthz").outcome,
            RouteMatch::Outcome::kMethodNotAllowed)
      << "methods are case-sensitive";
  EXPECT_EQ(MatchRoute(Router::Routes(), "PUT", "/api/public/traces/x").allow, "GET");
}

// A path served under several methods is several rows; 405 names them all.
TEST(RouteTable, APathWithSeveralMethods) {
  const Route routes[] = {
      {"GET", "/things", Access::kOpen, nullptr},
      {"POST", "/things", Access::kCredentials, nullptr},
      {"GET", "/things/{id}", Access::kOpen, nullptr},
      {"DELETE", "/things/{id}", Access::kCredentials, nullptr},
      {"GET", "/things/special", Access::kCredentials, nullptr},  // shadowed by {id} above
  };
  EXPECT_EQ(MatchRoute(routes, "POST", "/things").route, &routes[1]);
  EXPECT_EQ(MatchRoute(routes, "HEAD", "/things").route, &routes[0]);
  const auto put = MatchRoute(routes, "PUT", "/things");
  EXPECT_EQ(put.outcome, RouteMatch::Outcome::kMethodNotAllowed);
  EXPECT_EQ(put.allow, "GET, POST");
  EXPECT_EQ(MatchRoute(routes, "PATCH", "/things/7").allow, "GET, DELETE");
  const auto del = MatchRoute(routes, "DELETE", "/things/7");
  EXPECT_EQ(del.route, &routes[3]);
  EXPECT_EQ(del.id, "7");
  EXPECT_EQ(MatchRoute(routes, "GET", "/things/special").route, &routes[2]) << "the first wins";
}

// ---- The router ----

std::unique_ptr<wal::Log> OpenLog(const std::string& dir) {
  wal::Options options;
  options.dir = dir;
  options.sync = false;  // nothing here is about durability
  options.min_free_disk_bytes = 0;
  auto log = wal::Log::Open(options);
  if (!log) throw std::runtime_error(log.error().message);
  return std::move(*log);
}

Config RouterConfig(bool key_pair, bool compat) {
  Config c;
  c.bearer_token = "tok";
  if (key_pair) {
    c.public_key = "pk";
    c.secret_key = "sk";
  }
  c.allow_unauthenticated_compat = compat;
  c.default_project_id = "default";
  return c;
}

// A router with everything it routes to; only the database is missing.
class RouterTest : public ::testing::Test {
 protected:
  explicit RouterTest(Config config = RouterConfig(true, false))
      : log_(OpenLog(dir_.path() + "/wal")),
        projector_(*log_, projector::Options{}),
        pool_({"postgresql://nobody@127.0.0.1:1/none", 1, std::chrono::milliseconds(100),
               std::chrono::milliseconds(100)}),
        traces_(pool_, "default"),
        metrics_(pool_, "default"),
        // One request per credential, then a refill of one a second.
        limiter_(1, 1),
        ingestor_(*log_, "default"),
        blocking_(1),
        router_(config, *log_, projector_, ingestor_, traces_, metrics_, limiter_, blocking_) {}

  HttpRequestView View(std::string_view method, std::string_view path,
                       std::string_view authorization = {}, std::string_view body = {}) const {
    HttpRequestView view;
    view.method = method;
    view.path = path;
    view.content_type = "application/json";
    view.authorization = authorization;
    view.body = body;
    return view;
  }

  // Handle's answer, on whatever thread it comes.
  common::ApiResponse Call(std::string_view method, std::string_view path,
                           std::string_view authorization = {}, std::string_view body = {}) {
    auto answer = std::make_shared<std::promise<common::ApiResponse>>();
    auto future = answer->get_future();
    router_.Handle(View(method, path, authorization, body),
                   [answer](common::ApiResponse r) { answer->set_value(std::move(r)); });
    if (future.wait_for(testing::kWaitTimeout) != std::future_status::ready) {
      ADD_FAILURE() << method << " " << path << ": no answer";
      return {0, {}, {}};
    }
    return future.get();
  }

  // Whether RefuseCredentials refuses the request, on its header alone.
  bool Refused(std::string_view method, std::string_view path,
               std::string_view authorization = {}) const {
    const auto refusal = router_.RefuseCredentials(View(method, path, authorization, "ignored"));
    if (refusal) {
      EXPECT_EQ(refusal->status, 401);
      EXPECT_EQ(refusal->body, R"({"message":"Unauthorized","code":"UNAUTHORIZED"})");
    }
    return refusal.has_value();
  }

  // Empties the credential's bucket as of an hour from now, so that the real clock refills
  // nothing while the test runs.
  void ExhaustRateLimit(const std::string& principal) {
    const auto later = RateLimiter::Clock::now() + std::chrono::hours(1);
    while (limiter_.Check(principal, "bearer:***", later).allowed) {
    }
  }

  testing::TempDir dir_;
  std::unique_ptr<wal::Log> log_;
  projector::Projector projector_;
  query::ConnectionPool pool_;
  query::TraceQueries traces_;
  query::MetricQueries metrics_;
  RateLimiter limiter_;
  ingest::Ingestor ingestor_;
  boost::asio::thread_pool blocking_;
  Router router_;
};

TEST_F(RouterTest, UnknownPathIs404BeforeAnythingElse) {
  for (const char* method : {"GET", "POST", "DELETE"}) {
    const auto r = Call(method, "/no/such/route");
    EXPECT_EQ(r.status, 404);
    EXPECT_EQ(r.body, R"({"message":"no route for /no/such/route","code":"NOT_FOUND"})");
    EXPECT_FALSE(Refused(method, "/no/such/route")) << "answered 404 by Handle, not 401";
  }
}

TEST_F(RouterTest, WrongMethodIs405WithAllowBeforeCredentials) {
  const auto r = Call("DELETE", "/v1/l/batch");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.body,
            R"({"message":"DELETE is not allowed on /v1/l/batch","code":"METHOD_NOT_ALLOWED"})");
  ASSERT_EQ(r.headers.size(), 1u);
  EXPECT_EQ(r.headers[0], (std::pair<std::string, std::string>{"Allow", "POST"}));
  EXPECT_FALSE(Refused("DELETE", "/v1/l/batch")) << "answered 405 by Handle, not 401";
  EXPECT_EQ(Call("POST", "/api/public/traces").headers.at(0).second, "GET");
}

// For every route and every kind of credential: RefuseCredentials, which decides on the header
// before the body is read, refuses exactly the requests that Handle answers 401.
TEST_F(RouterTest, CredentialsAreCheckedPerRouteOnTheHeaderAlone) {
  for (const Route& route : Router::Routes()) {
    const std::string path = PathOf(route);
    for (const char* authorization :
         {"", "Bearer wrong", "Basic cGs6d3Jvbmc=" /* pk:wrong */, "Token tok"}) {
      const bool refused = Refused(route.method, path, authorization);
      EXPECT_EQ(refused, route.access != Access::kOpen) << route.pattern << " " << authorization;
      if (refused) {
        const auto r = Call(route.method, path, authorization);
        EXPECT_EQ(r.status, 401) << route.pattern << " " << authorization;
        EXPECT_EQ(r.body, R"({"message":"Unauthorized","code":"UNAUTHORIZED"})");
        EXPECT_TRUE(r.headers.empty()) << "no WWW-Authenticate";
      }
    }
    for (const char* authorization : {kBearer, kBasic}) {
      EXPECT_FALSE(Refused(route.method, path, authorization))
          << route.pattern << " " << authorization;
    }
  }
}

TEST_F(RouterTest, OpenRoutesNeedNoCredentials) {
  const auto health = Call("GET", "/healthz");
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(health.body, R"({"status":"ok"})");
  EXPECT_EQ(Call("HEAD", "/healthz").status, 200);
  // Ready with an empty WAL and no database yet: ingest is available.
  const auto ready = Call("GET", "/readyz", "Bearer wrong");
  EXPECT_EQ(ready.status, 200);
  EXPECT_EQ(ready.body, R"({"status":"ready","wal":{"acceptingWrites":true,"lastSequence":0},)"
                        R"("postgres":"down","projector":{"projectedSequence":0,"lagRecords":0,)"
                        R"("quarantinedEvents":0,"halted":{}}})");
}

TEST_F(RouterTest, RoutesReachTheirHandlers) {
  // An acknowledged batch is in the WAL, and the readiness and status routes say so.
  const auto ack = Call("POST", "/v1/l/batch", kBearer, kTraceBatch);
  EXPECT_EQ(ack.status, 200) << ack.body;
  EXPECT_EQ(ack.body, R"({"message":"Request Successful."})");
  const auto metric = Call("POST", "/v1/metrics/batch", kBasic, kMetricBatch);
  EXPECT_EQ(metric.status, 200) << metric.body;
  EXPECT_NE(Call("GET", "/readyz").body.find(R"("lastSequence":2},)"), std::string::npos);
  const auto status = Call("GET", "/api/internal/status", kBearer);
  EXPECT_EQ(status.status, 200);
  EXPECT_NE(status.body.find(R"("lastSequence":2,)"), std::string::npos) << status.body;
  EXPECT_NE(status.body.find(R"("lagRecords":2,)"), std::string::npos) << status.body;
  // Bad input is the handler's answer, after routing.
  EXPECT_EQ(Call("POST", "/v1/l/batch", kBearer, "{not json").status, 400);
  EXPECT_NE(Call("GET", "/api/public/projects", kBasic).body.find(R"("id":"default")"),
            std::string::npos);
  EXPECT_EQ(Call("GET", "/api/internal/rate_limit_stats", kBearer).status, 200);
}

TEST_F(RouterTest, RateLimitComesAfterCredentialsAndOnlyOnQueryRoutes) {
  ExhaustRateLimit("bearer");
  for (const Route& route : Router::Routes()) {
    if (route.access != Access::kRateLimited) continue;
    const auto limited = Call(route.method, PathOf(route), kBearer);
    EXPECT_EQ(limited.status, 429) << route.pattern;
    ASSERT_EQ(limited.headers.size(), 1u);
    EXPECT_EQ(limited.headers[0].first, "Retry-After");
    // No credentials: 401, and nothing is taken from any bucket.
    EXPECT_EQ(Call(route.method, PathOf(route)).status, 401) << route.pattern;
  }
  // Ingest and the internal routes are not rate-limited.
  EXPECT_EQ(Call("POST", "/v1/l/batch", kBearer, kTraceBatch).status, 200);
  EXPECT_EQ(Call("GET", "/api/internal/status", kBearer).status, 200);
  const auto stats = Call("GET", "/api/internal/rate_limit_stats", kBearer);
  EXPECT_NE(stats.body.find(R"("token":"bearer:***")"), std::string::npos) << stats.body;
  EXPECT_EQ(stats.body.find("tok\""), std::string::npos) << "the token itself is never shown";
}

class CompatRouterTest : public RouterTest {
 protected:
  CompatRouterTest() : RouterTest(RouterConfig(false, true)) {}
};

TEST_F(CompatRouterTest, CompatModeOpensOnlyTheProjectsRoute) {
  for (const char* authorization : {"", "Basic YW55OnRoaW5n" /* any:thing */}) {
    EXPECT_FALSE(Refused("GET", "/api/public/projects", authorization));
    EXPECT_EQ(Call("GET", "/api/public/projects", authorization).status, 200);
  }
  // A wrong bearer token is still refused, and no other route opens.
  EXPECT_TRUE(Refused("GET", "/api/public/projects", "Bearer wrong"));
  EXPECT_EQ(Call("GET", "/api/public/projects", "Bearer wrong").status, 401);
  EXPECT_TRUE(Refused("GET", "/api/public/traces"));
  EXPECT_TRUE(Refused("POST", "/v1/l/batch"));
}

class CompatWithKeyPairRouterTest : public RouterTest {
 protected:
  CompatWithKeyPairRouterTest() : RouterTest(RouterConfig(true, true)) {}
};

TEST_F(CompatWithKeyPairRouterTest, AKeyPairKeepsTheProjectsRouteClosed) {
  EXPECT_TRUE(Refused("GET", "/api/public/projects"));
  EXPECT_EQ(Call("GET", "/api/public/projects").status, 401);
  EXPECT_EQ(Call("GET", "/api/public/projects", kBasic).status, 200);
}

}  // namespace
}  // namespace xtrace::server
