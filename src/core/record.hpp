// Everything the library knows about one thread. Shared ownership: the registry holds it while
// the thread lives, and a caller that found it keeps it alive across a racing end.
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
  // Whoever lets go of the record last recycles the stack: the thread itself is long gone by
  // then (the reaper joined it before dropping the registry's reference).
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
  stack_region stack;  // empty for the main thread
  pthread_t handle{};  // set by the thread itself before it can be suspended

  std::atomic<bool> suspendable{false};
  std::atomic<bool> suspend_requested{false};
  std::atomic<bool> kill_requested{false};
  std::atomic<bool> waiting{false};
  int kill_deferrals = 0;  // touched by the thread itself only

  // > 0 while the thread is inside the core (and may hold a lock of the core's): a suspend
  // signal arriving then only leaves the request, and the end of the section parks.
  std::atomic<int> core_depth{0};

  // Guards `ended` against a suspend signal being sent to a thread that is exiting.
  std::mutex signal_lock;
  std::atomic<bool> ended{false};

  std::atomic<std::uint32_t> notification{0};
  mailbox box;
  parker park;

  thread_state state() const {
    if (suspend_requested.load(std::memory_order_acquire)) return thread_state::suspended;
    if (waiting.load(std::memory_order_acquire)) return thread_state::waiting;
    return thread_state::running;
  }
};

using record_ptr = std::shared_ptr<thread_record>;

}  // namespace mthread::core
