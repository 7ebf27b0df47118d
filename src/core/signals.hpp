// The two signal handlers of the core:
// - the suspend signal (a real-time signal sent to one native thread) parks the thread, unless
//   it is inside the core, where the park is left to the end of the section;
// - SIGSEGV/SIGBUS on each thread's alternate stack recognise a fault in a stack's guard zone
//   and stop the process naming the thread and its stack size. Other faults go to whatever
//   handler was there before (Python's faulthandler, a debugger's, the default).
#pragma once

#include "core/record.hpp"

namespace mthread::core {

int suspend_signal();
void install_signal_handlers();

// Called by a started thread first thing, and last thing (once it can no longer be suspended).
void enter_thread_signals(thread_record& self);
void leave_thread_signals(thread_record& self);

// Sends the suspend signal unless the thread already ended.
void send_suspend_signal(thread_record& target);

}  // namespace mthread::core
