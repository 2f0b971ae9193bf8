#include "ingest/metrics.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <cmath>

#include "ingest/json_fields.hpp"

namespace xtrace::ingest {

using common::Error;
using common::ErrorCode;

common::Result<schema::WalRecord> ParseMetricBatch(std::string_view body,
                                                   const IngestContext& ctx) {
  // Points are flat: nesting beyond a few levels is never a valid metrics body.
  auto root = ParseObjectBody(body, 16);
  if (!root) return root.error();
  const auto* metrics = root->get_object().if_contains("metrics");
  if (metrics == nullptr || metrics->is_null()) {
    return Error::InvalidField("metrics", "missing required field metrics");
  }
  if (!metrics->is_array()) return Error::InvalidField("metrics", "metrics must be an array");

  schema::MetricBatch batch;
  batch.points.reserve(metrics->get_array().size());
  size_t i = 0;
  for (const auto& item : metrics->get_array()) {
    const std::string path = "metrics[" + std::to_string(i++) + "]";
    if (!item.is_object()) return Error::InvalidField(path, path + " must be an object");
    FieldReader f(item.get_object(), path);
    f.Require("name");
    f.Require("value");
    f.Require("timestamp");
    schema::MetricPoint point;
    if (auto name = f.String("name")) point.name = *name;
    if (auto value = f.Number("value")) {
      if (!std::isfinite(*value)) f.Fail("value", path + ".value must be a finite number");
      point.value = *value;
    }
    if (auto ts = f.Time("timestamp")) point.timestamp = *ts;
    if (f.error()) return *f.error();
    if (const auto* labels = item.get_object().if_contains("labels");
        labels != nullptr && !labels->is_null()) {
      if (!labels->is_object()) {
        return Error::InvalidField(path + ".labels", path + ".labels must be an object");
      }
      for (const auto& member : labels->get_object()) {
        if (!member.value().is_string()) {
          const std::string field = path + ".labels." + std::string(member.key());
          return Error::InvalidField(field, field + " must be a string");
        }
        point.labels.emplace_back(std::string(member.key()),
                                  std::string(member.value().get_string()));
      }
      // Sorted by key; of duplicate keys the last one wins, as in a JSON object.
      std::stable_sort(point.labels.begin(), point.labels.end(),
                       [](const auto& a, const auto& b) { return a.first < b.first; });
      auto last_of_each =
          std::unique(point.labels.rbegin(), point.labels.rend(),
                      [](const auto& a, const auto& b) { return a.first == b.first; });
      point.labels.erase(point.labels.begin(), last_of_each.base());
    }
    batch.points.push_back(std::move(point));
  }

  return MakeRecord(ctx, std::move(batch));
}

}  // namespace xtrace::ingest
