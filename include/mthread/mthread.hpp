// mthread: named threads that can be suspended, resumed and killed, with notifications,
// mailboxes and stack-use figures — the ESP32 MicroPython (LoBo) `_thread` model, for C++20.
//
//   #include <mthread/mthread.hpp>
//   auto id = mthread::start_new_thread("blink", [] { for (;;) mthread::sleep_for(500ms); });
//   mthread::kill(id);
#pragma once

#include "mthread/messaging.hpp"
#include "mthread/sync.hpp"
#include "mthread/thread.hpp"
#include "mthread/types.hpp"
