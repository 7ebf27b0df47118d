// mthread.LockType and mthread.allocate_lock(): CPython's lock over the core's mthread::mutex.
#pragma once

#include <pybind11/pybind11.h>

namespace mthread::python {

// Adds LockType and allocate_lock to the module.
void add_lock_type(pybind11::module_& module);

}  // namespace mthread::python
