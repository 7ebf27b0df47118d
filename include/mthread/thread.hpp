// Starting threads, controlling them (suspend, resume, kill) and looking at them (list, status).
#pragma once

#include <chrono>
#include <cstddef>
#include <iosfwd>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "mthread/types.hpp"

namespace mthread {

// Everything start_new_thread can be told besides the name and the function. Its threads are
// NATIVE; a language binding starts its own kinds with binding::start (mthread/binding.hpp).
struct start_options {
  std::size_t stack_size = 0;                         // 0: the current stack_size()
  std::size_t mailbox_depth = default_mailbox_depth;  // 1 .. max_mailbox_depth
};

namespace detail {
// A thread's function, of any type: start() moves it into the top of the thread's own stack
// (beside what the library keeps there about the thread), so starting a thread allocates nothing
// for it, and an idle thread's memory is its stack's resident pages and little more.
struct body_type {
  std::size_t size;
  std::size_t alignment;
  void (*move_to)(void* from, void* to);
  void (*run)(void* body);
  void (*destroy)(void* body);
};
template <class Body>
inline constexpr body_type body_type_of{
    sizeof(Body), alignof(Body),
    [](void* from, void* to) { ::new (to) Body(std::move(*static_cast<Body*>(from))); },
    [](void* body) { (*static_cast<Body*>(body))(); },
    [](void* body) { static_cast<Body*>(body)->~Body(); }};

// `body` (of the type `type` describes) is moved into the thread's stack once the stack is taken.
thread_id start(std::string_view name, const start_options& options, void* body,
                const body_type& type);
}  // namespace detail

// Starts `f(args...)` on a new thread with its own stack and returns the thread's id.
// The arguments are copied or moved into the thread, as std::thread does (into the top of the
// thread's stack, so very large ones take from it).
// Throws mthread::error when the thread limit is reached, mthread::invalid_argument for invalid
// options (mthread::out_of_range for a mailbox_depth above max_mailbox_depth).
template <class F, class... Args>
thread_id start_new_thread(const start_options& options, std::string_view name, F&& f,
                           Args&&... args) {
  auto call = [fn = std::forward<F>(f),
               bound = std::make_tuple(std::forward<Args>(args)...)]() mutable {
    std::apply(std::move(fn), std::move(bound));
  };
  return detail::start(name, options, &call, detail::body_type_of<decltype(call)>);
}

template <class F, class... Args>
thread_id start_new_thread(std::string_view name, F&& f, Args&&... args) {
  return start_new_thread(start_options{}, name, std::forward<F>(f), std::forward<Args>(args)...);
}

// The default stack size for threads started from now on. Setting clamps to
// [min_stack_size, max_stack_size] and returns the effective size; 0 restores the default.
std::size_t stack_size();
std::size_t stack_size(std::size_t bytes);

// The thread limit in force: MTHREAD_MAX_THREADS from the environment, else the build's default.
std::size_t max_threads();

// Lets (or stops letting) the calling thread be suspended. New threads start not suspendable.
void allow_suspend(bool allow);

// True if the thread was running, allows suspension and is not the caller. A native thread stops
// wherever it runs within about a millisecond; its state is SUSPENDED at once.
bool suspend(thread_id id);
// True if the thread was suspended; it goes on where it stopped.
bool resume(thread_id id);
// True if the thread was alive and is not the main thread. The thread ends at its next call
// into mthread (at once if it waits or sleeps in one), unwinding with thread_killed; a native
// thread that never calls into mthread cannot be killed (see checkpoint()). docs/design.md,
// "Suspend and kill", has the details. kill(get_self_id()) throws thread_killed in the caller.
bool kill(thread_id id);

std::string get_thread_name(thread_id id);  // "unknown" for an id that is not alive
std::string get_self_name();                // "unknown" in a thread mthread does not know
thread_id get_self_id();                    // 0 in a thread mthread does not know
thread_id get_repl_id();                    // the main thread
thread_state status(thread_id id);          // terminated for a thread that is gone

std::vector<thread_info> list();
// One line a thread in the device's format:
// ID=7, Name: blink, State: running, Stack=8388608, MaxUsed=4096, Type: NATIVE
void print_list(std::ostream& out);

// Waits until thread `id` is gone — ended, its stack and mailbox freed — or the timeout passes.
// True if it is gone (also for an id that never was). Not in the device's API; tests and
// programs that end threads need it. Suspend and kill take effect in it. Throws
// mthread::invalid_argument for the caller's own id or the main thread's, which never end first.
bool join(thread_id id, std::chrono::nanoseconds timeout);

// Sleeps that suspend and kill take effect in.
void sleep_for(std::chrono::nanoseconds duration);

// A place where a pending suspend or kill takes effect. Call it in long loops of a thread that
// must stay killable: a native thread that never calls into mthread cannot be killed.
void checkpoint();

}  // namespace mthread
