// The interpreter-specific half of mthread's Python threads: running a callable on a core thread
// with its own thread state, suspending it at its next line (a tracer installed on demand),
// killing it with ThreadKilled, and waiting without the GIL. All threading logic stays in the
// core; this file only bridges it to CPython.
#pragma once

#include <pybind11/pybind11.h>
#include <sched.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mthread/binding.hpp>
#include <optional>
#include <string>

#include "versions/gil_probe.h"

namespace mthread::python {

namespace py = pybind11;

// mthread.ThreadKilled (a SystemExit subclass) and mthread.error (CPython's _thread.error).
PyObject* thread_killed_type();
PyObject* error_type();

// Raises ThreadKilled in the calling thread (sets the error indicator): what a kill that ended
// one of mthread's waits becomes. Needs the GIL.
void set_thread_killed_error();

// At import: refuses an interpreter mthread cannot run on (ImportError), creates the exception
// types, and connects the checkpoints to mthread's threads.
void prepare_interpreter(py::module_& module);

// Starts `func(*args, **kwargs)` on a new PYTHON thread; returns its id.
thread_id start_python_thread(const std::string& name, py::object func, py::tuple args,
                              py::dict kwargs, std::size_t stack_bytes, std::size_t mailbox_depth);

// Runs a blocking core call with the GIL released, until `until`. `attempt(slice_end)` makes
// one call that waits until `slice_end` at most and returns a value when done. In the main
// thread the wait is cut into slices so a Ctrl-C (a Python signal handler) is seen within 20 ms;
// elsewhere the one slice is the whole wait. A kill while the thread is cleaning up after a
// ThreadKilled does not interrupt the wait.
template <class T, class Attempt>
std::optional<T> wait_without_gil(const deadline& until, Attempt&& attempt);

// Puts a filter in front of sys.unraisablehook that drops a kill's ThreadKilled delivered
// inside a finalizer. Needs the GIL.
void drop_ignored_kills();

// True while the calling thread handles a ThreadKilled (in an except or finally block).
bool handling_thread_killed();

// True while the calling thread cleans up after a kill: it handles a ThreadKilled, or the one
// raised in it still propagates (closing a generator or a task on its way).
bool in_kill_cleanup();

// Waits for every started thread to end; on Ctrl-C kills them all, waits `grace` for them,
// and returns the count still alive (threads stuck in C calls cannot be killed).
std::size_t join_all(std::chrono::duration<double> grace);

// --- template implementation ---

// How often a binding call let go of the GIL. Where CPython does not say whether the GIL is held
// (gil_probe.h), a thread that knew it held can tell whether a thread let go of it since.
inline std::atomic<std::uint64_t> gil_releases{0};

class gil_release {
 public:
  gil_release() : saved_(PyEval_SaveThread()) {
    gil_releases.fetch_add(1, std::memory_order_relaxed);
  }
  // Re-taking the GIL can end this thread (pthread_exit) during interpreter shutdown, so it
  // is done explicitly, never from a destructor.
  void reacquire() {
    if (saved_ != nullptr) PyEval_RestoreThread(std::exchange(saved_, nullptr));
  }
  // As reacquire(), in turn with the other threads that leave a wait (binding::lock_queue_turn).
  void reacquire_in_turn() {
    if (saved_ == nullptr) return;
    const binding::lock_queue_turn turn;
    PyEval_RestoreThread(std::exchange(saved_, nullptr));
  }

 private:
  PyThreadState* saved_;
};

bool in_main_thread();

// The final firmware's lock()/unlock(), an atomic section: from enter until the matching leave,
// every other thread mthread started parks at its next line (or as it leaves one of mthread's
// waits); threads mthread did not start go on. Nested calls count. Leaving a section the caller
// does not hold does nothing; a thread that ends inside one leaves it. Need the GIL.
void enter_atomic_section();
void leave_atomic_section();
void leave_atomic_section(PyThreadState* self, bool entirely);

class python_thread;

// Marks the calling thread, if mthread started it, as inside one of mthread's waits for the
// scope's life: the core parks or wakes it there, so its checkpoints are disarmed. Made and
// destroyed with the GIL held.
class core_wait_scope {
 public:
  core_wait_scope();
  ~core_wait_scope();
  core_wait_scope(const core_wait_scope&) = delete;
  core_wait_scope& operator=(const core_wait_scope&) = delete;

 private:
  python_thread* thread_;
  int exceptions_;  // std::uncaught_exceptions() when the wait began
};

// A thread that got what it waited for most often got it from a thread that is about to let go
// of the GIL (it sent, and is on its way into its own wait): taking the GIL now would sleep on
// CPython's condition variable and pay a wake-up (20-60 µs on a small virtual machine). So wait
// a few microseconds for the GIL to be free first, yielding the CPU (the holder may need it).
// Where CPython does not say whether the GIL is held, it counts as held until a binding call
// let go of it after `releases_seen` (a gil_releases count taken while it was held); without
// that count there, no wait.
inline void wait_briefly_for_a_free_gil(
    std::chrono::microseconds patience = std::chrono::microseconds(3),
    std::optional<std::uint64_t> releases_seen = std::nullopt) {
  const auto until = std::chrono::steady_clock::now() + patience;
  for (;;) {
    const int locked = mthread_gil_locked();
    const bool held = locked >= 0
                          ? locked == 1
                          : releases_seen.has_value() &&
                                gil_releases.load(std::memory_order_relaxed) == *releases_seen;
    if (!held || std::chrono::steady_clock::now() >= until) return;
    sched_yield();
  }
}

template <class T, class Attempt>
std::optional<T> wait_without_gil(const deadline& until, Attempt&& attempt) {
  constexpr std::chrono::milliseconds slice = std::chrono::milliseconds(20);
  const bool sliced = in_main_thread();
  const core_wait_scope waiting;
  std::optional<binding::kill_deferral> deferral;
  if (in_kill_cleanup()) deferral.emplace();
  for (;;) {
    const deadline slice_end = sliced ? earlier(until, deadline::after(slice)) : until;
    std::optional<T> result;
    gil_release released;
    try {
      result = attempt(slice_end);
    } catch (...) {
      released.reacquire_in_turn();
      throw;
    }
    {
      const binding::lock_queue_turn turn;
      if (result) wait_briefly_for_a_free_gil();
      released.reacquire();
    }
    if (result || until.passed()) return result;
    if (sliced && PyErr_CheckSignals() != 0) throw py::error_already_set();
  }
}

}  // namespace mthread::python
