#include "core/control.hpp"

#include <algorithm>
#include <exception>

namespace mthread::core {

// core_depth is read by no other thread, only by the suspend signal's handler on this same
// thread: plain loads and stores, kept in order against the handler by compiler fences, do what
// atomic read-modify-writes would (and cost nothing on a call's path).
core_section::core_section() : self_(registry::self()) {
  if (self_ == nullptr) return;
  self_->core_depth.store(self_->core_depth.load(std::memory_order_relaxed) + 1,
                          std::memory_order_relaxed);
  std::atomic_signal_fence(std::memory_order_seq_cst);
}

core_section::~core_section() {
  if (self_ == nullptr) return;
  std::atomic_signal_fence(std::memory_order_seq_cst);
  const int depth = self_->core_depth.load(std::memory_order_relaxed) - 1;
  self_->core_depth.store(depth, std::memory_order_relaxed);
  std::atomic_signal_fence(std::memory_order_seq_cst);
  // A suspend signal that came while the thread was inside left only the request.
  if (depth == 0 && self_->preemptive() &&
      self_->suspend_requested.load(std::memory_order_acquire)) {
    park_while_suspended(*self_);
  }
}

api_call::api_call() {
  registry::forget_ended_target();
  if (self() != nullptr && self()->preemptive()) throw_if_killed(*self());
}

void throw_if_killed(thread_record& self) {
  // Never while unwinding already: a destructor that calls into mthread must not terminate.
  if (self.kill_requested.load(std::memory_order_acquire) && self.kill_deferrals == 0 &&
      std::uncaught_exceptions() == 0) {
    throw thread_killed{};
  }
}

void park_while_suspended(thread_record& self) {
  for (;;) {
    const auto seen = self.park.prepare();
    if (!self.suspend_requested.load(std::memory_order_acquire) ||
        self.kill_requested.load(std::memory_order_acquire)) {
      return;
    }
    self.park.wait(seen, nullptr);
  }
}

timespec deadline_after(std::chrono::nanoseconds duration) {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  if (duration.count() < 0) duration = std::chrono::nanoseconds(0);
  constexpr long long billion = 1'000'000'000;
  // Far-off deadlines saturate instead of overflowing time_t.
  const long long cap = (1LL << 32) * billion;  // about 136 years
  const long long total = std::min<long long>(duration.count(), cap) + now.tv_nsec;
  timespec deadline{};
  deadline.tv_sec = now.tv_sec + static_cast<time_t>(total / billion);
  deadline.tv_nsec = static_cast<long>(total % billion);
  return deadline;
}

bool deadline_passed(const timespec& deadline) {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  return now.tv_sec > deadline.tv_sec ||
         (now.tv_sec == deadline.tv_sec && now.tv_nsec >= deadline.tv_nsec);
}

}  // namespace mthread::core
