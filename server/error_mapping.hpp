#pragma once
// The one place where an error becomes an HTTP status and a JSON body
// {"message": ..., "code": ...[, "field": ...]}.

#include "common/api.hpp"
#include "common/error.hpp"

namespace xtrace::server {

common::ApiResponse ErrorResponse(const common::Error& error);

}  // namespace xtrace::server
