#pragma once
// Maps a request to its handler: route match, method check, authentication, then the handler,
// each on the right thread. Cheap handlers run inline on the I/O thread; ingest completes from
// the WAL committer; anything that blocks (SQL) is posted to the blocking pool.
//
// Every route is one row of the table in Router::Routes() (router.cpp): method, path pattern,
// who may call it, and the handler. Matching is a pure function over that table (MatchRoute), so
// the order of checks (404, then 405, then 401) is decided in one place for every route.

#include <boost/asio/thread_pool.hpp>

#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "common/api.hpp"
#include "ingest/ingestor.hpp"
#include "projector/projector.hpp"
#include "query/metrics.hpp"
#include "query/traces.hpp"
#include "server/auth.hpp"
#include "server/config.hpp"
#include "server/rate_limiter.hpp"
#include "wal/log.hpp"

namespace xtrace::server {

struct HttpRequestView {
  std::string_view method;  // "GET", "POST", ...
  std::string_view path;
  std::string_view query;
  std::string_view content_type;
  std::string_view authorization;
  std::string_view body;
};

// May be called from any thread, exactly once per request.
using Reply = std::function<void(common::ApiResponse)>;

// Who may call a route.
enum class Access {
  kOpen,           // no credentials
  kCredentials,    // Bearer or Basic
  kRateLimited,    // Bearer or Basic, then the per-credential rate limit
  kCompatOpenable  // Bearer or Basic, or open in the unauthenticated-compatibility mode
};

class Router;

// What a route's handler gets: the request, and the text of its pattern's `{id}` segment (empty
// when the pattern has none). It replies exactly once, on any thread.
using RouteHandler = void(const HttpRequestView& request, std::string_view id, Reply reply);

struct Route {
  using Handler = RouteHandler Router::*;

  std::string_view method;  // the method the route answers; a GET route also answers HEAD
  // The path, matched against the request's path as sent (not percent-decoded, no query). A
  // segment `{id}` matches one non-empty segment (no '/'); everything else matches exactly, so
  // a trailing slash is another path.
  std::string_view pattern;
  Access access;
  Handler handler;
};

struct RouteMatch {
  enum class Outcome { kFound, kNotFound, kMethodNotAllowed };
  Outcome outcome = Outcome::kNotFound;
  const Route* route = nullptr;  // kFound
  std::string_view id;           // kFound: the `{id}` segment, a view into the path
  std::string allow;             // kMethodNotAllowed: the methods the path answers, ", "-joined
};

// The first route whose pattern matches `path` and which answers `method`; otherwise whether the
// path is unknown (404) or known under other methods (405).
RouteMatch MatchRoute(std::span<const Route> routes, std::string_view method,
                      std::string_view path);

class Router {
 public:
  Router(const Config& config, wal::Log& log, projector::Projector& projector,
         ingest::Ingestor& ingestor, query::TraceQueries& traces, query::MetricQueries& metrics,
         RateLimiter& limiter, boost::asio::thread_pool& blocking);

  // Every route the server answers.
  static std::span<const Route> Routes();

  void Handle(const HttpRequestView& request, Reply reply);

  // The 401 a request gets, decided on its header alone (`request.body` is not looked at), so
  // that a request with a body is refused before the body is read. nullopt when the request goes
  // on to Handle: it has the credentials its route needs, or its route needs none, or it will be
  // answered 404 or 405 there (those checks come first, as in Handle).
  std::optional<common::ApiResponse> RefuseCredentials(const HttpRequestView& request) const;

 private:
  // Authentication for a route with access other than kOpen; `allowed` also when the
  // unauthenticated-compatibility mode opens a kCompatOpenable route.
  AuthResult Authorize(std::string_view authorization, Access access) const;

  // The handlers of the route table.
  RouteHandler Health, Ready, Status, TraceBatch, MetricBatch, TraceList, TraceGet, MetricNames,
      MetricQuery, MetricDaily, Projects, RateLimitStats;

  const Credentials credentials_;
  const bool allow_compat_;
  const std::string project_id_;
  query::MetricQueries& metrics_;
  RateLimiter& limiter_;
  wal::Log& log_;
  projector::Projector& projector_;
  ingest::Ingestor& ingestor_;
  query::TraceQueries& traces_;
  boost::asio::thread_pool& blocking_;
};

}  // namespace xtrace::server
