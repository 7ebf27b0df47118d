// binding::blocked_in(): where a thread that a kill cannot reach is blocked, read from /proc.
#include <sys/syscall.h>

#include <fstream>
#include <sstream>
#include <string>

#include "core/registry.hpp"
#include "mthread/binding.hpp"

namespace mthread::binding {
namespace {

// The names of the system calls a thread is commonly found blocked in; others show by number.
const char* syscall_name(long number) {
  struct entry {
    long number;
    const char* name;
  };
  static const entry names[] = {
#define MTHREAD_SYSCALL(name) {SYS_##name, #name},
#ifdef SYS_read
      MTHREAD_SYSCALL(read)
#endif
#ifdef SYS_write
          MTHREAD_SYSCALL(write)
#endif
#ifdef SYS_readv
              MTHREAD_SYSCALL(readv)
#endif
#ifdef SYS_writev
                  MTHREAD_SYSCALL(writev)
#endif
#ifdef SYS_accept
                      MTHREAD_SYSCALL(accept)
#endif
#ifdef SYS_accept4
                          MTHREAD_SYSCALL(accept4)
#endif
#ifdef SYS_connect
                              MTHREAD_SYSCALL(connect)
#endif
#ifdef SYS_recvfrom
                                  MTHREAD_SYSCALL(recvfrom)
#endif
#ifdef SYS_recvmsg
                                      MTHREAD_SYSCALL(recvmsg)
#endif
#ifdef SYS_sendto
                                          MTHREAD_SYSCALL(sendto)
#endif
#ifdef SYS_sendmsg
                                              MTHREAD_SYSCALL(sendmsg)
#endif
#ifdef SYS_poll
                                                  MTHREAD_SYSCALL(poll)
#endif
#ifdef SYS_ppoll
                                                      MTHREAD_SYSCALL(ppoll)
#endif
#ifdef SYS_select
                                                          MTHREAD_SYSCALL(select)
#endif
#ifdef SYS_pselect6
                                                              MTHREAD_SYSCALL(pselect6)
#endif
#ifdef SYS_epoll_wait
                                                                  MTHREAD_SYSCALL(epoll_wait)
#endif
#ifdef SYS_epoll_pwait
                                                                      MTHREAD_SYSCALL(epoll_pwait)
#endif
#ifdef SYS_futex
                                                                          MTHREAD_SYSCALL(futex)
#endif
#ifdef SYS_nanosleep
                                                                              MTHREAD_SYSCALL(
                                                                                  nanosleep)
#endif
#ifdef SYS_clock_nanosleep
                                                                                  MTHREAD_SYSCALL(
                                                                                      clock_nanosleep)
#endif
#ifdef SYS_wait4
                                                                                      MTHREAD_SYSCALL(
                                                                                          wait4)
#endif
#ifdef SYS_waitid
                                                                                          MTHREAD_SYSCALL(
                                                                                              waitid)
#endif
#ifdef SYS_pause
                                                                                              MTHREAD_SYSCALL(
                                                                                                  pause)
#endif
#ifdef SYS_rt_sigsuspend
                                                                                                  MTHREAD_SYSCALL(
                                                                                                      rt_sigsuspend)
#endif
#ifdef SYS_rt_sigtimedwait
                                                                                                      MTHREAD_SYSCALL(
                                                                                                          rt_sigtimedwait)
#endif
#ifdef SYS_flock
                                                                                                          MTHREAD_SYSCALL(
                                                                                                              flock)
#endif
#ifdef SYS_fcntl
                                                                                                              MTHREAD_SYSCALL(
                                                                                                                  fcntl)
#endif
#ifdef SYS_openat
                                                                                                                  MTHREAD_SYSCALL(
                                                                                                                      openat)
#endif
#ifdef SYS_ioctl
                                                                                                                      MTHREAD_SYSCALL(
                                                                                                                          ioctl)
#endif
#undef MTHREAD_SYSCALL
  };
  for (const entry& known : names) {
    if (known.number == number) return known.name;
  }
  return nullptr;
}

std::string first_line(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

}  // namespace

std::string blocked_in(thread_id id) {
  long tid = 0;
  {
    const core::record_ptr target = core::registry::instance().find(id);
    if (target == nullptr || target->ended.load()) return "";
    tid = target->os_tid.load(std::memory_order_relaxed);
  }
  if (tid == 0) return "starting";
  const std::string task = "/proc/self/task/" + std::to_string(tid) + "/";
  // "NR arg1 ... sp pc" while in a system call, "running", or "-1 sp pc" (blocked, not in
  // a system call: a page fault); reading it may need ptrace rights, then it is empty.
  const std::string call = first_line(task + "syscall");
  const std::string channel = first_line(task + "wchan");
  std::string where;
  if (call == "running") {
    where = "running";
  } else if (!call.empty()) {
    std::istringstream fields(call);
    long number = -1;
    fields >> number;
    if (number >= 0) {
      const char* name = syscall_name(number);
      where = "system call " + (name != nullptr ? std::string(name) : std::to_string(number));
    }
  }
  if (!channel.empty() && channel != "0") {
    if (!where.empty()) where += ' ';
    where += "(wait channel " + channel + ")";
  }
  return where.empty() ? "an unknown place" : where;
}

}  // namespace mthread::binding
