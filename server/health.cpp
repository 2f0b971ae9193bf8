#include "server/health.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "common/json.hpp"

namespace xtrace::server {
namespace {

// Streams that cannot go on for a reason other than PostgreSQL (an undecodable record, a WAL
// read error), by name, with the reason; {} when every stream can.
boost::json::object HaltedStreams(const projector::Status& st) {
  boost::json::object halted;
  for (const auto& s : st.streams) {
    if (!s.halted.empty()) halted[s.name] = s.halted;
  }
  return halted;
}

}  // namespace

common::ApiResponse HealthResponse() {
  return common::ApiResponse::Json(R"({"status":"ok"})");
}

uint64_t LagRecords(uint64_t wal_last_seq, uint64_t projected_seq) {
  return wal_last_seq > projected_seq ? wal_last_seq - projected_seq : 0;
}

common::ApiResponse ReadyResponse(const projector::Status& projector, uint64_t wal_last_seq,
                                  bool wal_accepting_writes) {
  boost::json::object body;
  body["status"] = wal_accepting_writes ? "ready" : "not_ready";
  body["wal"] = {{"acceptingWrites", wal_accepting_writes}, {"lastSequence", wal_last_seq}};
  body["postgres"] = projector.database_up ? "up" : "down";
  body["projector"] = {{"projectedSequence", projector.projected_seq},
                       {"lagRecords", LagRecords(wal_last_seq, projector.projected_seq)},
                       {"quarantinedEvents", projector.quarantined_records},
                       {"halted", HaltedStreams(projector)}};
  return common::ApiResponse::Json(boost::json::serialize(body), wal_accepting_writes ? 200 : 503);
}

common::ApiResponse StatusResponse(std::string_view wal_id, const wal::Stats& wal,
                                   const projector::Status& projector, double lag_seconds) {
  boost::json::object body;
  body["wal"] = {{"id", wal_id},
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
                       {"lagRecords", LagRecords(wal.last_seq, projector.projected_seq)},
                       {"lagSeconds", lag_seconds},
                       {"postgres", projector.database_up ? "up" : "down"},
                       {"quarantinedEvents", projector.quarantined_records},
                       {"halted", HaltedStreams(projector)},
                       {"streams", std::move(streams)}};
  return common::ApiResponse::Json(common::SerializeJson(body));
}

common::ApiResponse RateLimitStatsResponse(const RateLimiter::Stats& s) {
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
  return common::ApiResponse::Json(common::SerializeJson(body));
}

}  // namespace xtrace::server
