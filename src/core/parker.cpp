#include "core/parker.hpp"

#include <linux/futex.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <limits>
#include <vector>

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
// CPU, so a count of rounds would mean anything from 10 to 200 µs). At most long enough to
// catch a partner that answers through an interpreter (a Python thread takes the GIL and runs a
// few lines) even when it was asleep itself (waking a sleeping thread takes up to 30 µs on a
// virtual machine).
constexpr std::int64_t max_spin_ns = 50'000;
constexpr std::int64_t min_spin_ns = 1'000;
constexpr std::uint32_t initial_spin_ns = 20'000;
// Past this, the spin yields the CPU now and then: a thread that needs this CPU gets it.
constexpr std::int64_t pure_spin_ns = 10'000;
// A wake this much later than the spin (or none: a timeout, or a return for a signal) comes from
// no partner a spin could catch: the next wait spins the least at once, not half as long as this
// one. Halving from the first spin took a thread's first four waits after a start (20, 10, 5,
// 2.5 µs of spin); a broadcast to 10000 threads, each one's second wake, cost 15-19 µs a thread
// instead of 10.
constexpr std::int64_t far_too_late_ns = 1'000'000;
// Not a budget: the owner's waker answered from the owner's CPU, so the owner yields to it as it
// looks (see wait_for). A budget of 0 sleeps at once.
constexpr std::uint32_t yield_to_waker = std::numeric_limits<std::uint32_t>::max();

// Spinning pays only while the thread that will wake the spinner has a CPU to run on: with as
// many threads spinning as there are CPUs, another spinner would only take the CPU a waker
// needs (a broadcast waking hundreds of threads on two cores). Counted over all parkers. (Not
// one fewer: the two sides of a ping-pong overlap in their spins for an instant.)
std::atomic<int> spinning{0};

int spin_slots() {
  static const int slots = [] {
    cpu_set_t cpus;
    CPU_ZERO(&cpus);
    const int count = sched_getaffinity(0, sizeof cpus, &cpus) == 0 ? CPU_COUNT(&cpus) : 1;
    return std::max(count, 1);
  }();
  return slots;
}

}  // namespace

parker::parker() : spin_ns_(initial_spin_ns) {}

parker::~parker() {
  // Nothing should be left in the slot (the owner takes a relay as it wakes); if something
  // were, its count is given back here.
  const wake_relay::ref left = wake_relay::ref::adopt(relay_.load(std::memory_order_acquire));
  if (const int fd = event_fd_.load(std::memory_order_relaxed); fd >= 0) close(fd);
}

int parker::wait_fds(std::uint32_t seen, pollfd* fds, nfds_t count, const deadline& until) {
  pass_on_relay();  // as in wait_for
  int event_fd = event_fd_.load(std::memory_order_relaxed);
  if (event_fd < 0) {
    event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (event_fd < 0) return -1;
    event_fd_.store(event_fd, std::memory_order_release);
  }
  std::vector<pollfd> polled(fds, fds + count);
  polled.push_back(pollfd{event_fd, POLLIN, 0});
  // The same handshake as the futex sleep's: either this look sees the wake, or wake() sees
  // `polling_` and makes the eventfd readable.
  polling_.store(true, std::memory_order_seq_cst);
  if (word_.load(std::memory_order_seq_cst) != seen) {
    polling_.store(false, std::memory_order_relaxed);
    return 0;
  }
  const timespec left = until.is_never() ? timespec{} : until.left_timespec();
  const int ready =
      ppoll(polled.data(), polled.size(), until.is_never() ? nullptr : &left, nullptr);
  const int saved_errno = errno;
  polling_.store(false, std::memory_order_relaxed);
  if (ready < 0) {
    errno = saved_errno;
    return saved_errno == EINTR ? 0 : -1;
  }
  if (polled.back().revents != 0) {
    std::uint64_t drained = 0;
    (void)!read(event_fd, &drained, sizeof drained);
  }
  int result = 0;
  for (nfds_t i = 0; i < count; ++i) {
    fds[i].revents = polled[i].revents;
    if (fds[i].revents != 0) ++result;
  }
  return result;
}

void parker::wait_for(std::uint32_t seen, const deadline& until, bool (*arrived)(const void*, bool),
                      const void* context) {
  // A held relay never waits while its holder does: the threads after it would wait too. (Only
  // a pacing owner holds one, a binding's thread, never in the suspend signal's handler.)
  pass_on_relay();
  // seq_cst: with the store to sleeping_ before the last look, the other half of the handshake
  // in wake() and publish().
  auto woken = [&](bool going_to_sleep) {
    return word_.load(std::memory_order_seq_cst) != seen ||
           (arrived != nullptr && arrived(context, going_to_sleep));
  };
  const bool adapt = arrived != nullptr;
  const std::int64_t start = adapt ? now_ns() : 0;
  const std::uint32_t learned = adapt ? spin_ns_.load(std::memory_order_relaxed) : 0;
  bool yielding = learned == yield_to_waker;
  std::int64_t budget = yielding ? 0 : learned;
  bool crowded = false;
  if ((budget > 0 || yielding) &&
      spinning.fetch_add(1, std::memory_order_relaxed) >= spin_slots()) {
    // Too many spin already: sleep at once. Without a spin this wait says nothing about
    // spinning but when its wake comes far too late for any spin (see the end).
    spinning.fetch_sub(1, std::memory_order_relaxed);
    budget = 0;
    yielding = false;
    crowded = true;
  }
  if (yielding) {
    // The waker runs on this CPU: hand it the CPU at every look, and see its answer without
    // either side going through a sleep and a wake-up. Where nothing else wants the CPU, the
    // yield returns at once: this is then a spin, as long as the longest.
    for (;;) {
      if (woken(false)) {
        spinning.fetch_sub(1, std::memory_order_relaxed);
        return;
      }
      if (now_ns() - start >= max_spin_ns) break;
      sched_yield();
    }
    spinning.fetch_sub(1, std::memory_order_relaxed);
  }
  if (budget > 0) {
    for (unsigned i = 1;; ++i) {
      if (woken(false)) {
        spinning.fetch_sub(1, std::memory_order_relaxed);
        return;
      }
      cpu_relax();
      if ((i & 7) == 0) {
        const std::int64_t spun = now_ns() - start;
        if (spun >= budget) break;
        if (spun >= pure_spin_ns && (i & 63) == 0) sched_yield();
      }
    }
    spinning.fetch_sub(1, std::memory_order_relaxed);
  }
  const int spun_on = adapt ? sched_getcpu() : -1;
  // Only waits for data take relays: the others may run where freeing memory is not allowed
  // (the suspend signal's handler), or last long after the wake (a suspended thread).
  const bool takes_relay = arrived != nullptr;
  sleeping_.store(takes_relay ? asleep_taking_relay : asleep, std::memory_order_seq_cst);
  if (woken(true)) {
    sleeping_.store(awake, std::memory_order_seq_cst);
    if (takes_relay) take_relay();
    return;  // the wake came just as the spin ended: the budget stays
  }
  // FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline, so a retried wait never
  // stretches the total time.
  const timespec end = until.is_never() ? timespec{} : until.monotonic();
  futex(&word_, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, seen, until.is_never() ? nullptr : &end,
        FUTEX_BITSET_MATCH_ANY);
  sleeping_.store(awake, std::memory_order_seq_cst);
  if (takes_relay) take_relay();
  if (!adapt) return;
  const bool answered = word_.load(std::memory_order_relaxed) != seen;
  const std::int64_t woken_after =
      answered ? woken_at_.load(std::memory_order_relaxed) - start : -1;
  if (crowded) {
    // A crowd of threads started or woken together keeps its first spin budget (20 µs) through
    // a wait where no slot was free; spent at the next wait, with slots free again, it took a
    // CPU from the threads that do the work (2 vCPUs, each thread's first message after a
    // start: 35 µs a thread instead of 18).
    if (!answered || woken_after >= far_too_late_ns) {
      spin_ns_.store(static_cast<std::uint32_t>(min_spin_ns), std::memory_order_relaxed);
    }
    return;
  }
  // Adapt. A waker that ran on the CPU this thread spun on could only run once the spin let go
  // of it (the two threads share a CPU: a busy machine, or a thread started on its starter's
  // CPU): spinning is in the way. If it answered within the longest spin, yield to it the next
  // time; if later, sleep at once. A wake from elsewhere within the longest spin would have been
  // caught by spinning: spin fully. A later one, or none (a timeout, a signal), says spinning here
  // is wasted: halve the spin, or spin the least if it came far too late for any spin.
  std::uint32_t next = static_cast<std::uint32_t>(min_spin_ns);
  if (answered) {
    const bool in_time = woken_after >= 0 && woken_after < max_spin_ns;
    if (woken_from_.load(std::memory_order_relaxed) == spun_on) {
      next = in_time ? yield_to_waker : 0;
    } else if (in_time) {
      next = max_spin_ns;
    } else if (woken_after < far_too_late_ns) {
      next = static_cast<std::uint32_t>(std::max(budget / 2, min_spin_ns));
    }
  }
  spin_ns_.store(next, std::memory_order_relaxed);
}

void parker::take_relay() {
  // Only if a waker left one: a plain load first keeps the common wake-up to one cache line.
  if (relay_.load(std::memory_order_seq_cst) == nullptr) return;
  wake_relay::ref relay =
      wake_relay::ref::adopt(relay_.exchange(nullptr, std::memory_order_seq_cst));
  if (!relay) return;
  if (pacing_ && !held_relay_) {
    held_relay_ = std::move(relay);
    return;
  }
  relay->hand_on(relay, 2);
}

void parker::pass_on_relay() {
  if (!held_relay_) return;
  const wake_relay::ref relay = std::move(held_relay_);
  held_relay_ = wake_relay::ref();
  relay->hand_on(relay, 1);
}

bool parker::wake_relaying(const wake_relay::ref& relay) {
  // Handshake with the owner, which stores `awake` and then takes the relay: either the look at
  // sleeping_ below sees the owner still asleep (it takes the relay later), or the owner is
  // awake and exactly one of the owner's exchange and the compare-exchange below gets it back.
  // (The caller holds `relay`, so its address cannot come back as another relay's meanwhile.)
  wake_relay::ref for_slot = relay;
  wake_relay* expected = nullptr;
  if (!relay_.compare_exchange_strong(expected, for_slot.get(), std::memory_order_seq_cst)) {
    wake();
    return false;
  }
  wake_relay* const stored = for_slot.release();  // the slot's count now
  bool handed = sleeping_.load(std::memory_order_seq_cst) == asleep_taking_relay;
  if (!handed) {
    expected = stored;
    if (relay_.compare_exchange_strong(expected, nullptr, std::memory_order_seq_cst)) {
      const wake_relay::ref back = wake_relay::ref::adopt(stored);  // the slot's count, dropped
    } else {
      handed = true;  // the owner took it
    }
  }
  wake();
  return handed;
}

void wake_relay::hand_on(const ref& self, int count) {
  while (count > 0) {
    const std::size_t index = next_.fetch_add(1, std::memory_order_relaxed);
    if (index >= targets_.size()) return;
    if (targets_[index].first->wake_relaying(self)) --count;
  }
}

void parker::wake() {
  word_.fetch_add(1, std::memory_order_seq_cst);
  if (sleeping()) {
    woken_at_.store(now_ns(), std::memory_order_relaxed);
    woken_from_.store(sched_getcpu(), std::memory_order_relaxed);
    futex(&word_, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, INT_MAX, nullptr, 0);
  }
  if (polling_.load(std::memory_order_seq_cst)) {
    const std::uint64_t one = 1;
    (void)!write(event_fd_.load(std::memory_order_acquire), &one, sizeof one);
  }
}

}  // namespace mthread::core
