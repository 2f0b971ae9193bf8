#include "server/http_framing.hpp"

#include <boost/beast/http/error.hpp>

#include <string>

namespace xtrace::server {
namespace {

namespace http = boost::beast::http;
using common::Error;
using common::ErrorCode;

Error Malformed(std::string why, std::string field = {}) {
  return {ErrorCode::kMalformedRequest, "malformed HTTP request: " + std::move(why),
          std::move(field)};
}

Error TargetTooLong() {
  return {ErrorCode::kUriTooLong,
          "request target exceeds " + std::to_string(kMaxTargetBytes) + " bytes",
          {}};
}

// Length of the target in the request line that starts `bytes`, counted to the end of `bytes` when
// the line is incomplete.
size_t TargetLength(std::string_view bytes) {
  const std::string_view line = bytes.substr(0, bytes.find("\r\n"));
  const size_t method_end = line.find(' ');
  if (method_end == std::string_view::npos) return line.size();
  const std::string_view rest = line.substr(method_end + 1);
  return rest.substr(0, rest.find(' ')).size();
}

}  // namespace

void ApplyLimits(RequestParser& parser, uint64_t body_limit) {
  parser.header_limit(kMaxHeaderBytes);
  parser.body_limit(body_limit);
}

std::optional<Error> ReadFailure(const boost::system::error_code& ec, const RequestParser& parser,
                                 std::string_view unparsed, uint64_t body_limit) {
  if (ec.category() != http::make_error_code(http::error::bad_method).category()) {
    return std::nullopt;  // socket errors and the read timeout: the connection is gone or stale
  }
  switch (static_cast<http::error>(ec.value())) {
    case http::error::body_limit:
      return Error{ErrorCode::kPayloadTooLarge,
                   "request body exceeds " + std::to_string(body_limit) + " bytes",
                   {}};
    case http::error::header_limit: {
      // The parser has one limit for the whole header; an over-long target is told apart here.
      // Until the parser has consumed the request line, it is at the start of the unparsed bytes.
      const size_t target =
          parser.get().target().empty() ? TargetLength(unparsed) : parser.get().target().size();
      if (target > kMaxTargetBytes) return TargetTooLong();
      return Error{ErrorCode::kHeaderTooLarge,
                   "request header exceeds " + std::to_string(kMaxHeaderBytes) + " bytes",
                   {}};
    }
    case http::error::bad_content_length:
      return Malformed("Content-Length must be one decimal number, without Transfer-Encoding",
                       "Content-Length");
    case http::error::multiple_content_length:
      return Malformed("conflicting Content-Length values", "Content-Length");
    case http::error::bad_transfer_encoding:
      return Malformed("Transfer-Encoding must appear once, without Content-Length",
                       "Transfer-Encoding");
    case http::error::bad_chunk:
    case http::error::bad_chunk_extension:
      return Malformed("bad chunk size or chunk extension in the chunked body");
    case http::error::bad_method:
    case http::error::bad_target:
    case http::error::bad_version: return Malformed("bad request line (" + ec.message() + ")");
    case http::error::bad_line_ending:
    case http::error::bad_field:
    case http::error::bad_value:
    case http::error::bad_obs_fold: return Malformed("bad header (" + ec.message() + ")");
    default:
      // end_of_stream, partial_message: the client closed before a whole request; nobody reads
      // an answer.
      return std::nullopt;
  }
}

std::optional<Error> CheckHeader(const RequestParser& parser) {
  const auto& request = parser.get();
  if (request.target().size() > kMaxTargetBytes) return TargetTooLong();
  if (request.count(http::field::transfer_encoding) != 0 && !parser.chunked()) {
    return Malformed("Transfer-Encoding must end with chunked", "Transfer-Encoding");
  }
  return std::nullopt;
}

}  // namespace xtrace::server
