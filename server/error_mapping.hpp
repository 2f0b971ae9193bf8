#pragma once
// The one place where an error becomes an HTTP status and a JSON body
// {"message": ..., "code": ...[, "field": ...]}.

#include "common/api.hpp"
#include "common/error.hpp"
#include "common/time.hpp"

#include <cstdint>

namespace xtrace::server {

common::ApiResponse ErrorResponse(const common::Error& error);

// The rate limiter's 429, in the reference's shape (the one error body with `data` and `meta`).
common::ApiResponse RateLimitedResponse(uint32_t retry_after_seconds, common::TimePoint reset_at);

}  // namespace xtrace::server
