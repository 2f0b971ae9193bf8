#include <gtest/gtest.h>

#include "common/time.hpp"
#include "common/uuid.hpp"

namespace xtrace::common {
namespace {

int64_t Us(std::string_view text) {
  auto t = ParseRfc3339(text);
  EXPECT_TRUE(t.has_value()) << text;
  return t ? t->time_since_epoch().count() : 0;
}

TEST(Rfc3339, ParsesTheFormsClientsSend) {
  EXPECT_EQ(Us("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(Us("2026-01-01T00:00:00Z"), 1767225600000000);
  EXPECT_EQ(Us("2026-01-01t00:00:00z"), 1767225600000000);
  EXPECT_EQ(Us("2026-01-01 00:00:00UTC"), 1767225600000000);
  EXPECT_EQ(Us("2026-01-01T02:00:00+02:00"), 1767225600000000);
  EXPECT_EQ(Us("2025-12-31T19:00:00-0500"), 1767225600000000);
  EXPECT_EQ(Us("2026-01-01T00:00:00.5Z"), 1767225600500000);
  // Digits beyond microseconds are truncated, as PostgreSQL stores microseconds.
  EXPECT_EQ(Us("2026-01-01T00:00:00.123456789Z"), 1767225600123456);
}

TEST(Rfc3339, RejectsWhatIsNotATimestamp) {
  for (const char* bad : {"", "2026-01-01", "2026-01-01T00:00:00", "2026-13-01T00:00:00Z",
                          "2026-02-30T00:00:00Z", "2026-01-01T24:00:00Z", "2026-01-01T00:00:00.Z",
                          "2026-01-01T00:00:00Zjunk", "2026-01-01T00:00:00+25:00", "yesterday"}) {
    EXPECT_FALSE(ParseRfc3339(bad).has_value()) << bad;
  }
}

// Found by the rfc3339 fuzz harness: an offset could carry an instant out of 0001..9999, and the
// API then printed a timestamp (year 0000 or 10000) that it refused as a parameter.
TEST(Rfc3339, RejectsAnOffsetThatLeavesTheYearRange) {
  EXPECT_FALSE(ParseRfc3339("0001-01-01T00:00:00+14:00").has_value());
  EXPECT_FALSE(ParseRfc3339("0001-01-01T00:00:00.999999+00:01").has_value());
  EXPECT_FALSE(ParseRfc3339("9999-12-31T23:59:59-14:00").has_value());
  EXPECT_FALSE(ParseRfc3339("9999-12-31T23:30:00-0030").has_value());
  // The bounds themselves, and offsets that stay inside, parse and print back unchanged.
  for (const char* edge : {"0001-01-01T00:00:00Z", "0001-01-01T00:00:00-14:00",
                           "9999-12-31T23:59:59.999999Z", "9999-12-31T23:59:59+14:00"}) {
    const auto t = ParseRfc3339(edge);
    ASSERT_TRUE(t.has_value()) << edge;
    EXPECT_EQ(ParseRfc3339(FormatRfc3339(*t)), t) << edge;
  }
}

TEST(Rfc3339, FormatsWithZAndMinimalFraction) {
  const auto at = [](int64_t us) { return TimePoint(Micros(us)); };
  EXPECT_EQ(FormatRfc3339(at(1767225600000000)), "2026-01-01T00:00:00Z");
  EXPECT_EQ(FormatRfc3339(at(1767225600420000)), "2026-01-01T00:00:00.420Z");
  EXPECT_EQ(FormatRfc3339(at(1767225600123456)), "2026-01-01T00:00:00.123456Z");
  EXPECT_EQ(FormatRfc3339(at(-1)), "1969-12-31T23:59:59.999999Z");
}

TEST(Rfc3339, RoundTrips) {
  for (int64_t us : {int64_t{0}, int64_t{951782400000001}, int64_t{4102444799999999}}) {
    const TimePoint t{Micros(us)};
    EXPECT_EQ(ParseRfc3339(FormatRfc3339(t)), t);
  }
}

TEST(Uuid, ParsesHyphenatedAndPlainInAnyCase) {
  const auto a = Uuid::Parse("7D0C8A9E-1111-4222-8333-444455556666");
  const auto b = Uuid::Parse("7d0c8a9e111142228333444455556666");
  ASSERT_TRUE(a && b);
  EXPECT_EQ(*a, *b);
  EXPECT_EQ(a->ToString(), "7d0c8a9e-1111-4222-8333-444455556666");
}

TEST(Uuid, RejectsMalformed) {
  for (const char* bad :
       {"", "not-a-uuid", "7d0c8a9e-1111-4222-8333-44445555666",
        "7d0c8a9e-1111-4222-8333-4444555566667", "7d0c8a9e_1111_4222_8333_444455556666",
        "gd0c8a9e-1111-4222-8333-444455556666"}) {
    EXPECT_FALSE(Uuid::Parse(bad).has_value()) << bad;
  }
}

TEST(Uuid, RandomIsVersion4AndDistinct) {
  const auto a = Uuid::Random();
  const auto b = Uuid::Random();
  EXPECT_NE(a, b);
  EXPECT_EQ(a.ToString()[14], '4');
}

}  // namespace
}  // namespace xtrace::common

#include "common/pg_text.hpp"

namespace xtrace::common {
namespace {

TEST(PgText, ArrayLiteralQuotesAndEscapes) {
  EXPECT_EQ(PgTextArrayLiteral({}), "{}");
  EXPECT_EQ(PgTextArrayLiteral({"a", "b c", "q\"uote", "back\\slash", "{,}"}),
            R"({"a","b c","q\"uote","back\\slash","{,}"})");
}

}  // namespace
}  // namespace xtrace::common

namespace xtrace::common {
namespace {

TEST(Rfc3339, OffsetFormKeepsTheFraction) {
  EXPECT_EQ(FormatRfc3339Offset(TimePoint(Micros(1767225600420000))),
            "2026-01-01T00:00:00.420+00:00");
}

}  // namespace
}  // namespace xtrace::common
