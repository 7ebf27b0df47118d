// mthread._poll and mthread._blocked_in: the core's descriptor waits and its account of where a
// thread is blocked, for the standard library patches in mthread._patch.
#pragma once

#include <pybind11/pybind11.h>

namespace mthread::python {

void add_descriptor_waits(pybind11::module_& module);

}  // namespace mthread::python
