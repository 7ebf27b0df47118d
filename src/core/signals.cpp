#include "core/signals.hpp"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>

#include "core/control.hpp"
#include "core/registry.hpp"

namespace mthread::core {
namespace {

struct sigaction previous_segv {};
struct sigaction previous_bus {};

// Async-signal-safe output: no stdio, no allocation.
void write_text(const char* text, std::size_t length) {
  while (length > 0) {
    const ssize_t done = write(STDERR_FILENO, text, length);
    if (done <= 0) return;
    text += done;
    length -= static_cast<std::size_t>(done);
  }
}
void write_text(const char* text) {
  write_text(text, std::strlen(text));
}
void write_number(unsigned long long value) {
  char digits[24];
  int at = sizeof digits;
  do {
    digits[--at] = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value != 0);
  write_text(digits + at, sizeof digits - static_cast<std::size_t>(at));
}

void on_suspend_signal(int, siginfo_t* info, void*) {
  if (info->si_code != SI_QUEUE || info->si_pid != getpid()) return;
  auto* self = static_cast<thread_record*>(info->si_value.sival_ptr);
  if (self == nullptr || self != registry::self()) return;
  const int saved_errno = errno;
  if (self->core_depth.load(std::memory_order_relaxed) == 0) park_while_suspended(*self);
  errno = saved_errno;
}

void pass_on(int signal, const struct sigaction& previous, siginfo_t* info, void* context) {
  if ((previous.sa_flags & SA_SIGINFO) != 0 && previous.sa_sigaction != nullptr) {
    previous.sa_sigaction(signal, info, context);
  } else if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN) {
    previous.sa_handler(signal);
  } else {
    // Restore the default and return: the faulting instruction runs again and ends the process.
    struct sigaction fallback {};
    fallback.sa_handler = SIG_DFL;
    sigaction(signal, &fallback, nullptr);
  }
}

void on_fault(int signal, siginfo_t* info, void* context) {
  thread_record* self = registry::self();
  if (self != nullptr && self->stack.in_guard(info->si_addr)) {
    write_text("mthread: thread \"");
    write_text(self->name.data(), self->name.size());
    write_text("\" (id ");
    write_number(self->id);
    write_text(") overflowed its stack of ");
    write_number(self->stack.size());
    write_text(" bytes; stopping the process\n");
  }
  pass_on(signal, signal == SIGBUS ? previous_bus : previous_segv, info, context);
}

}  // namespace

int suspend_signal() {
  return SIGRTMIN + 4;
}

void install_signal_handlers() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction action {};
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_SIGINFO | SA_RESTART;
    action.sa_sigaction = on_suspend_signal;
    sigaction(suspend_signal(), &action, nullptr);

    action.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    action.sa_sigaction = on_fault;
    sigaction(SIGSEGV, &action, &previous_segv);
    sigaction(SIGBUS, &action, &previous_bus);
  });
}

// The alternate stack the thread had before ours: a runtime may give every new thread one
// (AddressSanitizer does) and free it when the thread ends, which it can only do if it finds it
// in place again. Not read in a signal handler, so the TLS model does not matter.
static thread_local stack_t previous_alternate{};

void enter_thread_signals(thread_record& self) {
  stack_t alternate{};
  alternate.ss_sp = self.stack.signal_stack();
  alternate.ss_size = stack_region::signal_stack_size();
  sigaltstack(&alternate, &previous_alternate);
}

void leave_thread_signals(thread_record& self) {
  {
    std::lock_guard guard(self.signal_lock);
    self.ended.store(true);
  }
  // Give back the alternate stack the thread had before ours, so that whoever installed it can
  // free it. None before: ours goes with the thread, which now runs only the library's code.
  stack_t restored = previous_alternate;
  if (restored.ss_sp == nullptr || (restored.ss_flags & SS_DISABLE) != 0) return;
  restored.ss_flags = 0;
  sigaltstack(&restored, nullptr);
}

void send_suspend_signal(thread_record& target) {
  std::lock_guard guard(target.signal_lock);
  if (target.ended.load()) return;
  sigval value{};
  value.sival_ptr = &target;
  pthread_sigqueue(target.handle, suspend_signal(), value);
}

}  // namespace mthread::core
