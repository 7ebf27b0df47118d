// Python values to core types and back. Every conversion names the function and the argument
// in its error, and raises the exception a CPython user expects: TypeError for the wrong type,
// ValueError for a value out of its domain, OverflowError for an int too large for its slot.
#pragma once

#include <pybind11/pybind11.h>

#include <chrono>
#include <climits>
#include <cmath>
#include <cstdint>
#include <limits>
#include <mthread/deadline.hpp>
#include <mthread/types.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

namespace mthread::python {

namespace py = pybind11;

[[noreturn]] inline void raise(PyObject* type, const std::string& text) {
  PyErr_SetString(type, text.c_str());
  throw py::error_already_set();
}

inline std::string type_name(py::handle value) {
  return Py_TYPE(value.ptr())->tp_name;
}

// The decimal text of an int for an error message. Calls no method a subclass may override,
// and never fails: an int too long for str() (sys.set_int_max_str_digits) is described instead.
inline std::string int_text(py::handle value) {
  PyObject* text = PyLong_Type.tp_repr(value.ptr());
  if (text != nullptr) {
    const char* utf8 = PyUnicode_AsUTF8(text);
    std::string result = utf8 != nullptr ? utf8 : "an int";
    Py_DECREF(text);
    if (utf8 != nullptr) return result;
  }
  PyErr_Clear();
  PyObject* bits = PyObject_CallMethod(reinterpret_cast<PyObject*>(&PyLong_Type), "bit_length", "O",
                                       value.ptr());
  const long long count = bits != nullptr ? PyLong_AsLongLong(bits) : -1;
  Py_XDECREF(bits);
  PyErr_Clear();
  return "an int of " + std::to_string(count) + " bits";
}

// A float as repr() shows it (-1e-09, not std::to_string's -0.000000), for an error message.
inline std::string float_text(double value) {
  char* text = PyOS_double_to_string(value, 'r', 0, Py_DTSF_ADD_DOT_0, nullptr);
  if (text == nullptr) {
    PyErr_Clear();
    return std::to_string(value);
  }
  std::string result = text;
  PyMem_Free(text);
  return result;
}

// Whether an int is below zero, asking int itself (not a subclass's __lt__).
inline bool is_negative(py::handle value) {
  py::int_ zero(0);
  PyObject* below = PyLong_Type.tp_richcompare(value.ptr(), zero.ptr(), Py_LT);
  const bool result = below == Py_True;
  Py_XDECREF(below);
  return result;
}

// The truth of a value, as `if value:` finds it; an exception its __bool__ raises propagates.
inline bool to_bool(py::handle value) {
  const int truth = PyObject_IsTrue(value.ptr());
  if (truth < 0) throw py::error_already_set();
  return truth == 1;
}

// A str as UTF-8 (a str that cannot be encoded, with a lone surrogate, is a ValueError).
inline std::string_view to_utf8(py::handle value, const char* function, const char* argument) {
  if (!PyUnicode_Check(value.ptr())) {
    raise(PyExc_TypeError,
          std::string(function) + "(): " + argument + " must be a str, not " + type_name(value));
  }
  Py_ssize_t length = 0;
  const char* text = PyUnicode_AsUTF8AndSize(value.ptr(), &length);
  if (text == nullptr) {
    py::raise_from(
        PyExc_ValueError,
        (std::string(function) + "(): " + argument + " cannot be encoded as UTF-8").c_str());
    throw py::error_already_set();
  }
  return {text, static_cast<std::size_t>(length)};
}

// A TypeError naming the argument unless `value` is an int (bools count as ints, as everywhere
// in Python).
inline void require_int(py::handle value, const char* function, const char* argument) {
  if (!PyLong_Check(value.ptr())) {
    raise(PyExc_TypeError,
          std::string(function) + "(): " + argument + " must be an int, not " + type_name(value));
  }
}

// An int in [low, high].
inline long long to_integer(py::handle value, const char* function, const char* argument,
                            long long low, long long high) {
  require_int(value, function, argument);
  int overflow = 0;
  const long long number = PyLong_AsLongLongAndOverflow(value.ptr(), &overflow);
  const bool below = overflow < 0 || (overflow == 0 && number < low);
  if (below || overflow > 0 || number > high) {
    // Below a domain's floor is a bad value; beyond what the slot holds is an overflow.
    PyObject* type = below && low != LLONG_MIN ? PyExc_ValueError : PyExc_OverflowError;
    raise(type, std::string(function) + "(): " + argument + " must be in " + std::to_string(low) +
                    ".." + std::to_string(high) + ", got " + int_text(value));
  }
  return number;
}

// An int in the range of the unsigned type T, which is all the binding checks: what the core
// accepts of that range the core checks (a notification of 0, a mailbox too deep).
template <class T>
T to_unsigned(py::handle value, const char* function, const char* argument) {
  static_assert(std::is_unsigned_v<T> && sizeof(T) <= sizeof(unsigned long long));
  require_int(value, function, argument);
  if (is_negative(value)) {
    raise(PyExc_ValueError,
          std::string(function) + "(): " + argument + " must be >= 0, got " + int_text(value));
  }
  const unsigned long long number = PyLong_AsUnsignedLongLong(value.ptr());
  const bool too_large = number == static_cast<unsigned long long>(-1) && PyErr_Occurred();
  if (too_large) PyErr_Clear();
  if (too_large || number > std::numeric_limits<T>::max()) {
    raise(PyExc_OverflowError, std::string(function) + "(): " + argument + " must be at most " +
                                   std::to_string(std::numeric_limits<T>::max()) + ", got " +
                                   int_text(value));
  }
  return static_cast<T>(number);
}

// A thread id (ids are given out from 1 and can never reach the top of the range).
inline thread_id to_thread_id(py::handle value, const char* function) {
  return to_unsigned<thread_id>(value, function, "th_id");
}

// A non-negative duration given as an int or a float in `unit`s: infinity for an int too large
// for a double, or float("inf").
template <class Unit>
std::chrono::duration<double, typename Unit::period> to_duration(py::handle value,
                                                                 const char* function,
                                                                 const char* argument) {
  if (!PyLong_Check(value.ptr()) && !PyFloat_Check(value.ptr())) {
    raise(PyExc_TypeError, std::string(function) + "(): " + argument +
                               " must be an int or a float, not " + type_name(value));
  }
  // No method of a subclass is called; an int too large for a double is a long wait (or a
  // negative one).
  double amount = 0;
  if (PyFloat_Check(value.ptr())) {
    amount = PyFloat_AS_DOUBLE(value.ptr());
  } else {
    amount = PyLong_AsDouble(value.ptr());
    if (amount == -1.0 && PyErr_Occurred()) {
      PyErr_Clear();
      amount = is_negative(value) ? -HUGE_VAL : HUGE_VAL;
    }
  }
  if (std::isnan(amount) || amount < 0) {
    raise(PyExc_ValueError,
          std::string(function) + "(): " + argument + " must be a number >= 0, got " +
              (PyFloat_Check(value.ptr()) ? float_text(amount) : int_text(value)));
  }
  return std::chrono::duration<double, typename Unit::period>(amount);
}

// The end of a wait whose timeout is given as for to_duration, made here once and carried as it
// is down to the core's futex (a timeout too long to mean anything is a wait without limit: see
// deadline::after).
template <class Unit>
deadline to_deadline(py::handle value, const char* function, const char* argument) {
  return deadline::after(to_duration<Unit>(value, function, argument));
}

}  // namespace mthread::python
