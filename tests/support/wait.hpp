#pragma once
// Waiting on an observable state instead of sleeping: polls `done` until it returns true or the
// deadline passes, and returns whether it became true. Tests assert on the result, so a state that
// never arrives fails with the test's own message instead of passing by luck.

#include <chrono>
#include <thread>

namespace xtrace::testing {

template <class Predicate>
bool WaitUntil(std::chrono::milliseconds timeout, Predicate&& done) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (done()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));  // poll interval, not a wait
  }
}

}  // namespace xtrace::testing
