#include "frames.hpp"

#include <opcode.h>

namespace mthread::python {
namespace {

// Calls `read(instructions, size)` with the frame's code (without CPython's specialisations)
// and returns its result; `otherwise` if the code cannot be read.
template <class Result, class Read>
Result with_code(PyFrameObject* frame, Result otherwise, Read read) {
  PyCodeObject* code = PyFrame_GetCode(frame);
  PyObject* bytes = PyCode_GetCode(code);
  Py_DECREF(code);
  if (bytes == nullptr) {
    PyErr_Clear();
    return otherwise;
  }
  const Result result = read(reinterpret_cast<const unsigned char*>(PyBytes_AS_STRING(bytes)),
                             PyBytes_GET_SIZE(bytes));
  Py_DECREF(bytes);
  return result;
}

}  // namespace

int current_opcode(PyFrameObject* frame) {
  const int offset = PyFrame_GetLasti(frame);
  if (offset < 0) return -1;
  return with_code(frame, -1, [offset](const unsigned char* instructions, Py_ssize_t size) {
    return offset < size ? static_cast<int>(instructions[offset]) : -1;
  });
}

bool frame_not_started(PyFrameObject* frame) {
  const int offset = PyFrame_GetLasti(frame);
  if (offset < 0) return true;
  return with_code(frame, false, [offset](const unsigned char* instructions, Py_ssize_t size) {
    for (Py_ssize_t at = 0; at + 1 < size; at += 2) {  // an instruction is two bytes
      if (instructions[at] == RESUME) return offset <= at;
    }
    return false;
  });
}

}  // namespace mthread::python
