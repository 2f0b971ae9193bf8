// HTTP framing edge cases on the real server binary over loopback, with requests written byte
// for byte on a raw socket: malformed framing and over-limit headers are answered with a JSON
// error before the connection closes, credentials are refused before any body is read, and the
// server stays healthy after each.
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include <string>

#include "support/http_client.hpp"
#include "support/raw_http.hpp"
#include "support/server_fixture.hpp"

namespace xtrace {
namespace {

using testing::RawConnection;
using testing::RawResponse;

constexpr char kToken[] = "framing-token";

// The default body limit (20 MiB), so that a 10 MB declared body is within it.
class HttpFramingTest : public testing::ServerFixture {
 protected:
  HttpFramingTest() : ServerFixture(kToken) {}
  std::map<std::string, std::string> ExtraEnv() const override {
    return {{"XTRACE_LOG_LEVEL", "debug"}};
  }
  void TearDown() override {
    if (server_ && server_->Running()) {
      // Whatever the request did, the server still serves.
      EXPECT_EQ(testing::Http(server_->port(), "GET", "/healthz").status, 200);
    }
    ServerFixture::TearDown();
  }

  // Writes `request` on a fresh connection and expects one JSON error answer with `status` and
  // `code` (and `field`, when given), then the connection closed by the server.
  void ExpectRefused(const std::string& request, int status, const std::string& code,
                     const std::string& field = {}) {
    RawConnection c(server_->port());
    c.Send(request);
    const RawResponse r = c.Read();
    ASSERT_EQ(r.status, status) << r.body;
    const auto body = boost::json::parse(r.body).as_object();
    EXPECT_EQ(std::string(body.at("code").as_string()), code) << r.body;
    EXPECT_FALSE(body.at("message").as_string().empty());
    if (field.empty()) {
      EXPECT_FALSE(body.contains("field")) << r.body;
    } else {
      EXPECT_EQ(std::string(body.at("field").as_string()), field) << r.body;
    }
    EXPECT_EQ(r.connection, "close");
    EXPECT_TRUE(c.ClosedByServer());
  }

  static std::string Batch(const std::string& framing_headers, const std::string& body) {
    return std::string("POST /v1/l/batch HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ") + kToken +
           "\r\nContent-Type: application/json\r\n" + framing_headers + "\r\n" + body;
  }
};

TEST_F(HttpFramingTest, BadChunkSizeIs400) {
  ExpectRefused(Batch("Transfer-Encoding: chunked\r\n", "zz\r\n{}\r\n0\r\n\r\n"), 400,
                "BAD_REQUEST");
}

TEST_F(HttpFramingTest, ContentLengthWithTransferEncodingIs400) {
  ExpectRefused(
      Batch("Content-Length: 2\r\nTransfer-Encoding: chunked\r\n", "2\r\n{}\r\n0\r\n\r\n"), 400,
      "BAD_REQUEST", "Transfer-Encoding");
  ExpectRefused(
      Batch("Transfer-Encoding: chunked\r\nContent-Length: 2\r\n", "2\r\n{}\r\n0\r\n\r\n"), 400,
      "BAD_REQUEST", "Content-Length");
}

TEST_F(HttpFramingTest, TwoDifferentContentLengthsAre400) {
  ExpectRefused(Batch("Content-Length: 2\r\nContent-Length: 3\r\n", "{} "), 400, "BAD_REQUEST",
                "Content-Length");
}

TEST_F(HttpFramingTest, GarbageRequestLineIs400) {
  ExpectRefused("NOT AN HTTP REQUEST\r\n\r\n", 400, "BAD_REQUEST");
}

TEST_F(HttpFramingTest, HeaderOverTheLimitIs431) {
  // 16 KiB of fields is within the 32 KiB limit...
  {
    RawConnection c(server_->port());
    c.Send("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + std::string(16 * 1024, 'a') +
           "\r\n\r\n");
    EXPECT_EQ(c.Read().status, 200);
  }
  // ...40 KiB is not.
  ExpectRefused(
      "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + std::string(40 * 1024, 'a') + "\r\n\r\n", 431,
      "REQUEST_HEADER_FIELDS_TOO_LARGE");
}

TEST_F(HttpFramingTest, TargetOverTheLimitIs414) {
  // A target of exactly 8 KiB is served...
  const std::string prefix = "/healthz?pad=";
  {
    RawConnection c(server_->port());
    c.Send("GET " + prefix + std::string(8 * 1024 - prefix.size(), 'a') +
           " HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_EQ(c.Read().status, 200);
  }
  // ...one byte more is not, nor is a request line longer than the whole header limit.
  ExpectRefused("GET " + prefix + std::string(8 * 1024 - prefix.size() + 1, 'a') +
                    " HTTP/1.1\r\nHost: x\r\n\r\n",
                414, "URI_TOO_LONG");
  ExpectRefused("GET " + prefix + std::string(40 * 1024, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n", 414,
                "URI_TOO_LONG");
}

TEST_F(HttpFramingTest, BadCredentialsWithExpectAre401WithoutContinue) {
  // Only the header is sent: the answer must not wait for the body, and must not invite it.
  RawConnection c(server_->port());
  c.Send(
      "POST /v1/l/batch HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong\r\n"
      "Content-Type: application/json\r\nContent-Length: 1000\r\nExpect: 100-continue\r\n\r\n");
  const RawResponse r = c.Read();
  EXPECT_EQ(r.status, 401) << "a 100 Continue or nothing came first";
  EXPECT_EQ(r.body, R"({"message":"Unauthorized","code":"UNAUTHORIZED"})");
  EXPECT_EQ(r.connection, "close");
  EXPECT_TRUE(c.ClosedByServer());
}

TEST_F(HttpFramingTest, BadCredentialsWithoutExpectAre401BeforeTheBody) {
  // The header of a 10 MB upload, and not one byte of its body.
  RawConnection c(server_->port());
  c.Send(
      "POST /v1/l/batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
      "Content-Length: 10000000\r\n\r\n");
  const RawResponse r = c.Read();
  EXPECT_EQ(r.status, 401) << "no answer within the deadline: the server waited for the body";
  EXPECT_EQ(r.body, R"({"message":"Unauthorized","code":"UNAUTHORIZED"})");
  EXPECT_EQ(r.connection, "close");
  EXPECT_TRUE(c.ClosedByServer());

  // Without a body there is nothing left unread: the 401 keeps the connection open.
  RawConnection keep(server_->port());
  keep.Send("GET /api/internal/status HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(keep.Read().status, 401);
  keep.Send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(keep.Read().status, 200);
}

TEST_F(HttpFramingTest, GoodCredentialsWithExpectGetContinueThenTheAnswer) {
  const std::string body = R"({"trace":{"id":"7d0c8a9e-1111-4222-8333-444455556666"}})";
  RawConnection c(server_->port());
  c.Send(
      Batch("Content-Length: " + std::to_string(body.size()) + "\r\nExpect: 100-continue\r\n", ""));
  EXPECT_EQ(c.Read().status, 100);
  c.Send(body);
  const RawResponse r = c.Read();
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.connection, "close");
}

}  // namespace
}  // namespace xtrace
