// The REPL display: while the interactive prompt waits for input, CPython calls PyOS_InputHook
// about ten times a second. mthread's hook runs a display callable (mthread._repl.show_pending)
// that prints what arrived for the main thread; redisplay_prompt() then redraws the prompt and
// the text typed so far.
#pragma once

#include <pybind11/pybind11.h>

namespace mthread::python {

void install_repl_hook();
void set_repl_display(pybind11::object display);
bool redisplay_prompt();

}  // namespace mthread::python
