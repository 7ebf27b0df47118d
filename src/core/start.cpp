// Starting a thread: its record, stack and pthread; what runs on it from its entry to its end.
#include <cxxabi.h>
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <exception>

#include "core/control.hpp"
#include "core/reaper.hpp"
#include "core/registry.hpp"
#include "core/signals.hpp"
#include "mthread/binding.hpp"
#include "mthread/thread.hpp"

namespace mthread {
namespace core {
namespace {

std::atomic<std::size_t> default_stack{default_stack_size};

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
    self.body.run();
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
  self.body.reset();
  leave_thread_signals(self);  // `ended` from here on
  self.box.close();
  // A joiner joins the thread itself; the reaper the ones nobody joins, or whose joiners are
  // suspended (suspend() hands over to it when it suspends a joiner of an ended thread), or
  // give up (join()'s end hands over then).
  const bool joiner_will_join = self.joiners.load(std::memory_order_seq_cst) > 0 &&
                                registry::instance().wake_joiners_of(self);
  if (!joiner_will_join) reaper::instance().hand_over(self.id);
}

// A PYTHON thread runs only once its starter lets go of the interpreter's lock, which the starter
// does on its own CPU microseconds later. Left to the kernel, a new thread goes to the idlest CPU:
// on a small virtual machine one that is asleep and must be woken first (tens of microseconds),
// while the starter's CPU goes to sleep as it waits for the thread. So the starter narrows its
// own CPUs to the one it runs on while it creates the thread (a thread is created with its
// creator's CPUs), and the thread takes back the starter's as its first act: it starts where the
// lock is let go of, and the scheduler moves it from there as it likes. The three calls cost
// about 2 µs; a start until its end is seen, in a fresh process, 65-75 µs instead of 68-141.
// Nothing is narrowed when the starter may run on one CPU only or its CPUs cannot be read.
class start_on_starters_cpu {
 public:
  start_on_starters_cpu(bool wanted, thread_record& record) {
    if (!wanted) return;
    cpu_set_t starters;
    CPU_ZERO(&starters);
    if (sched_getaffinity(0, sizeof starters, &starters) != 0 || CPU_COUNT(&starters) < 2) return;
    const int cpu = sched_getcpu();
    if (cpu < 0 || cpu >= CPU_SETSIZE) return;
    cpu_set_t here;
    CPU_ZERO(&here);
    CPU_SET(cpu, &here);
    if (sched_setaffinity(0, sizeof here, &here) != 0) return;
    // The kernel reports the CPUs online now; a thread that may use every one of them is taken
    // back to every CPU, as it was, so that it still follows CPUs added later (hotplug, a wider
    // cpuset). A narrower set is someone's choice, taken back as it is.
    record.cpus_after_start = CPU_COUNT(&starters) >= online_cpus() ? every_cpu() : starters;
    restore_ = &*record.cpus_after_start;
  }
  ~start_on_starters_cpu() {
    if (restore_ != nullptr) take_cpus(*restore_);
  }
  start_on_starters_cpu(const start_on_starters_cpu&) = delete;
  start_on_starters_cpu& operator=(const start_on_starters_cpu&) = delete;

  static void take_starters_cpus(const thread_record& self) {
    if (self.cpus_after_start) take_cpus(*self.cpus_after_start);
  }

 private:
  // Should the CPUs the process may use have changed meanwhile (a cpuset), so that none of
  // `cpus` is left, every CPU: the kernel keeps the thread to the ones it may use. Never one.
  static void take_cpus(const cpu_set_t& cpus) {
    if (sched_setaffinity(0, sizeof cpus, &cpus) == 0) return;
    const cpu_set_t every = every_cpu();
    sched_setaffinity(0, sizeof every, &every);
  }
  static cpu_set_t every_cpu() {
    cpu_set_t every;
    CPU_ZERO(&every);
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) CPU_SET(cpu, &every);
    return every;
  }
  // Read once (glibc reads it from /sys): a CPU added later makes a starter's set larger, not
  // smaller, so the comparison above still says "every one".
  static int online_cpus() {
    static const int online = get_nprocs();
    return online;
  }

  const cpu_set_t* restore_ = nullptr;
};

void* thread_entry(void* argument) {
  auto& self = *static_cast<thread_record*>(argument);
  start_on_starters_cpu::take_starters_cpus(self);
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

// What start_new_thread and binding::start share; `type` and `hooks` are checked by the caller.
// `body` (of the type `body_type` describes) is moved into the thread's stack once it is taken.
thread_id start_thread(std::string_view name, const start_options& options, thread_type type,
                       std::shared_ptr<thread_hooks> hooks, void* body,
                       const detail::body_type& body_type) {
  api_call call;
  if (options.mailbox_depth == 0 || options.mailbox_depth > max_mailbox_depth) {
    const std::string range = "must be in 1.." + std::to_string(max_mailbox_depth) + ", got " +
                              std::to_string(options.mailbox_depth);
    if (options.mailbox_depth != 0) throw out_of_range("start_new_thread", "mailbox_depth", range);
    throw invalid_argument("start_new_thread", "mailbox_depth", range);
  }
  core::install_signal_handlers();
  core::reaper::instance().ensure_running();
  core::reaper::instance().reap_exited();

  auto& threads = registry::instance();
  const std::size_t size =
      core::effective_stack_size(options.stack_size != 0 ? options.stack_size : stack_size());
  auto record = core::make_started_record(threads.next_id(), type, name, options.mailbox_depth,
                                          size, body, body_type);
  record->hooks = std::move(hooks);
  core::reaper::instance().note_thread_count(threads.add(record));

  pthread_attr_t attributes;
  pthread_attr_init(&attributes);
  pthread_attr_setstack(&attributes, record->stack.low(), record->stack.thread_size());
  pthread_t handle;
  int failure = 0;
  {
    const start_on_starters_cpu placement(type == thread_type::python, *record);
    failure = pthread_create(&handle, &attributes, core::thread_entry, record.get());
  }
  pthread_attr_destroy(&attributes);
  if (failure != 0) {
    threads.remove(record->id);
    throw error("mthread: cannot start thread \"" + record->name + "\": " + std::strerror(failure));
  }
  return record->id;
}

}  // namespace
}  // namespace core

using core::registry;

thread_id detail::start(std::string_view name, const start_options& options, void* body,
                        const body_type& type) {
  return core::start_thread(name, options, thread_type::native, nullptr, body, type);
}

thread_id binding::start(std::string_view name, const start_options& options, thread_type type,
                         std::shared_ptr<thread_hooks> hooks, std::function<void()> body) {
  if (type != thread_type::python && type != thread_type::service) {
    throw invalid_argument(
        "binding::start", "type",
        "must be PYTHON or SERVICE, got " + std::to_string(static_cast<int>(type)));
  }
  if (hooks == nullptr) {
    throw invalid_argument("binding::start", "hooks",
                           "must not be null: no signal stops a PYTHON or SERVICE thread, so "
                           "without them suspend and kill could not reach it");
  }
  // A std::function is a body like any other: it is moved into the thread's stack.
  return core::start_thread(name, options, type, std::move(hooks), &body,
                            detail::body_type_of<std::function<void()>>);
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

}  // namespace mthread
