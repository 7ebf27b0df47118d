#include "errors.hpp"

#include <pybind11/pybind11.h>

#include <mthread/types.hpp>
#include <new>

#include "interpreter.hpp"

namespace mthread::python {
namespace {

void set_core_error(PyObject* type, const mthread::error& e, const char* function) {
  // An error made from one string names no function of its own: its message stays whole.
  if (function != nullptr && e.detail() != e.what()) {
    PyErr_Format(type, "%s(): %s", function, e.detail());
  } else {
    PyErr_SetString(type, e.what());
  }
}

}  // namespace

void set_python_error(std::exception_ptr thrown, const char* function) noexcept {
  try {
    std::rethrow_exception(thrown);
  } catch (py::error_already_set& e) {
    e.restore();
  } catch (const thread_killed&) {
    set_thread_killed_error();
  } catch (const out_of_range& e) {
    set_core_error(PyExc_OverflowError, e, function);
  } catch (const invalid_argument& e) {
    set_core_error(PyExc_ValueError, e, function);
  } catch (const mthread::error& e) {
    set_core_error(error_type(), e, function);
  } catch (const std::bad_alloc&) {
    PyErr_NoMemory();
  } catch (const std::exception& e) {
    PyErr_SetString(PyExc_RuntimeError, e.what());
  } catch (...) {
    PyErr_SetString(PyExc_SystemError, "mthread: unknown C++ exception");
  }
}

void translate_core_error(std::exception_ptr thrown) {
  try {
    std::rethrow_exception(thrown);
  } catch (const thread_killed&) {
    set_python_error(std::current_exception());
  } catch (const mthread::error&) {
    set_python_error(std::current_exception());
  }
}

}  // namespace mthread::python
