// Where a Python frame stands in its bytecode, through the public C API of every supported
// CPython: what the checkpoints need to tell a safe place to raise from an unsafe one.
#pragma once

#include <Python.h>

namespace mthread::python {

// The opcode of the frame's current instruction, or -1 when it has none yet.
int current_opcode(PyFrameObject* frame);

// Whether the frame has not run its first line yet: it stands at (or before) its RESUME.
bool frame_not_started(PyFrameObject* frame);

}  // namespace mthread::python
