#pragma once
// The quantile sketch kept in metric_rollups.sketch (layout and accuracy in
// schema/migrations/0006_metric_rollups.sql): logarithmic buckets with relative accuracy 1%. The
// projector builds sketches with KeyOf; the query service merges them and reads quantiles.

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace xtrace::common {

class Sketch {
 public:
  static constexpr double kGamma = 1.01 / 0.99;

  // The bucket key of a value, exactly as the SQL function xtrace_sketch_key computes it.
  static std::string KeyOf(double value);

  // Adds the counts of a sketch in its JSON text form ({"key": count, ...}). False if malformed.
  bool MergeJson(std::string_view json);
  void Add(std::string_view key, uint64_t count);

  uint64_t count() const { return count_; }

  // The q-quantile (0 ≤ q ≤ 1) as the value of rank floor(q·(n−1)) in sorted order, within 1%
  // relative error of the exact value of that rank. 0 when empty.
  double Quantile(double q) const;

 private:
  std::map<double, uint64_t> buckets_;  // bucket estimate -> count
  uint64_t count_ = 0;
};

}  // namespace xtrace::common
