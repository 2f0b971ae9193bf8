#include "server/error_mapping.hpp"

#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

namespace xtrace::server {
namespace {

struct Mapping {
  int status;
  const char* code;
  const char* default_message;
};

Mapping MappingOf(common::ErrorCode code) {
  using common::ErrorCode;
  switch (code) {
    case ErrorCode::kMalformedJson: return {400, "BAD_REQUEST", "Bad Request"};
    case ErrorCode::kBadParameter: return {400, "BAD_REQUEST", "Bad Request"};
    case ErrorCode::kMalformedRequest: return {400, "BAD_REQUEST", "Bad Request"};
    case ErrorCode::kUriTooLong: return {414, "URI_TOO_LONG", "URI Too Long"};
    case ErrorCode::kHeaderTooLarge:
      return {431, "REQUEST_HEADER_FIELDS_TOO_LARGE", "Request Header Fields Too Large"};
    case ErrorCode::kInvalidField: return {422, "UNPROCESSABLE_ENTITY", "Unprocessable Entity"};
    case ErrorCode::kPayloadTooLarge: return {413, "PAYLOAD_TOO_LARGE", "Payload Too Large"};
    case ErrorCode::kUnsupportedMediaType:
      return {415, "UNSUPPORTED_MEDIA_TYPE", "Unsupported Media Type"};
    case ErrorCode::kUnauthorized: return {401, "UNAUTHORIZED", "Unauthorized"};
    case ErrorCode::kNotFound: return {404, "NOT_FOUND", "Not Found"};
    case ErrorCode::kMethodNotAllowed: return {405, "METHOD_NOT_ALLOWED", "Method Not Allowed"};
    case ErrorCode::kTooManyRequests: return {429, "TOO_MANY_REQUESTS", "Too Many Requests"};
    case ErrorCode::kUnavailable: return {503, "SERVICE_UNAVAILABLE", "Service Unavailable"};
    case ErrorCode::kWalFull: return {503, "WAL_FULL", "The write-ahead log is full"};
    case ErrorCode::kWalUnavailable:
      return {503, "WAL_UNAVAILABLE", "The write-ahead log cannot accept writes"};
    case ErrorCode::kInternal: break;
  }
  return {500, "INTERNAL_ERROR", "Internal Error"};
}

}  // namespace

common::ApiResponse ErrorResponse(const common::Error& error) {
  const Mapping m = MappingOf(error.code);
  boost::json::object body;
  // Internal errors never echo their detail (it is logged where it happened).
  const bool show_message = !error.message.empty() && error.code != common::ErrorCode::kInternal;
  body["message"] = show_message ? error.message : m.default_message;
  body["code"] = m.code;
  if (!error.field.empty()) body["field"] = error.field;
  auto response = common::ApiResponse::Json(boost::json::serialize(body), m.status);
  if (m.status == 503) response.headers.emplace_back("Retry-After", "1");
  return response;
}

common::ApiResponse RateLimitedResponse(uint32_t retry_after_seconds, common::TimePoint reset_at) {
  const std::string reset = common::FormatRfc3339Offset(reset_at);
  boost::json::object body{
      {"code", "TOO_MANY_REQUESTS"},
      {"data", nullptr},
      {"message", "Too Many Requests"},
      {"meta", boost::json::object{
                   {"rate_limit", boost::json::object{{"remaining", 0}, {"reset_at", reset}}}}}};
  auto response = common::ApiResponse::Json(boost::json::serialize(body), 429);
  response.headers.emplace_back("Retry-After", std::to_string(retry_after_seconds));
  return response;
}

}  // namespace xtrace::server
