// Everything the library knows about one thread. Shared ownership: the registry holds it while
// the thread lives, and a caller that found it keeps it alive across a racing end (a sender may
// keep the record of its last target for long: what is big in it, the stack and the messages,
// is given back when the thread ends, not when the last reference goes).
#pragma once

#include <pthread.h>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "core/mailbox.hpp"
#include "core/parker.hpp"
#include "core/stack.hpp"
#include "mthread/binding.hpp"
#include "mthread/types.hpp"

namespace mthread::core {

struct thread_record {
  thread_record(thread_id id_, thread_type type_, std::string name_, std::size_t mailbox_depth)
      : id(id_), type(type_), name(std::move(name_)), box(mailbox_depth) {}
  // A thread that never started still holds its stack.
  ~thread_record() { give_back_stack(std::move(stack)); }
  thread_record(const thread_record&) = delete;
  thread_record& operator=(const thread_record&) = delete;

  const thread_id id;
  const thread_type type;
  const std::string name;
  // Native threads are parked by a signal wherever they run; the others only at the places
  // their binding chooses (see binding.hpp).
  bool preemptive() const { return type == thread_type::native; }

  std::shared_ptr<thread_hooks> hooks;
  std::function<void()> body;
  stack_region stack;  // empty for the main thread; given back once the thread is joined
  std::size_t stack_size = 0;
  pthread_t handle{};  // set by the thread itself before it can be suspended
  // The kernel's id of the thread (/proc/self/task/<os_tid>), to say where a thread that
  // cannot be killed is blocked. 0 until the thread set it.
  std::atomic<long> os_tid{0};

  std::atomic<bool> suspendable{false};
  std::atomic<bool> suspend_requested{false};
  std::atomic<bool> kill_requested{false};
  std::atomic<bool> waiting{false};
  int kill_deferrals = 0;         // touched by the thread itself only
  bool suspension_ended = false;  // likewise

  // > 0 while the thread is inside the core (and may hold a lock of the core's): a suspend
  // signal arriving then only leaves the request, and the end of the section parks.
  std::atomic<int> core_depth{0};

  // Guards `ended` against a suspend signal being sent to a thread that is exiting, and
  // `stack` against being given back while list() measures it.
  std::mutex signal_lock;
  std::atomic<bool> ended{false};

  std::atomic<std::uint32_t> notification{0};
  mailbox box;
  parker park;

  // 0 once the stack is given back (the thread is then leaving list() too).
  std::size_t max_stack_used() {
    std::lock_guard guard(signal_lock);
    return stack.max_used();
  }

  // Called once the thread is joined: nothing runs on the stack any more.
  void give_back_stack_now() {
    std::lock_guard guard(signal_lock);
    give_back_stack(std::move(stack));
  }

  // Threads blocked in join() on this one; whoever joins the ended thread (pthread_join, the
  // stack given back, gone from the registry) claims it first: a joiner, or else the reaper.
  std::atomic<int> joiners{0};
  thread_record* joining = nullptr;  // the thread this one is blocked in join() on; registry's lock
  std::atomic<bool> reap_claimed{false};

  thread_state state() const {
    if (suspend_requested.load(std::memory_order_acquire)) return thread_state::suspended;
    if (waiting.load(std::memory_order_acquire)) return thread_state::waiting;
    return thread_state::running;
  }
};

using record_ptr = std::shared_ptr<thread_record>;

}  // namespace mthread::core
