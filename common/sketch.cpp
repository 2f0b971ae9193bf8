#include "common/sketch.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <charconv>
#include <cmath>

namespace xtrace::common {
namespace {

// The value a key stands for: 2γ^i/(γ+1) lies within 1% of every value with key i.
double Estimate(int index) {
  return 2.0 * std::pow(Sketch::kGamma, index) / (Sketch::kGamma + 1.0);
}

}  // namespace

std::string Sketch::KeyOf(double value) {
  if (std::fabs(value) < 1e-9) return "z";
  const int index = static_cast<int>(std::ceil(std::log(std::fabs(value)) / std::log(kGamma)));
  return (value > 0 ? "" : "n") + std::to_string(index);
}

void Sketch::Add(std::string_view key, uint64_t count) {
  double estimate = 0;
  if (key != "z") {
    const bool negative = key.starts_with('n');
    if (negative) key.remove_prefix(1);
    int index = 0;
    const auto [end, ec] = std::from_chars(key.data(), key.data() + key.size(), index);
    if (ec != std::errc() || end != key.data() + key.size()) return;
    estimate = negative ? -Estimate(index) : Estimate(index);
  }
  buckets_[estimate] += count;
  count_ += count;
}

bool Sketch::MergeJson(std::string_view json) {
  boost::system::error_code ec;
  const auto v = boost::json::parse(json, ec);
  if (ec || !v.is_object()) return false;
  for (const auto& member : v.get_object()) {
    if (!member.value().is_number()) return false;
    Add(member.key(), member.value().to_number<uint64_t>());
  }
  return true;
}

double Sketch::Quantile(double q) const {
  if (count_ == 0) return 0;
  const auto rank = static_cast<uint64_t>(std::floor(q * static_cast<double>(count_ - 1)));
  uint64_t seen = 0;
  for (const auto& [estimate, n] : buckets_) {
    seen += n;
    if (seen > rank) return estimate;
  }
  return buckets_.rbegin()->first;
}

}  // namespace xtrace::common
