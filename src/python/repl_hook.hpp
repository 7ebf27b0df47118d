// The REPL display: while the interactive prompt waits for input, CPython calls PyOS_InputHook
// about ten times a second. mthread's hook runs a display callable (mthread._repl.show_pending)
// that prints what arrived for the main thread; redisplay_prompt() then redraws the prompt and
// the text typed so far. Text a thread writes while the prompt waits (its traceback) is queued
// the same way, so it too lands above the prompt, not over it.
#pragma once

#include <pybind11/pybind11.h>

#include <string>

namespace mthread::python {

void install_repl_hook();
void set_repl_display(pybind11::object display);
bool redisplay_prompt();

// Whether the interactive prompt waits for input now (the hook ran within the last moment).
bool prompt_waiting();
// Text for the display to print above the prompt (any thread), and taking it (the display).
void queue_repl_output(std::string text);
std::string take_repl_output();
bool repl_output_pending();

// micropython.schedule(): have `runner` called in the main thread between two of its bytecodes
// (a CPython pending call), or while the interactive prompt waits. Needs the GIL.
void request_scheduled_run(pybind11::object runner);

}  // namespace mthread::python
