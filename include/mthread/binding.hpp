// For language bindings (the Python module is one): what a binding needs from the core to run
// its interpreter's code on mthread threads. Applications do not need this header.
//
// A binding starts its threads with binding::start, as PYTHON or SERVICE threads with hooks.
// Such threads are suspended and killed cooperatively: the core never stops them with a signal
// (an interpreter thread must not be parked while it holds its interpreter's lock). Instead the
// core tells the binding through the hooks, and the binding brings the thread to
// park_while_suspended() or raises its own "killed" exception there.
#pragma once

#include <poll.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>

#include "mthread/deadline.hpp"
#include "mthread/thread.hpp"
#include "mthread/types.hpp"

namespace mthread {

class thread_hooks {
 public:
  virtual ~thread_hooks() = default;
  // Called in the thread that asked, after the request is recorded, with no lock of mthread's
  // held. The target may be anywhere: running, blocked, or about to end. A suspend of a thread
  // inside one of mthread's waits (sleep_until, wait, get_msg, poll, a mutex's lock_waiting,
  // join) calls no hook: the core stops the thread there, and a binding looks at
  // suspend_requested() itself once such a wait returns, before its interpreter's code runs
  // again (the request may have come just as the wait ended).
  virtual void on_suspend_request() {}
  virtual void on_kill_request() {}
};

namespace binding {

// Starts `body` on a new thread of `type` (python or service) whose suspend and kill requests
// go to `hooks`. Such a thread is never stopped by a signal, so without hooks nothing would
// stop it while suspend() reported it SUSPENDED: a null `hooks`, or a type that is not
// cooperative (main, native), is refused with mthread::error and starts nothing. NATIVE
// threads are started with start_new_thread.
thread_id start(std::string_view name, const start_options& options, thread_type type,
                std::shared_ptr<thread_hooks> hooks, std::function<void()> body);

// The waits of sleep_for, wait, get_msg and poll, ending at a deadline that the binding made
// once from its caller's timeout (see mthread/deadline.hpp): a wait the binding cuts into
// slices, to look at its own signals between them, keeps its end. (mutex::lock_waiting takes
// one too.)
void sleep_until(const deadline& until);
std::optional<std::uint32_t> wait(const deadline& until);
message get_msg(const deadline& until);
int poll(pollfd* fds, std::size_t count, const deadline& until);

// Cheap checks for the calling thread (false in a thread mthread does not know).
bool suspend_requested();
bool kill_requested();

// For showing a message: whether thread `id` has messages waiting, and the name of a sender
// that may have ended since it sent one (get_thread_name() says "unknown" once it is gone).
bool has_messages(thread_id id);
std::string sender_name(thread_id id);

// What thread `id` is blocked in, as the kernel tells (/proc/self/task/TID): the system call
// and the kernel's wait channel, e.g. "system call accept4 (wait channel inet_csk_accept)";
// "running" when it is not in a system call, "" for a thread that is gone. For saying which
// thread a kill could not reach, and why.
std::string blocked_in(thread_id id);

// Parks the calling thread while it is suspended; returns when resumed or killed (it does not
// throw). The caller must hold no lock another thread may need, its interpreter's included.
void park_while_suspended();

// Says that the calling thread's body is over but for letting go of a lock it holds (its
// interpreter's, for good): it will wait for nothing again. From then on status() and join() in
// other threads wait the microseconds until it is gone instead of seeing it RUNNING, as they do
// once the body has returned. A binding calls it last thing before that final release: a thread
// that took the lock from it at once would otherwise look before the ending thread ran again.
void body_over_but_for_release();

// While one of these lives, kill does not interrupt the calling thread's waits and sleeps: a
// binding sets one while its thread runs cleanup code (a `finally` after the kill was raised),
// so cleanup that sleeps or waits for a message is not cut short.
class kill_deferral {
 public:
  kill_deferral();
  ~kill_deferral();
  kill_deferral(const kill_deferral&) = delete;
  kill_deferral& operator=(const kill_deferral&) = delete;
};

// While one of these lives, a broadcast (send_msg or notify to 0) that wakes the calling thread
// wakes the next of its targets only when this ends, instead of as the thread leaves its wait:
// a binding whose threads run one at a time (an interpreter lock) sets one around a receive and
// ends it once the thread holds that lock again, so that a broadcast wakes its threads as fast as
// they can take the lock. Woken all at once, thousands of threads would only queue for the lock,
// and every one of them would cost the CPUs while it waits.
class paced_wakes {
 public:
  paced_wakes();
  ~paced_wakes();
  paced_wakes(const paced_wakes&) = delete;
  paced_wakes& operator=(const paced_wakes&) = delete;
};

// One thread at a time, process-wide: a binding whose threads must take an interpreter lock
// again as they leave a wait (CPython's GIL) takes a turn first and ends it once it holds that
// lock. Then, of the threads woken while another one holds the lock, one waits for the lock and
// the others sleep here, instead of all waiting for the lock itself: each of CPython's waiters
// wakes every 5 ms to make the holder let go, so thousands of them cost the CPUs more than the
// work they wait to do, and the more of them wait, the longer each waits.
// Kill and suspend do not reach a thread waiting here: take a turn only to take a lock that is
// always let go of.
class lock_queue_turn {
 public:
  lock_queue_turn();
  ~lock_queue_turn();
  lock_queue_turn(const lock_queue_turn&) = delete;
  lock_queue_turn& operator=(const lock_queue_turn&) = delete;
};

}  // namespace binding
}  // namespace mthread
