#pragma once
// HTTP/1.1 framing rules of the front end: the header limits a request parser enforces, and the
// error a request gets when its framing is refused (bad request line, header, Content-Length,
// Transfer-Encoding or chunk; target or header over its limit; body over its limit). The parsing
// itself is Beast's; this module decides what the client is told.

#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/system/error_code.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "common/error.hpp"

namespace xtrace::server {

// Longest request target (path and query string); longer is 414.
inline constexpr size_t kMaxTargetBytes = 8 * 1024;
// Largest request header (request line and fields); larger is 431, or 414 when the request line
// alone does not fit.
inline constexpr uint32_t kMaxHeaderBytes = 32 * 1024;

using RequestParser = boost::beast::http::request_parser<boost::beast::http::string_body>;

// Applies the header limit and the body limit to a fresh parser.
void ApplyLimits(RequestParser& parser, uint64_t body_limit);

// What to answer after reading a request failed with `ec`; nullopt when there is nobody to answer
// (the peer closed or reset the connection, or the read timed out), and the connection just closes.
// `unparsed` is what the read buffered but the parser did not consume.
std::optional<common::Error> ReadFailure(const boost::system::error_code& ec,
                                         const RequestParser& parser, std::string_view unparsed,
                                         uint64_t body_limit);

// Checks of a header the parser accepted that Beast leaves to the server: the target's length,
// and a Transfer-Encoding that does not end in `chunked` (a request body cannot be delimited by
// the end of the connection, so such a request cannot be framed).
std::optional<common::Error> CheckHeader(const RequestParser& parser);

}  // namespace xtrace::server
