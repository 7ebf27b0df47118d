// Checkpoints: how mthread gets a running Python thread to stop for it — the one part of the
// glue that differs between CPython versions (with gil_probe.c).
//
// While a thread is armed, the interpreter calls the handler in that thread, with the GIL, at
// its next line, backward jump, function start or generator resume: whatever shape its loop
// has (`while True: pass` included). There the glue parks a suspended thread or raises
// ThreadKilled. Arming costs nothing until it is used, and disarming removes every trace of it:
// - CPython 3.12 and later: sys.monitoring (PEP 669) events under mthread's own tool id, on
//   for the interpreter only while at least one thread is armed;
// - CPython 3.11: a C trace function on the armed thread only, chained to any tracer there.
#pragma once

#include <Python.h>

namespace mthread::python::checkpoints {

enum class verdict {
  go_on,       // nothing to do here
  raised,      // the handler set an exception: raise it at this point
  raise_later  // the handler wants to raise, but not here: at the next instruction of this code
};

// Where the thread is. An exception may be raised at a `line` or a `loop` point, where every
// CPython hands it to the frame's own `try`, `with` and `finally` blocks; not at a
// `backward_jump` (CPython 3.11 and 3.12 place one raised there outside the loop's `try`), nor
// at a `boundary` or while an `exception` propagates.
enum class place {
  line,           // a new line (3.11: any instruction)
  loop,           // a loop's backward jump (3.11) or the instruction after it (3.12+)
  backward_jump,  // a loop's backward jump, where raising is unsafe (3.12+)
  boundary,       // a function starts or returns, a generator resumes, a forward jump
  exception       // an exception propagates (3.11)
};

using handler = verdict (*)(place where);

// Once, before the first arm().
void set_handler(handler checkpoint_handler);

// GIL held, from any thread. Calls pair up: arm once, then disarm once.
void arm(PyThreadState* thread);
void disarm(PyThreadState* thread);

// Whether the interpreter is shutting down (no thread may take the GIL then).
bool finalizing();

// Why mthread cannot run on this build of CPython (the text of an ImportError), or nullptr.
const char* unsupported_reason();

}  // namespace mthread::python::checkpoints
