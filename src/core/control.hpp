// The rules every public call follows, in one place:
// - core_section: while a thread is inside the core it may hold a core lock, so a suspend signal
//   only leaves the request and the thread parks when it leaves the section;
// - api_call: also the kill check at a native thread's entry into mthread;
// - wait_until: the one wait loop, where suspend parks and kill throws.
#pragma once

#include <chrono>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "core/registry.hpp"
#include "mthread/deadline.hpp"

namespace mthread::core {

class core_section {
 public:
  core_section();
  ~core_section();
  core_section(const core_section&) = delete;
  core_section& operator=(const core_section&) = delete;
  thread_record* self() const { return self_; }

 private:
  thread_record* self_;
};

class api_call : public core_section {
 public:
  api_call();
};

// The thread shows as WAITING (status(), list()) while one of these lives: inside mthread's waits.
class waiting_scope {
 public:
  explicit waiting_scope(thread_record& self) : self_(self) {
    self_.waiting.store(true, std::memory_order_relaxed);
  }
  ~waiting_scope() { self_.waiting.store(false, std::memory_order_relaxed); }
  waiting_scope(const waiting_scope&) = delete;
  waiting_scope& operator=(const waiting_scope&) = delete;

 private:
  thread_record& self_;
};

// Throws thread_killed if the calling thread was killed, is not deferring kills and is not
// already unwinding.
void throw_if_killed(thread_record& self);

// Parks while suspended; returns on resume or kill. Async-signal-safe.
void park_while_suspended(thread_record& self);

// One sleep of a thread that saw its suspend request after `seen = self.park.prepare()`:
// returns when woken (resume, kill, anything else) or at once if the request is gone already.
// Every sleep of a suspended thread goes through here: resume() wakes a thread only while it
// sleeps here, so resuming a thread that never stopped (suspended while it slept in a wait, and
// still asleep there) costs no wake-up. Async-signal-safe.
void sleep_while_suspended(thread_record& self, std::uint32_t seen);

// Blocks the calling thread until `ready()` is true (returns true) or the deadline passes
// (false). Parks while suspended, throws thread_killed when killed. `ready` runs with no lock
// held. `arrived(going_to_sleep)` tells the parker when `ready()` may have turned true (see
// parker::wait). deadline::never(): wait until ready, however long.
template <class Ready, class Arrived>
bool wait_until(thread_record& self, const deadline& until, Ready&& ready, const Arrived& arrived) {
  // What is waited for is often there already (a receiver behind its sender): then the thread
  // never shows as WAITING, and pays no write to its slot's word (two atomic operations a call).
  throw_if_killed(self);
  if (!self.suspend_requested.load(std::memory_order_acquire) && ready()) return true;
  const waiting_scope waiting(self);
  for (;;) {
    // prepare() before every check, the kill check included: a kill() (or any wake) landing
    // between a check and prepare() would otherwise be missed and the thread sleep on.
    const auto seen = self.park.prepare();
    throw_if_killed(self);
    const bool suspended = self.suspend_requested.load(std::memory_order_acquire);
    if (!suspended) {
      if (ready()) return true;
      if (until.passed()) return false;
      if constexpr (std::is_null_pointer_v<Arrived>) {
        self.park.wait(seen, until);
      } else {
        self.park.wait(seen, until, arrived);
      }
    } else {
      sleep_while_suspended(self, seen);
    }
  }
}

// For conditions that only a wake() changes (a thread ended or gone, a sleep's deadline): these
// waits are long, so they sleep at once instead of spinning.
template <class Ready>
bool wait_until(thread_record& self, const deadline& until, Ready&& ready) {
  return wait_until(self, until, std::forward<Ready>(ready), nullptr);
}

}  // namespace mthread::core
