// The vocabulary of mthread: thread ids, types, states, messages and errors.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

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
// Catching it catches every kind below.
class error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
  // what() reads "mthread::FUNCTION: DETAIL".
  error(std::string_view function, std::string_view detail)
      : std::runtime_error(std::string("mthread::").append(function).append(": ").append(detail)),
        detail_offset_(std::string_view("mthread::").size() + function.size() + 2) {}
  // The message without the function it names ("msg must not be empty"), for a binding that
  // names its own function instead; the whole message for an error made from one string.
  const char* detail() const noexcept { return what() + detail_offset_; }

 private:
  std::size_t detail_offset_ = 0;
};

// An argument the call does not accept (an empty text, a notification of 0). The detail begins
// with the parameter's name, which argument() gives.
class invalid_argument : public error {
 public:
  // The detail reads "ARGUMENT PROBLEM".
  invalid_argument(std::string_view function, std::string_view argument, std::string_view problem)
      : error(function, std::string(argument).append(" ").append(problem)),
        argument_length_(argument.size()) {}
  std::string_view argument() const noexcept { return {detail(), argument_length_}; }

 private:
  std::size_t argument_length_;
};

// A number larger than the call accepts (a mailbox deeper than max_mailbox_depth).
class out_of_range : public invalid_argument {
 public:
  using invalid_argument::invalid_argument;
};

// A call made from a thread that cannot make it: waiting for a notification or a message in a
// thread mthread does not know (none can reach it), setting repl_accept_msg outside the main
// thread.
class wrong_thread : public error {
 public:
  using error::error;
};

// Thrown inside a thread that was killed, at its next call into mthread (or at once inside
// mthread's waits and sleeps). It unwinds the thread so destructors run; if you catch it, rethrow
// it — a swallowed kill is thrown again at the next call. Deliberately not a std::exception, so
// `catch (const std::exception&)` does not swallow it.
struct thread_killed {};

}  // namespace mthread
