#include "server/router.hpp"

#include <boost/asio/post.hpp>

#include "schema/codec.hpp"
#include "server/error_mapping.hpp"
#include "server/health.hpp"

namespace xtrace::server {
namespace {

using common::ApiResponse;
using common::ErrorCode;

// Whether `path` has the shape of `pattern`, segment by segment; `id` receives the text of the
// `{id}` segment.
bool MatchPattern(std::string_view pattern, std::string_view path, std::string_view& id) {
  while (!pattern.empty()) {
    // Both sides are at a '/' here: patterns are absolute, and each step consumes one segment.
    if (!path.starts_with('/')) return false;
    pattern.remove_prefix(1);
    path.remove_prefix(1);
    const std::string_view want = pattern.substr(0, pattern.find('/'));
    const std::string_view have = path.substr(0, path.find('/'));
    if (want == "{id}") {
      if (have.empty()) return false;
      id = have;
    } else if (want != have) {
      return false;
    }
    pattern.remove_prefix(want.size());
    path.remove_prefix(have.size());
  }
  return path.empty();
}

bool Answers(const Route& route, std::string_view method) {
  return method == route.method || (method == "HEAD" && route.method == "GET");
}

ApiResponse Unauthorized() {
  return ErrorResponse({ErrorCode::kUnauthorized, "Unauthorized", {}});
}

// Takes the result by value and moves the body out: a response body can be large (a trace
// detail with many observations), and it is never copied on its way to the socket.
ApiResponse FromResult(common::Result<ApiResponse> result) {
  return result ? std::move(*result) : ErrorResponse(result.error());
}

// What a query handler sees of the request: no body.
common::ApiRequest QueryRequest(const HttpRequestView& request) {
  return {request.path, request.query, request.content_type, {}};
}

}  // namespace

RouteMatch MatchRoute(std::span<const Route> routes, std::string_view method,
                      std::string_view path) {
  RouteMatch match;
  for (const Route& route : routes) {
    std::string_view id;
    if (!MatchPattern(route.pattern, path, id)) continue;
    if (Answers(route, method)) {
      match.outcome = RouteMatch::Outcome::kFound;
      match.route = &route;
      match.id = id;
      match.allow.clear();
      return match;
    }
    match.outcome = RouteMatch::Outcome::kMethodNotAllowed;
    if (!match.allow.empty()) match.allow += ", ";
    match.allow += route.method;
  }
  return match;
}

std::span<const Route> Router::Routes() {
  using enum Access;
  // clang-format off
  static constexpr Route kRoutes[] = {
      {"GET",  "/healthz",                       kOpen,           &Router::Health},
      {"GET",  "/readyz",                        kOpen,           &Router::Ready},
      {"POST", "/v1/l/batch",                    kCredentials,    &Router::TraceBatch},
      {"POST", "/v1/metrics/batch",              kCredentials,    &Router::MetricBatch},
      {"GET",  "/api/internal/status",           kCredentials,    &Router::Status},
      {"GET",  "/api/internal/rate_limit_stats", kCredentials,    &Router::RateLimitStats},
      {"GET",  "/api/public/projects",           kCompatOpenable, &Router::Projects},
      {"GET",  "/api/public/traces",             kRateLimited,    &Router::TraceList},
      {"GET",  "/api/public/traces/{id}",        kRateLimited,    &Router::TraceGet},
      {"GET",  "/api/public/metrics/daily",      kRateLimited,    &Router::MetricDaily},
      {"GET",  "/api/public/metrics/query",      kRateLimited,    &Router::MetricQuery},
      {"GET",  "/api/public/metrics/names",      kRateLimited,    &Router::MetricNames},
  };
  // clang-format on
  return kRoutes;
}

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

AuthResult Router::Authorize(std::string_view authorization, Access access) const {
  AuthResult auth = Authenticate(authorization, credentials_);
  // Compatibility mode (XTRACE_ALLOW_UNAUTHENTICATED_COMPAT, and only with no key pair
  // configured) opens the projects route to clients that send no or Basic credentials; a
  // wrong Bearer token is still refused.
  if (access == Access::kCompatOpenable && allow_compat_ && !credentials_.public_key &&
      auth.kind != AuthKind::kBearer) {
    auth.allowed = true;
  }
  return auth;
}

std::optional<ApiResponse> Router::RefuseCredentials(const HttpRequestView& request) const {
  const RouteMatch match = MatchRoute(Routes(), request.method, request.path);
  if (match.outcome != RouteMatch::Outcome::kFound || match.route->access == Access::kOpen) {
    return std::nullopt;
  }
  if (Authorize(request.authorization, match.route->access).allowed) return std::nullopt;
  return Unauthorized();
}

void Router::Handle(const HttpRequestView& request, Reply reply) {
  const RouteMatch match = MatchRoute(Routes(), request.method, request.path);
  switch (match.outcome) {
    case RouteMatch::Outcome::kNotFound:
      reply(ErrorResponse({ErrorCode::kNotFound, "no route for " + std::string(request.path), {}}));
      return;
    case RouteMatch::Outcome::kMethodNotAllowed: {
      auto response = ErrorResponse(
          {ErrorCode::kMethodNotAllowed,
           std::string(request.method) + " is not allowed on " + std::string(request.path),
           {}});
      response.headers.emplace_back("Allow", match.allow);
      reply(std::move(response));
      return;
    }
    case RouteMatch::Outcome::kFound: break;
  }
  const Route& route = *match.route;
  if (route.access != Access::kOpen) {
    const AuthResult auth = Authorize(request.authorization, route.access);
    if (!auth.allowed) {
      reply(Unauthorized());
      return;
    }
    if (route.access == Access::kRateLimited) {
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
  (this->*route.handler)(request, match.id, std::move(reply));
}

void Router::Health(const HttpRequestView&, std::string_view, Reply reply) {
  reply(HealthResponse());
}

void Router::Ready(const HttpRequestView&, std::string_view, Reply reply) {
  // The projector first: its sequence then never exceeds the WAL's last one read after it.
  const auto projector = projector_.status();
  const uint64_t last = log_.LastSequence();
  reply(ReadyResponse(projector, last, log_.AcceptingWrites()));
}

void Router::Status(const HttpRequestView&, std::string_view, Reply reply) {
  // Reads one WAL record to date the oldest unprojected one: off the I/O thread.
  boost::asio::post(blocking_, [this, reply] {
    const auto wal = log_.GetStats();
    const auto projector = projector_.status();
    double lag_seconds = 0;
    if (LagRecords(wal.last_seq, projector.projected_seq) > 0) {
      auto next = log_.Read(projector.projected_seq, 1, 1);
      if (next && !next->empty()) {
        if (auto record = schema::DecodeRecord(next->front().bytes)) {
          lag_seconds = std::chrono::duration<double>(common::Now() - record->received_at).count();
        }
      }
    }
    reply(StatusResponse(log_.id().ToString(), wal, projector, lag_seconds));
  });
}

void Router::TraceBatch(const HttpRequestView& request, std::string_view, Reply reply) {
  const common::ApiRequest api{request.path, request.query, request.content_type, request.body};
  ingestor_.TraceBatch(api,
                       [reply](common::Result<ApiResponse> r) { reply(FromResult(std::move(r))); });
}

void Router::MetricBatch(const HttpRequestView& request, std::string_view, Reply reply) {
  const common::ApiRequest api{request.path, request.query, request.content_type, request.body};
  ingestor_.MetricBatch(
      api, [reply](common::Result<ApiResponse> r) { reply(FromResult(std::move(r))); });
}

void Router::TraceList(const HttpRequestView& request, std::string_view, Reply reply) {
  boost::asio::post(blocking_, [this, request, reply] {
    reply(FromResult(traces_.List(QueryRequest(request))));
  });
}

void Router::TraceGet(const HttpRequestView&, std::string_view id, Reply reply) {
  boost::asio::post(blocking_, [this, id, reply] { reply(FromResult(traces_.Get(id))); });
}

void Router::MetricQuery(const HttpRequestView& request, std::string_view, Reply reply) {
  boost::asio::post(blocking_, [this, request, reply] {
    reply(FromResult(metrics_.Query(QueryRequest(request), common::Now())));
  });
}

void Router::MetricDaily(const HttpRequestView& request, std::string_view, Reply reply) {
  boost::asio::post(blocking_, [this, request, reply] {
    reply(FromResult(metrics_.Daily(QueryRequest(request), common::Now())));
  });
}

void Router::MetricNames(const HttpRequestView&, std::string_view, Reply reply) {
  boost::asio::post(blocking_, [this, reply] { reply(FromResult(metrics_.Names())); });
}

void Router::Projects(const HttpRequestView&, std::string_view, Reply reply) {
  reply(query::ProjectsResponse(project_id_, common::Now()));
}

void Router::RateLimitStats(const HttpRequestView&, std::string_view, Reply reply) {
  reply(RateLimitStatsResponse(limiter_.GetStats()));
}

}  // namespace xtrace::server
