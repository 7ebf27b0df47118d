// Blocking that suspend and kill reach: a mutex and a condition variable that work with
// std::unique_lock and std::lock_guard, and waits for a file descriptor (a socket, a pipe) to be
// ready.
//
// In a thread mthread started, every wait here is one of mthread's waits: the thread shows as
// WAITING, suspend() stops it at once (after resume() it goes on waiting, its deadline
// unchanged), and kill() unwinds it with mthread::thread_killed within milliseconds, so the
// destructors of its std::lock_guards run. In any other thread they behave as std::mutex,
// std::condition_variable and ::poll.
//
// A C++ server thread becomes killable by waiting for its socket with wait_readable() before
// each accept() or recv() (see examples/killable_server.cpp):
//
//   while (mthread::wait_readable(listener)) {
//     const int client = accept(listener, nullptr, nullptr);
//     ...
//   }
#pragma once

#include <poll.h>

#include <atomic>
#include <chrono>
#include <condition_variable>  // std::cv_status
#include <cstddef>
#include <cstdint>
#include <mutex>

#include "mthread/deadline.hpp"
#include "mthread/types.hpp"

namespace mthread {

namespace detail {
struct sync_waiter;  // one thread waiting; lives on its stack

// Threads blocked on a mutex or a condition variable, in arrival order.
struct waiter_list {
  std::mutex guard;  // held for a few instructions, never while anyone waits
  sync_waiter* head = nullptr;
  sync_waiter* tail = nullptr;
};
}  // namespace detail

// A lock, not recursive. Meets the standard's TimedLockable requirements (std::lock_guard,
// std::unique_lock, std::scoped_lock). Unlike std::mutex, any thread may unlock it (as a
// Python lock), and unlocking it when it is not locked is an mthread::error.
// The uncontended lock() and unlock() are one atomic instruction each.
class mutex {
 public:
  mutex() = default;
  ~mutex() = default;
  mutex(const mutex&) = delete;
  mutex& operator=(const mutex&) = delete;

  // Blocks until the mutex is free; a kill or suspend takes effect while it waits.
  void lock() {
    if (!try_lock()) (void)lock_waiting(deadline::never());
  }
  bool try_lock() noexcept {
    std::uint32_t state = state_.load(std::memory_order_relaxed);
    while ((state & locked_bit) == 0) {
      if (state_.compare_exchange_weak(state, state | locked_bit, std::memory_order_acquire,
                                       std::memory_order_relaxed)) {
        return true;
      }
    }
    return false;
  }
  template <class Rep, class Period>
  bool try_lock_for(const std::chrono::duration<Rep, Period>& timeout) {
    return try_lock() || lock_waiting(deadline::after(timeout));
  }
  template <class Clock, class Duration>
  bool try_lock_until(const std::chrono::time_point<Clock, Duration>& until) {
    return try_lock() || lock_waiting(deadline::at(until));
  }
  // Throws mthread::error if the mutex is not locked.
  void unlock();
  // unlock() for callers that report the error themselves: false (and nothing done) if the
  // mutex was not locked.
  bool unlock_if_locked() noexcept {
    std::uint32_t expected = locked_bit;
    if (state_.compare_exchange_strong(expected, 0, std::memory_order_release,
                                       std::memory_order_relaxed)) {
      return true;
    }
    return unlock_slow();
  }
  bool locked() const noexcept {
    return (state_.load(std::memory_order_relaxed) & locked_bit) != 0;
  }

  // Waits until `until` for the mutex; true once it holds it. What lock() and the try_lock_*
  // calls do after a failed try_lock().
  bool lock_waiting(const deadline& until);

 private:
  friend class condition_variable;
  static constexpr std::uint32_t locked_bit = 1;
  static constexpr std::uint32_t waiters_bit = 2;  // someone may be in waiters_: unlock looks

  bool unlock_slow() noexcept;
  void wake_next_if_free() noexcept;

  std::atomic<std::uint32_t> state_{0};
  detail::waiter_list waiters_;
};

// A condition variable for std::unique_lock<mthread::mutex>, as std::condition_variable is for
// std::unique_lock<std::mutex>. When a kill ends a wait, the mutex is locked again before
// thread_killed leaves wait() (as the standard requires of any exit from wait()).
class condition_variable {
 public:
  condition_variable() = default;
  ~condition_variable() = default;
  condition_variable(const condition_variable&) = delete;
  condition_variable& operator=(const condition_variable&) = delete;

  void notify_one() noexcept;
  void notify_all() noexcept;

  void wait(std::unique_lock<mutex>& lock) { (void)wait_until_deadline(lock, deadline::never()); }
  template <class Predicate>
  void wait(std::unique_lock<mutex>& lock, Predicate ready) {
    while (!ready()) wait(lock);
  }
  template <class Rep, class Period>
  std::cv_status wait_for(std::unique_lock<mutex>& lock,
                          const std::chrono::duration<Rep, Period>& timeout) {
    return wait_until_deadline(lock, deadline::after(timeout)) ? std::cv_status::no_timeout
                                                               : std::cv_status::timeout;
  }
  template <class Rep, class Period, class Predicate>
  bool wait_for(std::unique_lock<mutex>& lock, const std::chrono::duration<Rep, Period>& timeout,
                Predicate ready) {
    const deadline until = deadline::after(timeout);  // made once: a huge timeout cannot overflow
    while (!ready()) {
      if (!wait_until_deadline(lock, until)) return ready();
    }
    return true;
  }
  template <class Clock, class Duration>
  std::cv_status wait_until(std::unique_lock<mutex>& lock,
                            const std::chrono::time_point<Clock, Duration>& until) {
    return wait_until_deadline(lock, deadline::at(until)) ? std::cv_status::no_timeout
                                                          : std::cv_status::timeout;
  }
  template <class Clock, class Duration, class Predicate>
  bool wait_until(std::unique_lock<mutex>& lock,
                  const std::chrono::time_point<Clock, Duration>& until, Predicate ready) {
    while (!ready()) {
      if (wait_until(lock, until) == std::cv_status::timeout) return ready();
    }
    return true;
  }

 private:
  // False on timeout.
  bool wait_until_deadline(std::unique_lock<mutex>& lock, const deadline& until);

  detail::waiter_list waiters_;
};

// Waits until file descriptor `fd` is readable (data, a connection to accept, end of file, an
// error) or the timeout passes; true if it is ready. Without a timeout it waits as long as it
// takes and returns true. A closed descriptor counts as ready: the call that follows reports the
// error. A negative one is ignored, as by ::poll.
bool wait_readable(int fd);
bool wait_readable(int fd, std::chrono::nanoseconds timeout);
// The same for writing (room in a socket's buffer, a connect() finished).
bool wait_writable(int fd);
bool wait_writable(int fd, std::chrono::nanoseconds timeout);

// ::poll as one of mthread's waits: fills each entry's `revents` and returns how many are
// ready, 0 on timeout. A negative timeout waits without limit. Throws std::system_error when
// ::poll fails (too many descriptors, no memory).
int poll(pollfd* fds, std::size_t count, std::chrono::nanoseconds timeout);

}  // namespace mthread
