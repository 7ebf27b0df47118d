// The one place where what a binding function lets out becomes a Python exception.
#pragma once

#include <exception>
#include <utility>

namespace mthread::python {

// Sets the Python error for an exception a binding function let out; needs the GIL. The core's
// kinds become mthread.ThreadKilled (thread_killed), OverflowError (out_of_range), ValueError
// (invalid_argument) and mthread.error (any other mthread::error). Their message begins with
// `function`, the Python name of the function called, before the core's detail
// ("sendmsg(): msg must not be empty"); without `function` it is the core's own. A Python error
// already raised is restored, std::bad_alloc is MemoryError, another std::exception RuntimeError.
void set_python_error(std::exception_ptr thrown, const char* function = nullptr) noexcept;

// Returns what `body` returns; if it throws, sets the Python error (set_python_error) and returns
// `failed`. Except for the unwinding of a thread that CPython ends as it takes the GIL back
// while the interpreter finalizes (pthread_exit): that must go on to the thread's start.
template <class Result, class Body>
Result returning_python_error(const char* function, Result failed, Body&& body) {
  try {
    return body();
  } catch (...) {
    // glibc's forced unwind has no exception object (catching abi::__forced_unwind by reference
    // binds a null one, which UBSan reports): an empty current_exception() is that unwinding.
    std::exception_ptr thrown = std::current_exception();
    if (!thrown) throw;
    set_python_error(std::move(thrown), function);
    return failed;
  }
}

// For pybind11's dispatcher (py::register_exception_translator): the core's kinds as above, with
// the core's own messages; anything else is rethrown for pybind11 to translate.
void translate_core_error(std::exception_ptr thrown);

}  // namespace mthread::python
