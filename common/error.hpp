#pragma once
// The project's one error vocabulary. Modules report failures as an ErrorCode plus a client-safe
// message (and the offending field where there is one); server/error_mapping.cpp is the single
// place that turns a code into an HTTP status and a JSON body.

#include <boost/system/result.hpp>

#include <string>
#include <utility>

namespace xtrace::common {

enum class ErrorCode {
  kMalformedJson,         // body is not JSON at all
  kInvalidField,          // well-formed JSON of the wrong shape or type
  kBadParameter,          // a query-string or path parameter does not parse
  kMalformedRequest,      // the HTTP framing does not parse (request line, header, chunks)
  kUriTooLong,            // request target over the server's limit
  kHeaderTooLarge,        // request header over the server's limit
  kPayloadTooLarge,       // body over XTRACE_MAX_REQUEST_BODY_BYTES
  kUnsupportedMediaType,  // not application/json
  kUnauthorized,
  kNotFound,
  kMethodNotAllowed,
  kTooManyRequests,
  kUnavailable,     // a dependency (PostgreSQL) cannot serve right now; retry later
  kWalFull,         // the unprojected backlog or the disk is at its limit; retry later
  kWalUnavailable,  // the WAL cannot write (I/O error, shutting down); retry later
  kInternal,
};

struct Error {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;  // safe to show to the client
  std::string field;    // JSON path or parameter name at fault; empty when not about one field

  static Error InvalidField(std::string field_path, std::string why) {
    return {ErrorCode::kInvalidField, std::move(why), std::move(field_path)};
  }
  static Error BadParameter(std::string name, std::string why) {
    return {ErrorCode::kBadParameter, std::move(why), std::move(name)};
  }
  static Error Unavailable(std::string why) {
    return {ErrorCode::kUnavailable, std::move(why), {}};
  }
  static Error Internal(std::string why) { return {ErrorCode::kInternal, std::move(why), {}}; }
};

// Thrown only by Result<T>::value() on an error: code that checks has_value() never sees it.
class ErrorException : public std::exception {
 public:
  explicit ErrorException(Error error) : error_(std::move(error)) {}
  const char* what() const noexcept override { return error_.message.c_str(); }
  const Error& error() const noexcept { return error_; }

 private:
  Error error_;
};

// Found by ADL from boost::system::result<T, Error>::value().
[[noreturn]] inline void throw_exception_from_error(const Error& e, const boost::source_location&) {
  throw ErrorException(e);
}

template <class T>
using Result = boost::system::result<T, Error>;

}  // namespace xtrace::common
