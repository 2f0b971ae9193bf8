#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include "common/json.hpp"
#include "query/params.hpp"
#include "query/traces.hpp"

namespace xtrace::query {
namespace {

TEST(TraceListParams, DefaultsAndClamping) {
  auto p = ParseTraceListParams("");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->page, 1);
  EXPECT_EQ(p->limit, 50);
  p = ParseTraceListParams("page=0&limit=1000");
  EXPECT_EQ(p->page, 1);
  EXPECT_EQ(p->limit, 200);
  p = ParseTraceListParams("page=-3&limit=0");
  EXPECT_EQ(p->page, 1);
  EXPECT_EQ(p->limit, 1);
}

TEST(TraceListParams, DecodesFiltersAndRepeatedLists) {
  auto p = ParseTraceListParams(
      "userId=al%20ice&name=chat+bot&sessionId=s&tags=a&tags=b&environment=prod&environment=dev"
      "&fromTimestamp=2026-01-01T00:00:00Z&toTimestamp=2026-01-02T00:00:00%2B01:00&ignored=1");
  ASSERT_TRUE(p.has_value()) << p.error().message;
  EXPECT_EQ(p->user_id, "al ice");
  EXPECT_EQ(p->name, "chat bot");
  EXPECT_EQ(p->tags, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(p->environments, (std::vector<std::string>{"prod", "dev"}));
  ASSERT_TRUE(p->from && p->to);
  EXPECT_EQ(p->to->time_since_epoch().count(), 1767308400000000);
}

TEST(TraceListParams, BadValuesNameTheParameter) {
  for (auto [query, field] :
       {std::pair{"page=x", "page"},
        {"limit=", "limit"},
        {"page=1&page=2", "page"},
        {"fromTimestamp=yesterday", "fromTimestamp"},
        {"toTimestamp=2026-01-01", "toTimestamp"},
        {"fromTimestamp=2026-01-02T00:00:00Z&toTimestamp=2026-01-01T00:00:00Z", "fromTimestamp"}}) {
    auto p = ParseTraceListParams(query);
    ASSERT_FALSE(p.has_value()) << query;
    EXPECT_EQ(p.error().code, common::ErrorCode::kBadParameter);
    EXPECT_EQ(p.error().field, field) << query;
  }
}

TEST(TraceListParams, OrderByAndFields) {
  auto p = ParseTraceListParams("");
  EXPECT_EQ(p->order_column, "t.\"timestamp\"");
  EXPECT_TRUE(p->order_desc);
  EXPECT_TRUE(p->with_io && p->with_observations && p->with_metrics);
  p = ParseTraceListParams("orderBy=name.asc");
  EXPECT_EQ(p->order_column, "t.name");
  EXPECT_FALSE(p->order_desc);
  p = ParseTraceListParams("orderBy=%20totalCost%20");  // trimmed; no direction sorts descending
  EXPECT_EQ(p->order_column, "COALESCE(t.total_cost, t.obs_total_cost)");
  EXPECT_TRUE(p->order_desc);
  for (const char* bad : {"orderBy=", "orderBy=nope", "orderBy=name.up", "orderBy=name;drop"}) {
    auto e = ParseTraceListParams(bad);
    ASSERT_FALSE(e.has_value()) << bad;
    EXPECT_EQ(e.error().field, "orderBy");
  }
  p = ParseTraceListParams("fields=core,%20io");
  EXPECT_TRUE(p->with_io);
  EXPECT_FALSE(p->with_observations || p->with_metrics);
  p = ParseTraceListParams("fields=");
  EXPECT_FALSE(p->with_io || p->with_observations || p->with_metrics);
}

TEST(Json, DoublesPrintAsDecimalFloats) {
  const auto v = boost::json::parse(R"({"a":0.0,"b":1.0,"c":0.42,"d":-2.5e-7,"e":3,"s":"x\"y"})");
  EXPECT_EQ(common::SerializeJson(v),
            R"({"a":0.0,"b":1.0,"c":0.42,"d":-2.5e-07,"e":3,"s":"x\"y"})");
}

}  // namespace
}  // namespace xtrace::query

namespace xtrace::query {
namespace {

// A view into a larger buffer must be read to its end and no further (the server passes views
// into the request target).
TEST(QueryParams, ReadsOnlyTheGivenView) {
  const std::string buffer = "page=2101&x=1";
  auto p = QueryParams::Parse(std::string_view(buffer).substr(0, 6));
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->Integer("page")->value_or(-1), 2);
}

}  // namespace
}  // namespace xtrace::query

#include <algorithm>
#include <random>

#include "common/sketch.hpp"

namespace xtrace::query {
namespace {

using common::Sketch;

// The sketch's documented accuracy, measured: p50/p90/p99 within 1% of the exact value of the
// same rank, on skewed, wide-range and signed data.
TEST(Sketch, QuantilesWithinOnePercentOfExact) {
  std::mt19937_64 rng(42);
  std::lognormal_distribution<double> latency(0.0, 2.0);
  std::uniform_real_distribution<double> signed_values(-1000.0, 1000.0);
  for (int dataset = 0; dataset < 2; ++dataset) {
    std::vector<double> values;
    Sketch sketch;
    for (int i = 0; i < 20000; ++i) {
      const double v = dataset == 0 ? latency(rng) : signed_values(rng);
      values.push_back(v);
      sketch.Add(v);
    }
    std::sort(values.begin(), values.end());
    double worst = 0;
    for (double q : {0.5, 0.9, 0.99, 0.0, 1.0}) {
      const double exact = values[static_cast<size_t>(q * (values.size() - 1))];
      const double got = sketch.Quantile(q);
      worst = std::max(worst, std::fabs(got - exact) / std::fabs(exact));
    }
    EXPECT_LE(worst, 0.01) << "dataset " << dataset;
  }
}

TEST(Sketch, EncodesMergesAndHandlesZeroNegativeAndEmpty) {
  Sketch empty;
  EXPECT_EQ(empty.Quantile(0.5), 0.0);
  Sketch a, b;
  a.Add(0.0, 2);
  a.Add(1.0);
  b.Add(-1.0);
  b.Add(1e300);
  Sketch merged;
  ASSERT_TRUE(merged.MergeEncoded(a.Encode()));
  ASSERT_TRUE(merged.MergeEncoded(b.Encode()));
  EXPECT_EQ(merged.count(), 5u);
  EXPECT_NEAR(merged.Quantile(0.0), -1.0, 0.01);
  EXPECT_EQ(merged.Quantile(0.25), 0.0);
  EXPECT_NEAR(merged.Quantile(0.75), 1.0, 0.01);
  EXPECT_NEAR(merged.Quantile(1.0) / 1e300, 1.0, 0.01);
  // Merging the encoded forms equals merging the sketches.
  Sketch direct = a;
  direct.Merge(b);
  EXPECT_EQ(direct.Encode(), merged.Encode());
  // Malformed input adds nothing.
  EXPECT_FALSE(merged.MergeEncoded(""));
  EXPECT_FALSE(merged.MergeEncoded("\x02"));
  std::string truncated = a.Encode();
  truncated.push_back(static_cast<char>(0x80));
  EXPECT_FALSE(merged.MergeEncoded(truncated));
  EXPECT_EQ(merged.count(), 5u);
  // bytea text form round trip.
  std::string bytes;
  ASSERT_TRUE(common::DecodeByteaHex(common::EncodeByteaHex(a.Encode()), bytes));
  EXPECT_EQ(bytes, a.Encode());
  EXPECT_FALSE(common::DecodeByteaHex("0a", bytes));
  EXPECT_FALSE(common::DecodeByteaHex("\\x0g", bytes));
}

}  // namespace
}  // namespace xtrace::query

#include "query/metrics.hpp"

namespace xtrace::query {
namespace {

TEST(MetricQueryParams, DefaultsAndErrors) {
  const auto now = *common::ParseRfc3339("2026-01-01T12:00:00Z");
  auto p = ParseMetricQueryParams("name=x", now);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->to, now);
  EXPECT_EQ(p->from, now - std::chrono::hours(1));
  EXPECT_EQ(p->step_seconds, 60);
  EXPECT_EQ(p->agg, Aggregate::kAvg);
  p = ParseMetricQueryParams("name=x&step=%201h%20&agg=P99&group_by=gpu&labels=%7B%7D", now);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->step_seconds, 3600);
  EXPECT_EQ(p->agg, Aggregate::kP99);
  EXPECT_EQ(p->group_by, "gpu");
  EXPECT_EQ(p->labels_json, "{}");
  for (auto [query, field] : {std::pair{"", "name"},
                              {"name=x&step=2m", "step"},
                              {"name=x&agg=median", "agg"},
                              {"name=x&labels=%7Bnope", "labels"},
                              {"name=x&from=2026-01-02T00:00:00Z", "from"},
                              {"name=x&to=tomorrow", "to"},
                              {"name=x&group_by=", "group_by"},
                              {"name=x&step=1m&from=2020-01-01T00:00:00Z", "from"}}) {
    auto e = ParseMetricQueryParams(query, now);
    ASSERT_FALSE(e.has_value()) << query;
    EXPECT_EQ(e.error().field, field) << query;
  }
}

}  // namespace
}  // namespace xtrace::query
