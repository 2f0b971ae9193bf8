#pragma once
// Token buckets for the query routes, one per credential: `burst` tokens, refilled at `qps` per
// second. Every client sharing a credential shares its bucket, as in the reference.

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace xtrace::server {

class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;

  RateLimiter(uint32_t qps, uint32_t burst) : qps_(qps), burst_(burst) {}

  struct Decision {
    bool allowed = true;
    // When refused: whole seconds until a token is available (at least 1), for Retry-After.
    uint32_t retry_after_seconds = 0;
  };

  // `key` identifies the credential; `label` is how stats show it (never a secret).
  Decision Check(const std::string& key, const std::string& label, Clock::time_point now);

  struct Stats {
    uint32_t qps = 0, burst = 0;
    uint64_t total_allowed = 0, total_rejected = 0;
    std::vector<std::pair<std::string, uint64_t>> top_rejected;  // label, count; at most 20
  };
  Stats GetStats() const;

 private:
  struct Bucket {
    double tokens = 0;
    Clock::time_point updated;
  };

  const uint32_t qps_;
  const uint32_t burst_;
  mutable std::mutex mu_;
  std::map<std::string, Bucket> buckets_;
  std::map<std::string, uint64_t> rejected_by_label_;
  uint64_t total_allowed_ = 0;
  uint64_t total_rejected_ = 0;
};

}  // namespace xtrace::server
