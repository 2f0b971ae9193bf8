#include "server/router.hpp"

#include <boost/asio/post.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "common/json.hpp"
#include "schema/codec.hpp"
#include "server/error_mapping.hpp"

namespace xtrace::server {
namespace {

using common::ApiResponse;
using common::Error;
using common::ErrorCode;

enum class Route {
  kNone,
  kHealth,
  kReady,
  kStatus,
  kTraceBatch,
  kMetricBatch,
  kTraceList,
  kTraceGet,
  kMetricNames,
  kMetricQuery,
  kMetricDaily,
  kProjects,
  kRateLimitStats
};

// Who may call a route.
enum class Access {
  kOpen,           // no credentials
  kCredentials,    // Bearer or Basic
  kRateLimited,    // Bearer or Basic, then the per-credential rate limit
  kCompatOpenable  // Bearer or Basic, or open in the unauthenticated-compatibility mode
};

struct Match {
  Route route = Route::kNone;
  const char* method = nullptr;  // the one method the route answers (GET also answers HEAD)
  Access access = Access::kCredentials;
  std::string_view param;  // {traceId}
};

Match MatchRoute(std::string_view path) {
  constexpr std::string_view kTracesPrefix = "/api/public/traces/";
  if (path == "/healthz") return {Route::kHealth, "GET", Access::kOpen, {}};
  if (path == "/readyz") return {Route::kReady, "GET", Access::kOpen, {}};
  if (path == "/v1/l/batch") return {Route::kTraceBatch, "POST", Access::kCredentials, {}};
  if (path == "/v1/metrics/batch") return {Route::kMetricBatch, "POST", Access::kCredentials, {}};
  if (path == "/api/internal/status") return {Route::kStatus, "GET", Access::kCredentials, {}};
  if (path == "/api/internal/rate_limit_stats") {
    return {Route::kRateLimitStats, "GET", Access::kCredentials, {}};
  }
  if (path == "/api/public/projects") return {Route::kProjects, "GET", Access::kCompatOpenable, {}};
  if (path == "/api/public/traces") return {Route::kTraceList, "GET", Access::kRateLimited, {}};
  if (path == "/api/public/metrics/daily") {
    return {Route::kMetricDaily, "GET", Access::kRateLimited, {}};
  }
  if (path == "/api/public/metrics/query") {
    return {Route::kMetricQuery, "GET", Access::kRateLimited, {}};
  }
  if (path == "/api/public/metrics/names") {
    return {Route::kMetricNames, "GET", Access::kRateLimited, {}};
  }
  if (path.starts_with(kTracesPrefix) && path.size() > kTracesPrefix.size() &&
      path.find('/', kTracesPrefix.size()) == std::string_view::npos) {
    return {Route::kTraceGet, "GET", Access::kRateLimited, path.substr(kTracesPrefix.size())};
  }
  return {};
}

// Streams that cannot go on for a reason other than PostgreSQL (an undecodable record, a WAL
// read error), by name, with the reason; {} when every stream can.
boost::json::object HaltedStreams(const projector::Status& st) {
  boost::json::object halted;
  for (const auto& s : st.streams) {
    if (!s.halted.empty()) halted[s.name] = s.halted;
  }
  return halted;
}

// A route answers its one method, and GET routes also answer HEAD.
bool MethodAllowed(const Match& match, std::string_view method) {
  return method == match.method || (method == "HEAD" && std::string_view(match.method) == "GET");
}

ApiResponse Unauthorized() {
  return ErrorResponse({ErrorCode::kUnauthorized, "Unauthorized", {}});
}

// Takes the result by value and moves the body out: a response body can be large (a trace
// detail with many observations), and it is never copied on its way to the socket.
ApiResponse FromResult(common::Result<ApiResponse> result) {
  return result ? std::move(*result) : ErrorResponse(result.error());
}

}  // namespace

Router::Router(const Config& config, wal::Log& log, projector::Projector& projector,
               ingest::Ingestor& ingestor, query::TraceQueries& traces,
               query::MetricQueries& metrics, RateLimiter& limiter,
               boost::asio::thread_pool& blocking)
    : credentials_{config.bearer_token, config.public_key, config.secret_key},
      allow_compat_(config.allow_unauthenticated_compat),
      project_id_(config.default_project_id),
      metrics_(metrics),
      limiter_(limiter),
      log_(log),
      projector_(projector),
      ingestor_(ingestor),
      traces_(traces),
      blocking_(blocking) {}

ApiResponse Router::Status() const {
  const auto wal = log_.GetStats();
  const auto projector = projector_.status();
  const uint64_t lag =
      wal.last_seq > projector.projected_seq ? wal.last_seq - projector.projected_seq : 0;
  double lag_seconds = 0;
  if (lag > 0) {
    // Age of the oldest record not yet projected.
    auto next = log_.Read(projector.projected_seq, 1, 1);
    if (next && !next->empty()) {
      if (auto record = schema::DecodeRecord(next->front().bytes)) {
        lag_seconds = std::chrono::duration<double>(common::Now() - record->received_at).count();
      }
    }
  }
  boost::json::object body;
  body["wal"] = {{"id", log_.id().ToString()},
                 {"firstSequence", wal.first_seq},
                 {"lastSequence", wal.last_seq},
                 {"diskBytes", wal.disk_bytes},
                 {"backlogBytes", wal.backlog_bytes},
                 {"freeDiskBytes", wal.free_disk_bytes},
                 {"acceptingWrites", wal.accepting_writes},
                 {"refusal", wal.refusal.empty() ? boost::json::value(nullptr)
                                                 : boost::json::value(wal.refusal)},
                 {"commits", wal.commits},
                 {"committedRecords", wal.committed_records},
                 {"trimmedRecords", wal.trimmed_records}};
  boost::json::object streams;
  for (const auto& s : projector.streams) streams[s.name] = s.projected_seq;
  body["projector"] = {{"projectedSequence", projector.projected_seq},
                       {"lagRecords", lag},
                       {"lagSeconds", lag_seconds},
                       {"postgres", projector.database_up ? "up" : "down"},
                       {"quarantinedEvents", projector.quarantined_records},
                       {"halted", HaltedStreams(projector)},
                       {"streams", std::move(streams)}};
  return ApiResponse::Json(common::SerializeJson(body));
}

ApiResponse Router::RateLimitStats() const {
  const auto s = limiter_.GetStats();
  // Keys in the reference's (sorted) order.
  boost::json::array top;
  for (const auto& [label, count] : s.top_rejected) {
    top.emplace_back(boost::json::object{{"count", count}, {"token", label}});
  }
  const uint64_t total = s.total_allowed + s.total_rejected;
  boost::json::object body{
      {"rate_limit_burst", s.burst},
      {"rate_limit_qps", s.qps},
      {"rejection_rate", total == 0 ? 0.0 : static_cast<double>(s.total_rejected) / total},
      {"top_rejected_tokens", std::move(top)},
      {"total_allowed", s.total_allowed},
      {"total_rejected", s.total_rejected}};
  return ApiResponse::Json(common::SerializeJson(body));
}

ApiResponse Router::Ready() const {
  // Ready means "can accept writes": PostgreSQL being down does not take the node out of a load
  // balancer, because the WAL keeps ingest available; the body says how far projection lags.
  const auto st = projector_.status();
  const uint64_t last = log_.LastSequence();
  const bool accepting = log_.AcceptingWrites();
  boost::json::object body;
  body["status"] = accepting ? "ready" : "not_ready";
  body["wal"] = {{"acceptingWrites", accepting}, {"lastSequence", last}};
  body["postgres"] = st.database_up ? "up" : "down";
  body["projector"] = {{"projectedSequence", st.projected_seq},
                       {"lagRecords", last > st.projected_seq ? last - st.projected_seq : 0},
                       {"quarantinedEvents", st.quarantined_records},
                       {"halted", HaltedStreams(st)}};
  return ApiResponse::Json(boost::json::serialize(body), accepting ? 200 : 503);
}

AuthResult Router::Authorize(std::string_view authorization, bool compat_openable) const {
  AuthResult auth = Authenticate(authorization, credentials_);
  // Compatibility mode (XTRACE_ALLOW_UNAUTHENTICATED_COMPAT, and only with no key pair
  // configured) opens the projects route to clients that send no or Basic credentials; a
  // wrong Bearer token is still refused.
  if (compat_openable && allow_compat_ && !credentials_.public_key &&
      auth.kind != AuthKind::kBearer) {
    auth.allowed = true;
  }
  return auth;
}

std::optional<ApiResponse> Router::RefuseCredentials(const HttpRequestView& request) const {
  const Match match = MatchRoute(request.path);
  if (match.route == Route::kNone || !MethodAllowed(match, request.method) ||
      match.access == Access::kOpen) {
    return std::nullopt;
  }
  if (Authorize(request.authorization, match.access == Access::kCompatOpenable).allowed) {
    return std::nullopt;
  }
  return Unauthorized();
}

void Router::Handle(const HttpRequestView& request, Reply reply) {
  const Match match = MatchRoute(request.path);
  if (match.route == Route::kNone) {
    reply(ErrorResponse({ErrorCode::kNotFound, "no route for " + std::string(request.path), {}}));
    return;
  }
  if (!MethodAllowed(match, request.method)) {
    auto response = ErrorResponse(
        {ErrorCode::kMethodNotAllowed,
         std::string(request.method) + " is not allowed on " + std::string(request.path),
         {}});
    response.headers.emplace_back("Allow", match.method);
    reply(std::move(response));
    return;
  }
  if (match.access != Access::kOpen) {
    const AuthResult auth =
        Authorize(request.authorization, match.access == Access::kCompatOpenable);
    if (!auth.allowed) {
      reply(Unauthorized());
      return;
    }
    if (match.access == Access::kRateLimited) {
      // Keyed by credential; the label never contains a secret (the bearer token stays hidden).
      const std::string label = auth.kind == AuthKind::kBearer ? "bearer:***" : auth.principal;
      const auto decision = limiter_.Check(auth.principal, label, RateLimiter::Clock::now());
      if (!decision.allowed) {
        reply(RateLimitedResponse(
            decision.retry_after_seconds,
            common::Now() + std::chrono::seconds(decision.retry_after_seconds)));
        return;
      }
    }
  }

  switch (match.route) {
    case Route::kHealth: reply(ApiResponse::Json(R"({"status":"ok"})")); return;
    case Route::kReady: reply(Ready()); return;
    case Route::kTraceBatch: {
      const common::ApiRequest api{request.path, request.query, request.content_type, request.body};
      ingestor_.TraceBatch(
          api, [reply](common::Result<ApiResponse> r) { reply(FromResult(std::move(r))); });
      return;
    }
    case Route::kMetricBatch: {
      const common::ApiRequest api{request.path, request.query, request.content_type, request.body};
      ingestor_.MetricBatch(
          api, [reply](common::Result<ApiResponse> r) { reply(FromResult(std::move(r))); });
      return;
    }
    case Route::kStatus:
      // Reads one WAL record to date the oldest unprojected one: off the I/O thread.
      boost::asio::post(blocking_, [this, reply] { reply(Status()); });
      return;
    case Route::kTraceList:
      boost::asio::post(blocking_, [this, request, reply] {
        const common::ApiRequest api{request.path, request.query, request.content_type, {}};
        reply(FromResult(traces_.List(api)));
      });
      return;
    case Route::kTraceGet:
      boost::asio::post(blocking_,
                        [this, id = match.param, reply] { reply(FromResult(traces_.Get(id))); });
      return;
    case Route::kMetricQuery:
      boost::asio::post(blocking_, [this, request, reply] {
        const common::ApiRequest api{request.path, request.query, request.content_type, {}};
        reply(FromResult(metrics_.Query(api, common::Now())));
      });
      return;
    case Route::kMetricDaily:
      boost::asio::post(blocking_, [this, request, reply] {
        const common::ApiRequest api{request.path, request.query, request.content_type, {}};
        reply(FromResult(metrics_.Daily(api, common::Now())));
      });
      return;
    case Route::kMetricNames:
      boost::asio::post(blocking_, [this, reply] { reply(FromResult(metrics_.Names())); });
      return;
    case Route::kProjects: reply(query::ProjectsResponse(project_id_, common::Now())); return;
    case Route::kRateLimitStats: reply(RateLimitStats()); return;
    case Route::kNone: break;
  }
}

}  // namespace xtrace::server
