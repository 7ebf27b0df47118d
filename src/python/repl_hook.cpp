#include "repl_hook.hpp"

#include <dlfcn.h>

#include <csignal>

#include <mthread/binding.hpp>
#include <mthread/mthread.hpp>

namespace mthread::python {
namespace {

// Raw and never released: the hook may still run while the interpreter shuts down, and a
// static py::object would be destroyed after it.
PyObject* display_callable = nullptr;
int (*previous_hook)() = nullptr;

bool news_for_main() {
  const thread_id main = get_repl_id();
  return is_notified(main) || binding::has_messages(main);
}

// readline runs the hook before it looks at signals. So Python code runs here only when there
// is something to show (Python code would take a pending Ctrl-C), and a Ctrl-C it takes anyway
// is armed again for readline, which then drops the line as usual.
int input_hook() {
  if (display_callable != nullptr && Py_IsInitialized() && !_Py_IsFinalizing() &&
      repl_accept_msg() && news_for_main()) {
    const PyGILState_STATE gil = PyGILState_Ensure();
    PyObject* result = PyObject_CallNoArgs(display_callable);
    if (result == nullptr) {
      if (PyErr_ExceptionMatches(PyExc_KeyboardInterrupt)) {
        PyErr_Clear();
        PyErr_SetInterruptEx(SIGINT);
      } else {
        PyErr_WriteUnraisable(display_callable);
      }
    }
    Py_XDECREF(result);
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
