// mutex, condition_variable and the descriptor waits of sync.hpp.
//
// A blocked thread waits on a parker of its own — its record's in a thread mthread knows (so
// kill, suspend and resume wake it), a thread-local one elsewhere — after putting a waiter on
// the object's list. Whoever wakes it takes the waiter off the list and marks it `signalled`
// under the list's guard, then, with the guard let go (a woken thread must not find it held
// and sleep on it), publishes to its parker and marks it `released`: the waiter leaves only once
// it is released, so no waker ever touches a waiter or a parker that is gone.
#include "mthread/sync.hpp"

#include <sched.h>

#include <cerrno>
#include <optional>
#include <system_error>
#include <vector>

#include "core/control.hpp"
#include "core/registry.hpp"
#include "mthread/binding.hpp"

namespace mthread {
namespace detail {

struct sync_waiter {
  sync_waiter* prev = nullptr;
  sync_waiter* next = nullptr;
  sync_waiter* woken_next = nullptr;  // the chain of waiters one notify_all() wakes
  core::parker* park = nullptr;
  std::atomic<bool> signalled{false};
  std::atomic<bool> released{false};  // the waker is done with this waiter
  bool queued = false;                // under the list's guard
};

}  // namespace detail

namespace {

using detail::sync_waiter;
using detail::waiter_list;

// The parker of a thread mthread does not know.
core::parker& own_parker() {
  thread_local core::parker park;
  return park;
}

// Every call below runs under the list's guard.
void push_back(waiter_list& list, sync_waiter& waiter) {
  waiter.prev = list.tail;
  waiter.next = nullptr;
  (list.tail != nullptr ? list.tail->next : list.head) = &waiter;
  list.tail = &waiter;
  waiter.queued = true;
}

void remove(waiter_list& list, sync_waiter& waiter) {
  (waiter.prev != nullptr ? waiter.prev->next : list.head) = waiter.next;
  (waiter.next != nullptr ? waiter.next->prev : list.tail) = waiter.prev;
  waiter.prev = waiter.next = nullptr;
  waiter.queued = false;
}

// Under the guard: takes the first waiter off the list and marks it signalled; nullptr if there
// was none. Wake it with wake() once the guard is let go.
sync_waiter* take_first(waiter_list& list) {
  sync_waiter* first = list.head;
  if (first == nullptr) return nullptr;
  remove(list, *first);
  // seq_cst: the parker's handshake (see parker::publish).
  first->signalled.store(true, std::memory_order_seq_cst);
  return first;
}

// Wakes a chain of waiters taken with take_first(), with no guard held.
void wake(sync_waiter* waiter) {
  while (waiter != nullptr) {
    sync_waiter* next = waiter->woken_next;  // read before the waiter may leave
    waiter->park->publish();
    waiter->released.store(true, std::memory_order_release);
    waiter = next;
  }
}

// For a waiter that was signalled: returns once its waker is done with it (a few instructions
// and at most one system call away).
void wait_released(const sync_waiter& waiter) {
  for (unsigned spins = 0; !waiter.released.load(std::memory_order_acquire); ++spins) {
    if (spins > 100) sched_yield();
  }
}

enum class wait_end { signalled, timed_out, suspended };

// Waits until the waiter is signalled or the deadline passes. In a thread mthread knows, also
// returns when a suspend is requested (the caller must not sleep through it holding a wake that
// another waiter could use) and throws thread_killed when killed.
wait_end wait_for_signal(core::thread_record* self, sync_waiter& waiter, const deadline& until) {
  auto arrived = [&](bool) { return waiter.signalled.load(std::memory_order_seq_cst); };
  core::parker& park = *waiter.park;
  for (;;) {
    const auto seen = park.prepare();
    if (self != nullptr) {
      core::throw_if_killed(*self);
      if (self->suspend_requested.load(std::memory_order_acquire)) return wait_end::suspended;
    }
    if (waiter.signalled.load(std::memory_order_acquire)) return wait_end::signalled;
    if (until.passed()) return wait_end::timed_out;
    park.wait(seen, until, arrived);
  }
}

// Takes the waiter off the list if no waker did; true if a waker did (it was signalled). Either
// way no waker touches it any more once this returns.
bool leave(waiter_list& list, sync_waiter& waiter) {
  if (!waiter.signalled.load(std::memory_order_acquire)) {
    std::lock_guard guard(list.guard);
    if (waiter.queued) {
      remove(list, waiter);
      return false;
    }
  }
  wait_released(waiter);
  return true;
}

// While one lives, kill does not interrupt the calling thread's waits (the re-lock of a
// condition variable's mutex on the way out of wait()).
class no_kill_scope {
 public:
  explicit no_kill_scope(core::thread_record* self) : self_(self) {
    if (self_ != nullptr) ++self_->kill_deferrals;
  }
  ~no_kill_scope() {
    if (self_ != nullptr) --self_->kill_deferrals;
  }
  no_kill_scope(const no_kill_scope&) = delete;
  no_kill_scope& operator=(const no_kill_scope&) = delete;

 private:
  core::thread_record* self_;
};

}  // namespace

// --- mutex -----------------------------------------------------------------------------------

bool mutex::lock_waiting(const deadline& until) {
  core::api_call call;
  core::thread_record* self = call.self();
  std::optional<core::waiting_scope> waiting;
  if (self != nullptr) waiting.emplace(*self);
  for (;;) {
    if (try_lock()) return true;
    sync_waiter waiter;
    waiter.park = self != nullptr ? &self->park : &own_parker();
    {
      std::lock_guard guard(waiters_.guard);
      // Announce the waiter before the last look: an unlock from now on takes the slow path
      // and finds it (both are read-modify-writes of state_, so one sees the other).
      const std::uint32_t state = state_.fetch_or(waiters_bit, std::memory_order_acq_rel);
      if ((state & locked_bit) == 0) {
        if (waiters_.head == nullptr) state_.fetch_and(~waiters_bit, std::memory_order_relaxed);
        continue;
      }
      push_back(waiters_, waiter);
    }
    wait_end end = wait_end::timed_out;
    try {
      end = wait_for_signal(self, waiter, until);
    } catch (...) {
      if (leave(waiters_, waiter)) wake_next_if_free();
      throw;
    }
    const bool signalled = leave(waiters_, waiter);
    if (end == wait_end::signalled) continue;
    // Timed out or suspended: a wake that came meanwhile goes to the next waiter.
    if (signalled) wake_next_if_free();
    if (end == wait_end::timed_out) return try_lock();
    core::park_while_suspended(*self);
    core::throw_if_killed(*self);
  }
}

void mutex::unlock() {
  if (!unlock_if_locked()) throw error("mthread::mutex::unlock: the mutex is not locked");
}

bool mutex::unlock_slow() noexcept {
  const core::core_section section;  // a suspend must not park this thread holding the guard
  sync_waiter* woken = nullptr;
  {
    std::lock_guard guard(waiters_.guard);
    const std::uint32_t state = state_.load(std::memory_order_relaxed);
    if ((state & locked_bit) == 0) return false;
    // Only this thread changes state_ now: no one can lock it, and waiters_bit changes under
    // the guard. Unlock first, then wake the first waiter (it tries again; a thread arriving
    // meanwhile may get the mutex first, as with CPython's lock).
    state_.store(waiters_.head != nullptr && waiters_.head->next != nullptr ? waiters_bit : 0,
                 std::memory_order_release);
    woken = take_first(waiters_);
  }
  wake(woken);
  return true;
}

void mutex::wake_next_if_free() noexcept {
  const core::core_section section;
  sync_waiter* woken = nullptr;
  {
    std::lock_guard guard(waiters_.guard);
    if ((state_.load(std::memory_order_acquire) & locked_bit) != 0) return;
    woken = take_first(waiters_);
    if (waiters_.head == nullptr) state_.fetch_and(~waiters_bit, std::memory_order_relaxed);
  }
  wake(woken);
}

// --- condition_variable ----------------------------------------------------------------------

void condition_variable::notify_one() noexcept {
  const core::core_section section;
  sync_waiter* woken = nullptr;
  {
    std::lock_guard guard(waiters_.guard);
    woken = take_first(waiters_);
  }
  wake(woken);
}

void condition_variable::notify_all() noexcept {
  const core::core_section section;
  sync_waiter* woken = nullptr;
  {
    std::lock_guard guard(waiters_.guard);
    sync_waiter** tail = &woken;
    while (sync_waiter* next = take_first(waiters_)) {
      *tail = next;
      tail = &next->woken_next;
    }
  }
  wake(woken);
}

bool condition_variable::wait_until_deadline(std::unique_lock<mutex>& lock, const deadline& until) {
  if (!lock.owns_lock()) throw error("mthread::condition_variable::wait: the lock is not held");
  core::api_call call;
  core::thread_record* self = call.self();
  sync_waiter waiter;
  waiter.park = self != nullptr ? &self->park : &own_parker();
  {
    std::lock_guard guard(waiters_.guard);
    push_back(waiters_, waiter);
  }
  lock.unlock();
  wait_end end = wait_end::timed_out;
  {
    std::optional<core::waiting_scope> waiting;
    if (self != nullptr) waiting.emplace(*self);
    try {
      for (;;) {
        end = wait_for_signal(self, waiter, until);
        if (end != wait_end::suspended) break;
        // A notified thread that is suspended returns once resumed, as one suspended just
        // after it returned would.
        core::park_while_suspended(*self);
      }
    } catch (...) {
      // Killed: a notify_one() it took goes to another waiter; the mutex is locked again
      // whatever happens (the caller's unique_lock owns it).
      if (leave(waiters_, waiter)) notify_one();
      const no_kill_scope no_kill(self);
      lock.lock();
      throw;
    }
  }
  const bool signalled = leave(waiters_, waiter);
  {
    const no_kill_scope no_kill(self);
    lock.lock();
  }
  if (self != nullptr) core::throw_if_killed(*self);
  return end == wait_end::signalled || signalled;
}

// --- descriptors -----------------------------------------------------------------------------

int poll(pollfd* fds, std::size_t count, std::chrono::nanoseconds timeout) {
  return binding::poll(fds, count,
                       timeout.count() < 0 ? deadline::never() : deadline::after(timeout));
}

int binding::poll(pollfd* fds, std::size_t count, const deadline& until) {
  core::api_call call;
  core::thread_record* self = call.self();
  auto fail = [] { throw std::system_error(errno, std::generic_category(), "mthread::poll"); };
  if (self == nullptr) {
    for (;;) {
      const timespec left = until.is_never() ? timespec{} : until.left_timespec();
      const int ready = ppoll(fds, count, until.is_never() ? nullptr : &left, nullptr);
      if (ready >= 0) return ready;
      if (errno != EINTR) fail();
    }
  }
  const core::waiting_scope waiting(*self);
  for (;;) {
    const auto seen = self->park.prepare();
    core::throw_if_killed(*self);
    if (self->suspend_requested.load(std::memory_order_acquire)) {
      core::sleep_while_suspended(*self, seen);
      continue;
    }
    const int ready = self->park.wait_fds(seen, fds, count, until);
    if (ready < 0) fail();
    if (ready > 0) return ready;
    if (until.passed()) return 0;
  }
}

namespace {
bool wait_ready(int fd, short events, const deadline& until) {
  pollfd entry{fd, events, 0};
  return binding::poll(&entry, 1, until) > 0;
}
}  // namespace

bool wait_readable(int fd) {
  return wait_ready(fd, POLLIN, deadline::never());
}
bool wait_readable(int fd, std::chrono::nanoseconds timeout) {
  return wait_ready(fd, POLLIN, deadline::after(timeout));
}
bool wait_writable(int fd) {
  return wait_ready(fd, POLLOUT, deadline::never());
}
bool wait_writable(int fd, std::chrono::nanoseconds timeout) {
  return wait_ready(fd, POLLOUT, deadline::after(timeout));
}

}  // namespace mthread
