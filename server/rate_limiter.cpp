#include "server/rate_limiter.hpp"

#include <algorithm>
#include <cmath>

namespace xtrace::server {

RateLimiter::Decision RateLimiter::Check(const std::string& key, const std::string& label,
                                         Clock::time_point now) {
  std::lock_guard lock(mu_);
  auto [it, inserted] = buckets_.try_emplace(key, Bucket{static_cast<double>(burst_), now});
  Bucket& b = it->second;
  if (!inserted) {
    const double elapsed = std::chrono::duration<double>(now - b.updated).count();
    b.tokens = std::min<double>(burst_, b.tokens + elapsed * qps_);
    b.updated = now;
  }
  if (b.tokens >= 1.0) {
    b.tokens -= 1.0;
    ++total_allowed_;
    return {};
  }
  ++total_rejected_;
  ++rejected_by_label_[label];
  const double wait = (1.0 - b.tokens) / qps_;
  return {false, static_cast<uint32_t>(std::max(1.0, std::ceil(wait)))};
}

RateLimiter::Stats RateLimiter::GetStats() const {
  std::lock_guard lock(mu_);
  Stats s{qps_, burst_, total_allowed_, total_rejected_, {}};
  s.top_rejected.assign(rejected_by_label_.begin(), rejected_by_label_.end());
  std::stable_sort(s.top_rejected.begin(), s.top_rejected.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  if (s.top_rejected.size() > 20) s.top_rejected.resize(20);
  return s;
}

}  // namespace xtrace::server
