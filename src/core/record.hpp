// Everything the library knows about one thread. Shared ownership: the registry holds it while
// the thread lives, and a caller that found it keeps it alive across a racing end (a sender may
// keep the record of its last target for long: what is big in it, the stack's pages and the
// messages, is given back when the thread ends, not when the last reference goes).
//
// A started thread's record, and its function, live at the top of the thread's own stack, above
// the pages every thread touches anyway (the thread's control block and TLS, the first frames):
// an idle thread costs its stack's resident pages and no heap of its own. The stack's address
// space goes back to the cache when the last reference goes.
#pragma once

#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "core/mailbox.hpp"
#include "core/parker.hpp"
#include "core/slots.hpp"
#include "core/stack.hpp"
#include "mthread/binding.hpp"
#include "mthread/thread.hpp"
#include "mthread/types.hpp"

namespace mthread::core {

// A started thread's function, in storage of the record's (see detail::body_type).
class thread_body {
 public:
  thread_body() = default;
  thread_body(void* at, const detail::body_type& type) : at_(at), type_(&type) {}
  ~thread_body() { reset(); }
  thread_body(const thread_body&) = delete;
  thread_body& operator=(const thread_body&) = delete;
  thread_body& operator=(thread_body&& other) noexcept {
    reset();
    at_ = std::exchange(other.at_, nullptr);
    type_ = other.type_;
    return *this;
  }

  void run() {
    if (at_ != nullptr) type_->run(at_);
  }
  // Destroys the function and what it holds.
  void reset() {
    if (at_ != nullptr) type_->destroy(std::exchange(at_, nullptr));
  }

 private:
  void* at_ = nullptr;
  const detail::body_type* type_ = nullptr;
};

struct thread_record {
  // The main thread's: it has no stack of the library's.
  thread_record(thread_id id_, thread_type type_, std::string name_, std::size_t mailbox_depth);
  // A started thread's, made by make_started_record().
  thread_record(thread_id id_, thread_type type_, std::string name_, std::size_t mailbox_depth,
                stack_region& stack_)
      : id(id_),
        slot(id_),
        type(type_),
        name(std::move(name_)),
        stack(stack_),
        box(mailbox_depth) {}
  thread_record(const thread_record&) = delete;
  thread_record& operator=(const thread_record&) = delete;

  const thread_id id;
  // The registry's entry and the state flags others read (see slots.hpp); given back when the
  // record goes.
  const owned_slot slot;
  const thread_type type;
  const std::string name;
  // Native threads are parked by a signal wherever they run; the others only at the places
  // their binding chooses (see binding.hpp).
  bool preemptive() const { return type == thread_type::native; }

  // The registry's reference to this record, while the thread is in the registry (its lock): kept
  // here rather than in the slot, which every thread pays for in a dense pool.
  std::shared_ptr<thread_record> in_registry;
  std::shared_ptr<thread_hooks> hooks;
  thread_body body;
  // Empty for the main thread. Its pages are dropped once the thread is joined; the mapping,
  // which holds this record, goes when the record does.
  stack_region& stack;
  std::size_t stack_size = 0;
  pthread_t handle{};  // set by the thread itself before it can be suspended
  // The kernel's id of the thread (/proc/self/task/<os_tid>), to say where a thread that
  // cannot be killed is blocked. 0 until the thread set it.
  std::atomic<long> os_tid{0};
  // The CPUs the thread takes as its first act, when it was started on its starter's CPU alone
  // (start.cpp, start_on_starters_cpu).
  std::optional<cpu_set_t> cpus_after_start;

  slot_flag suspendable = slot->suspendable();
  slot_flag suspend_requested = slot->suspend_requested();
  // While the thread sleeps because it is suspended (sleep_while_suspended): the only sleep
  // resume() has to wake it from; any other wait sees the resume when it next wakes.
  slot_flag asleep_suspended = slot->asleep_suspended();
  slot_flag kill_requested = slot->kill_requested();
  slot_flag waiting = slot->waiting();
  int kill_deferrals = 0;         // touched by the thread itself only
  bool suspension_ended = false;  // likewise

  // > 0 while the thread is inside the core (and may hold a lock of the core's): a suspend
  // signal arriving then only leaves the request, and the end of the section parks.
  std::atomic<int> core_depth{0};

  // Guards `ended` against a suspend signal being sent to a thread that is exiting, and
  // `stack` against being given back while list() measures it.
  std::mutex signal_lock;
  std::atomic<bool> ended{false};
  // Set before `ended` by a binding whose thread, its body over, has only a lock to let go of
  // (binding::body_over_but_for_release). Either one: nothing is left but the thread's end.
  std::atomic<bool> body_over{false};
  bool only_end_left() const { return ended.load() || body_over.load(); }

  std::atomic<std::uint32_t> notification{0};
  mailbox box;
  parker park;

  // 0 once the stack is given back (the thread is then leaving list() too).
  std::size_t max_stack_used() {
    std::lock_guard guard(signal_lock);
    return stack_given_back ? 0 : stack.max_used();
  }

  // Called once the thread is joined: nothing runs on the stack any more.
  void give_back_stack_now() {
    std::lock_guard guard(signal_lock);
    stack_given_back = true;
    stack.discard_contents();
  }
  bool stack_given_back = false;  // signal_lock

  // Threads blocked in join() on this one; whoever joins the ended thread (pthread_join, the
  // stack given back, gone from the registry) claims it first: a joiner, or else the reaper.
  std::atomic<int> joiners{0};
  thread_record* joining = nullptr;  // the thread this one is blocked in join() on; registry's lock
  std::atomic<bool> reap_claimed{false};

  thread_state state() const { return slot->state(); }
};

// The slot keeps the record's address and its flags in one word: the flags take its low bits.
static_assert(alignof(thread_record) > thread_slot::flag_bits);

using record_ptr = std::shared_ptr<thread_record>;

// The record of a thread about to start, and its stack (of `stack_bytes` usable bytes) with it;
// `body` is moved into the stack's top beside the record. The thread runs on
// stack.low() .. stack.low() + stack.thread_size().
record_ptr make_started_record(thread_id id, thread_type type, std::string_view name,
                               std::size_t mailbox_depth, std::size_t stack_bytes, void* body,
                               const detail::body_type& body_type);

}  // namespace mthread::core
