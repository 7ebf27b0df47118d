// The vocabulary of mthread: thread ids, types, states, messages and errors.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace mthread {

// A positive integer, unique for the life of the process and never reused.
// As a target, 0 means "every thread but the caller"; as a sender, "not a thread of ours".
using thread_id = std::uint64_t;
inline constexpr thread_id broadcast = 0;

enum class thread_type : int { main = 1, python = 2, service = 3, native = 4 };

// `waiting` means blocked in one of mthread's own waits or sleeps.
// `terminated` is only ever returned by status() for a thread that is gone (or never was).
enum class thread_state : int { running = 0, suspended = 1, waiting = 2, terminated = -1 };

enum class msg_type : int { none = 0, integer = 1, string = 2 };

// Notification values with a meaning of their own, as on the device.
inline constexpr std::uint32_t notify_pause = 0x01000000;
inline constexpr std::uint32_t notify_suspend = notify_pause;
inline constexpr std::uint32_t notify_resume = 0x02000000;
inline constexpr std::uint32_t notify_exit = 0x04000000;
inline constexpr std::uint32_t notify_stop = notify_exit;
inline constexpr std::uint32_t notify_status = 0x08000000;

// A message as received. `integer` is set for msg_type::integer, `text` for msg_type::string;
// a message of type none (an empty mailbox) has sender 0.
struct message {
  msg_type type = msg_type::none;
  thread_id sender = 0;
  std::int64_t integer = 0;
  std::string text;
};

// One line of list(): the state at the moment of the call.
struct thread_info {
  thread_id id = 0;
  thread_type type = thread_type::native;
  std::string name;
  thread_state state = thread_state::running;
  std::size_t stack_size = 0;      // bytes usable by the thread (0 for the main thread)
  std::size_t max_stack_used = 0;  // high-water mark, to within one page (0 for the main thread)
};

// Limits, in bytes. Sizes below the minimum are clamped up (as the device clamps), above the
// maximum clamped down; every size is rounded up to whole pages.
inline constexpr std::size_t default_stack_size = 8u
                                                  << 20;  // like a std::thread or threading.Thread
inline constexpr std::size_t min_stack_size = 128u << 10;
inline constexpr std::size_t max_stack_size = 1u << 30;

// Mailboxes: default depth as on the device; longest string a message may carry.
inline constexpr std::size_t default_mailbox_depth = 8;
inline constexpr std::size_t max_mailbox_depth = 1u << 16;
inline constexpr std::size_t max_message_length = 64u << 10;

// A programming error: bad argument, thread limit reached, call from a thread that cannot make it.
class error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Thrown inside a thread that was killed, at its next call into mthread (or at once inside
// mthread's waits and sleeps). It unwinds the thread so destructors run; if you catch it, rethrow
// it — a swallowed kill is thrown again at the next call. Deliberately not a std::exception, so
// `catch (const std::exception&)` does not swallow it.
struct thread_killed {};

}  // namespace mthread
