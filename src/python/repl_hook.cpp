#include "repl_hook.hpp"

#include <dlfcn.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <mutex>

#include <mthread/binding.hpp>
#include <mthread/mthread.hpp>

#include "versions/checkpoints.hpp"

namespace mthread::python {
namespace {

// Raw and never released: the hook may still run while the interpreter shuts down, and a
// static py::object would be destroyed after it.
PyObject* display_callable = nullptr;
int (*previous_hook)() = nullptr;

// When the hook last ran (steady clock, ns): readline runs it about ten times a second while it
// waits for a key, so a recent call means the prompt is on the screen.
std::atomic<std::int64_t> last_hook_call{0};
std::mutex output_lock;
std::string queued_output;  // guarded by output_lock
std::atomic<bool> output_pending{false};

// The scheduled functions' runner (mthread.micropython._run_scheduled); raw and never released,
// like display_callable.
PyObject* scheduled_runner = nullptr;
std::atomic<bool> scheduled_run_requested{false};

// A pending call: the main thread runs it with the GIL. An exception the runner lets through
// (a KeyboardInterrupt) is raised in the main thread's code, where the device raises it too.
int run_scheduled(void*) {
  scheduled_run_requested.store(false);
  if (scheduled_runner == nullptr) return 0;
  PyObject* result = PyObject_CallNoArgs(scheduled_runner);
  if (result == nullptr) return -1;
  Py_DECREF(result);
  return 0;
}

// An error out of Python code the hook ran: a Ctrl-C is armed again for readline (which drops
// the line as usual), the rest is reported as unraisable.
void settle_hook_error(PyObject* source) {
  if (PyErr_ExceptionMatches(PyExc_KeyboardInterrupt)) {
    PyErr_Clear();
    PyErr_SetInterruptEx(SIGINT);
  } else {
    PyErr_WriteUnraisable(source);
  }
}

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

bool news_for_main() {
  const thread_id main = get_repl_id();
  return is_notified(main) || binding::has_messages(main);
}

// readline runs the hook before it looks at signals. So Python code runs here only when there
// is something to show (Python code would take a pending Ctrl-C), and a Ctrl-C it takes anyway
// is armed again for readline, which then drops the line as usual.
int input_hook() {
  last_hook_call.store(now_ns(), std::memory_order_relaxed);
  if (display_callable != nullptr && Py_IsInitialized() && !checkpoints::finalizing() &&
      (output_pending.load() || (repl_accept_msg() && news_for_main()))) {
    const PyGILState_STATE gil = PyGILState_Ensure();
    PyObject* result = PyObject_CallNoArgs(display_callable);
    if (result == nullptr) settle_hook_error(display_callable);
    Py_XDECREF(result);
    PyGILState_Release(gil);
  }
  // The prompt's thread is the main thread, idle: scheduled functions run now, not after Enter.
  if (scheduled_run_requested.load() && Py_IsInitialized() && !checkpoints::finalizing()) {
    const PyGILState_STATE gil = PyGILState_Ensure();
    if (Py_MakePendingCalls() != 0) settle_hook_error(scheduled_runner);
    PyGILState_Release(gil);
  }
  return previous_hook != nullptr ? previous_hook() : 0;
}

}  // namespace

void install_repl_hook() {
  if (PyOS_InputHook == &input_hook) return;
  previous_hook = PyOS_InputHook;
  PyOS_InputHook = &input_hook;
}

void set_repl_display(pybind11::object display) {
  PyObject* next = display.is_none() ? nullptr : display.release().ptr();
  Py_XDECREF(std::exchange(display_callable, next));
}

bool prompt_waiting() {
  // Three hook periods: a prompt that is still there never looks gone.
  constexpr std::int64_t recent = 300'000'000;
  const std::int64_t last = last_hook_call.load(std::memory_order_relaxed);
  return last != 0 && now_ns() - last < recent;
}

void queue_repl_output(std::string text) {
  std::lock_guard guard(output_lock);
  queued_output += text;
  output_pending.store(true);
}

std::string take_repl_output() {
  std::lock_guard guard(output_lock);
  output_pending.store(false);
  return std::exchange(queued_output, std::string());
}

void request_scheduled_run(pybind11::object runner) {
  if (scheduled_runner == nullptr) scheduled_runner = runner.release().ptr();
  if (scheduled_run_requested.exchange(true)) return;  // one already on its way
  if (Py_AddPendingCall(&run_scheduled, nullptr) != 0) {
    scheduled_run_requested.store(false);
    PyErr_SetString(PyExc_RuntimeError, "schedule queue full");
    throw pybind11::error_already_set();
  }
}

bool repl_output_pending() {
  return output_pending.load();
}

bool redisplay_prompt() {
  // GNU readline is loaded (privately) by the readline module; ask for the library that is
  // already in the process rather than loading one.
  static int (*forced_update)() = [] {
    void* library = dlopen("libreadline.so.8", RTLD_LAZY | RTLD_NOLOAD);
    return library != nullptr
               ? reinterpret_cast<int (*)()>(dlsym(library, "rl_forced_update_display"))
               : nullptr;
  }();
  if (forced_update == nullptr) return false;
  forced_update();
  return true;
}

}  // namespace mthread::python
