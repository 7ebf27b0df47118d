#include "core/parker.hpp"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

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

// Long enough to cover a hand-off between two running threads (a few microseconds), short
// enough that an idle waiter costs nothing noticeable.
constexpr int spin_rounds = 4000;

}  // namespace

void parker::wait(std::uint32_t seen, const timespec* deadline) {
  for (int i = 0; i < spin_rounds; ++i) {
    if (word_.load(std::memory_order_acquire) != seen) return;
    cpu_relax();
  }
  sleeping_.store(true, std::memory_order_seq_cst);
  if (word_.load(std::memory_order_seq_cst) == seen) {
    // FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline, so a retried wait
    // never stretches the total time.
    futex(&word_, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, seen, deadline, FUTEX_BITSET_MATCH_ANY);
  }
  sleeping_.store(false, std::memory_order_relaxed);
}

void parker::wake() {
  word_.fetch_add(1, std::memory_order_seq_cst);
  if (sleeping_.load(std::memory_order_seq_cst)) {
    futex(&word_, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, INT_MAX, nullptr, 0);
  }
}

}  // namespace mthread::core
