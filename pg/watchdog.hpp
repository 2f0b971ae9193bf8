#pragma once
// A client-side deadline for blocking libpq calls. Server-side timeouts (statement_timeout and
// friends) never fire when the server itself is stuck: a paused or overloaded host, or a network
// path that keeps acknowledging TCP but delivers nothing. One process-wide watchdog thread
// watches every call in flight and, when a call has exchanged no byte with the server for longer
// than its deadline, shuts down the connection's socket. The blocked libpq call then returns
// with a broken connection, which every caller already handles as an outage (drop the
// connection, reconnect with backoff).

#include <atomic>
#include <chrono>
#include <cstdint>

#include <pqxx/connection_base>

namespace xtrace::pg {

using Clock = std::chrono::steady_clock;

// Lets another thread end the calls of one connection user, e.g. at shutdown. Must outlive
// every CallGuard that names it.
class Interrupter {
 public:
  // Calls still in flight at `when` are abandoned then; a call that starts after `when` fails at
  // once. An earlier time replaces a later one, never the reverse.
  void InterruptAt(Clock::time_point when);
  void Interrupt() { InterruptAt(Clock::now()); }
  bool Interrupted() const { return Clock::now() >= At(); }
  Clock::time_point At() const { return Clock::time_point(Clock::duration(at_.load())); }

 private:
  std::atomic<Clock::rep> at_{Clock::time_point::max().time_since_epoch().count()};
};

// Watches the calls made on `conn` while it lives. `deadline` is the longest the connection may
// go without sending or receiving a byte (over TCP; over a Unix socket, since the guard was
// made), so a long transaction of many statements is fine as long as each answers in time.
class CallGuard {
 public:
  CallGuard(const pqxx::connection_base& conn, std::chrono::milliseconds deadline,
            const Interrupter* interrupter = nullptr);
  ~CallGuard();
  CallGuard(const CallGuard&) = delete;
  CallGuard& operator=(const CallGuard&) = delete;

  // The watchdog shut the socket down (deadline passed or interrupted).
  bool fired() const;

 private:
  uint64_t id_ = 0;  // 0: nothing to watch (the connection has no socket)
};

}  // namespace xtrace::pg
