// The rules every public call follows (control.hpp), and the calls that control a thread:
// allow_suspend, suspend, resume, kill, sleep_for and checkpoint.
#include "core/control.hpp"

#include <algorithm>
#include <exception>
#include <thread>

#include "core/reaper.hpp"
#include "core/signals.hpp"
#include "mthread/binding.hpp"
#include "mthread/thread.hpp"

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
    sleep_while_suspended(self, seen);
  }
}

void sleep_while_suspended(thread_record& self, std::uint32_t seen) {
  // seq_cst, with resume()'s clearing of the request and its look at asleep_suspended: either
  // the look below sees the request gone, or resume() sees this thread asleep here and wakes it
  // (after `seen`, so the sleep ends). The value before is put back: the suspend signal's
  // handler may park inside another sleep here, which must still be woken when it returns.
  const bool outer = self.asleep_suspended.exchange(true, std::memory_order_seq_cst);
  if (self.suspend_requested.load(std::memory_order_seq_cst)) {
    self.park.wait(seen, deadline::never());
  }
  self.asleep_suspended.store(outer, std::memory_order_seq_cst);
}

// --- the public control calls of thread.hpp --------------------------------------------------

namespace {

bool alive(const record_ptr& record) {
  return record != nullptr && !record->ended.load();
}

}  // namespace
}  // namespace mthread::core

namespace mthread {

using core::api_call;
using core::registry;

void allow_suspend(bool allow) {
  api_call call;
  if (call.self() != nullptr && call.self()->type != thread_type::main) {
    // seq_cst: pairs with suspend()'s second look (no suspend after allow_suspend(false)).
    call.self()->suspendable.store(allow, std::memory_order_seq_cst);
  }
}

bool suspend(thread_id id) {
  api_call call;
  using slot = core::thread_slot;
  bool requested = false;
  bool undone = false;
  const core::record_ptr target =
      registry::instance().decide_by_slot(id, [&](slot* target_slot, bool joining) {
        if (target_slot == nullptr || target_slot->record() == call.self()) return false;
        const std::uintptr_t flags = target_slot->word.load(std::memory_order_acquire);
        if ((flags & slot::kill_requested_bit) != 0 || (flags & slot::suspendable_bit) == 0) {
          return false;
        }
        // A thread inside one of mthread's waits has not ended; of any other the record says.
        if ((flags & slot::waiting_bit) == 0 && target_slot->record()->ended.load()) return false;
        const std::uintptr_t before =
            target_slot->word.fetch_or(slot::suspend_requested_bit, std::memory_order_seq_cst);
        if ((before & slot::suspend_requested_bit) != 0) return false;
        // allow_suspend(false) may have run between the look above and the request: then it
        // either saw the request (and parked at its end, before returning: the undo wakes it)
        // or the request sees it gone. Undone, so no thread is ever stopped after
        // allow_suspend(false) returned. Likewise a kill that came meanwhile (it cleared the
        // request before this one was made): a killed thread runs to its end, cleanup included.
        if ((before & slot::suspendable_bit) == 0 || (before & slot::kill_requested_bit) != 0) {
          target_slot->word.fetch_and(~slot::suspend_requested_bit, std::memory_order_seq_cst);
          undone = true;
          return true;
        }
        requested = true;
        // A thread inside one of mthread's waits stops there, or sees the request as it leaves
        // (a native thread parks at the end of the call, a binding looks before its
        // interpreter's code runs again): nothing else is needed, unless it may be a joiner.
        return (before & slot::waiting_bit) == 0 || joining;
      });
  if (undone) {
    target->park.wake();
    return false;
  }
  if (!requested) return false;
  if (target == nullptr) return true;
  // A suspended joiner cannot join the thread it waits for: if that one has ended already (and
  // counted on this joiner), the reaper does it. (Before the hook: a Python one may block.)
  if (core::record_ptr joined = registry::instance().ended_target_of(*target)) {
    core::reaper::instance().hand_over(joined->id);
  }
  if (target->preemptive()) {
    core::send_suspend_signal(*target);
  } else if (target->hooks) {
    target->hooks->on_suspend_request();
  }
  return true;
}

bool resume(thread_id id) {
  api_call call;
  using slot = core::thread_slot;
  bool resumed = false;
  // A thread suspended while it slept in a wait is still asleep there, and sees the resume
  // whenever that wait wakes it: only one that stopped for the suspension needs waking.
  const core::record_ptr stopped =
      registry::instance().decide_by_slot(id, [&](slot* target_slot, bool) {
        if (target_slot == nullptr) return false;
        const std::uintptr_t before =
            target_slot->word.fetch_and(~slot::suspend_requested_bit, std::memory_order_seq_cst);
        resumed = (before & slot::suspend_requested_bit) != 0;
        return resumed && (before & slot::asleep_suspended_bit) != 0;
      });
  if (stopped != nullptr) stopped->park.wake();
  return resumed;
}

bool kill(thread_id id) {
  api_call call;
  const core::record_ptr target = registry::instance().find(id);
  if (!core::alive(target) || target->type == thread_type::main) return false;
  target->kill_requested.store(true, std::memory_order_seq_cst);
  if (target.get() == call.self()) {
    core::throw_if_killed(*target);
    return true;
  }
  // A kill releases a suspended thread: it must run to its end (unwinding, or cleanup under a
  // kill_deferral) instead of staying parked, and it no longer shows as suspended.
  target->suspend_requested.store(false, std::memory_order_seq_cst);
  target->park.wake();
  if (target->hooks) target->hooks->on_kill_request();
  return true;
}

void sleep_for(std::chrono::nanoseconds duration) {
  binding::sleep_until(deadline::after(duration));
}

void binding::sleep_until(const deadline& until) {
  api_call call;
  if (call.self() == nullptr) {
    while (until.is_never()) std::this_thread::sleep_for(std::chrono::hours(24));
    std::this_thread::sleep_until(until.when());
    return;
  }
  core::wait_until(*call.self(), until, [] { return false; });
}

void checkpoint() {
  api_call call;
  if (call.self() == nullptr) return;
  if (call.self()->suspend_requested.load()) core::park_while_suspended(*call.self());
  core::throw_if_killed(*call.self());
}

}  // namespace mthread
