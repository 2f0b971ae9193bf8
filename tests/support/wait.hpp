#pragma once
// Waiting on an observable state instead of sleeping: tests poll a condition until it holds or a
// deadline passes, so they are as fast as the code under test allows and fail (rather than pass
// by luck) when the state never comes. Call sites say what they waited for:
//
//   ASSERT_TRUE(WaitUntil([&] { return log->GetStats().first_seq == 7; })) << "nothing trimmed";
//
// To assert that something did NOT happen, first wait until the mechanism that would have done
// it has demonstrably run (a pass counter advanced, a lock wait is visible), then assert.

#include <chrono>
#include <functional>

namespace xtrace::testing {

// Generous: a deadline only matters when the test is failing, and a slow sanitizer build on a
// loaded machine must not turn into a false failure.
inline constexpr std::chrono::milliseconds kWaitTimeout{20000};
inline constexpr std::chrono::milliseconds kPollInterval{5};

// Evaluates `condition` every `interval` until it returns true (then true) or `timeout` has
// passed (then false). The condition is evaluated once more at the deadline, so a state reached
// while the last interval elapsed still counts.
[[nodiscard]] bool WaitUntil(const std::function<bool()>& condition,
                             std::chrono::milliseconds timeout = kWaitTimeout,
                             std::chrono::milliseconds interval = kPollInterval);

}  // namespace xtrace::testing
