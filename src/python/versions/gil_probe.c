/* Whether some thread holds the GIL. CPython 3.11 keeps this in its runtime state, which only
 * its internal headers describe, and those compile as C only. Other versions, or no internal
 * headers: -1, unknown. Used by interpreter.hpp: a thread that got what it waited for, and would
 * block on the GIL, waits a few microseconds for it first (see there). */
#include <patchlevel.h>

#if PY_MAJOR_VERSION == 3 && PY_MINOR_VERSION == 11 && defined(__has_include)
#if __has_include(<internal/pycore_runtime.h>)
#define MTHREAD_GIL_PROBE 1
#endif
#endif

#ifdef MTHREAD_GIL_PROBE
#define Py_BUILD_CORE_MODULE 1
#endif
#include <Python.h>

#include "gil_probe.h"

#ifdef MTHREAD_GIL_PROBE
#include <internal/pycore_runtime.h>

int mthread_gil_locked(void) {
  return _Py_atomic_load_relaxed(&_PyRuntime.ceval.gil.locked) == 1;
}
#else
int mthread_gil_locked(void) {
  return -1;
}
#endif
