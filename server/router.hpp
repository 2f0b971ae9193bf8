#pragma once
// Maps a request to its handler: route match, method check, authentication, then the handler,
// each on the right thread. Cheap handlers run inline on the I/O thread; ingest completes from
// the WAL committer; anything that blocks (SQL) is posted to the blocking pool.

#include <boost/asio/thread_pool.hpp>

#include <functional>
#include <optional>
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

class Router {
 public:
  Router(const Config& config, wal::Log& log, projector::Projector& projector,
         ingest::Ingestor& ingestor, query::TraceQueries& traces, query::MetricQueries& metrics,
         RateLimiter& limiter, boost::asio::thread_pool& blocking);

  void Handle(const HttpRequestView& request, Reply reply);

  // The 401 a request gets, decided on its header alone (`request.body` is not looked at), so
  // that a request with a body is refused before the body is read. nullopt when the request goes
  // on to Handle: it has the credentials its route needs, or its route needs none, or it will be
  // answered 404 or 405 there (those checks come first, as in Handle).
  std::optional<common::ApiResponse> RefuseCredentials(const HttpRequestView& request) const;

 private:
  // Authentication for a protected route; `allowed` also when the unauthenticated-compatibility
  // mode opens a route that allows it.
  AuthResult Authorize(std::string_view authorization, bool compat_openable) const;

  common::ApiResponse Ready() const;
  common::ApiResponse Status() const;
  common::ApiResponse RateLimitStats() const;

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
