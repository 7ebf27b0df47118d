// mthread.LockType / allocate_lock(): CPython's _thread.LockType, over the core's
// mthread::mutex. Its blocking acquire in a thread mthread started is one of mthread's waits
// (suspend stops it there, kill ends it with ThreadKilled); in the main thread it is cut into
// slices so Ctrl-C is seen; elsewhere it behaves as CPython's lock.
//
// A plain C type with METH_FASTCALL methods, not a pybind11 class: an uncontended
// acquire/release pair must cost what CPython's does, and pybind11's dispatch alone costs more.
#include "lock.hpp"

#include <structmember.h>

#include <cmath>
#include <mthread/mthread.hpp>
#include <new>

#include "errors.hpp"
#include "interpreter.hpp"

namespace mthread::python {
namespace {

struct lock_object {
  PyObject_HEAD mthread::mutex mutex;
  PyObject* weak_references;
};

lock_object* as_lock(PyObject* self) {
  return reinterpret_cast<lock_object*>(self);
}

// CPython's _thread.TIMEOUT_MAX: the longest timeout acquire() takes, in seconds.
double timeout_max = 0;

PyObject* new_lock(PyTypeObject* type) {
  PyObject* self = type->tp_alloc(type, 0);
  if (self == nullptr) return nullptr;
  ::new (&as_lock(self)->mutex) mthread::mutex();
  as_lock(self)->weak_references = nullptr;
  return self;
}

PyObject* lock_new(PyTypeObject* type, PyObject* args, PyObject* kwargs) {
  if (PyTuple_GET_SIZE(args) != 0 || (kwargs != nullptr && PyDict_GET_SIZE(kwargs) != 0)) {
    PyErr_SetString(PyExc_TypeError, "lock() takes no arguments");
    return nullptr;
  }
  return new_lock(type);
}

void lock_dealloc(PyObject* self) {
  PyTypeObject* type = Py_TYPE(self);
  if (as_lock(self)->weak_references != nullptr) PyObject_ClearWeakRefs(self);
  as_lock(self)->mutex.~mutex();
  type->tp_free(self);
  Py_DECREF(type);
}

// Waits for the lock with the GIL released, until `until`.
PyObject* acquire_waiting(lock_object* lock, const deadline& until) {
  return returning_python_error<PyObject*>("acquire", nullptr, [&] {
    const auto acquired =
        wait_without_gil<bool>(until, [&](const deadline& slice_end) -> std::optional<bool> {
          if (lock->mutex.lock_waiting(slice_end)) return true;
          return std::nullopt;
        });
    return PyBool_FromLong(acquired.has_value());
  });
}

// CPython's argument rules and messages for acquire(blocking=True, timeout=-1).
bool parse_acquire(PyObject* const* args, Py_ssize_t count, PyObject* names, bool& blocking,
                   double& timeout) {
  PyObject* given[2] = {nullptr, nullptr};
  const Py_ssize_t named = names != nullptr ? PyTuple_GET_SIZE(names) : 0;
  if (count + named > 2) {
    PyErr_Format(PyExc_TypeError, "acquire() takes at most 2 %sarguments (%zd given)",
                 named > 0 ? "keyword " : "", count + named);
    return false;
  }
  for (Py_ssize_t i = 0; i < count; ++i) given[i] = args[i];
  for (Py_ssize_t k = 0; k < named; ++k) {
    PyObject* name = PyTuple_GET_ITEM(names, k);
    int slot = -1;
    if (PyUnicode_CompareWithASCIIString(name, "blocking") == 0) slot = 0;
    if (PyUnicode_CompareWithASCIIString(name, "timeout") == 0) slot = 1;
    if (slot < 0) {
      PyErr_Format(PyExc_TypeError, "acquire() got an unexpected keyword argument '%U'", name);
      return false;
    }
    if (given[slot] != nullptr) {
      PyErr_Format(PyExc_TypeError, "argument for acquire() given by name ('%U') and position",
                   name);
      return false;
    }
    given[slot] = args[count + k];
  }
  if (given[0] != nullptr) {
    const int truth = PyObject_IsTrue(given[0]);
    if (truth < 0) return false;
    blocking = truth != 0;
  }
  if (given[1] != nullptr) {
    if (!PyFloat_Check(given[1]) && !PyLong_Check(given[1])) {
      PyErr_Format(PyExc_TypeError, "'%.200s' object cannot be interpreted as an integer",
                   Py_TYPE(given[1])->tp_name);
      return false;
    }
    timeout = PyFloat_AsDouble(given[1]);
    if (timeout == -1.0 && PyErr_Occurred()) return false;
    if (std::isnan(timeout)) {
      PyErr_SetString(PyExc_ValueError, "Invalid value NaN (not a number)");
      return false;
    }
  }
  if (!blocking && timeout != -1.0) {
    PyErr_SetString(PyExc_ValueError, "can't specify a timeout for a non-blocking call");
    return false;
  }
  if (timeout < 0 && timeout != -1.0) {
    PyErr_SetString(PyExc_ValueError, "timeout value must be a non-negative number");
    return false;
  }
  if (timeout > timeout_max) {
    PyErr_SetString(PyExc_OverflowError, "timeout value is too large");
    return false;
  }
  return true;
}

PyObject* lock_acquire(PyObject* self, PyObject* const* args, Py_ssize_t count, PyObject* names) {
  lock_object* lock = as_lock(self);
  if (count == 0 && names == nullptr) {  // the common call: no parsing
    if (lock->mutex.try_lock()) Py_RETURN_TRUE;
    return acquire_waiting(lock, deadline::never());
  }
  bool blocking = true;
  double timeout = -1.0;
  if (!parse_acquire(args, count, names, blocking, timeout)) return nullptr;
  if (lock->mutex.try_lock()) Py_RETURN_TRUE;
  if (!blocking || timeout == 0.0) Py_RETURN_FALSE;
  if (timeout < 0) return acquire_waiting(lock, deadline::never());
  return acquire_waiting(lock, deadline::after(std::chrono::duration<double>(timeout)));
}

PyObject* lock_release(PyObject* self, PyObject*) {
  if (!as_lock(self)->mutex.unlock_if_locked()) {
    PyErr_SetString(PyExc_RuntimeError, "release unlocked lock");
    return nullptr;
  }
  Py_RETURN_NONE;
}

PyObject* lock_exit(PyObject* self, PyObject* const*, Py_ssize_t) {
  return lock_release(self, nullptr);
}

PyObject* lock_locked(PyObject* self, PyObject*) {
  return PyBool_FromLong(as_lock(self)->mutex.locked());
}

// After fork() in the child, threading gives its locks a fresh start: whoever held them in the
// parent does not exist here.
PyObject* lock_at_fork_reinit(PyObject* self, PyObject*) {
  lock_object* lock = as_lock(self);
  lock->mutex.~mutex();
  ::new (&lock->mutex) mthread::mutex();
  Py_RETURN_NONE;
}

PyObject* lock_repr(PyObject* self) {
  return PyUnicode_FromFormat("<%s %s object at %p>",
                              as_lock(self)->mutex.locked() ? "locked" : "unlocked",
                              Py_TYPE(self)->tp_name, self);
}

#define MTHREAD_FASTCALL(f) reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(f))

constexpr const char* acquire_doc =
    "acquire(blocking=True, timeout=-1) -> bool\n\n"
    "Lock the lock, waiting for it unless blocking is False, at most `timeout` seconds if\n"
    "given (-1: no limit). True if it was acquired. In a thread mthread started the wait is\n"
    "one of mthread's: suspend stops the thread there and kill ends it with ThreadKilled.";

PyMethodDef lock_methods[] = {
    {"acquire", MTHREAD_FASTCALL(lock_acquire), METH_FASTCALL | METH_KEYWORDS, acquire_doc},
    {"acquire_lock", MTHREAD_FASTCALL(lock_acquire), METH_FASTCALL | METH_KEYWORDS,
     "An obsolete name of acquire()."},
    {"__enter__", MTHREAD_FASTCALL(lock_acquire), METH_FASTCALL | METH_KEYWORDS,
     "acquire(); for `with`."},
    {"release", lock_release, METH_NOARGS,
     "release()\n\nUnlock the lock; any thread may. RuntimeError if it is not locked."},
    {"release_lock", lock_release, METH_NOARGS, "An obsolete name of release()."},
    {"__exit__", MTHREAD_FASTCALL(lock_exit), METH_FASTCALL, "release(); for `with`."},
    {"locked", lock_locked, METH_NOARGS, "locked() -> bool\n\nWhether the lock is locked."},
    {"locked_lock", lock_locked, METH_NOARGS, "An obsolete name of locked()."},
    {"_at_fork_reinit", lock_at_fork_reinit, METH_NOARGS,
     "Make the lock new and unlocked (threading calls it in a child after fork)."},
    {nullptr, nullptr, 0, nullptr},
};

PyMemberDef lock_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(lock_object, weak_references), READONLY, nullptr},
    {nullptr, 0, 0, 0, nullptr},
};

PyType_Slot lock_slots[] = {
    {Py_tp_new, reinterpret_cast<void*>(lock_new)},
    {Py_tp_dealloc, reinterpret_cast<void*>(lock_dealloc)},
    {Py_tp_repr, reinterpret_cast<void*>(lock_repr)},
    {Py_tp_methods, lock_methods},
    {Py_tp_members, lock_members},
    {Py_tp_doc,
     const_cast<char*>("A lock (CPython's _thread.LockType) whose waits suspend and kill reach.\n\n"
                       "Not recursive; any thread may release it. allocate_lock() makes one.")},
    {0, nullptr},
};

PyType_Spec lock_spec = {"mthread.lock", sizeof(lock_object), 0, Py_TPFLAGS_DEFAULT, lock_slots};

PyObject* lock_type = nullptr;  // kept for the life of the process, like the module

PyObject* allocate_lock(PyObject*, PyObject*) {
  return new_lock(reinterpret_cast<PyTypeObject*>(lock_type));
}

PyMethodDef module_functions[] = {
    {"allocate_lock", allocate_lock, METH_NOARGS,
     "allocate_lock() -> LockType\n\nA new unlocked lock: CPython's, but its waits suspend and "
     "kill reach."},
    {nullptr, nullptr, 0, nullptr},
};

}  // namespace

void add_lock_type(py::module_& module) {
  timeout_max = py::module_::import("_thread").attr("TIMEOUT_MAX").cast<double>();
  lock_type = PyType_FromSpec(&lock_spec);
  if (lock_type == nullptr) throw py::error_already_set();
  module.add_object("LockType", py::handle(lock_type).inc_ref());
  if (PyModule_AddFunctions(module.ptr(), module_functions) != 0) throw py::error_already_set();
}

}  // namespace mthread::python
