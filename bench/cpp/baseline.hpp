// The peers mthread is measured against: what a C++ programmer writes without mthread.
// Each is the ordinary, well-written version (notify after unlocking, predicate waits), never a
// deliberately slow one.
#pragma once

#include <benchmark/benchmark.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <mutex>
#include <string>
#include <vector>

namespace bench {

// A bounded mailbox on std::mutex + std::condition_variable + std::deque, with the semantics of
// mthread's: a full mailbox refuses at once, the receiver waits with a timeout.
class cv_mailbox {
 public:
  struct item {
    std::uint64_t sender;
    std::int64_t value;
  };

  explicit cv_mailbox(std::size_t depth) : depth_(depth) {}

  bool try_push(item m) {
    {
      std::lock_guard guard(lock_);
      if (items_.size() >= depth_) return false;
      items_.push_back(m);
    }
    ready_.notify_one();
    return true;
  }

  bool pop(item& out, std::chrono::milliseconds timeout) {
    std::unique_lock guard(lock_);
    if (!ready_.wait_for(guard, timeout, [&] { return !items_.empty(); })) return false;
    out = items_.front();
    items_.pop_front();
    return true;
  }

 private:
  std::mutex lock_;
  std::condition_variable ready_;
  std::deque<item> items_;
  std::size_t depth_;
};

// A notification slot on std::mutex + std::condition_variable: overwrite, read clears.
class cv_slot {
 public:
  void notify(std::uint32_t value) {
    {
      std::lock_guard guard(lock_);
      value_ = value;
    }
    ready_.notify_one();
  }

  std::uint32_t wait(std::chrono::milliseconds timeout) {
    std::unique_lock guard(lock_);
    if (!ready_.wait_for(guard, timeout, [&] { return value_ != 0; })) return 0;
    return std::exchange(value_, 0);
  }

 private:
  std::mutex lock_;
  std::condition_variable ready_;
  std::uint32_t value_ = 0;
};

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

inline std::int64_t now_ns() {
  timespec t{};
  clock_gettime(CLOCK_MONOTONIC, &t);
  return static_cast<std::int64_t>(t.tv_sec) * 1'000'000'000 + t.tv_nsec;
}

inline double median(std::vector<double> values) {
  if (values.empty()) return 0;
  const auto middle = values.begin() + static_cast<std::ptrdiff_t>(values.size() / 2);
  std::nth_element(values.begin(), middle, values.end());
  return *middle;
}

// Times a benchmark loop in batches of `ops` operations and reports the median time of one
// operation over the batches as the counter `median_ns`. On a machine shared with other work a
// burst of noise spoils a few batches, not the figure. Call tick() once an operation.
class batch_clock {
 public:
  batch_clock(benchmark::State& state, int ops) : state_(state), ops_(ops), start_(now_ns()) {}
  batch_clock(const batch_clock&) = delete;
  batch_clock& operator=(const batch_clock&) = delete;
  ~batch_clock() { state_.counters["median_ns"] = median(samples_); }

  void tick() {
    if (++count_ < ops_) return;
    const std::int64_t now = now_ns();
    samples_.push_back(static_cast<double>(now - start_) / ops_);
    start_ = now;
    count_ = 0;
  }

 private:
  benchmark::State& state_;
  int ops_;
  int count_ = 0;
  std::int64_t start_;
  std::vector<double> samples_;
};

// Resident set size of this process, in bytes (VmRSS of /proc/self/status).
inline long rss_bytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6)) * 1024;
  }
  return -1;
}

// The scheduler state letter of one thread of this process ('R', 'S', 't', ...).
inline char thread_state_letter(long tid) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/self/task/%ld/stat", tid);
  std::ifstream stat(path);
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  const auto close = text.rfind(')');
  return close == std::string::npos || close + 2 >= text.size() ? '?' : text[close + 2];
}

}  // namespace bench
