// The reaper thread, the futex table it sizes, and the joins it shares with join().
#include "core/reaper.hpp"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>

#include <algorithm>
#include <bit>
#include <limits>
#include <new>
#include <thread>
#include <utility>
#include <vector>

#include "core/control.hpp"
#include "core/no_destroy.hpp"
#include "core/stack.hpp"

namespace mthread::core {

void forget(thread_record& joined) {
  joined.give_back_stack_now();
  registry::instance().remove(joined.id);
}

bool join_without_sleeping(pthread_t thread, const deadline& end) {
  for (;;) {
    const int joined = pthread_tryjoin_np(thread, nullptr);
    if (joined == 0) return true;
    if (joined != EBUSY || end.passed()) return false;
    sched_yield();
  }
}

bool reap_if_gone(const record_ptr& target) {
  if (!target->only_end_left() || target.get() == registry::self()) return false;
  // Its body is over: what is left (thread_local destructors, the exit, the join) takes
  // microseconds. Waiting for that beats reporting RUNNING for a thread that ran everything; one
  // that takes longer is left to the reaper. Without sleeping: a sleep for microseconds costs a
  // wake-up that takes longer (tens of microseconds on a small virtual machine).
  const deadline patience = deadline::after(last_moments);
  if (!target->reap_claimed.load() && !target->reap_claimed.exchange(true)) {
    if (!join_without_sleeping(target->handle, patience)) {
      reaper::instance().take_over(target);
      return false;
    }
    forget(*target);
    return true;
  }
  // A joiner or the reaper claimed it: it is gone as soon as they have joined it.
  auto& threads = registry::instance();
  while (threads.state_of(target->id) != thread_state::terminated) {
    if (patience.passed()) return false;
    sched_yield();
  }
  return true;
}

// pthread_clockjoin_np on CLOCK_MONOTONIC (a step of the wall clock must not stretch a slice);
// under ThreadSanitizer, which knows only pthread_timedjoin_np (CLOCK_REALTIME), that one.
int join_until(pthread_t thread, const deadline& end) {
#if defined(__SANITIZE_THREAD__)
  timespec realtime_end{};
  clock_gettime(CLOCK_REALTIME, &realtime_end);
  const long long end_ns = realtime_end.tv_nsec + end.left().count();
  realtime_end.tv_sec += static_cast<time_t>(end_ns / 1'000'000'000);
  realtime_end.tv_nsec = static_cast<long>(end_ns % 1'000'000'000);
  return pthread_timedjoin_np(thread, nullptr, &realtime_end);
#else
  const timespec monotonic_end = end.monotonic();
  return pthread_clockjoin_np(thread, nullptr, CLOCK_MONOTONIC, &monotonic_end);
#endif
}

void futex_table::grow(std::size_t threads) {
  constexpr int option = 78;  // PR_FUTEX_HASH (absent from older headers)
  constexpr int set_slots = 1;
  constexpr int get_slots = 2;
  constexpr std::size_t never = std::numeric_limits<std::size_t>::max();
  const int slots = prctl(option, get_slots, 0, 0, 0);
  if (slots <= 0) {
    next_check_.store(never, std::memory_order_relaxed);
    return;
  }
  const std::size_t wanted = std::bit_ceil(4 * threads);
  if (wanted > static_cast<std::size_t>(slots) && prctl(option, set_slots, wanted, 0, 0) != 0) {
    next_check_.store(never, std::memory_order_relaxed);
    return;
  }
  next_check_.store(std::max(wanted, static_cast<std::size_t>(slots)), std::memory_order_relaxed);
}

reaper& reaper::instance() {
  static no_destroy<reaper> instance;
  static const bool fork_handled =
      pthread_atfork(&before_fork, &after_fork_in_parent, &after_fork_in_child) == 0;
  (void)fork_handled;
  return instance.get();
}

// Only the forking thread lives on in the child: the locks the reaper's work nests, its own and
// then the registry's, are taken for the fork, so that the child's copies are consistent and
// free (a thread holds one of them for moments, and takes no lock a forking thread may hold).
void reaper::before_fork() {
  instance().lock_.lock();
  registry::instance().lock_for_fork();
}

void reaper::after_fork_in_parent() {
  registry::instance().unlock_after_fork();
  instance().lock_.unlock();
}

void reaper::after_fork_in_child() {
  registry::instance().unlock_after_fork();
  instance().start_over_in_child();
}

void reaper::start_over_in_child() {
  // Of the threads the registry knows, only the forking one exists here: the others leave it
  // (list(), the thread limit), among them those the parent's reaper had yet to reap; they are
  // never joined (the child's C library has forgotten them). Their records are kept, stacks and
  // all, rather than dropped in this handler, where a record's hooks may need an interpreter
  // that is not ready for the child yet.
  for (record_ptr& record : registry::instance().all()) {
    if (record.get() == registry::self() || record->type == thread_type::main) continue;
    (void)registry::instance().remove(record->id);
    from_parent_.push_back(std::move(record));
  }
  for (record_ptr& claimed : claimed_) from_parent_.push_back(std::move(claimed));
  claimed_.clear();
  unclaimed_.clear();
  running_ = false;  // the next start here starts a reaper
  waiting_for_work_ = false;
  // The child has the kernel's first futex table again.
  futexes_.start_over();
  futex_table_for_ = 0;
  // The parent's reaper may have been waiting on it: a condition variable with a waiter that
  // does not exist here could keep a notify waiting for that waiter.
  ::new (static_cast<void*>(&ready_)) std::condition_variable();
  lock_.unlock();
}

void reaper::ensure_running() {
  std::lock_guard guard(lock_);
  if (running_) return;
  std::thread(&reaper::run, this).detach();
  running_ = true;
  process_.store(getpid(), std::memory_order_relaxed);
}

void reaper::hand_over(thread_id ended) {
  bool wake = false;
  {
    std::lock_guard guard(lock_);
    unclaimed_.push_back(ended);
    // Only a reaper waiting for work needs waking: one that is gathering (see run()) takes this
    // one when its moment is over, even if a start has emptied the queue meanwhile.
    wake = std::exchange(waiting_for_work_, false);
  }
  if (wake) ready_.notify_one();
}

void reaper::reap_exited() {
  // The records are dropped once the lock is let go of: the last reference to one gives its
  // stack back, which may tell the reaper (unmap_retired_soon), taking this lock.
  std::vector<record_ptr> looked_at;
  std::lock_guard guard(lock_);
  std::erase_if(unclaimed_, [&looked_at](thread_id id) {
    const record_ptr& ended = looked_at.emplace_back(registry::instance().find(id));
    if (ended == nullptr || ended->reap_claimed.exchange(true)) return true;  // gone, or claimed
    if (pthread_tryjoin_np(ended->handle, nullptr) != 0) {
      // Still exiting: left here, unclaimed, for the next look or the reaper.
      ended->reap_claimed.store(false);
      return false;
    }
    forget(*ended);
    return true;
  });
}

void reaper::unmap_retired_soon() {
  // In a child forked from the process the reaper runs in, there is no reaper (nor may its lock
  // be free): unmapped now.
  if (process_.load(std::memory_order_relaxed) != getpid()) {
    unmap_retired_stacks();
    return;
  }
  bool wake = false;
  {
    std::lock_guard guard(lock_);
    stacks_retired_ = true;
    wake = std::exchange(waiting_for_work_, false);
  }
  if (wake) ready_.notify_one();
}

void reaper::note_thread_count(std::size_t threads) {
  if (!futexes_.due(threads)) return;
  {
    std::lock_guard guard(lock_);
    if (threads <= futex_table_for_) return;
    futex_table_for_ = threads;
  }
  ready_.notify_one();
}

std::size_t reaper::wake_ups() {
  std::lock_guard guard(lock_);
  return wake_ups_;
}

void reaper::take_over(record_ptr claimed) {
  {
    std::lock_guard guard(lock_);
    claimed_.push_back(std::move(claimed));
  }
  ready_.notify_one();
}

// Joins in the order threads ended, blocking on the oldest for at most `patience`: one whose
// end is slow (a thread_local destructor that takes its time) is put at the back, and the
// others that are gone meanwhile are joined without waiting, so it delays nobody's reaping by
// more than the patience. That grows while nothing ends (a thread stuck in its end costs no
// busy polling) and is short again as soon as something is joined.
void reaper::run() {
  pthread_setname_np(pthread_self(), "mthread-reaper");
  constexpr auto gathering = std::chrono::milliseconds(1);
  constexpr auto shortest_patience = std::chrono::milliseconds(1);
  constexpr auto longest_patience = std::chrono::milliseconds(16);
  auto patience = shortest_patience;
  std::deque<record_ptr> ending;  // claimed by the reaper, not yet joined
  std::vector<thread_id> handed_over;
  std::size_t futex_table_done_for = 0;
  auto unmapped_at = std::chrono::steady_clock::now();
  for (;;) {
    std::size_t grow_futex_table_for = 0;
    handed_over.clear();
    // The stacks retired meanwhile, among them those of the threads joined here: before waiting,
    // and while joining, once a gathering's time has passed (a thread slow to end keeps
    // `ending` from emptying for as long as it takes).
    if (ending.empty() || std::chrono::steady_clock::now() - unmapped_at >= gathering) {
      {
        std::lock_guard guard(lock_);
        stacks_retired_ = false;
      }
      unmap_retired_stacks();
      unmapped_at = std::chrono::steady_clock::now();
    }
    {
      std::unique_lock guard(lock_);
      if (ending.empty()) {
        const auto urgent = [&] {
          return !claimed_.empty() || futex_table_for_ > futex_table_done_for;
        };
        // Threads end in bursts, and whoever waits for one (join(), status()) joins it itself:
        // gathering for a moment after each wake-up makes one do for many ended threads, and
        // leaves the CPUs to the threads that end and to those waiting for them. Also when a
        // start's reap_exited() took what woke it before it looked: sleeping again at once had
        // the next thread's end wake it again, and among quick starts a fifth of them paid for a
        // wake-up of the other CPU (15-20 µs on a virtual machine). Waiting for work is said
        // before every sleep for it, and only then: a hand-over during the gathering is seen at
        // its end.
        for (;;) {
          if (!urgent() && unclaimed_.empty() && !stacks_retired_) {
            waiting_for_work_ = true;
            ready_.wait(guard);
            waiting_for_work_ = false;
            ++wake_ups_;
          }
          if (!urgent()) ready_.wait_for(guard, gathering, urgent);
          if (urgent() || !unclaimed_.empty() || stacks_retired_) break;
        }
      }
      if (futex_table_for_ > futex_table_done_for) {
        grow_futex_table_for = futex_table_done_for = futex_table_for_;
      }
      for (record_ptr& claimed : claimed_) ending.push_back(std::move(claimed));
      claimed_.clear();
      handed_over.assign(unclaimed_.begin(), unclaimed_.end());
      unclaimed_.clear();
    }
    for (const thread_id id : handed_over) {
      record_ptr ended = registry::instance().find(id);
      if (ended != nullptr && !ended->reap_claimed.exchange(true)) {
        ending.push_back(std::move(ended));
      }
    }
    if (grow_futex_table_for != 0) futexes_.grow(grow_futex_table_for);
    if (ending.empty()) continue;
    record_ptr oldest = std::move(ending.front());
    ending.pop_front();
    if (join_until(oldest->handle, deadline::after(patience)) == 0) {
      forget(*oldest);
      patience = shortest_patience;
      continue;
    }
    const std::size_t before = ending.size();
    std::erase_if(ending, [](const record_ptr& ended) {
      if (pthread_tryjoin_np(ended->handle, nullptr) != 0) return false;
      forget(*ended);
      return true;
    });
    patience =
        ending.size() < before ? shortest_patience : std::min(2 * patience, longest_patience);
    ending.push_back(std::move(oldest));
  }
}

}  // namespace mthread::core
