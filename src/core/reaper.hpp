// The reaper: the thread that joins ended threads no joiner joins, frees their stacks and takes
// them out of the registry; and the joins it shares with join().
#pragma once

#include <pthread.h>
#include <sys/types.h>
#include <time.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <vector>

#include "core/registry.hpp"
#include "mthread/deadline.hpp"

namespace mthread::core {

// Gives back the stack of a thread that is gone (joined) and only then removes it from the
// registry, so "status() is TERMINATED" means its stack and mailbox are freed.
void forget(thread_record& joined);

// For status(): a thread whose body is over is waited for, at most `last_moments`, until it is
// gone: joined and forgotten here if nobody claimed it yet, else by whoever did (the reaper, a
// joiner). True when it is gone now.
inline constexpr std::chrono::microseconds last_moments{1000};
bool reap_if_gone(const record_ptr& target);

// Joins `thread` if it is gone by `end`, looking again and again without sleeping (for a
// thread in its last microseconds). True when joined.
bool join_without_sleeping(pthread_t thread, const deadline& end);

// Joins `thread` if it is gone by `end` (not never): 0 then, else an errno.
int join_until(pthread_t thread, const deadline& end);

// Linux (6.16 on) gives each process a private futex hash table, sized by the lesser of its
// thread count and the CPUs: 16 buckets on a two-CPU machine, however many threads there are.
// Every sleeping thread of mthread's waits on a futex word of its own, so with thousands of them
// each wake-up walks hundreds of waiters in its bucket (40 µs a wake at 10000 threads, against
// 4 µs at 100). So the table grows with the thread count, four buckets a thread, by factors of
// four. A resize waits for an RCU grace period (30 ms on a small virtual machine), so the reaper
// makes it, not the thread that starts one. Kernels without the call, and a process that chose
// the global table (0 buckets), are left as they are.
class futex_table {
 public:
  // Whether the table should grow now that `threads` are alive. Cheap: one relaxed load.
  bool due(std::size_t threads) const {
    return threads >= next_check_.load(std::memory_order_relaxed);
  }
  // The reaper's: sizes the table for `threads`.
  void grow(std::size_t threads);
  // In a forked child, which has the kernel's first table again.
  void start_over() { next_check_.store(first_check, std::memory_order_relaxed); }

 private:
  static constexpr std::size_t first_check = 32;
  std::atomic<std::size_t> next_check_{first_check};
};

// Joins ended threads; a thread blocked in join() on one does it itself when it can (see
// join()), so that a join costs one wake-up, as std::thread::join does.
class reaper {
 public:
  static reaper& instance();

  // Called before the first thread starts, so a failure reaches the caller of start.
  void ensure_running();

  // An ended thread that no joiner can join (none, or suspended, killed, timed out): the reaper
  // claims it unless a joiner, status() or a start did, after gathering for about a millisecond
  // (see run()). By id: a thread's record holds its stack's mapping, which a reference waiting
  // here would keep after a joiner claimed and joined the thread.
  void hand_over(thread_id ended);

  // From start(): joins, without waiting, the ended threads handed over that have exited, so
  // that their stacks are back in the cache for the thread about to start (the reaper gathers
  // for a while before it gets to them).
  void reap_exited();

  // From start(): `threads` are alive now; the reaper grows the futex table if it is due.
  void note_thread_count(std::size_t threads);

  // Stacks were retired (see give_back_stack): the reaper unmaps them after gathering for about
  // a millisecond, with those of the threads that end meanwhile.
  void unmap_retired_soon();

  // From a joiner that claimed a thread which is not gone yet (its thread_local destructors
  // still run) and must stop waiting: the reaper waits for it instead.
  void take_over(record_ptr claimed);

  // How often a hand-over has woken it from its wait for work (each one costs the thread that
  // ends a wake-up of another thread, often of another CPU). For tests.
  std::size_t wake_ups();

 private:
  void run();
  // fork(): see before_fork() in reaper.cpp. In the child the reaper's copy has no thread, and
  // the parent's threads it had yet to reap do not exist (start_over_in_child() lets go of its
  // lock).
  static void before_fork();
  static void after_fork_in_parent();
  static void after_fork_in_child();
  void start_over_in_child();

  std::mutex lock_;
  std::condition_variable ready_;
  std::deque<record_ptr> claimed_;   // claimed by a joiner that had to stop waiting
  std::deque<thread_id> unclaimed_;  // ended, and no joiner could join them
  // In a forked child: the records of the threads the parent's reaper had yet to reap (see
  // start_over_in_child).
  std::vector<record_ptr> from_parent_;
  bool running_ = false;
  std::atomic<pid_t> process_{0};  // the process the reaper runs in
  bool waiting_for_work_ = false;  // asleep without a deadline: a hand-over must wake it
  bool stacks_retired_ = false;    // since the reaper last unmapped them
  std::size_t wake_ups_ = 0;
  futex_table futexes_;
  std::size_t futex_table_for_ = 0;  // the thread count the table should be sized for
};

}  // namespace mthread::core
