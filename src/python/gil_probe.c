/* Whether some thread holds the GIL. CPython 3.11 keeps this in its runtime state, which only
 * its internal headers describe, and those compile as C only. Other versions: -1, unknown.
 * Used by interpreter.hpp: a thread that got what it waited for, and would block on the GIL,
 * waits a few microseconds for it first (see there). */
#define Py_BUILD_CORE_MODULE 1
#include <Python.h>

#include "gil_probe.h"

#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030C0000
#include <internal/pycore_runtime.h>

int mthread_gil_locked(void) {
  return _Py_atomic_load_relaxed(&_PyRuntime.ceval.gil.locked) == 1;
}
#else
int mthread_gil_locked(void) {
  return -1;
}
#endif
