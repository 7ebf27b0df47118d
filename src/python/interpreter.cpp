#include "interpreter.hpp"

#include <opcode.h>
#include <pybind11/eval.h>

#include <atomic>
#include <memory>
#include <mthread/mthread.hpp>
#include <thread>

namespace mthread::python {
namespace {

PyObject* killed_type = nullptr;
PyObject* thread_error_type = nullptr;
PyObject* delivery_probe = nullptr;  // `lambda: None`: calling it delivers a pending async exc

// mthread._glue's entry_for and thread_ended, looked up once (an import per thread costs more
// than the rest of its Python set-up); never released, like the module.
struct glue_functions {
  PyObject* entry_for;
  PyObject* thread_ended;
};

const glue_functions& glue() {
  static const glue_functions functions = [] {
    py::module_ module = py::module_::import("mthread._glue");
    module.attr("prepare")();
    return glue_functions{py::object(module.attr("entry_for")).release().ptr(),
                          py::object(module.attr("thread_ended")).release().ptr()};
  }();
  return functions;
}

PyObject* handled_exception() {
  PyObject* handled = PyErr_GetHandledException();
  if (handled == Py_None) {
    Py_DECREF(handled);
    return nullptr;
  }
  return handled;
}

// The interpreter-side state of one PYTHON thread. Owned by the core's thread record (as its
// hooks) and by the body; every Python object it holds is released by the thread itself, with
// the GIL, before it ends — the last owner may be a thread that never holds the GIL.
class python_thread final : public thread_hooks {
 public:
  python_thread(std::string name, py::object func, py::tuple args, py::dict kwargs)
      : name_(std::move(name)),
        func_(std::move(func)),
        args_(std::move(args)),
        kwargs_(std::move(kwargs)) {
    entry_ = py::handle(glue().entry_for)(name_);
    capsule_ = py::capsule(this, "mthread.python_thread");
  }

  // Normally the thread released everything already; if it could not (the interpreter was
  // shutting down), leaking is the only safe choice without the GIL.
  ~python_thread() override {
    if (Py_IsInitialized() && PyGILState_Check()) {
      release_python_objects();
    } else {
      for (py::object* held : {&entry_, &func_, &capsule_, &previous_object_}) held->release();
      args_.release();
      kwargs_.release();
    }
  }
  python_thread(const python_thread&) = delete;
  python_thread& operator=(const python_thread&) = delete;

  void run() {
    PyThreadState* state = PyThreadState_New(interpreter_);
    PyEval_RestoreThread(state);
    tstate_ = state;
    if (!binding::kill_requested()) call_function();
    release_python_objects();
    tstate_ = nullptr;
    PyThreadState_Clear(state);
    PyThreadState_DeleteCurrent();
  }

  void on_suspend_request() override {
    with_gil([&] { install_tracer(); });
  }

  void on_kill_request() override {
    with_gil([&] {
      if (tstate_ == nullptr || body_done_) return;
      PyThreadState_SetAsyncExc(static_cast<unsigned long>(tstate_->thread_id), killed_type);
      install_tracer();
      try {
        drop_ignored_kills();
      } catch (py::error_already_set& e) {
        e.discard_as_unraisable("mthread: installing the ThreadKilled filter");
      }
    });
  }

 private:
  template <class F>
  void with_gil(F&& f) {
    if (!Py_IsInitialized() || _Py_IsFinalizing()) return;
    const PyGILState_STATE gil = PyGILState_Ensure();
    f();
    PyGILState_Release(gil);
  }

  void call_function() {
    // A kill may land while the entry function sets the thread up, too: it ends the thread as
    // silently as one in the body, and thread_ended (which a kill no longer reaches) still
    // cleans up.
    try {
      entry_(func_, args_, kwargs_);
      body_done();
    } catch (py::error_already_set& e) {
      body_done();
      if (!e.matches(PyExc_SystemExit)) report(e);
    }
    try {
      py::handle(glue().thread_ended)();
    } catch (py::error_already_set& e) {
      report(e);
    }
  }

  // The thread's own code is over: a kill has nothing left to interrupt, and the code that
  // ends the thread (and reports its exception) must run to its end.
  void body_done() {
    body_done_ = true;
    uninstall_tracer();
    discard_pending_kill();
  }

  void report(py::error_already_set& e) {
    PySys_WriteStderr("Unhandled exception in thread \"%s\" (id %llu):\n", name_.c_str(),
                      static_cast<unsigned long long>(get_self_id()));
    e.restore();
    PyErr_PrintEx(0);
  }

  void release_python_objects() {
    uninstall_tracer();
    entry_ = py::object();
    func_ = py::object();
    // release().dec_ref(), not `= py::dict()`: that makes a new empty dict, which the last
    // owner (the reaper, without the GIL) could only leak: 64 bytes a thread.
    args_.release().dec_ref();
    kwargs_.release().dec_ref();
    capsule_ = py::object();
  }

  // The tracer is installed only while a suspend or a kill is pending, so a suspendable thread
  // runs at full speed. It chains to whatever tracer was there (a debugger, coverage).
  void install_tracer() {
    if (tstate_ == nullptr || body_done_ || tstate_->c_tracefunc == &trace) return;
    previous_function_ = tstate_->c_tracefunc;
    previous_object_ = py::reinterpret_borrow<py::object>(tstate_->c_traceobj);
    _PyEval_SetTrace(tstate_, &trace, capsule_.ptr());
  }

  void uninstall_tracer() {
    if (tstate_ == nullptr || tstate_->c_tracefunc != &trace) return;
    _PyEval_SetTrace(tstate_, previous_function_, previous_object_.ptr());
    previous_function_ = nullptr;
    previous_object_ = py::object();
  }

  static int trace(PyObject* capsule, PyFrameObject* frame, int what, PyObject* arg) {
    auto* self =
        static_cast<python_thread*>(PyCapsule_GetPointer(capsule, "mthread.python_thread"));
    if (self == nullptr) return -1;
    return self->on_trace(frame, what, arg);
  }

  // True when the frame is about to enter an exception handler (its next instruction is
  // PUSH_EXC_INFO): the exception being propagated is not "handled" yet, but raising another
  // there would skip the handler — a `with` block's __exit__, a `finally`.
  static bool entering_handler(PyFrameObject* frame) {
    const int offset = PyFrame_GetLasti(frame);
    if (offset < 0) return false;
    PyCodeObject* code = PyFrame_GetCode(frame);
    PyObject* bytes = PyCode_GetCode(code);
    Py_DECREF(code);
    if (bytes == nullptr) {
      PyErr_Clear();
      return false;
    }
    const bool result =
        offset < PyBytes_GET_SIZE(bytes) &&
        static_cast<unsigned char>(PyBytes_AS_STRING(bytes)[offset]) == PUSH_EXC_INFO;
    Py_DECREF(bytes);
    return result;
  }

  int on_trace(PyFrameObject* frame, int what, PyObject* arg) {
    if (binding::kill_requested()) {
      // Raise again only once the last ThreadKilled was delivered and is no longer being
      // handled: cleanup in `except`/`finally`/`with` runs to its end first. Not while an
      // exception is propagating (an exception event, or a handler about to start) either:
      // the next line will do.
      if (tstate_->async_exc == nullptr && what != PyTrace_EXCEPTION && !handling_thread_killed() &&
          !entering_handler(frame)) {
        PyErr_SetNone(killed_type);
        return -1;
      }
    } else if (binding::suspend_requested()) {
      gil_release released;
      binding::park_while_suspended();
      released.reacquire();
    }
    const Py_tracefunc previous = previous_function_;
    PyObject* previous_object = previous_object_.ptr();
    Py_XINCREF(previous_object);
    if (!binding::kill_requested() && !binding::suspend_requested()) uninstall_tracer();
    int result = previous != nullptr ? previous(previous_object, frame, what, arg) : 0;
    Py_XDECREF(previous_object);
    return result;
  }

  PyInterpreterState* interpreter_ = PyInterpreterState_Get();
  std::string name_;
  py::object entry_, func_;
  py::tuple args_;
  py::dict kwargs_;
  py::object capsule_;
  PyThreadState* tstate_ = nullptr;  // guarded by the GIL
  bool body_done_ = false;           // guarded by the GIL
  Py_tracefunc previous_function_ = nullptr;
  py::object previous_object_;
};

}  // namespace

PyObject* thread_killed_type() {
  return killed_type;
}
PyObject* error_type() {
  return thread_error_type;
}

void create_exception_types(py::module_& module) {
  killed_type = PyErr_NewExceptionWithDoc(
      "mthread.ThreadKilled",
      "Raised in a thread that mthread.kill() ended. A SystemExit, so `except Exception` does "
      "not catch it and the thread ends silently; raised again if the thread swallows it.",
      PyExc_SystemExit, nullptr);
  module.add_object("ThreadKilled", py::handle(killed_type).inc_ref());
  thread_error_type = py::module_::import("_thread").attr("error").ptr();
  Py_INCREF(thread_error_type);
  delivery_probe = py::eval("lambda: None").release().ptr();
}

void discard_pending_kill() {
  PyThreadState* self = PyThreadState_Get();
  if (self->async_exc == nullptr) return;
  // Never PyThreadState_SetAsyncExc(id, NULL): it leaves the interpreter's "async exception
  // pending" flag set for good (only a delivery clears it), and CPython 3.11 then spins forever
  // at the entry of every traced function (a debugger, coverage) in every thread. So let the
  // eval loop deliver it, in a call that does nothing, and drop it.
  PyObject *type = nullptr, *value = nullptr, *traceback = nullptr;
  PyErr_Fetch(&type, &value, &traceback);
  Py_XDECREF(PyObject_CallNoArgs(delivery_probe));
  PyErr_Clear();
  PyErr_Restore(type, value, traceback);
}

void drop_ignored_kills() {
  // A ThreadKilled that lands in a finalizer (__del__, a weakref callback) cannot be raised
  // there: Python hands it to sys.unraisablehook, which prints "Exception ignored in: ...".
  // The kill is not lost (it is raised again at the thread's next line), so a filter in front
  // of the hook drops it. The filter is C code: a Python one would be interrupted by the same
  // kill. Installed at the first kill, so `import mthread` alone changes nothing; a hook set
  // later replaces it until the next kill.
  static PyObject* filter = nullptr;  // never released: it may run until the process ends
  py::module_ sys = py::module_::import("sys");
  py::object current = sys.attr("unraisablehook");
  if (filter != nullptr && current.ptr() == filter) return;
  py::cpp_function hook(
      [previous = current](py::object unraisable) {
        py::object value = unraisable.attr("exc_value");
        if (PyErr_GivenExceptionMatches(value.ptr(), killed_type) != 0) return;
        previous(unraisable);
      },
      py::name("unraisablehook"),
      py::doc("mthread's filter: drops a kill's ThreadKilled that landed in a finalizer (it is "
              "raised again at the thread's next line), passes the rest on."));
  filter = hook.release().ptr();
  sys.attr("unraisablehook") = py::handle(filter);
}

bool in_main_thread() {
  return get_self_id() == get_repl_id();
}

bool handling_thread_killed() {
  // The exception handled innermost, or one it was raised while handling (its __context__
  // chain): cleanup after a ThreadKilled may itself catch exceptions (a `try/except KeyError`
  // inside a __exit__), and it is still cleanup.
  PyObject* handled = handled_exception();
  bool result = false;
  PyObject* link = handled;
  for (int depth = 0; link != nullptr && depth < 100 && !result; ++depth) {
    result = PyErr_GivenExceptionMatches(link, killed_type) != 0;
    link = PyExceptionInstance_Check(link) ? PyException_GetContext(link) : nullptr;
    Py_XDECREF(link);  // still referenced by the exception that holds it
  }
  Py_XDECREF(handled);
  return result;
}

thread_id start_python_thread(const std::string& name, py::object func, py::tuple args,
                              py::dict kwargs, std::size_t stack_bytes, std::size_t mailbox_depth) {
  auto state =
      std::make_shared<python_thread>(name, std::move(func), std::move(args), std::move(kwargs));
  start_options options;
  options.type = thread_type::python;
  options.stack_size = stack_bytes;
  options.mailbox_depth = mailbox_depth;
  options.hooks = state;
  // Starting never blocks for long, but it allocates: no GIL needed by the core here.
  return start_new_thread(options, name, [state] { state->run(); });
}

std::size_t join_all(std::chrono::milliseconds grace) {
  auto others = [] {
    std::vector<thread_id> ids;
    for (const thread_info& info : list()) {
      if (info.type != thread_type::main) ids.push_back(info.id);
    }
    return ids;
  };
  auto all_gone = [&](std::chrono::nanoseconds slice) -> std::optional<bool> {
    for (thread_id id : others()) {
      if (!join(id, slice)) return std::nullopt;
    }
    // Threads may have started others meanwhile: done only when none is left.
    if (!others().empty()) return std::nullopt;
    return true;
  };
  try {
    wait_without_gil<bool>(std::nullopt, all_gone);
    return 0;
  } catch (py::error_already_set& e) {
    if (!e.matches(PyExc_KeyboardInterrupt)) throw;
  }
  gil_release released;
  const auto deadline = std::chrono::steady_clock::now() + grace;
  std::vector<thread_id> alive = others();
  // Killed threads may start others in their cleanup: kill again until none is left.
  while (!alive.empty() && std::chrono::steady_clock::now() < deadline) {
    for (thread_id id : alive) kill(id);
    for (thread_id id : alive) {
      const auto left = std::min<std::chrono::nanoseconds>(
          deadline - std::chrono::steady_clock::now(), std::chrono::milliseconds(50));
      join(id, std::max(left, std::chrono::nanoseconds(0)));
    }
    alive = others();
  }
  released.reacquire();
  return alive.size();
}

}  // namespace mthread::python
