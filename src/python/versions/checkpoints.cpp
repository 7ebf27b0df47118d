#include "checkpoints.hpp"

#include <vector>

namespace mthread::python::checkpoints {
namespace {

handler checkpoint_handler = nullptr;

}  // namespace

void set_handler(handler h) {
  checkpoint_handler = h;
}

const char* unsupported_reason() {
#ifdef Py_GIL_DISABLED
  // Parking a thread at a checkpoint relies on the GIL: no other thread runs Python meanwhile.
  return "mthread needs a CPython built with the GIL; this one is free-threaded (use the "
         "python3.X interpreter, not python3.Xt)";
#else
  return nullptr;
#endif
}

bool finalizing() {
#if PY_VERSION_HEX >= 0x030D0000
  return Py_IsFinalizing() != 0;
#else
  return _Py_IsFinalizing() != 0;
#endif
}

#if PY_VERSION_HEX >= 0x030C0000
// --- CPython 3.12 and later: sys.monitoring ----------------------------------------------
namespace {

int tool_id = -1;  // mthread's sys.monitoring tool, claimed at the first arm()
std::size_t armed_threads = 0;
PyObject* monitoring = nullptr;       // sys.monitoring; never released, like the module
std::vector<PyObject*> precise_code;  // code objects with INSTRUCTION events on (strong refs)
long all_events = 0;
long instruction_event = 0;

PyObject* answer(verdict v) {
  if (v == verdict::raised) return nullptr;
  Py_RETURN_NONE;  // never sys.monitoring.DISABLE: that would switch the place off for good
}

// LINE, PY_START, PY_RESUME and INSTRUCTION callbacks.
PyObject* at_checkpoint(PyObject*, PyObject* const*, Py_ssize_t) {
  return answer(checkpoint_handler(true));
}

// JUMP: (code, from, to). A `while True: pass` gives no other event; an exception raised here
// would skip the loop's `finally`, so a kill asks for the next instruction of this code.
PyObject* at_jump(PyObject*, PyObject* const* args, Py_ssize_t count) {
  const verdict v = checkpoint_handler(false);
  if (v != verdict::raise_later || count < 1) return answer(v);
  PyObject* code = args[0];
  for (PyObject* known : precise_code) {
    if (known == code) Py_RETURN_NONE;
  }
  PyObject* done =
      PyObject_CallMethod(monitoring, "set_local_events", "iOl", tool_id, code, instruction_event);
  if (done == nullptr) return nullptr;
  Py_DECREF(done);
  Py_INCREF(code);
  precise_code.push_back(code);
  Py_RETURN_NONE;
}

PyMethodDef checkpoint_method = {
    "mthread_checkpoint",
    reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&at_checkpoint)), METH_FASTCALL,
    "mthread's suspend and kill checkpoint."};
PyMethodDef jump_method = {"mthread_jump_checkpoint",
                           reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&at_jump)),
                           METH_FASTCALL, "mthread's suspend and kill checkpoint at a jump."};

long event(PyObject* events, const char* name) {
  PyObject* value = PyObject_GetAttrString(events, name);
  if (value == nullptr) return -1;
  const long bit = PyLong_AsLong(value);
  Py_DECREF(value);
  return bit;
}

bool call(const char* method, const char* format, long a, long b) {
  PyObject* result = PyObject_CallMethod(monitoring, method, format, a, b);
  Py_XDECREF(result);
  return result != nullptr;
}

bool register_callback(long event_bit, PyMethodDef* method) {
  PyObject* function = PyCFunction_New(method, nullptr);
  if (function == nullptr) return false;
  PyObject* previous =
      PyObject_CallMethod(monitoring, "register_callback", "ilO", tool_id, event_bit, function);
  Py_DECREF(function);
  Py_XDECREF(previous);
  return previous != nullptr;
}

// Claims a free tool id (DEBUGGER_ID, COVERAGE_ID, PROFILER_ID and OPTIMIZER_ID are the last
// tried) and registers the callbacks. False with an exception set when it cannot.
bool claim_tool() {
  if (tool_id >= 0) return true;
  monitoring = PySys_GetObject("monitoring");  // borrowed
  if (monitoring == nullptr) {
    PyErr_SetString(PyExc_RuntimeError, "mthread: sys.monitoring is missing");
    return false;
  }
  Py_INCREF(monitoring);
  for (int candidate : {4, 3, 2, 1, 0, 5}) {
    PyObject* owner = PyObject_CallMethod(monitoring, "get_tool", "i", candidate);
    if (owner == nullptr) return false;
    const bool free = owner == Py_None;
    Py_DECREF(owner);
    if (free) {
      PyObject* claimed =
          PyObject_CallMethod(monitoring, "use_tool_id", "is", candidate, "mthread");
      if (claimed == nullptr) return false;
      Py_DECREF(claimed);
      tool_id = candidate;
      break;
    }
  }
  if (tool_id < 0) {
    PyErr_SetString(PyExc_RuntimeError,
                    "mthread: every sys.monitoring tool id is taken; suspend and kill reach "
                    "Python threads only inside mthread's waits and sleeps");
    return false;
  }
  PyObject* events = PyObject_GetAttrString(monitoring, "events");
  if (events == nullptr) return false;
  const long line = event(events, "LINE"), jump = event(events, "JUMP"),
             start = event(events, "PY_START"), resume = event(events, "PY_RESUME");
  instruction_event = event(events, "INSTRUCTION");
  Py_DECREF(events);
  if (PyErr_Occurred()) return false;
  all_events = line | jump | start | resume;
  for (long bit : {line, start, resume, instruction_event}) {
    if (!register_callback(bit, &checkpoint_method)) return false;
  }
  return register_callback(jump, &jump_method);
}

void report(const char* what) {
  PySys_WriteStderr("mthread: %s failed:\n", what);
  PyErr_PrintEx(0);
}

}  // namespace

void arm(PyThreadState*) {
  if (++armed_threads > 1) return;
  if (!claim_tool() || !call("set_events", "il", tool_id, all_events)) {
    report("arming sys.monitoring events");
  }
}

void disarm(PyThreadState*) {
  if (armed_threads == 0 || --armed_threads > 0 || tool_id < 0) return;
  if (!call("set_events", "il", tool_id, 0)) report("disarming sys.monitoring events");
  for (PyObject* code : precise_code) {
    PyObject* done = PyObject_CallMethod(monitoring, "set_local_events", "iOi", tool_id, code, 0);
    if (done == nullptr) report("disarming sys.monitoring events");
    Py_XDECREF(done);
    Py_DECREF(code);
  }
  precise_code.clear();
}

#else
// --- CPython 3.11: a C trace function on the armed thread ---------------------------------
// 3.11 has no public way to set another thread's tracer; _PyEval_SetTrace is the one the
// interpreter itself uses for that, and exported. Line events miss a loop that jumps back to
// its own line (`while True: pass`), so every frame of the thread also gets opcode events.
namespace {

struct armed_thread {
  PyThreadState* thread;
  Py_tracefunc previous;
  PyObject* previous_object;  // strong
};
std::vector<armed_thread> armed;  // a few entries at most: threads with a pending request

armed_thread* find(PyThreadState* thread) {
  for (armed_thread& entry : armed) {
    if (entry.thread == thread) return &entry;
  }
  return nullptr;
}

void trace_opcodes(PyFrameObject* frame, bool on) {
  if (PyObject_SetAttrString(reinterpret_cast<PyObject*>(frame), "f_trace_opcodes",
                             on ? Py_True : Py_False) != 0) {
    PyErr_Clear();
  }
}

void trace_opcodes_of_every_frame(PyThreadState* thread, bool on) {
  PyFrameObject* frame = PyThreadState_GetFrame(thread);
  while (frame != nullptr) {
    trace_opcodes(frame, on);
    PyFrameObject* back = PyFrame_GetBack(frame);
    Py_DECREF(frame);
    frame = back;
  }
}

int trace(PyObject*, PyFrameObject* frame, int what, PyObject* arg) {
  armed_thread* self = find(PyThreadState_Get());
  if (self == nullptr) return 0;
  if (what == PyTrace_CALL) trace_opcodes(frame, true);
  // The handler may disarm this thread: keep what to chain to first.
  const Py_tracefunc previous = self->previous;
  PyObject* previous_object = self->previous_object;
  Py_XINCREF(previous_object);
  int result = checkpoint_handler(what != PyTrace_EXCEPTION) == verdict::raised ? -1 : 0;
  // Opcode events are mthread's own: a debugger's tracer did not ask for them.
  if (result == 0 && previous != nullptr && what != PyTrace_OPCODE) {
    result = previous(previous_object, frame, what, arg);
  }
  Py_XDECREF(previous_object);
  return result;
}

}  // namespace

void arm(PyThreadState* thread) {
  if (find(thread) != nullptr) return;
  armed.push_back({thread, thread->c_tracefunc, thread->c_traceobj});
  Py_XINCREF(thread->c_traceobj);
  _PyEval_SetTrace(thread, &trace, nullptr);
  trace_opcodes_of_every_frame(thread, true);
}

void disarm(PyThreadState* thread) {
  armed_thread* entry = find(thread);
  if (entry == nullptr) return;
  const armed_thread saved = *entry;
  *entry = armed.back();
  armed.pop_back();
  trace_opcodes_of_every_frame(thread, false);
  if (thread->c_tracefunc == &trace) {
    _PyEval_SetTrace(thread, saved.previous, saved.previous_object);
  }
  Py_XDECREF(saved.previous_object);
}

#endif

}  // namespace mthread::python::checkpoints
