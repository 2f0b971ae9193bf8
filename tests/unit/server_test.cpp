#include <gtest/gtest.h>

#include "server/auth.hpp"
#include "server/error_mapping.hpp"

namespace xtrace::server {
namespace {

const Credentials kCreds{"tok", "pk", "sk:with:colons"};

TEST(Auth, BearerAndBasicBothWork) {
  EXPECT_TRUE(Authenticate("Bearer tok", kCreds).allowed);
  EXPECT_TRUE(Authenticate("  Bearer tok  ", kCreds).allowed);
  EXPECT_TRUE(Authenticate("bearer tok", kCreds).allowed);  // schemes are case-insensitive
  EXPECT_TRUE(Authenticate("BASIC cGs6c2s6d2l0aDpjb2xvbnM=", kCreds).allowed);
  // base64("pk:sk:with:colons") — the password may contain ':'.
  EXPECT_TRUE(Authenticate("Basic cGs6c2s6d2l0aDpjb2xvbnM=", kCreds).allowed);
}

TEST(Auth, EverythingElseIsRejected) {
  for (const char* h :
       {"", "Bearer", "Bearer ", "Bearer tok2", "Bearer to", "Bearertok", "Token tok", "Basic",
        "Basic !!!!", "Basic cGs6d3Jvbmc=" /* pk:wrong */, "Basic cGs=" /* pk, no colon */}) {
    EXPECT_FALSE(Authenticate(h, kCreds).allowed) << h;
  }
  // Without a configured key pair, Basic never authenticates, not even ":".
  EXPECT_FALSE(Authenticate("Basic Og==", Credentials{"tok", std::nullopt, std::nullopt}).allowed);
}

TEST(Auth, ConstantTimeEqualsIsExact) {
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("abcd", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("ab", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("", ""));  // an empty secret never matches
}

TEST(Auth, Base64) {
  EXPECT_EQ(DecodeBase64("aGVsbG8="), "hello");
  EXPECT_EQ(DecodeBase64("aGVsbG8h"), "hello!");
  EXPECT_EQ(DecodeBase64("aGk="), "hi");
  EXPECT_EQ(DecodeBase64("aA=="), "h");
  EXPECT_FALSE(DecodeBase64("aGk").has_value());
  EXPECT_FALSE(DecodeBase64("a=Gk").has_value());
  EXPECT_FALSE(DecodeBase64("aG=k").has_value());
}

TEST(ErrorMapping, StatusCodesAndBodies) {
  using common::ErrorCode;
  const struct {
    ErrorCode code;
    int status;
    const char* text;
  } cases[] = {{ErrorCode::kMalformedJson, 400, "BAD_REQUEST"},
               {ErrorCode::kBadParameter, 400, "BAD_REQUEST"},
               {ErrorCode::kMalformedRequest, 400, "BAD_REQUEST"},
               {ErrorCode::kUriTooLong, 414, "URI_TOO_LONG"},
               {ErrorCode::kHeaderTooLarge, 431, "REQUEST_HEADER_FIELDS_TOO_LARGE"},
               {ErrorCode::kInvalidField, 422, "UNPROCESSABLE_ENTITY"},
               {ErrorCode::kPayloadTooLarge, 413, "PAYLOAD_TOO_LARGE"},
               {ErrorCode::kUnsupportedMediaType, 415, "UNSUPPORTED_MEDIA_TYPE"},
               {ErrorCode::kUnauthorized, 401, "UNAUTHORIZED"},
               {ErrorCode::kNotFound, 404, "NOT_FOUND"},
               {ErrorCode::kMethodNotAllowed, 405, "METHOD_NOT_ALLOWED"},
               {ErrorCode::kTooManyRequests, 429, "TOO_MANY_REQUESTS"},
               {ErrorCode::kUnavailable, 503, "SERVICE_UNAVAILABLE"},
               {ErrorCode::kWalFull, 503, "WAL_FULL"},
               {ErrorCode::kWalUnavailable, 503, "WAL_UNAVAILABLE"},
               {ErrorCode::kInternal, 500, "INTERNAL_ERROR"}};
  for (const auto& c : cases) {
    const auto r = ErrorResponse({c.code, "m", {}});
    EXPECT_EQ(r.status, c.status);
    EXPECT_NE(r.body.find(std::string("\"code\":\"") + c.text + "\""), std::string::npos);
  }
  EXPECT_EQ(
      ErrorResponse(common::Error::InvalidField("observations[1].traceId", "missing")).body,
      R"({"message":"missing","code":"UNPROCESSABLE_ENTITY","field":"observations[1].traceId"})");
  EXPECT_EQ(ErrorResponse({common::ErrorCode::kUnauthorized, "Unauthorized", {}}).body,
            R"({"message":"Unauthorized","code":"UNAUTHORIZED"})");
  // Internal detail never reaches the client.
  EXPECT_EQ(ErrorResponse(common::Error::Internal("secret detail")).body.find("secret"),
            std::string::npos);
  const auto unavailable = ErrorResponse(common::Error::Unavailable("x"));
  ASSERT_EQ(unavailable.headers.size(), 1u);
  EXPECT_EQ(unavailable.headers[0].first, "Retry-After");
}

}  // namespace
}  // namespace xtrace::server

#include "server/rate_limiter.hpp"

namespace xtrace::server {
namespace {

TEST(RateLimiter, BurstThenRefillPerCredential) {
  RateLimiter limiter(2, 3);  // 2 per second, burst 3
  const auto t0 = RateLimiter::Clock::time_point{} + std::chrono::hours(1);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(limiter.Check("a", "a", t0).allowed) << i;
  const auto refused = limiter.Check("a", "a", t0);
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.retry_after_seconds, 1u);
  EXPECT_TRUE(limiter.Check("b", "b", t0).allowed) << "another credential has its own bucket";
  EXPECT_TRUE(limiter.Check("a", "a", t0 + std::chrono::milliseconds(500)).allowed);  // +1 token
  EXPECT_FALSE(limiter.Check("a", "a", t0 + std::chrono::milliseconds(600)).allowed);
  // Refill never exceeds the burst.
  const auto later = t0 + std::chrono::hours(1);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(limiter.Check("a", "a", later).allowed);
  EXPECT_FALSE(limiter.Check("a", "a", later).allowed);

  const auto stats = limiter.GetStats();
  EXPECT_EQ(stats.total_allowed, 8u);
  EXPECT_EQ(stats.total_rejected, 3u);
  ASSERT_EQ(stats.top_rejected.size(), 1u);
  EXPECT_EQ(stats.top_rejected[0], (std::pair<std::string, uint64_t>{"a", 3}));
}

TEST(ErrorMapping, RateLimitedBodyHasTheReferenceShape) {
  const auto r = RateLimitedResponse(2, common::TimePoint(common::Micros(1767225600000000)));
  EXPECT_EQ(r.status, 429);
  EXPECT_EQ(r.body,
            R"({"code":"TOO_MANY_REQUESTS","data":null,"message":"Too Many Requests",)"
            R"("meta":{"rate_limit":{"remaining":0,"reset_at":"2026-01-01T00:00:00+00:00"}}})");
  ASSERT_EQ(r.headers.size(), 1u);
  EXPECT_EQ(r.headers[0], (std::pair<std::string, std::string>{"Retry-After", "2"}));
}

}  // namespace
}  // namespace xtrace::server
