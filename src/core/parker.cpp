#include "core/parker.hpp"

#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <climits>

namespace mthread::core {
namespace {

void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

long futex(std::atomic<std::uint32_t>* word, int op, std::uint32_t value, const timespec* time,
           std::uint32_t bitset) {
  return syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), op, value, time, nullptr,
                 bitset);
}

std::int64_t now_ns() {
  timespec t{};
  clock_gettime(CLOCK_MONOTONIC, &t);
  return static_cast<std::int64_t>(t.tv_sec) * 1'000'000'000 + t.tv_nsec;
}

// The spin budget, in wall time (a pause instruction lasts 10 to 150 cycles, depending on the
// CPU, so a count of rounds would mean anything from 10 to 200 µs). Longest: a hand-off through
// an interpreter (a Python thread answering takes a few µs); waits longer than that are left to
// the futex.
constexpr std::int64_t max_spin_ns = 20'000;
constexpr std::int64_t min_spin_ns = 500;
constexpr std::uint32_t initial_spin_ns = 10'000;

}  // namespace

parker::parker() : spin_ns_(initial_spin_ns) {}

void parker::wait(std::uint32_t seen, const timespec* deadline) {
  const std::int64_t start = now_ns();
  const std::int64_t budget = spin_ns_.load(std::memory_order_relaxed);
  for (unsigned i = 1;; ++i) {
    if (word_.load(std::memory_order_acquire) != seen) return;
    cpu_relax();
    if ((i & 7) == 0 && now_ns() - start >= budget) break;
  }
  const int spun_on = sched_getcpu();
  sleeping_.store(true, std::memory_order_seq_cst);
  if (word_.load(std::memory_order_seq_cst) != seen) {
    sleeping_.store(false, std::memory_order_relaxed);
    return;  // the wake came just as the spin ended: the budget stays
  }
  // FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline, so a retried wait never
  // stretches the total time.
  futex(&word_, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, seen, deadline, FUTEX_BITSET_MATCH_ANY);
  sleeping_.store(false, std::memory_order_relaxed);
  // Adapt: a wake that came soon after the wait began would have been caught by a longer spin;
  // a late one (or none: a timeout) says spinning here is wasted, and so does a waker that ran
  // on the CPU this thread spun on (it could not run before the spin ended).
  const std::int64_t woken_after = word_.load(std::memory_order_relaxed) != seen
                                       ? woken_at_.load(std::memory_order_relaxed) - start
                                       : -1;
  const bool waker_needed_this_cpu = woken_from_.load(std::memory_order_relaxed) == spun_on;
  std::int64_t next = budget / 2;
  if (woken_after >= 0 && woken_after < max_spin_ns && !waker_needed_this_cpu) {
    next = std::max(budget, woken_after + woken_after / 2);
  }
  spin_ns_.store(static_cast<std::uint32_t>(std::clamp(next, min_spin_ns, max_spin_ns)),
                 std::memory_order_relaxed);
}

void parker::wake() {
  word_.fetch_add(1, std::memory_order_seq_cst);
  if (sleeping_.load(std::memory_order_seq_cst)) {
    woken_at_.store(now_ns(), std::memory_order_relaxed);
    woken_from_.store(sched_getcpu(), std::memory_order_relaxed);
    futex(&word_, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, INT_MAX, nullptr, 0);
  }
}

}  // namespace mthread::core
