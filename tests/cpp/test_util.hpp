// Helpers shared by the C++ tests: bounded waits on state (no test relies on a bare sleep to be
// right), /proc readings, and a fixture that leaves the process as it found it.
#pragma once

#include <dirent.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <mthread/binding.hpp>
#include <mthread/mthread.hpp>

namespace mt_test {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

// Polls `pred` until it is true (returns true) or `timeout` passes (returns false).
template <class Pred>
bool wait_for(Pred&& pred, std::chrono::nanoseconds timeout = 5s) {
  const auto deadline = clock_type::now() + timeout;
  for (;;) {
    if (pred()) return true;
    if (clock_type::now() >= deadline) return pred();
    std::this_thread::sleep_for(100us);
  }
}

inline std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now().time_since_epoch())
      .count();
}

inline long gettid_now() {
  return static_cast<long>(syscall(SYS_gettid));
}

inline std::size_t page_size() {
  return static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
}

// A field of /proc/self/status in KiB (VmRSS, VmHWM, ...), -1 if absent.
inline long status_kib(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) {
      std::istringstream values(line.substr(field.size() + 1));
      long kib = -1;
      values >> kib;
      return kib;
    }
  }
  return -1;
}
inline long rss_kib() {
  return status_kib("VmRSS");
}

inline std::size_t maps_count() {
  std::ifstream in("/proc/self/maps");
  std::string line;
  std::size_t count = 0;
  while (std::getline(in, line)) ++count;
  return count;
}

// The count of mappings once it holds still for 5 ms (or 5 s have passed): the stacks the stack
// cache has no room for are unmapped by the reaper about a millisecond after their threads are
// gone.
inline std::size_t quiet_maps_count() {
  std::size_t last = maps_count();
  (void)wait_for(
      [&] {
        std::this_thread::sleep_for(5ms);
        const std::size_t now = maps_count();
        return std::exchange(last, now) == now;
      },
      5s);
  return last;
}

inline std::size_t fd_count() {
  std::size_t count = 0;
  if (DIR* dir = opendir("/proc/self/fd")) {
    while (readdir(dir) != nullptr) ++count;
    closedir(dir);
  }
  return count;  // includes ".", ".." and the directory's own fd: constant
}

inline std::string read_comm(long tid) {
  std::ifstream in("/proc/self/task/" + std::to_string(tid) + "/comm");
  std::string comm;
  std::getline(in, comm);
  return comm;
}

inline const mthread::thread_info* find_info(const std::vector<mthread::thread_info>& infos,
                                             mthread::thread_id id) {
  for (const auto& info : infos) {
    if (info.id == id) return &info;
  }
  return nullptr;
}

inline bool in_list(mthread::thread_id id) {
  const auto infos = mthread::list();
  return find_info(infos, id) != nullptr;
}

// Sets a flag when destroyed: proves that a killed thread's destructors ran.
struct set_on_destroy {
  std::atomic<bool>& flag;
  std::atomic<std::int64_t>* when = nullptr;
  ~set_on_destroy() {
    if (when != nullptr) when->store(now_ns());
    flag.store(true);
  }
};

// Empties the caller's mailbox and notification.
inline void drain_self() {
  while (mthread::get_msg().type != mthread::msg_type::none) {
  }
  (void)mthread::get_notification();
}

// Percentile of a sample (sorted in place), p in [0, 100].
template <class T>
T percentile(std::vector<T>& values, double p) {
  std::sort(values.begin(), values.end());
  if (values.empty()) return T{};
  const auto at = static_cast<std::size_t>(p / 100.0 * static_cast<double>(values.size() - 1));
  return values[at];
}

// A figure worth reporting: printed and recorded in the XML output.
inline void report(const std::string& key, double value, const std::string& unit) {
  std::cout << "[  figure  ] " << key << " = " << value << ' ' << unit << std::endl;
  ::testing::Test::RecordProperty(key, std::to_string(value) + " " + unit);
}

// Every test starts and ends with only the main thread alive, an empty main mailbox and the
// default stack size. Threads a test left behind are killed (they must be killable: blocked in
// mthread or calling it), and the test fails.
class MthreadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    mthread::stack_size(0);
    ASSERT_TRUE(wait_for([] { return mthread::list().size() == 1; }, 10s))
        << "threads left over from an earlier test";
    drain_self();
  }

  void TearDown() override {
    mthread::stack_size(0);
    (void)mthread::repl_accept_msg(true);
    const auto main_id = mthread::get_repl_id();
    // Threads the test ended may still be on their way out: give them a moment.
    (void)wait_for([] { return mthread::list().size() == 1; }, 2s);
    std::vector<mthread::thread_id> leftovers;
    for (const auto& info : mthread::list()) {
      if (info.id != main_id) leftovers.push_back(info.id);
    }
    for (auto id : leftovers) {
      mthread::resume(id);
      mthread::kill(id);
    }
    for (auto id : leftovers) {
      EXPECT_TRUE(mthread::join(id, 10s)) << "thread " << id << " could not be ended";
    }
    EXPECT_TRUE(leftovers.empty()) << leftovers.size() << " thread(s) left running by the test";
    drain_self();
  }
};

}  // namespace mt_test
