#pragma once
// The bodies of the routes that report on the server itself (/healthz, /readyz, the status and
// rate-limit statistics routes), as pure functions of snapshots the router takes: what they
// say is decided here and unit-tested without a WAL, a projector or a socket.

#include <cstdint>
#include <string_view>

#include "common/api.hpp"
#include "projector/projector.hpp"
#include "server/rate_limiter.hpp"
#include "wal/log.hpp"

namespace xtrace::server {

// `{"status":"ok"}`: the process serves HTTP.
common::ApiResponse HealthResponse();

// 200 "ready" while the WAL accepts writes, else 503 "not_ready". PostgreSQL being down does not
// make the node unready (the WAL keeps ingest available); the body says how far projection lags.
common::ApiResponse ReadyResponse(const projector::Status& projector, uint64_t wal_last_seq,
                                  bool wal_accepting_writes);

// The WAL's and the projector's counters. `lag_seconds` is the age of the oldest record not yet
// projected (0 when there is none).
common::ApiResponse StatusResponse(std::string_view wal_id, const wal::Stats& wal,
                                   const projector::Status& projector, double lag_seconds);

// Records the WAL holds beyond what every projector stream has folded; never negative.
uint64_t LagRecords(uint64_t wal_last_seq, uint64_t projected_seq);

// The rate limiter's counters, keys in the reference's (sorted) order.
common::ApiResponse RateLimitStatsResponse(const RateLimiter::Stats& stats);

}  // namespace xtrace::server
