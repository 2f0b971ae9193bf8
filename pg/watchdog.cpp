#include "pg/watchdog.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

namespace xtrace::pg {
namespace {

// How often the watchdog looks at the calls in flight: the precision of every deadline.
constexpr std::chrono::milliseconds kTick{50};

struct Call {
  int fd;
  Clock::time_point armed_at;
  std::chrono::milliseconds deadline;
  const Interrupter* interrupter;
  bool fired = false;
};

// The last time a byte went either way on a TCP socket, from the kernel's own accounting; nullopt
// for other sockets (Unix domain), where only the start of the call is known.
std::optional<Clock::time_point> LastTraffic(int fd, Clock::time_point now) {
  tcp_info info{};
  socklen_t len = sizeof info;
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0) return std::nullopt;
  const auto idle =
      std::chrono::milliseconds(std::min(info.tcpi_last_data_recv, info.tcpi_last_data_sent));
  return now - idle;
}

class Watchdog {
 public:
  static Watchdog& Get() {
    static Watchdog instance;
    return instance;
  }

  uint64_t Arm(int fd, std::chrono::milliseconds deadline, const Interrupter* interrupter) {
    std::lock_guard lock(mu_);
    if (!thread_.joinable()) thread_ = std::thread([this] { Loop(); });
    const uint64_t id = ++next_id_;
    Call& call = calls_.emplace(id, Call{fd, Clock::now(), deadline, interrupter}).first->second;
    if (interrupter != nullptr && interrupter->Interrupted()) Fire(call, "interrupted");
    cv_.notify_one();
    return id;
  }

  // Under the lock, so the socket is never shut down after its call ended (the descriptor may
  // belong to someone else by then).
  void Disarm(uint64_t id) {
    std::lock_guard lock(mu_);
    calls_.erase(id);
  }

  bool Fired(uint64_t id) {
    std::lock_guard lock(mu_);
    const auto it = calls_.find(id);
    return it != calls_.end() && it->second.fired;
  }

  void Wake() { cv_.notify_one(); }

  ~Watchdog() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_one();
    if (thread_.joinable()) thread_.join();
  }

 private:
  Watchdog() = default;

  void Loop() {
    std::unique_lock lock(mu_);
    while (!stop_) {
      if (calls_.empty()) {
        cv_.wait(lock, [&] { return stop_ || !calls_.empty(); });
        continue;
      }
      const auto now = Clock::now();
      for (auto& [id, call] : calls_) {
        if (call.fired) continue;
        if (call.interrupter != nullptr && now >= call.interrupter->At()) {
          Fire(call, "interrupted");
          continue;
        }
        const auto last =
            std::max(call.armed_at, LastTraffic(call.fd, now).value_or(call.armed_at));
        if (now - last > call.deadline) {
          Fire(call,
               fmt::format(
                   "no answer from PostgreSQL for {} ms",
                   std::chrono::duration_cast<std::chrono::milliseconds>(now - last).count()));
        }
      }
      cv_.wait_for(lock, kTick);
    }
  }

  static void Fire(Call& call, const std::string& why) {
    call.fired = true;
    spdlog::warn("postgres: {}; closing the connection", why);
    ::shutdown(call.fd, SHUT_RDWR);
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::map<uint64_t, Call> calls_;
  uint64_t next_id_ = 0;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace

void Interrupter::InterruptAt(Clock::time_point when) {
  Clock::rep current = at_.load();
  const Clock::rep wanted = when.time_since_epoch().count();
  while (wanted < current && !at_.compare_exchange_weak(current, wanted)) {
  }
  Watchdog::Get().Wake();
}

CallGuard::CallGuard(const pqxx::connection_base& conn, std::chrono::milliseconds deadline,
                     const Interrupter* interrupter) {
  const int fd = conn.sock();
  if (fd >= 0) id_ = Watchdog::Get().Arm(fd, deadline, interrupter);
}

CallGuard::~CallGuard() {
  if (id_ != 0) Watchdog::Get().Disarm(id_);
}

bool CallGuard::fired() const {
  return id_ != 0 && Watchdog::Get().Fired(id_);
}

}  // namespace xtrace::pg
