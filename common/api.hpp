#pragma once
// The small request/response pair that handlers in ingest/ and query/ work on. It carries only
// what a handler needs, so handlers are plain functions testable without a socket; the server
// fills it from Beast messages and writes the response back.

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace xtrace::common {

struct ApiRequest {
  std::string_view path;   // path as sent (not percent-decoded), no query string
  std::string_view query;  // raw query string after '?', not decoded
  std::string_view content_type;
  std::string_view body;
};

struct ApiResponse {
  int status = 200;
  std::string body;  // JSON text
  std::vector<std::pair<std::string, std::string>> headers;

  static ApiResponse Json(std::string json, int status = 200) {
    return ApiResponse{status, std::move(json), {}};
  }
};

}  // namespace xtrace::common
