// Starting, ending and controlling threads; the public API of thread.hpp and binding.hpp.
#include <cxxabi.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <exception>
#include <limits>
#include <ostream>
#include <thread>

#include "core/control.hpp"
#include "core/no_destroy.hpp"
#include "core/registry.hpp"
#include "core/signals.hpp"
#include "mthread/binding.hpp"
#include "mthread/thread.hpp"

namespace mthread {
namespace core {
namespace {

std::atomic<std::size_t> default_stack{default_stack_size};

// Gives back the stack of a thread that is gone (joined) and only then removes it from the
// registry, so "status() is TERMINATED" means its stack and mailbox are freed.
void forget(thread_record& joined) {
  joined.give_back_stack_now();
  registry::instance().remove(joined.id);
}

int join_until(pthread_t thread, const timespec& monotonic_end);

// Linux (6.16 on) gives each process a private futex hash table, sized by the lesser of its
// thread count and the CPUs: 16 buckets on a two-CPU machine, however many threads there are.
// Every sleeping thread of mthread's waits on a futex word of its own, so with thousands of them
// each wake-up walks hundreds of waiters in its bucket (40 µs a wake at 10000 threads, against
// 4 µs at 100). So the table grows with the thread count, four buckets a thread, by factors of
// four. A resize waits for an RCU grace period (30 ms on a small virtual machine), so the reaper
// makes it, not the thread that starts one. Kernels without the call, and a process that chose
// the global table (0 buckets), are left as they are.
class futex_table {
 public:
  // Whether the table should grow now that `threads` are alive. Cheap: one relaxed load.
  bool due(std::size_t threads) const {
    return threads >= next_check_.load(std::memory_order_relaxed);
  }
  // The reaper's: sizes the table for `threads`.
  void grow(std::size_t threads) {
    constexpr int option = 78;  // PR_FUTEX_HASH (absent from older headers)
    constexpr int set_slots = 1;
    constexpr int get_slots = 2;
    constexpr std::size_t never = std::numeric_limits<std::size_t>::max();
    const int slots = prctl(option, get_slots, 0, 0, 0);
    if (slots <= 0) {
      next_check_.store(never, std::memory_order_relaxed);
      return;
    }
    const std::size_t wanted = std::bit_ceil(4 * threads);
    if (wanted > static_cast<std::size_t>(slots) && prctl(option, set_slots, wanted, 0, 0) != 0) {
      next_check_.store(never, std::memory_order_relaxed);
      return;
    }
    next_check_.store(std::max(wanted, static_cast<std::size_t>(slots)), std::memory_order_relaxed);
  }

 private:
  std::atomic<std::size_t> next_check_{32};
};

// Joins ended threads; a thread blocked in join() on one does it itself when it can (see
// join()), so that a join costs one wake-up, as std::thread::join does.
class reaper {
 public:
  static reaper& instance() {
    static no_destroy<reaper> instance;
    return instance.get();
  }

  // Called before the first thread starts, so a failure reaches the caller of start.
  void ensure_running() {
    std::lock_guard guard(lock_);
    if (running_) return;
    std::thread(&reaper::run, this).detach();
    running_ = true;
  }

  // An ended thread that no joiner can join (none, or suspended, killed, timed out): the reaper
  // claims it unless a joiner did.
  void hand_over(record_ptr ended) {
    {
      std::lock_guard guard(lock_);
      unclaimed_.push_back(std::move(ended));
    }
    ready_.notify_one();
  }

  // From start(): `threads` are alive now; the reaper grows the futex table if it is due.
  void note_thread_count(std::size_t threads) {
    if (!futexes_.due(threads)) return;
    {
      std::lock_guard guard(lock_);
      if (threads <= futex_table_for_) return;
      futex_table_for_ = threads;
    }
    ready_.notify_one();
  }

  // From a joiner that claimed a thread which is not gone yet (its thread_local destructors
  // still run) and must stop waiting: the reaper waits for it instead.
  void take_over(record_ptr claimed) {
    {
      std::lock_guard guard(lock_);
      claimed_.push_back(std::move(claimed));
    }
    ready_.notify_one();
  }

 private:
  // Joins in the order threads ended, blocking on the oldest for at most `patience`: one whose
  // end is slow (a thread_local destructor that takes its time) is put at the back, and the
  // others that are gone meanwhile are joined without waiting, so it delays nobody's reaping by
  // more than the patience. That grows while nothing ends (a thread stuck in its end costs no
  // busy polling) and is short again as soon as something is joined.
  void run() {
    pthread_setname_np(pthread_self(), "mthread-reaper");
    constexpr auto shortest_patience = std::chrono::milliseconds(1);
    constexpr auto longest_patience = std::chrono::milliseconds(16);
    auto patience = shortest_patience;
    std::deque<record_ptr> ending;  // claimed by the reaper, not yet joined
    std::size_t futex_table_done_for = 0;
    for (;;) {
      std::size_t grow_futex_table_for = 0;
      {
        std::unique_lock guard(lock_);
        if (ending.empty()) {
          ready_.wait(guard, [&] {
            return !claimed_.empty() || !unclaimed_.empty() ||
                   futex_table_for_ > futex_table_done_for;
          });
        }
        if (futex_table_for_ > futex_table_done_for) {
          grow_futex_table_for = futex_table_done_for = futex_table_for_;
        }
        for (record_ptr& claimed : claimed_) ending.push_back(std::move(claimed));
        claimed_.clear();
        for (record_ptr& ended : unclaimed_) {
          if (!ended->reap_claimed.exchange(true)) ending.push_back(std::move(ended));
        }
        unclaimed_.clear();
      }
      if (grow_futex_table_for != 0) futexes_.grow(grow_futex_table_for);
      if (ending.empty()) continue;
      record_ptr oldest = std::move(ending.front());
      ending.pop_front();
      if (join_until(oldest->handle, deadline_after(patience)) == 0) {
        forget(*oldest);
        patience = shortest_patience;
        continue;
      }
      const std::size_t before = ending.size();
      std::erase_if(ending, [](const record_ptr& ended) {
        if (pthread_tryjoin_np(ended->handle, nullptr) != 0) return false;
        forget(*ended);
        return true;
      });
      patience =
          ending.size() < before ? shortest_patience : std::min(2 * patience, longest_patience);
      ending.push_back(std::move(oldest));
    }
  }

  std::mutex lock_;
  std::condition_variable ready_;
  std::deque<record_ptr> claimed_;    // claimed by a joiner that had to stop waiting
  std::deque<record_ptr> unclaimed_;  // ended, and no joiner could join them
  bool running_ = false;
  futex_table futexes_;
  std::size_t futex_table_for_ = 0;  // the thread count the table should be sized for
};

// pthread_clockjoin_np on CLOCK_MONOTONIC (a step of the wall clock must not stretch a slice);
// under ThreadSanitizer, which knows only pthread_timedjoin_np (CLOCK_REALTIME), that one.
int join_until(pthread_t thread, const timespec& monotonic_end) {
#if defined(__SANITIZE_THREAD__)
  timespec now_monotonic{};
  timespec end{};
  clock_gettime(CLOCK_MONOTONIC, &now_monotonic);
  clock_gettime(CLOCK_REALTIME, &end);
  const long long left_ns = (monotonic_end.tv_sec - now_monotonic.tv_sec) * 1'000'000'000LL +
                            (monotonic_end.tv_nsec - now_monotonic.tv_nsec);
  const long long end_ns = end.tv_nsec + std::max(left_ns, 0LL);
  end.tv_sec += static_cast<time_t>(end_ns / 1'000'000'000);
  end.tv_nsec = static_cast<long>(end_ns % 1'000'000'000);
  return pthread_timedjoin_np(thread, nullptr, &end);
#else
  return pthread_clockjoin_np(thread, nullptr, CLOCK_MONOTONIC, &monotonic_end);
#endif
}

// For a joiner that saw `target` end (`ended` is set a few system calls before the thread is
// gone): joins it. First for a few microseconds without sleeping (most threads are gone by
// then), then in slices short enough that the joiner stays killable and suspendable and keeps
// its deadline; a joiner that must stop waiting hands its claim to the reaper.
void join_or_hand_to_reaper(thread_record& self, const record_ptr& target,
                            const timespec& deadline) {
  if (target->reap_claimed.exchange(true)) return;  // the reaper has it
  const timespec spin_end = deadline_after(std::chrono::microseconds(20));
  int joined = EBUSY;
  while ((joined = pthread_tryjoin_np(target->handle, nullptr)) == EBUSY &&
         !deadline_passed(spin_end)) {
    sched_yield();
  }
  if (joined == 0) {
    forget(*target);
    return;
  }
  const waiting_scope waiting(self);
  for (;;) {
    if (join_until(target->handle, deadline_after(std::chrono::microseconds(500))) == 0) {
      forget(*target);
      return;
    }
    if (self.kill_requested.load() || self.suspend_requested.load() || deadline_passed(deadline)) {
      reaper::instance().take_over(target);
      return;
    }
  }
}

// For status(): an ended thread that the kernel no longer knows (its id is free, so its exit
// cleared the id that pthread_join waits on) is joined here if nobody claimed it yet, instead of
// whenever the reaper gets a CPU. True when it is gone now. A reused id only leaves it to the
// reaper.
bool reap_if_gone(const record_ptr& target) {
  if (!target->ended.load() || target->reap_claimed.load()) return false;
  const long tid = target->os_tid.load(std::memory_order_relaxed);
  if (tid == 0 || syscall(SYS_tgkill, getpid(), tid, 0) == 0 || errno != ESRCH) return false;
  if (target->reap_claimed.exchange(true)) return false;
  pthread_join(target->handle, nullptr);
  forget(*target);
  return true;
}

void set_os_name(const std::string& name) {
  // The kernel keeps 15 bytes; cut on a character boundary so tools show valid UTF-8.
  std::size_t length = std::min<std::size_t>(name.size(), 15);
  if (length < name.size()) {
    while (length > 0 && (static_cast<unsigned char>(name[length]) & 0xC0) == 0x80) --length;
  }
  pthread_setname_np(pthread_self(), name.substr(0, length).c_str());
}

void report_uncaught(const thread_record& self, const char* what) {
  std::fprintf(stderr, "mthread: thread \"%s\" (id %llu) ended by an uncaught exception: %s\n",
               self.name.c_str(), static_cast<unsigned long long>(self.id), what);
}

// Once the body is over, the thread runs only the library's code (printing an uncaught
// exception, freeing the body's captures), which takes stdio's and malloc's locks: a suspend
// signal parking it there would stop every thread that needs those locks. So no suspend from
// here on; one already requested stays pending until the thread is gone. The thread enters a
// core section it never leaves (the suspend handler parks only outside one): as good as
// blocking the signal, without the system call.
void end_suspension(thread_record& self) {
  if (self.suspension_ended) return;
  self.suspension_ended = true;
  self.suspendable.store(false, std::memory_order_seq_cst);
  self.core_depth.store(self.core_depth.load(std::memory_order_relaxed) + 1,
                        std::memory_order_relaxed);
  std::atomic_signal_fence(std::memory_order_seq_cst);
}

// The body always runs, even when killed before it started: a binding must get the chance to
// release what the body holds (a native body meets the kill at its first call into mthread).
void run_body(thread_record& self) {
  try {
    self.body();
  } catch (const thread_killed&) {
  } catch (abi::__forced_unwind&) {
    throw;  // pthread_exit: let glibc finish unwinding; the finisher still runs
  } catch (const std::exception& e) {
    end_suspension(self);
    report_uncaught(self, e.what());
  } catch (...) {
    end_suspension(self);
    report_uncaught(self, "(not a std::exception)");
  }
  end_suspension(self);
}

void finish(thread_record& self) {
  end_suspension(self);
  // From here on a kill no longer throws: the captures' destructors may call into mthread.
  ++self.kill_deferrals;
  self.body = nullptr;
  leave_thread_signals(self);  // `ended` from here on
  self.box.close();
  // A joiner joins the thread itself; the reaper the ones nobody joins, or whose joiners are
  // suspended (suspend() hands over to it when it suspends a joiner of an ended thread), or
  // give up (join()'s end hands over then).
  const bool joiner_will_join = self.joiners.load(std::memory_order_seq_cst) > 0 &&
                                registry::instance().wake_joiners_of(self);
  if (!joiner_will_join) reaper::instance().hand_over(registry::instance().find(self.id));
}

void* thread_entry(void* argument) {
  auto& self = *static_cast<thread_record*>(argument);
  registry::set_self(&self);
  self.handle = pthread_self();
  self.os_tid.store(static_cast<long>(syscall(SYS_gettid)), std::memory_order_relaxed);
  self.stack.note_entry_frame(__builtin_frame_address(0));
  enter_thread_signals(self);
  set_os_name(self.name);
  struct finisher {
    thread_record& self;
    ~finisher() { finish(self); }
  } at_end{self};
  run_body(self);
  return nullptr;
}

bool alive(const record_ptr& record) {
  return record != nullptr && !record->ended.load();
}

}  // namespace
}  // namespace core

using core::api_call;
using core::registry;

thread_id detail::start(std::string_view name, const start_options& options,
                        std::function<void()> body) {
  api_call call;
  if (options.mailbox_depth == 0 || options.mailbox_depth > max_mailbox_depth) {
    throw error("mthread: mailbox_depth must be 1.." + std::to_string(max_mailbox_depth) +
                ", got " + std::to_string(options.mailbox_depth));
  }
  if (options.type == thread_type::main) {
    throw error("mthread: a started thread cannot be of type MAIN");
  }
  core::install_signal_handlers();
  core::reaper::instance().ensure_running();

  auto& threads = registry::instance();
  auto record = std::make_shared<core::thread_record>(threads.next_id(), options.type,
                                                      std::string(name), options.mailbox_depth);
  record->hooks = options.hooks;
  record->body = std::move(body);
  const std::size_t size =
      core::effective_stack_size(options.stack_size != 0 ? options.stack_size : stack_size());
  record->stack = core::take_stack(size);
  record->stack_size = record->stack.size();
  core::reaper::instance().note_thread_count(threads.add(record));

  pthread_attr_t attributes;
  pthread_attr_init(&attributes);
  pthread_attr_setstack(&attributes, record->stack.low(), record->stack.size());
  pthread_t handle;
  const int failure = pthread_create(&handle, &attributes, core::thread_entry, record.get());
  pthread_attr_destroy(&attributes);
  if (failure != 0) {
    threads.remove(record->id);
    throw error("mthread: cannot start thread \"" + record->name + "\": " + std::strerror(failure));
  }
  return record->id;
}

std::size_t stack_size() {
  return core::default_stack.load();
}

std::size_t stack_size(std::size_t bytes) {
  const std::size_t effective = bytes == 0 ? default_stack_size : core::effective_stack_size(bytes);
  core::default_stack.store(effective);
  return effective;
}

std::size_t max_threads() {
  return registry::instance().limit();
}

void allow_suspend(bool allow) {
  api_call call;
  if (call.self() != nullptr && call.self()->type != thread_type::main) {
    // seq_cst: pairs with suspend()'s second look (no suspend after allow_suspend(false)).
    call.self()->suspendable.store(allow, std::memory_order_seq_cst);
  }
}

bool suspend(thread_id id) {
  api_call call;
  const core::record_ptr target = registry::instance().find(id);
  if (!core::alive(target) || target.get() == call.self() ||
      !target->suspendable.load(std::memory_order_acquire) ||
      target->kill_requested.load(std::memory_order_acquire)) {
    return false;
  }
  if (target->suspend_requested.exchange(true, std::memory_order_seq_cst)) return false;
  // allow_suspend(false) may have run between the check above and the request: then it either
  // saw the request (and parked at its end, before returning: the undo wakes it) or we see its
  // store here. Undo, so no thread is ever stopped after allow_suspend(false) returned.
  if (!target->suspendable.load(std::memory_order_seq_cst)) {
    target->suspend_requested.store(false, std::memory_order_seq_cst);
    target->park.wake();
    return false;
  }
  // A suspended joiner cannot join the thread it waits for: if that one has ended already (and
  // counted on this joiner), the reaper does it. (Before the hook: a Python one may block.)
  if (core::record_ptr joined = registry::instance().ended_target_of(*target)) {
    core::reaper::instance().hand_over(std::move(joined));
  }
  if (target->preemptive()) {
    core::send_suspend_signal(*target);
  } else if (target->hooks) {
    target->hooks->on_suspend_request();
  }
  return true;
}

bool resume(thread_id id) {
  api_call call;
  const core::record_ptr target = registry::instance().find(id);
  if (target == nullptr || !target->suspend_requested.exchange(false, std::memory_order_seq_cst)) {
    return false;
  }
  target->park.wake();
  return true;
}

bool kill(thread_id id) {
  api_call call;
  const core::record_ptr target = registry::instance().find(id);
  if (!core::alive(target) || target->type == thread_type::main) return false;
  target->kill_requested.store(true, std::memory_order_seq_cst);
  if (target.get() == call.self()) {
    core::throw_if_killed(*target);
    return true;
  }
  // A kill releases a suspended thread: it must run to its end (unwinding, or cleanup under a
  // kill_deferral) instead of staying parked, and it no longer shows as suspended.
  target->suspend_requested.store(false, std::memory_order_seq_cst);
  target->park.wake();
  if (target->hooks) target->hooks->on_kill_request();
  return true;
}

std::string get_thread_name(thread_id id) {
  // A section: the lookup takes the registry's lock, which a suspended thread must not hold.
  core::core_section section;
  const core::record_ptr target = registry::instance().find(id);
  return target != nullptr ? target->name : "unknown";
}

std::string get_self_name() {
  const core::thread_record* self = registry::self();
  return self != nullptr ? self->name : "unknown";
}

thread_id get_self_id() {
  const core::thread_record* self = registry::self();
  return self != nullptr ? self->id : 0;
}

thread_id get_repl_id() {
  return registry::instance().main_thread().id;
}

thread_state status(thread_id id) {
  core::core_section section;  // as in get_thread_name
  const core::record_ptr target = registry::instance().find(id);
  if (target == nullptr) return thread_state::terminated;
  // Only a thread that looks running may have ended: a waiting one costs no more look.
  const thread_state state = target->state();
  if (state == thread_state::running && core::reap_if_gone(target)) return thread_state::terminated;
  return state;
}

std::vector<thread_info> list() {
  api_call call;
  std::vector<thread_info> result;
  for (const core::record_ptr& record : registry::instance().all()) {
    if (record->type == thread_type::main) {
      const core::main_stack_figures stack = core::measure_main_stack();
      result.push_back(thread_info{record->id, record->type, record->name, record->state(),
                                   stack.size, stack.max_used});
      continue;
    }
    result.push_back(thread_info{record->id, record->type, record->name, record->state(),
                                 record->stack_size, record->max_stack_used()});
  }
  return result;
}

namespace {

const char* state_name(thread_state state) {
  switch (state) {
    case thread_state::running:
      return "running";
    case thread_state::suspended:
      return "suspended";
    case thread_state::waiting:
      return "waiting";
    case thread_state::terminated:
      return "terminated";
  }
  return "unknown";
}

const char* type_name(thread_type type) {
  switch (type) {
    case thread_type::main:
      return "MAIN";
    case thread_type::python:
      return "PYTHON";
    case thread_type::service:
      return "SERVICE";
    case thread_type::native:
      return "NATIVE";
  }
  return "UNKNOWN";
}

}  // namespace

void print_list(std::ostream& out) {
  for (const thread_info& info : list()) {
    out << "ID=" << info.id << ", Name: " << info.name << ", State: " << state_name(info.state)
        << ", Stack=" << info.stack_size << ", MaxUsed=" << info.max_stack_used
        << ", Type: " << type_name(info.type) << '\n';
  }
}

void sleep_for(std::chrono::nanoseconds duration) {
  api_call call;
  if (call.self() == nullptr) {
    std::this_thread::sleep_for(duration);
    return;
  }
  const timespec deadline = core::deadline_after(duration);
  core::wait_until(*call.self(), &deadline, [] { return false; });
}

void checkpoint() {
  api_call call;
  if (call.self() == nullptr) return;
  if (call.self()->suspend_requested.load()) core::park_while_suspended(*call.self());
  core::throw_if_killed(*call.self());
}

bool join(thread_id id, std::chrono::nanoseconds timeout) {
  api_call call;
  auto& threads = registry::instance();
  const core::record_ptr target = threads.find(id);
  if (target == nullptr) return true;
  if (target.get() == call.self()) throw error("mthread: join: a thread cannot join itself");
  if (target->type == thread_type::main) {
    throw error("mthread: join: the main thread never ends while the process runs");
  }
  const timespec deadline = core::deadline_after(timeout);
  auto gone = [&] { return threads.find(id) == nullptr; };
  if (call.self() == nullptr) {
    while (!gone()) {
      if (core::deadline_passed(deadline)) return false;
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    return true;
  }
  threads.add_joiner(call.self(), target.get());
  target->joiners.fetch_add(1, std::memory_order_seq_cst);
  struct leave {
    core::thread_record* self;
    const core::record_ptr& target;
    ~leave() {
      registry::instance().remove_joiner(self);
      target->joiners.fetch_sub(1, std::memory_order_seq_cst);
      // Killed or timed out after the thread ended, whose end counted on this joiner.
      if (target->ended.load() && !target->reap_claimed.load()) {
        core::reaper::instance().hand_over(target);
      }
    }
  } at_end{call.self(), target};
  if (!core::wait_until(*call.self(), &deadline, [&] { return target->ended.load(); })) {
    return false;
  }
  core::join_or_hand_to_reaper(*call.self(), target, deadline);
  return core::wait_until(*call.self(), &deadline, gone);
}

namespace binding {

bool suspend_requested() {
  const core::thread_record* self = registry::self();
  return self != nullptr && self->suspend_requested.load(std::memory_order_acquire);
}

bool kill_requested() {
  const core::thread_record* self = registry::self();
  return self != nullptr && self->kill_requested.load(std::memory_order_acquire);
}

bool has_messages(thread_id id) {
  core::core_section section;
  const core::record_ptr target = registry::instance().find(id);
  return target != nullptr && !target->box.empty();
}

std::string sender_name(thread_id id) {
  core::core_section section;
  return registry::instance().recent_name(id).value_or("unknown");
}

void park_while_suspended() {
  core::core_section section;
  if (section.self() != nullptr) core::park_while_suspended(*section.self());
}

kill_deferral::kill_deferral() {
  if (core::thread_record* self = registry::self()) ++self->kill_deferrals;
}

kill_deferral::~kill_deferral() {
  if (core::thread_record* self = registry::self()) --self->kill_deferrals;
}

}  // namespace binding
}  // namespace mthread
