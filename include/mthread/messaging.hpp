// Notifications (one 32-bit slot a thread) and messages (a bounded mailbox a thread).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

#include "mthread/types.hpp"

namespace mthread {

// Overwrites the target's notification slot (latest wins) and wakes it.
// `id` 0 sends to every thread but the caller. Returns false for an unknown or ended thread
// (for a broadcast: when there was no other thread). Throws mthread::invalid_argument for value 0.
bool notify(thread_id id, std::uint32_t value);

// The caller's pending notification, cleared; 0 when none.
std::uint32_t get_notification();

// True if `id` has a notification pending.
bool is_notified(thread_id id);

// Returns the pending notification at once, else blocks until one arrives (cleared) or the
// timeout passes (nullopt). Throws mthread::wrong_thread in a thread mthread does not know.
std::optional<std::uint32_t> wait(std::chrono::milliseconds timeout);

// Queues a message in the target's mailbox. Never blocks: false when the mailbox is full or the
// thread is unknown or ended. `id` 0 sends to every thread but the caller and is true only when
// every one of them accepted it. A text `msg` is UTF-8 (as a Python receiver decodes it);
// mthread::invalid_argument for an empty one or one longer than max_message_length bytes.
bool send_msg(thread_id id, std::int64_t value);
bool send_msg(thread_id id, std::string_view msg);

// The oldest message in the caller's mailbox; type none when the mailbox is empty.
message get_msg();
// Same, but waits up to `timeout` for one to arrive; throws mthread::wrong_thread in a thread
// mthread does not know.
message get_msg(std::chrono::milliseconds timeout);

// Whether the REPL (main thread) shows incoming messages at its prompt. Setting it is allowed
// from the main thread only (mthread::wrong_thread otherwise); setting returns the previous value,
// as the device's mp_thread_replAcceptMsg does.
bool repl_accept_msg();
bool repl_accept_msg(bool accept);

}  // namespace mthread
