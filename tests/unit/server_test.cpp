#include <gtest/gtest.h>

#include <map>

#include "server/auth.hpp"
#include "server/config.hpp"
#include "server/error_mapping.hpp"

namespace xtrace::server {
namespace {

GetEnv EnvOf(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](std::string_view name) -> std::optional<std::string> {
    auto it = vars.find(std::string(name));
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

std::map<std::string, std::string> Required() {
  return {{"DATABASE_URL", "postgresql://u:pw@localhost/db"}, {"API_BEARER_TOKEN", "tok"}};
}

TEST(Config, DefaultsMatchTheReference) {
  auto c = LoadConfig(EnvOf(Required()));
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_EQ(c->bind_host, "127.0.0.1");
  EXPECT_EQ(c->bind_port, 8742);
  EXPECT_EQ(c->default_project_id, "default");
  EXPECT_EQ(c->rate_limit_qps, 20u);
  EXPECT_EQ(c->rate_limit_burst, 40u);
  EXPECT_EQ(c->max_request_body_bytes, 20u * 1024 * 1024);
  EXPECT_FALSE(c->allow_unauthenticated_compat);
  EXPECT_EQ(c->wal_dir, "./data/wal");
  EXPECT_FALSE(c->public_key.has_value());
}

TEST(Config, ReadsEveryVariable) {
  auto env = Required();
  env.insert({{"BIND_ADDR", "localhost:9000"},
              {"DEFAULT_PROJECT_ID", "p"},
              {"LANGFUSE_PUBLIC_KEY", "pk"},
              {"LANGFUSE_SECRET_KEY", "sk"},
              {"RATE_LIMIT_QPS", "5"},
              {"RATE_LIMIT_BURST", "6"},
              {"XTRACE_MAX_REQUEST_BODY_BYTES", "1000"},
              {"XTRACE_ALLOW_UNAUTHENTICATED_COMPAT", "TRUE"},
              {"XTRACE_WAL_DIR", "/tmp/w"},
              {"XTRACE_LOG_LEVEL", "debug"},
              {"XTRACE_WAL_MAX_BYTES", "1048576"},
              {"XTRACE_WAL_MIN_FREE_BYTES", "0"},
              {"XTRACE_WAL_RETENTION", "90m"},
              {"XTRACE_WAL_SYNC", "off"},
              {"XTRACE_MAX_INFLIGHT_BYTES", "4096"},
              {"XTRACE_PROJECTOR_CHUNK_BYTES", "1048576"},
              {"XTRACE_PROJECTOR_STATEMENT_TIMEOUT_MS", "60000"}});
  auto c = LoadConfig(EnvOf(env));
  ASSERT_TRUE(c.has_value()) << c.error().message;
  EXPECT_EQ(c->bind_host, "127.0.0.1");
  EXPECT_EQ(c->bind_port, 9000);
  EXPECT_EQ(c->default_project_id, "p");
  EXPECT_EQ(c->public_key, "pk");
  EXPECT_EQ(c->secret_key, "sk");
  EXPECT_EQ(c->rate_limit_qps, 5u);
  EXPECT_EQ(c->rate_limit_burst, 6u);
  EXPECT_EQ(c->max_request_body_bytes, 1000u);
  EXPECT_TRUE(c->allow_unauthenticated_compat);
  EXPECT_EQ(c->wal_dir, "/tmp/w");
  EXPECT_EQ(c->log_level, "debug");
  EXPECT_EQ(c->wal_max_bytes, 1048576u);
  EXPECT_EQ(c->wal_min_free_bytes, 0u);
  EXPECT_EQ(c->wal_retention, std::chrono::minutes(90));
  EXPECT_FALSE(c->wal_sync);
  EXPECT_EQ(c->max_inflight_bytes, 4096u);
  EXPECT_EQ(c->projector_chunk_bytes, 1048576u);
  EXPECT_EQ(c->projector_statement_timeout, std::chrono::seconds(60));

  env["XTRACE_PUBLIC_KEY"] = "xpk";  // XTRACE_ wins over LANGFUSE_
  env["XTRACE_SECRET_KEY"] = "xsk";
  env["BIND_ADDR"] = "[::1]:8080";
  c = LoadConfig(EnvOf(env));
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->public_key, "xpk");
  EXPECT_EQ(c->bind_host, "::1");
}

TEST(Config, BadValuesNameTheVariable) {
  const std::pair<std::string, std::string> cases[] = {
      {"DATABASE_URL", ""},
      {"DATABASE_URL", "mysql://x"},
      {"API_BEARER_TOKEN", ""},
      {"BIND_ADDR", "8742"},
      {"BIND_ADDR", "example.com:80"},
      {"BIND_ADDR", "127.0.0.1:99999"},
      {"DEFAULT_PROJECT_ID", ""},
      {"RATE_LIMIT_QPS", "0"},
      {"RATE_LIMIT_QPS", "abc"},
      {"RATE_LIMIT_BURST", "-1"},
      {"XTRACE_MAX_REQUEST_BODY_BYTES", "10MB"},
      {"XTRACE_ALLOW_UNAUTHENTICATED_COMPAT", "maybe"},
      {"XTRACE_LOG_LEVEL", "loud"},
      {"XTRACE_HTTP_THREADS", "0"},
      {"XTRACE_WAL_MAX_BYTES", "0"},
      {"XTRACE_WAL_MIN_FREE_BYTES", "lots"},
      {"XTRACE_WAL_RETENTION", "0h"},
      {"XTRACE_WAL_RETENTION", "1w"},
      {"XTRACE_WAL_SYNC", "sometimes"},
      {"XTRACE_MAX_INFLIGHT_BYTES", "-5"},
      {"XTRACE_PROJECTOR_CHUNK_BYTES", "0"},
      {"XTRACE_PROJECTOR_STATEMENT_TIMEOUT_MS", "5s"},
  };
  for (const auto& [var, value] : cases) {
    auto env = Required();
    env[var] = value;
    auto c = LoadConfig(EnvOf(env));
    ASSERT_FALSE(c.has_value()) << var << "=" << value;
    EXPECT_EQ(c.error().message.rfind(var + ":", 0), 0u) << c.error().message;
    EXPECT_EQ(c.error().message.find('\n'), std::string::npos);
  }
  auto env = Required();
  env["XTRACE_PUBLIC_KEY"] = "pk";  // a key pair needs both halves
  EXPECT_FALSE(LoadConfig(EnvOf(env)).has_value());
}

TEST(Config, Durations) {
  EXPECT_EQ(ParseDuration("3600"), std::chrono::seconds(3600));
  EXPECT_EQ(ParseDuration("45s"), std::chrono::seconds(45));
  EXPECT_EQ(ParseDuration("24h"), std::chrono::hours(24));
  EXPECT_EQ(ParseDuration("7d"), std::chrono::hours(168));
  for (const char* bad : {"", "h", "0s", "-1h", "1.5h", "10x", "99999999d"}) {
    EXPECT_FALSE(ParseDuration(bad).has_value()) << bad;
  }
}

TEST(Config, DescriptionMasksSecrets) {
  auto env = Required();
  env["XTRACE_PUBLIC_KEY"] = "pk-public";
  env["XTRACE_SECRET_KEY"] = "sk-very-secret";
  env["API_BEARER_TOKEN"] = "bearer-very-secret";
  const auto text = DescribeConfig(*LoadConfig(EnvOf(env)));
  EXPECT_EQ(text.find("sk-very-secret"), std::string::npos);
  EXPECT_EQ(text.find("bearer-very-secret"), std::string::npos);
  EXPECT_EQ(text.find(":pw@"), std::string::npos);
  EXPECT_NE(text.find("localhost/db"), std::string::npos);
}

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
