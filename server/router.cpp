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
  kTraceGet
};

struct Match {
  Route route = Route::kNone;
  const char* method = nullptr;  // the one method the route answers (GET also answers HEAD)
  bool authenticated = true;
  std::string_view param;  // {traceId}
};

Match MatchRoute(std::string_view path) {
  constexpr std::string_view kTracesPrefix = "/api/public/traces/";
  if (path == "/healthz") return {Route::kHealth, "GET", false, {}};
  if (path == "/readyz") return {Route::kReady, "GET", false, {}};
  if (path == "/v1/l/batch") return {Route::kTraceBatch, "POST", true, {}};
  if (path == "/v1/metrics/batch") return {Route::kMetricBatch, "POST", true, {}};
  if (path == "/api/internal/status") return {Route::kStatus, "GET", true, {}};
  if (path == "/api/public/traces") return {Route::kTraceList, "GET", true, {}};
  if (path.starts_with(kTracesPrefix) && path.size() > kTracesPrefix.size() &&
      path.find('/', kTracesPrefix.size()) == std::string_view::npos) {
    return {Route::kTraceGet, "GET", true, path.substr(kTracesPrefix.size())};
  }
  return {};
}

ApiResponse FromResult(const common::Result<ApiResponse>& result) {
  return result ? *result : ErrorResponse(result.error());
}

}  // namespace

Router::Router(const Config& config, wal::Log& log, projector::Projector& projector,
               ingest::Ingestor& ingestor, query::TraceQueries& traces,
               boost::asio::thread_pool& blocking)
    : credentials_{config.bearer_token, config.public_key, config.secret_key},
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
  body["projector"] = {{"projectedSequence", projector.projected_seq},
                       {"lagRecords", lag},
                       {"lagSeconds", lag_seconds},
                       {"postgres", projector.database_up ? "up" : "down"},
                       {"quarantinedEvents", projector.skipped_records}};
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
                       {"lagRecords", last > st.projected_seq ? last - st.projected_seq : 0}};
  return ApiResponse::Json(boost::json::serialize(body), accepting ? 200 : 503);
}

void Router::Handle(const HttpRequestView& request, Reply reply) {
  const Match match = MatchRoute(request.path);
  if (match.route == Route::kNone) {
    reply(ErrorResponse({ErrorCode::kNotFound, "no route for " + std::string(request.path), {}}));
    return;
  }
  const bool head_for_get = request.method == "HEAD" && std::string_view(match.method) == "GET";
  if (request.method != match.method && !head_for_get) {
    auto response = ErrorResponse(
        {ErrorCode::kMethodNotAllowed,
         std::string(request.method) + " is not allowed on " + std::string(request.path),
         {}});
    response.headers.emplace_back("Allow", match.method);
    reply(std::move(response));
    return;
  }
  if (match.authenticated && !Authenticate(request.authorization, credentials_).allowed) {
    reply(ErrorResponse({ErrorCode::kUnauthorized, "Unauthorized", {}}));
    return;
  }

  switch (match.route) {
    case Route::kHealth: reply(ApiResponse::Json(R"({"status":"ok"})")); return;
    case Route::kReady: reply(Ready()); return;
    case Route::kTraceBatch: {
      const common::ApiRequest api{request.path, request.query, request.content_type, request.body};
      ingestor_.TraceBatch(api, [reply](common::Result<ApiResponse> r) { reply(FromResult(r)); });
      return;
    }
    case Route::kMetricBatch: {
      const common::ApiRequest api{request.path, request.query, request.content_type, request.body};
      ingestor_.MetricBatch(api, [reply](common::Result<ApiResponse> r) { reply(FromResult(r)); });
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
    case Route::kNone: break;
  }
}

}  // namespace xtrace::server
