// The front end's framing decisions on raw request bytes run through Beast's request parser, as
// the server's reads do: which requests are refused, with which error, and which go on.
#include <gtest/gtest.h>

#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>

#include <string>

#include "server/http_framing.hpp"

namespace xtrace::server {
namespace {

namespace http = boost::beast::http;
using common::ErrorCode;

constexpr uint64_t kBodyLimit = 1 << 20;

// Feeds `bytes` to a fresh parser in one piece and returns the server's verdict: the refusal, or
// nullopt for a request that goes on.
std::optional<common::Error> Verdict(const std::string& bytes) {
  RequestParser parser;
  ApplyLimits(parser, kBodyLimit);
  parser.eager(true);
  boost::system::error_code ec;
  const size_t used = parser.put(boost::asio::buffer(bytes), ec);
  EXPECT_NE(ec, http::error::need_more) << "incomplete test request";
  if (ec) return ReadFailure(ec, parser, std::string_view(bytes).substr(used), kBodyLimit);
  return CheckHeader(parser);
}

std::string Post(const std::string& framing, const std::string& body) {
  return "POST /v1/l/batch HTTP/1.1\r\nHost: x\r\n" + framing + "\r\n" + body;
}

void ExpectMalformed(const std::optional<common::Error>& verdict, const std::string& field) {
  ASSERT_TRUE(verdict.has_value());
  EXPECT_EQ(verdict->code, ErrorCode::kMalformedRequest);
  EXPECT_EQ(verdict->field, field);
  EXPECT_TRUE(verdict->message.starts_with("malformed HTTP request: ")) << verdict->message;
}

TEST(HttpFraming, WellFramedRequestsGoOn) {
  EXPECT_FALSE(Verdict("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_FALSE(Verdict(Post("Content-Length: 2\r\n", "{}")));
  EXPECT_FALSE(Verdict(Post("Transfer-Encoding: chunked\r\n", "2\r\n{}\r\n0\r\n\r\n")));
  // A repeated Content-Length with the same value is allowed (RFC 9110 section 8.6).
  EXPECT_FALSE(Verdict(Post("Content-Length: 2\r\nContent-Length: 2\r\n", "{}")));
}

TEST(HttpFraming, MalformedFramingIsABadRequest) {
  ExpectMalformed(Verdict(Post("Transfer-Encoding: chunked\r\n", "zz\r\n{}\r\n0\r\n\r\n")), "");
  ExpectMalformed(Verdict(Post("Content-Length: 2\r\nTransfer-Encoding: chunked\r\n", "")),
                  "Transfer-Encoding");
  ExpectMalformed(Verdict(Post("Transfer-Encoding: chunked\r\nContent-Length: 2\r\n", "")),
                  "Content-Length");
  ExpectMalformed(Verdict(Post("Content-Length: 2\r\nContent-Length: 3\r\n", "{} ")),
                  "Content-Length");
  ExpectMalformed(Verdict(Post("Content-Length: -1\r\n", "")), "Content-Length");
  // Without chunked last, a request body cannot be delimited.
  ExpectMalformed(Verdict(Post("Transfer-Encoding: gzip\r\n", "")), "Transfer-Encoding");
  ExpectMalformed(Verdict("NOT AN HTTP REQUEST\r\n\r\n"), "");
  ExpectMalformed(Verdict("GET /healthz HTTP/1.1\r\nBad Name: x\r\n\r\n"), "");
}

TEST(HttpFraming, TargetLimit) {
  const std::string prefix = "GET /healthz?pad=";
  auto request = [&](size_t target_bytes) {
    return prefix + std::string(target_bytes - (prefix.size() - 4), 'a') + " HTTP/1.1\r\n\r\n";
  };
  EXPECT_FALSE(Verdict(request(kMaxTargetBytes)));
  auto over = Verdict(request(kMaxTargetBytes + 1));
  ASSERT_TRUE(over.has_value());
  EXPECT_EQ(over->code, ErrorCode::kUriTooLong);
  // A request line longer than the whole header limit never parses; it is still told apart.
  auto huge = Verdict(request(kMaxHeaderBytes + 1024));
  ASSERT_TRUE(huge.has_value());
  EXPECT_EQ(huge->code, ErrorCode::kUriTooLong);
}

TEST(HttpFraming, HeaderLimit) {
  auto request = [](size_t pad) {
    return "GET /healthz HTTP/1.1\r\nX-Pad: " + std::string(pad, 'a') + "\r\n\r\n";
  };
  EXPECT_FALSE(Verdict(request(kMaxHeaderBytes / 2)));
  auto over = Verdict(request(kMaxHeaderBytes));
  ASSERT_TRUE(over.has_value());
  EXPECT_EQ(over->code, ErrorCode::kHeaderTooLarge);
}

TEST(HttpFraming, DeclaredBodyOverTheLimitIsTooLarge) {
  auto verdict = Verdict(Post("Content-Length: " + std::to_string(kBodyLimit + 1) + "\r\n", ""));
  ASSERT_TRUE(verdict.has_value());
  EXPECT_EQ(verdict->code, ErrorCode::kPayloadTooLarge);
}

TEST(HttpFraming, NobodyToAnswerWhenTheConnectionEnds) {
  const RequestParser parser;
  EXPECT_FALSE(ReadFailure(http::error::end_of_stream, parser, "", kBodyLimit));
  EXPECT_FALSE(ReadFailure(http::error::partial_message, parser, "", kBodyLimit));
  EXPECT_FALSE(ReadFailure(boost::asio::error::connection_reset, parser, "", kBodyLimit));
  EXPECT_FALSE(ReadFailure(boost::beast::error::timeout, parser, "", kBodyLimit));
}

}  // namespace
}  // namespace xtrace::server
