// join(): waiting for a thread to be gone, and joining it when the joiner can.
#include <pthread.h>
#include <sched.h>

#include <cerrno>
#include <thread>

#include "core/control.hpp"
#include "core/reaper.hpp"
#include "core/registry.hpp"
#include "mthread/thread.hpp"

namespace mthread {
namespace core {
namespace {

// For a joiner that saw `target` end (`ended` is set a few system calls before the thread is
// gone): joins it. First for a few microseconds without sleeping (most threads are gone by
// then), then in slices short enough that the joiner stays killable and suspendable and keeps
// its deadline; a joiner that must stop waiting hands its claim to the reaper.
void join_or_hand_to_reaper(thread_record& self, const record_ptr& target, const deadline& until) {
  if (target->reap_claimed.exchange(true)) return;  // the reaper has it
  if (join_without_sleeping(target->handle, deadline::after(std::chrono::microseconds(20)))) {
    forget(*target);
    return;
  }
  const waiting_scope waiting(self);
  for (;;) {
    if (join_until(target->handle, deadline::after(std::chrono::microseconds(500))) == 0) {
      forget(*target);
      return;
    }
    if (self.kill_requested.load() || self.suspend_requested.load() || until.passed()) {
      reaper::instance().take_over(target);
      return;
    }
  }
}

}  // namespace
}  // namespace core

using core::api_call;
using core::registry;

bool join(thread_id id, std::chrono::nanoseconds timeout) {
  api_call call;
  auto& threads = registry::instance();
  const core::record_ptr target = threads.find(id);
  if (target == nullptr) return true;
  if (target.get() == call.self()) {
    throw invalid_argument("join", "id", "is the calling thread: a thread cannot join itself");
  }
  if (target->type == thread_type::main) {
    throw invalid_argument("join", "id",
                           "is the main thread, which never ends while the process runs");
  }
  const deadline until = deadline::after(timeout);
  auto gone = [&] { return threads.find(id) == nullptr; };
  if (call.self() == nullptr) {
    // No joiner record, so the thread's end counts on the reaper, which gathers for a
    // millisecond: join it here once its body is over, as status() does (once: one whose end is
    // slow is left to the reaper, not spun on at every look).
    bool reaped_once = false;
    while (!gone()) {
      if (until.passed()) return false;
      if (!reaped_once && target->only_end_left()) {
        reaped_once = true;
        if (core::reap_if_gone(target)) return true;
        continue;
      }
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    return true;
  }
  threads.add_joiner(call.self(), target.get());
  target->joiners.fetch_add(1, std::memory_order_seq_cst);
  struct leave {
    core::thread_record* self;
    const core::record_ptr& target;
    ~leave() {
      registry::instance().remove_joiner(self);
      target->joiners.fetch_sub(1, std::memory_order_seq_cst);
      // Killed or timed out after the thread ended, whose end counted on this joiner.
      if (target->ended.load() && !target->reap_claimed.load()) {
        core::reaper::instance().hand_over(target->id);
      }
    }
  } at_end{call.self(), target};
  if (!core::wait_until(*call.self(), until, [&] { return target->ended.load(); })) {
    return false;
  }
  core::join_or_hand_to_reaper(*call.self(), target, until);
  return core::wait_until(*call.self(), until, gone);
}

}  // namespace mthread
