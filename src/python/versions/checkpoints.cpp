#include "checkpoints.hpp"

#include "../frames.hpp"

#include <opcode.h>

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

PyObject* at_line(PyObject*, PyObject* const*, Py_ssize_t) {
  return answer(checkpoint_handler(place::line));
}

PyObject* at_boundary(PyObject*, PyObject* const*, Py_ssize_t) {
  return answer(checkpoint_handler(place::boundary));
}

// INSTRUCTION events are on only in code where a kill asked for them at a backward jump.
PyObject* at_instruction(PyObject*, PyObject* const*, Py_ssize_t) {
  return answer(checkpoint_handler(place::loop));
}

// JUMP: (code, from, to); `to <= from` is a loop (`while True: pass` jumps to itself and gives no
// other event); an exception raised here
// would skip the loop's `finally`, so a kill asks for the next instruction of this code.
PyObject* at_jump(PyObject*, PyObject* const* args, Py_ssize_t count) {
  const bool backward = count >= 3 && PyObject_RichCompareBool(args[2], args[1], Py_LE) == 1;
  const verdict v = checkpoint_handler(backward ? place::backward_jump : place::boundary);
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

template <PyObject* (*Callback)(PyObject*, PyObject* const*, Py_ssize_t)>
PyMethodDef checkpoint_method(const char* name) {
  return {name, reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(Callback)),
          METH_FASTCALL, "mthread's suspend and kill checkpoint."};
}
PyMethodDef line_method = checkpoint_method<at_line>("mthread_line");
PyMethodDef boundary_method = checkpoint_method<at_boundary>("mthread_boundary");
PyMethodDef instruction_method = checkpoint_method<at_instruction>("mthread_instruction");
PyMethodDef jump_method = checkpoint_method<at_jump>("mthread_jump");

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
  if (monitoring != nullptr) return false;     // tried once and failed: said so then
  monitoring = PySys_GetObject("monitoring");  // borrowed
  if (monitoring == nullptr) {
    PyErr_SetString(PyExc_RuntimeError, "mthread: sys.monitoring is missing");
    return false;
  }
  Py_INCREF(monitoring);
  int claimed_id = -1;
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
      claimed_id = candidate;
      break;
    }
  }
  if (claimed_id < 0) {
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
  tool_id = claimed_id;
  const bool registered = register_callback(line, &line_method) &&
                          register_callback(start, &boundary_method) &&
                          register_callback(resume, &boundary_method) &&
                          register_callback(instruction_event, &instruction_method) &&
                          register_callback(jump, &jump_method);
  if (!registered) tool_id = -1;
  return registered;
}

void report(const char* what) {
  PySys_WriteStderr("mthread: %s failed:\n", what);
  PyErr_PrintEx(0);
}

}  // namespace

void arm(PyThreadState*) {
  if (++armed_threads > 1) return;
  if (!claim_tool()) {
    if (PyErr_Occurred()) report("claiming a sys.monitoring tool id");
    return;
  }
  if (!call("set_events", "il", tool_id, all_events)) report("arming sys.monitoring events");
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

bool at_backward_jump(PyFrameObject* frame) {
  const int opcode = current_opcode(frame);
  return opcode == JUMP_BACKWARD || opcode == JUMP_BACKWARD_NO_INTERRUPT;
}

place where(PyFrameObject* frame, int what) {
  switch (what) {
    case PyTrace_LINE:
      return place::line;
    case PyTrace_OPCODE:
      return at_backward_jump(frame) ? place::loop : place::line;
    case PyTrace_EXCEPTION:
      return place::exception;
    default:
      return place::boundary;
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
  int result = checkpoint_handler(where(frame, what)) == verdict::raised ? -1 : 0;
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
  // The previous tracer's object stays the trace object, so sys.gettrace() still returns it.
  _PyEval_SetTrace(thread, &trace, thread->c_traceobj);
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
