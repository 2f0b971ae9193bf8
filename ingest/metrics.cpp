#include "ingest/metrics.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <cmath>

#include "ingest/json_fields.hpp"
#include "ingest/limits.hpp"

namespace xtrace::ingest {

using common::Error;
using common::ErrorCode;

namespace {

// A point's labels, sorted by key; of duplicate keys the last one wins, as in a JSON object.
// Keys are identifiers (no control characters); values are free text but for NUL, which
// PostgreSQL cannot store in a label and would otherwise cut the value short.
std::optional<Error> ReadLabels(const boost::json::value& labels, const std::string& path,
                                std::vector<std::pair<std::string, std::string>>& out) {
  if (!labels.is_object()) return Error::InvalidField(path, path + " must be an object");
  const auto& object = labels.get_object();
  if (object.size() > limits::kLabels) {
    return Error::InvalidField(path, path + " has " + std::to_string(object.size()) +
                                         " labels; at most " + std::to_string(limits::kLabels) +
                                         " are allowed");
  }
  size_t total = 0;
  for (const auto& member : object) {
    const std::string_view key = member.key();
    // The key itself is client data: name the field by its position when the key is unprintable.
    const bool printable =
        key.size() <= limits::kLabelKeyBytes && FindControlCharacter(key) == std::string_view::npos;
    const std::string field = path + "." + (printable ? std::string(key) : "<key>");
    if (key.size() > limits::kLabelKeyBytes) {
      return Error::InvalidField(
          field, path + " has a key of " + std::to_string(key.size()) + " bytes; at most " +
                     std::to_string(limits::kLabelKeyBytes) + " are allowed");
    }
    if (!printable) {
      return Error::InvalidField(field, path + " has a key with a control character");
    }
    if (!member.value().is_string()) return Error::InvalidField(field, field + " must be a string");
    const std::string_view value = member.value().get_string();
    if (value.size() > limits::kLabelValueBytes) {
      return Error::InvalidField(
          field, field + " is " + std::to_string(value.size()) + " bytes; at most " +
                     std::to_string(limits::kLabelValueBytes) + " are allowed");
    }
    if (value.find('\0') != std::string_view::npos) {
      return Error::InvalidField(field, field + " must not contain NUL");
    }
    total += key.size() + value.size();
    out.emplace_back(std::string(key), std::string(value));
  }
  if (total > limits::kLabelsTotalBytes) {
    return Error::InvalidField(
        path, path + " hold " + std::to_string(total) + " bytes of keys and values; at most " +
                  std::to_string(limits::kLabelsTotalBytes) + " are allowed");
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  auto last_of_each = std::unique(out.rbegin(), out.rend(),
                                  [](const auto& a, const auto& b) { return a.first == b.first; });
  out.erase(out.begin(), last_of_each.base());
  return std::nullopt;
}

}  // namespace

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
    if (auto name = f.Text("name", limits::kMetricNameBytes)) point.name = *name;
    if (auto value = f.Number("value")) {
      if (!(std::fabs(*value) <= limits::kMaxMetricMagnitude)) {
        f.Fail("value", path + ".value must be a number between -1e100 and 1e100");
      }
      point.value = *value;
    }
    if (auto ts = f.Time("timestamp")) point.timestamp = *ts;
    if (f.error()) return *f.error();
    if (const auto* labels = item.get_object().if_contains("labels");
        labels != nullptr && !labels->is_null()) {
      if (auto error = ReadLabels(*labels, path + ".labels", point.labels)) return *error;
    }
    batch.points.push_back(std::move(point));
  }

  return MakeRecord(ctx, schema::Source::kMetricsBatch, std::move(batch));
}

}  // namespace xtrace::ingest
