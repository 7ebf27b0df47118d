#include "interpreter.hpp"

#include <opcode.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <exception>
#include <memory>
#include <mthread/mthread.hpp>
#include <thread>
#include <vector>

#include "frames.hpp"
#include "versions/checkpoints.hpp"

namespace mthread::python {
namespace {

PyObject* killed_type = nullptr;
PyObject* thread_error_type = nullptr;

// mthread._threading's entry_for and thread_ended, looked up once (an import per thread costs more
// than the rest of its Python set-up); never released, like the module.
struct threading_functions {
  PyObject* entry_for;
  PyObject* thread_ended;
};

const threading_functions& threading_module() {
  static const threading_functions functions = [] {
    py::module_ module = py::module_::import("mthread._threading");
    module.attr("prepare")();
    return threading_functions{py::object(module.attr("entry_for")).release().ptr(),
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

// True when the frame is about to enter an exception handler (its next instruction is
// PUSH_EXC_INFO): the exception being propagated is not "handled" yet, but raising another
// there would skip the handler — a `with` block's __exit__, a `finally`.
bool entering_handler(PyFrameObject* frame) {
  return frame != nullptr && current_opcode(frame) == PUSH_EXC_INFO;
}

}  // namespace

class python_thread;

namespace {

// The final firmware's lock()/unlock(): while one thread holds the atomic section, every other
// thread mthread started parks at its next checkpoint, or as it leaves an mthread wait, until
// unlock(). Guarded by the GIL.
struct atomic_section_state {
  PyThreadState* owner = nullptr;
  bool owner_is_ours = false;  // a thread mthread started leaves the section when it ends
  int depth = 0;
  // The PYTHON threads running Python code, in no order: each knows its place (a thread
  // leaves by trading places with the last, not by a search through thousands).
  std::vector<python_thread*> threads;
};
atomic_section_state atomic_section;

bool atomic_section_held_by_other(PyThreadState* self) {
  return atomic_section.owner != nullptr && atomic_section.owner != self;
}

// A thread mthread did not start may end inside a section: then the section ends with it.
void drop_section_of_ended_owner() {
  if (atomic_section.owner == nullptr || atomic_section.owner_is_ours) return;
  PyInterpreterState* interpreter = PyInterpreterState_Get();
  for (PyThreadState* state = PyInterpreterState_ThreadHead(interpreter); state != nullptr;
       state = PyThreadState_Next(state)) {
    if (state == atomic_section.owner) return;
  }
  atomic_section.owner = nullptr;
  atomic_section.depth = 0;
}

}  // namespace

// How many frames deep `frame` is (0: no frame).
int frame_depth(PyFrameObject* frame) {
  int depth = 0;
  Py_XINCREF(frame);
  while (frame != nullptr) {
    ++depth;
    PyFrameObject* back = PyFrame_GetBack(frame);
    Py_DECREF(frame);
    frame = back;
  }
  return depth;
}

// The interpreter-side state of one PYTHON thread. Owned by the core's thread record (as its
// hooks) and by the body; every Python object it holds is released by the thread itself, with
// the GIL, before it ends — the last owner may be a thread that never holds the GIL.
//
// A suspend or a kill arms the thread's checkpoints (see versions/checkpoints.hpp) while the
// thread runs Python code; at its next checkpoint it parks or raises ThreadKilled. A thread
// inside one of mthread's waits is parked or woken by the core itself, so it is not armed
// then: a suspended thread leaves nothing armed that would slow the others.
class python_thread final : public thread_hooks {
 public:
  python_thread(std::string name, py::object func, py::tuple args, py::dict kwargs)
      : name_(std::move(name)),
        func_(std::move(func)),
        args_(std::move(args)),
        kwargs_(std::move(kwargs)) {
    entry_ = py::handle(threading_module().entry_for)(name_);
  }

  // Normally the thread released everything already; if it could not (the interpreter was
  // shutting down), leaking is the only safe choice without the GIL.
  ~python_thread() override {
    if (Py_IsInitialized() && PyGILState_Check()) {
      release_python_objects();
    } else {
      for (py::object* held : {&entry_, &func_}) held->release();
      args_.release();
      kwargs_.release();
    }
  }
  python_thread(const python_thread&) = delete;
  python_thread& operator=(const python_thread&) = delete;

  // The calling thread's state, if mthread started it as a PYTHON thread.
  static python_thread* current() { return current_; }
  PyThreadState* state() const { return tstate_; }

  void run() {
    PyThreadState* state = PyThreadState_New(interpreter_);
    // The starter holds the GIL until its start_new_thread() returns and it goes on to its next
    // wait, microseconds later: wait for that on this CPU instead of sleeping on the GIL, which
    // would cost a wake-up (tens of microseconds when the CPU goes idle meanwhile).
    wait_briefly_for_a_free_gil(std::chrono::microseconds(30), gil_releases_at_start_);
    PyEval_RestoreThread(state);
    tstate_ = state;
    current_ = this;
    section_place_ = atomic_section.threads.size();
    atomic_section.threads.push_back(this);
    update_arming();  // a request may have come before the thread had a thread state
    if (atomic_section_held_by_other(tstate_)) wait_out_atomic_section();
    if (!binding::kill_requested()) call_function();
    release_python_objects();
    leave_section_threads();
    if (atomic_section.owner == tstate_) leave_atomic_section(tstate_, true);
    current_ = nullptr;
    tstate_ = nullptr;
    PyThreadState_Clear(state);
    // Whoever takes the GIL from DeleteCurrent may run before this thread gets a CPU again (on
    // the same CPU it does: it was woken to run): its status() must wait the microseconds until
    // the end, not report RUNNING and sleep (70 µs a start in the bench, on 3.12 and 3.13).
    binding::body_over_but_for_release();
    PyThreadState_DeleteCurrent();
  }

  void on_suspend_request() override {
    with_gil([&] {
      suspend_pending_ = true;
      update_arming();
    });
  }

  void on_kill_request() override {
    with_gil([&] {
      if (!kill_pending_ && tstate_ != nullptr) {
        // A function just called (a `with` block's __exit__, a release() in a `finally`) is
        // not interrupted: the kill lands in its caller.
        PyFrameObject* frame = PyThreadState_GetFrame(tstate_);
        kill_depth_ = frame_depth(frame) - (frame != nullptr && frame_not_started(frame) ? 1 : 0);
        Py_XDECREF(frame);
      }
      kill_pending_ = true;
      update_arming();
      try {
        drop_ignored_kills();
      } catch (py::error_already_set& e) {
        e.discard_as_unraisable("mthread: installing the ThreadKilled filter");
      }
    });
  }

  // In the thread, with the GIL: what to do at a checkpoint.
  checkpoints::verdict at_checkpoint(checkpoints::place where) {
    if (binding::kill_requested()) {
      kill_pending_ = true;
      return kill_at(where);
    }
    if (atomic_section_held_by_other(tstate_)) {
      wait_out_atomic_section();
      return checkpoints::verdict::go_on;
    }
    if (binding::suspend_requested()) {
      enter_core_wait();
      gil_release released;
      binding::park_while_suspended();
      released.reacquire();
      leave_core_wait();
      // A kill that came meanwhile is raised at the next checkpoint.
      return checkpoints::verdict::go_on;
    }
    suspend_pending_ = false;
    update_arming();
    return checkpoints::verdict::go_on;
  }

  // While the thread is inside one of mthread's waits (GIL released), the core parks it on
  // suspend and wakes it on kill: its checkpoints need not be armed.
  void enter_core_wait() {
    in_core_wait_ = true;
    update_arming();
  }
  // `killed`: the wait ends by throwing the kill, which becomes a ThreadKilled at once (see
  // set_killed_error): no need to arm the thread in between.
  void leave_core_wait(bool killed = false) {
    in_core_wait_ = false;
    suspend_pending_ = binding::suspend_requested();
    if (killed) kill_in_flight_ = true;
    update_arming();
    if (atomic_section_held_by_other(tstate_)) wait_out_atomic_section();
  }

  // Raises ThreadKilled, and follows it with a weak reference: while it lives (propagating,
  // handled, or kept by a generator or task that is closing) the thread is cleaning up and its
  // checkpoints stay disarmed; once it is gone (swallowed, or the thread ends) the thread is
  // armed again, so a swallowed kill comes back at the next line.
  void set_killed_error() {
    PyObject* killed = PyObject_CallNoArgs(killed_type);
    if (killed == nullptr) return;  // the error from the call is set instead
    Py_CLEAR(last_kill_);
    if (kill_gone_ == nullptr) {
      static PyMethodDef gone = {
          "kill_gone",
          [](PyObject* self, PyObject*) -> PyObject* {
            auto* thread = static_cast<python_thread*>(PyCapsule_GetPointer(self, nullptr));
            if (thread == nullptr) return nullptr;
            thread->kill_in_flight_ = false;
            thread->update_arming();
            Py_RETURN_NONE;
          },
          METH_O, nullptr};
      PyObject* self = PyCapsule_New(this, nullptr, nullptr);
      kill_gone_ = self != nullptr ? PyCFunction_New(&gone, self) : nullptr;
      Py_XDECREF(self);
    }
    last_kill_ = kill_gone_ != nullptr ? PyWeakref_NewRef(killed, kill_gone_) : nullptr;
    if (last_kill_ == nullptr) PyErr_Clear();  // then only handling_thread_killed() tells
    kill_in_flight_ = last_kill_ != nullptr;
    update_arming();
    PyErr_SetObject(killed_type, killed);
    Py_DECREF(killed);
  }

  // Whether the thread is cleaning up after a ThreadKilled: the last one raised still lives, or
  // one is being handled (in `except`, `finally`, a `with` exit, or code they call).
  bool cleaning_up_after_kill() const { return kill_in_flight_ || handling_thread_killed(); }

  // Whether the thread runs no Python code now: it waits in mthread (or is parked), or is done.
  bool stopped() const { return in_core_wait_ || body_done_ || tstate_ == nullptr; }

  // Parks, GIL released, while another thread holds the atomic section; suspend reaches it
  // there, and a kill ends the wait (ThreadKilled comes at the next checkpoint). Never throws.
  void wait_out_atomic_section() {
    const bool was_in_core_wait = std::exchange(in_core_wait_, true);
    update_arming();
    while (atomic_section_held_by_other(tstate_) && !binding::kill_requested()) {
      drop_section_of_ended_owner();
      gil_release released;
      try {
        sleep_for(std::chrono::milliseconds(1));
      } catch (const thread_killed&) {
        // the loop's condition sees it
      }
      released.reacquire();
    }
    in_core_wait_ = was_in_core_wait;
    // A suspend that came during the sleeps called no hook (see thread_hooks).
    if (!in_core_wait_) suspend_pending_ = binding::suspend_requested();
    update_arming();
  }

  // Needs the GIL. Armed exactly while the thread runs its own Python code with a request
  // pending, or while another thread holds the atomic section.
  void update_arming() {
    const bool wanted = tstate_ != nullptr && !body_done_ && !in_core_wait_ &&
                        ((kill_pending_ && !kill_in_flight_) || suspend_pending_ ||
                         atomic_section_held_by_other(tstate_));
    if (wanted == armed_) return;
    armed_ = wanted;
    if (wanted) {
      checkpoints::arm(tstate_);
    } else {
      checkpoints::disarm(tstate_);
    }
  }

 private:
  template <class F>
  void with_gil(F&& f) {
    if (!Py_IsInitialized() || checkpoints::finalizing()) return;
    const PyGILState_STATE gil = PyGILState_Ensure();
    f();
    PyGILState_Release(gil);
  }

  // A kill lands where every CPython hands the exception to the frame's own `try`, `with` and
  // `finally` blocks: at a line of a frame that was running when the kill came (or an older
  // one), or at a loop. Code called after the kill came — a `with` block's __exit__ on its
  // normal path, a function called from a `finally` — runs to its end, unless it loops.
  checkpoints::verdict kill_at(checkpoints::place where) {
    using checkpoints::place;
    using checkpoints::verdict;
    if (body_done_ || cleaning_up_after_kill()) return verdict::go_on;
    PyFrameObject* frame = PyEval_GetFrame();
    const int depth = frame_depth(frame);
    kill_depth_ = std::min(kill_depth_, depth);
    switch (where) {
      case place::line:
        if (depth > kill_depth_) return verdict::go_on;
        break;
      case place::loop:
        break;
      case place::backward_jump:
        return verdict::raise_later;
      case place::boundary:
      case place::exception:
        return verdict::go_on;
    }
    if (entering_handler(frame)) return verdict::go_on;
    set_killed_error();
    return verdict::raised;
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
      py::handle(threading_module().thread_ended)();
    } catch (py::error_already_set& e) {
      report(e);
    }
  }

  // The thread's own code is over: a kill has nothing left to interrupt, and the code that
  // ends the thread (and reports its exception) must run to its end.
  void body_done() {
    body_done_ = true;
    update_arming();
  }

  void report(py::error_already_set& e) {
    PySys_WriteStderr("Unhandled exception in thread \"%s\" (id %llu):\n", name_.c_str(),
                      static_cast<unsigned long long>(get_self_id()));
    e.restore();
    PyErr_PrintEx(0);
  }

  void release_python_objects() {
    body_done_ = true;
    update_arming();
    Py_CLEAR(last_kill_);  // first: its callback must not run once the thread is gone
    Py_CLEAR(kill_gone_);
    kill_in_flight_ = false;
    entry_ = py::object();
    func_ = py::object();
    // release().dec_ref(), not `= py::dict()`: that makes a new empty dict, which the last
    // owner (the reaper, without the GIL) could only leak: 64 bytes a thread.
    args_.release().dec_ref();
    kwargs_.release().dec_ref();
  }

  void leave_section_threads() {
    std::vector<python_thread*>& threads = atomic_section.threads;
    python_thread* last = threads.back();
    threads[section_place_] = last;
    last->section_place_ = section_place_;
    threads.pop_back();
  }

  static thread_local python_thread* current_;

  PyInterpreterState* interpreter_ = PyInterpreterState_Get();
  std::string name_;
  // gil_releases while the starter held the GIL, starting this thread.
  const std::uint64_t gil_releases_at_start_ = gil_releases.load(std::memory_order_relaxed);
  py::object entry_, func_;
  py::tuple args_;
  py::dict kwargs_;
  // Guarded by the GIL:
  PyThreadState* tstate_ = nullptr;
  bool body_done_ = false;
  bool in_core_wait_ = false;
  bool suspend_pending_ = false;   // a hint: the core's flags are the truth
  bool kill_pending_ = false;      // final once set
  int kill_depth_ = INT_MAX;       // the shallowest frame depth seen since the kill came
  PyObject* last_kill_ = nullptr;  // a weak reference to the last ThreadKilled raised
  PyObject* kill_gone_ = nullptr;  // its callback
  bool kill_in_flight_ = false;    // that ThreadKilled still lives
  bool armed_ = false;
  std::size_t section_place_ = 0;  // in atomic_section.threads
};

thread_local python_thread* python_thread::current_ = nullptr;

core_wait_scope::core_wait_scope()
    : thread_(python_thread::current()), exceptions_(std::uncaught_exceptions()) {
  if (thread_ != nullptr) thread_->enter_core_wait();
}

core_wait_scope::~core_wait_scope() {
  if (thread_ == nullptr) return;
  thread_->leave_core_wait(std::uncaught_exceptions() > exceptions_ && binding::kill_requested());
}

bool in_kill_cleanup() {
  python_thread* self = python_thread::current();
  return self != nullptr ? self->cleaning_up_after_kill() : handling_thread_killed();
}

void set_thread_killed_error() {
  if (python_thread* self = python_thread::current()) {
    self->set_killed_error();
  } else {
    PyErr_SetNone(killed_type);
  }
}

void enter_atomic_section() {
  PyThreadState* self = PyThreadState_Get();
  if (atomic_section.owner == self) {
    ++atomic_section.depth;
    return;
  }
  while (atomic_section_held_by_other(self)) {
    if (python_thread* thread = python_thread::current()) {
      thread->wait_out_atomic_section();
      if (binding::kill_requested()) throw thread_killed{};
    } else {
      // A thread mthread did not start waits its turn; Ctrl-C reaches the main thread.
      drop_section_of_ended_owner();
      gil_release released;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      released.reacquire();
      if (PyErr_CheckSignals() != 0) throw py::error_already_set();
    }
  }
  atomic_section.owner = self;
  atomic_section.owner_is_ours = python_thread::current() != nullptr;
  atomic_section.depth = 1;
  for (python_thread* thread : atomic_section.threads) thread->update_arming();
  // Let the others reach their checkpoints before the section's code runs. One inside a C call
  // that is not mthread's (the GIL released) cannot be waited for: it stops at its next line.
  const deadline settled = deadline::after(std::chrono::milliseconds(20));
  auto running = [self] {
    return std::any_of(atomic_section.threads.begin(), atomic_section.threads.end(),
                       [self](const python_thread* thread) {
                         return !thread->stopped() && thread->state() != self;
                       });
  };
  while (running() && !settled.passed()) {
    gil_release released;
    std::this_thread::sleep_for(std::chrono::microseconds(50));
    released.reacquire();
  }
}

void leave_atomic_section(PyThreadState* self, bool entirely) {
  if (atomic_section.owner != self) return;
  if (!entirely && --atomic_section.depth > 0) return;
  atomic_section.owner = nullptr;
  atomic_section.depth = 0;
  for (python_thread* thread : atomic_section.threads) thread->update_arming();
}

void leave_atomic_section() {
  leave_atomic_section(PyThreadState_Get(), false);
}

namespace {

checkpoints::verdict at_checkpoint(checkpoints::place where) {
  python_thread* self = python_thread::current();
  return self != nullptr ? self->at_checkpoint(where) : checkpoints::verdict::go_on;
}

}  // namespace

PyObject* thread_killed_type() {
  return killed_type;
}
PyObject* error_type() {
  return thread_error_type;
}

void prepare_interpreter(py::module_& module) {
  if (const char* reason = checkpoints::unsupported_reason()) throw py::import_error(reason);
  checkpoints::set_handler(&at_checkpoint);
  killed_type = PyErr_NewExceptionWithDoc(
      "mthread.ThreadKilled",
      "Raised in a thread that mthread.kill() ended. A SystemExit, so `except Exception` does "
      "not catch it and the thread ends silently; raised again if the thread swallows it.",
      PyExc_SystemExit, nullptr);
  module.add_object("ThreadKilled", py::handle(killed_type).inc_ref());
  thread_error_type = py::module_::import("_thread").attr("error").ptr();
  Py_INCREF(thread_error_type);
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
  options.stack_size = stack_bytes;
  options.mailbox_depth = mailbox_depth;
  // The GIL is kept: as with CPython's _thread and the device, the starter goes on until it lets
  // go of the GIL, and only then does the new thread run Python (a script may fill in what the
  // thread reads right after the start). The core needs no GIL here.
  return binding::start(name, options, thread_type::python, state, [state] { state->run(); });
}

std::size_t join_all(std::chrono::duration<double> grace) {
  // The threads waited for would wait for a section the caller holds: its script is over.
  leave_atomic_section(PyThreadState_Get(), true);
  auto others = [] {
    std::vector<thread_id> ids;
    for (const thread_info& info : list()) {
      if (info.type != thread_type::main) ids.push_back(info.id);
    }
    return ids;
  };
  auto all_gone = [&](const deadline& slice_end) -> std::optional<bool> {
    for (thread_id id : others()) {
      if (!join(id, slice_end.left())) return std::nullopt;
    }
    // Threads may have started others meanwhile: done only when none is left.
    if (!others().empty()) return std::nullopt;
    return true;
  };
  try {
    wait_without_gil<bool>(deadline::never(), all_gone);
    return 0;
  } catch (py::error_already_set& e) {
    if (!e.matches(PyExc_KeyboardInterrupt)) throw;
  }
  gil_release released;
  const deadline grace_end = deadline::after(grace);
  std::vector<thread_id> alive = others();
  // Killed threads may start others in their cleanup: kill again until none is left.
  while (!alive.empty() && !grace_end.passed()) {
    for (thread_id id : alive) kill(id);
    for (thread_id id : alive) {
      join(id, earlier(grace_end, deadline::after(std::chrono::milliseconds(50))).left());
    }
    alive = others();
  }
  released.reacquire();
  return alive.size();
}

}  // namespace mthread::python
