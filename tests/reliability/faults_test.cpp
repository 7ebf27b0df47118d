// Faults and bad input for the C++ API: each ends in a clear error or a defined
// behaviour, and leaves nothing behind. Tests that break the process (stack overflow, a low
// RLIMIT_AS, a small thread limit) run in a child process (gtest's threadsafe death tests
// re-execute this binary).
#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mthread/mthread.hpp>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "sanitizers.hpp"

namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

// TSan refuses thread stacks below about 900 KiB and reports every SIGSEGV itself.
#define SKIP_UNDER_TSAN() \
  if (under_tsan) GTEST_SKIP() << "ThreadSanitizer handles SIGSEGV itself and needs big stacks"

template <class Pred>
bool eventually(Pred&& pred, std::chrono::nanoseconds timeout = 10s) {
  const auto deadline = clock_type::now() + timeout;
  while (!pred()) {
    if (clock_type::now() > deadline) return pred();
    std::this_thread::sleep_for(200us);
  }
  return true;
}

int count_maps() {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  int count = 0;
  while (std::getline(maps, line)) ++count;
  return count;
}

// A stack overflow ends the process by SIGSEGV; under ASan, its own report follows ours and it
// exits with 1. Either way the process ended, and our line named the thread.
bool ended_by_overflow(int status) {
  return (WIFSIGNALED(status) && (WTERMSIG(status) == SIGSEGV || WTERMSIG(status) == SIGBUS)) ||
         (WIFEXITED(status) && WEXITSTATUS(status) != 0);
}

class Faults : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
  void TearDown() override {
    for (const auto& row : mthread::list()) {
      if (row.type == mthread::thread_type::main) continue;
      mthread::resume(row.id);
      mthread::kill(row.id);
    }
    for (const auto& row : mthread::list()) {
      if (row.type != mthread::thread_type::main) {
        EXPECT_TRUE(mthread::join(row.id, 10s)) << "thread " << row.name << " did not end";
      }
    }
    while (mthread::get_msg().type != mthread::msg_type::none) {
    }
    (void)mthread::get_notification();
  }
};

// --- stack overflow ------------------------------------------------------------------------

std::atomic<int> forever{1 << 30};  // a bound the compiler cannot see through

__attribute__((noinline)) int recurse(int depth) {
  volatile char frame[16 * 1024];
  frame[0] = static_cast<char>(depth);
  frame[sizeof frame - 1] = static_cast<char>(depth);
  if (depth > forever.load()) return 0;
  return recurse(depth + 1) + frame[0] + frame[sizeof frame - 1];
}

// A single frame bigger than the 64 KiB guard zone. Built with -fstack-clash-protection (see
// CMakeLists.txt), so the compiler touches every page of it on the way down and the first touch
// lands in the guard zone: code built without that option can jump over the guard zone with
// such a frame (docs/reliability.md).
__attribute__((noinline)) int huge_frames(int depth) {
  volatile char frame[256 * 1024];
  frame[0] = static_cast<char>(depth);
  if (depth > forever.load()) return 0;
  return huge_frames(depth + 1) + frame[0];
}

TEST_F(Faults, NativeStackOverflowStopsTheProcessNamingTheThread) {
  SKIP_UNDER_TSAN();
  EXPECT_EXIT(
      {
        mthread::start_options options;
        options.stack_size = mthread::min_stack_size;
        const auto id = mthread::start_new_thread(options, "deep-native", [] { recurse(0); });
        mthread::join(id, 30s);
        std::_Exit(0);  // not reached: the overflow ends the process
      },
      ended_by_overflow,
      "thread \"deep-native\" \\(id [0-9]+\\) overflowed its stack of 131072 bytes");
}

TEST_F(Faults, HugeFramesAreCaughtByTheGuardZone) {
  SKIP_UNDER_TSAN();
  EXPECT_EXIT(
      {
        const auto id = mthread::start_new_thread("huge-frames", [] { huge_frames(0); });
        mthread::join(id, 30s);
        std::_Exit(0);
      },
      ended_by_overflow, "thread \"huge-frames\" \\(id [0-9]+\\) overflowed its stack");
}

// --- resources -----------------------------------------------------------------------------

TEST_F(Faults, MmapFailingIsAClearErrorAndLeaksNothing) {
  if (under_sanitizer) GTEST_SKIP() << "sanitizers reserve terabytes of address space";
  EXPECT_EXIT(
      {
        // One thread first, so the reaper and the signal handlers exist before the limit.
        mthread::join(mthread::start_new_thread("first", [] {}), 10s);
        rlimit limit{};
        getrlimit(RLIMIT_AS, &limit);
        const rlimit saved = limit;
        std::ifstream status("/proc/self/status");
        std::string line;
        long vm_kib = 0;
        while (std::getline(status, line)) {
          if (line.rfind("VmSize:", 0) == 0) vm_kib = std::strtol(line.c_str() + 7, nullptr, 10);
        }
        limit.rlim_cur = static_cast<rlim_t>(vm_kib + 64 * 1024) * 1024;  // 64 MiB more
        setrlimit(RLIMIT_AS, &limit);
        const int maps_before = count_maps();
        int failures = 0;
        std::string message;
        for (int i = 0; i < 50; ++i) {
          try {
            mthread::start_options options;
            options.stack_size = 256u << 20;  // more than the limit leaves
            mthread::start_new_thread(options, "too-big", [] {});
            std::fprintf(stderr, "start succeeded under the limit\n");
            std::_Exit(3);
          } catch (const mthread::error& e) {
            ++failures;
            message = e.what();
          }
        }
        if (message.find("cannot map a thread stack of 268435456 bytes") == std::string::npos) {
          std::fprintf(stderr, "unclear error: %s\n", message.c_str());
          std::_Exit(4);
        }
        if (count_maps() != maps_before || mthread::list().size() != 1) {
          std::fprintf(stderr, "a failed start left something behind\n");
          std::_Exit(5);
        }
        setrlimit(RLIMIT_AS, &saved);
        const auto id = mthread::start_new_thread("after", [] {});
        if (!mthread::join(id, 10s)) std::_Exit(6);
        std::fprintf(stderr, "ok: %d clear failures\n", failures);
        std::_Exit(0);
      },
      ::testing::ExitedWithCode(0), "ok: 50 clear failures");
}

TEST_F(Faults, ThreadLimitIsAClearErrorAndRecovers) {
  setenv("MTHREAD_MAX_THREADS", "3", 1);
  EXPECT_EXIT(
      {
        std::vector<mthread::thread_id> ids;
        for (int i = 0; i < 3; ++i) {
          ids.push_back(mthread::start_new_thread("held", [] { mthread::wait(60s); }));
        }
        try {
          mthread::start_new_thread("one-too-many", [] {});
          std::_Exit(3);
        } catch (const mthread::error& e) {
          std::fprintf(stderr, "%s\n", e.what());
        }
        mthread::kill(ids[0]);
        mthread::join(ids[0], 10s);
        const auto id = mthread::start_new_thread("again", [] {});
        std::_Exit(mthread::join(id, 10s) ? 0 : 4);
      },
      ::testing::ExitedWithCode(0), "limit of 3 threads is reached.*MTHREAD_MAX_THREADS");
  unsetenv("MTHREAD_MAX_THREADS");
}

TEST_F(Faults, AReceiverThatNeverReadsNeverBlocksItsSenders) {
  std::atomic<bool> release{false};
  mthread::start_options options;
  options.mailbox_depth = 8;
  const auto receiver = mthread::start_new_thread(options, "deaf", [&] {
    while (!release.load()) mthread::sleep_for(1ms);
  });
  int accepted = 0;
  for (int i = 0; i < 8; ++i) accepted += mthread::send_msg(receiver, std::string(60000, 'x'));
  EXPECT_EQ(accepted, 8);
  const auto begin = clock_type::now();
  for (int i = 0; i < 10000; ++i) ASSERT_FALSE(mthread::send_msg(receiver, std::int64_t{i}));
  EXPECT_LT(clock_type::now() - begin, 2s) << "refusals must not wait";
  // Killed with a full mailbox: the messages are freed with it (LSan checks this under ASan).
  EXPECT_TRUE(mthread::kill(receiver));
  EXPECT_TRUE(mthread::join(receiver, 10s));
  EXPECT_FALSE(mthread::send_msg(receiver, std::int64_t{1}));
}

// --- kill and suspend ----------------------------------------------------------------------

TEST_F(Faults, AKillerThatKillsItselfEndsAfterItsVictims) {
  std::atomic<int> unwound{0};
  struct guard {
    std::atomic<int>& counter;
    ~guard() { counter++; }
  };
  std::vector<mthread::thread_id> victims;
  for (int i = 0; i < 4; ++i) {
    victims.push_back(mthread::start_new_thread("victim", [&] {
      guard g{unwound};
      mthread::wait(60s);
    }));
  }
  std::atomic<bool> after_kill{false};
  const auto killer = mthread::start_new_thread("killer", [&, victims] {
    guard g{unwound};
    for (auto id : victims) mthread::kill(id);
    mthread::kill(mthread::get_self_id());
    after_kill = true;  // not reached
  });
  EXPECT_TRUE(mthread::join(killer, 10s));
  for (auto id : victims) EXPECT_TRUE(mthread::join(id, 10s));
  EXPECT_EQ(unwound.load(), 5) << "every destructor ran";
  EXPECT_FALSE(after_kill.load());
}

TEST_F(Faults, KillAndSuspendRacingOnOneThreadFromSeveralThreads) {
  for (int round = 0; round < 30; ++round) {
    std::atomic<bool> unwound{false};
    const auto target = mthread::start_new_thread("target", [&] {
      struct flag {
        std::atomic<bool>& f;
        ~flag() { f = true; }
      } at_end{unwound};
      mthread::allow_suspend(true);
      for (std::uint64_t i = 0;; ++i) {
        if ((i & 1023) == 0) mthread::checkpoint();
      }
    });
    std::vector<mthread::thread_id> racers;
    for (int r = 0; r < 4; ++r) {
      racers.push_back(mthread::start_new_thread("racer", [target, r, round] {
        for (int i = 0; i < 200; ++i) {
          switch ((i + r + round) % 5) {
            case 0:
            case 1:
              mthread::suspend(target);
              break;
            case 2:
            case 3:
              mthread::resume(target);
              break;
            default:
              if (i > 100) mthread::kill(target);
              break;
          }
          if (i % 16 == 0) mthread::sleep_for(10us);
        }
      }));
    }
    for (auto id : racers) ASSERT_TRUE(mthread::join(id, 30s)) << "a racer hung";
    mthread::resume(target);  // a suspend may have come after the last kill: kill still ends it
    mthread::kill(target);
    ASSERT_TRUE(mthread::join(target, 10s)) << "round " << round << ": the target did not end";
    EXPECT_TRUE(unwound.load());
  }
}

TEST_F(Faults, AKilledSuspendedThreadEndsWithoutAResume) {
  std::atomic<bool> running{false};
  const auto id = mthread::start_new_thread("frozen", [&] {
    mthread::allow_suspend(true);
    running = true;
    for (std::uint64_t i = 0;; ++i) {
      if ((i & 4095) == 0) mthread::checkpoint();
    }
  });
  ASSERT_TRUE(eventually([&] { return running.load(); }));
  ASSERT_TRUE(mthread::suspend(id));
  ASSERT_EQ(mthread::status(id), mthread::thread_state::suspended);
  EXPECT_TRUE(mthread::kill(id));
  EXPECT_TRUE(mthread::join(id, 5s));
}

void spin(int rounds) {
  std::atomic<int> counter{0};
  for (int i = 0; i < rounds; ++i) counter.fetch_add(1, std::memory_order_relaxed);
}

TEST_F(Faults, NoSuspendAfterAllowSuspendFalseReturns) {
  // The pattern a program uses around a lock others need: stop allowing suspension, take the
  // lock, give it back, allow again. A suspend racing allow_suspend(false) must either stop
  // the thread before allow_suspend(false) returns or fail: never park it holding the lock.
  std::mutex shared;
  std::atomic<bool> done{false};
  std::atomic<std::uint64_t> inside_while_suspended{0};
  std::atomic<bool> in_lock{false};
  const auto holder = mthread::start_new_thread("holder", [&] {
    while (!done.load()) {
      mthread::allow_suspend(true);
      spin(50);
      mthread::allow_suspend(false);
      std::lock_guard guard(shared);
      in_lock = true;
      spin(200);
      in_lock = false;
    }
  });
  const auto suspender = mthread::start_new_thread("suspender", [&] {
    while (!done.load()) {
      if (mthread::suspend(holder)) {
        if (in_lock.load()) {
          // Give a parked holder a moment to be seen parked, then look again.
          mthread::sleep_for(200us);
          if (in_lock.load() && mthread::status(holder) == mthread::thread_state::suspended) {
            inside_while_suspended++;
          }
        }
        mthread::resume(holder);
      }
    }
  });
  const auto end = clock_type::now() + (under_sanitizer ? 3s : 2s);
  while (clock_type::now() < end) {
    std::unique_lock lock(shared, std::defer_lock);
    const auto begin = clock_type::now();
    while (!lock.try_lock()) {
      ASSERT_LT(clock_type::now() - begin, 5s) << "the lock's holder stayed suspended";
      std::this_thread::yield();
    }
  }
  done = true;
  EXPECT_TRUE(mthread::join(suspender, 10s));
  mthread::resume(holder);
  EXPECT_TRUE(mthread::join(holder, 10s));
  EXPECT_EQ(inside_while_suspended.load(), 0u)
      << "a thread was suspended after allow_suspend(false) returned";
}

// --- signals at every blocking call --------------------------------------------------------

std::atomic<int> signals_seen{0};
void count_signal(int) {
  signals_seen++;
}

TEST_F(Faults, SignalsArrivingAtEveryBlockingCallChangeNothing) {
  struct sigaction action {};
  action.sa_handler = count_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = 0;  // no SA_RESTART: every blocking call sees EINTR
  struct sigaction previous {};
  sigaction(SIGUSR1, &action, &previous);
  signals_seen = 0;

  constexpr int kinds = 5;
  std::atomic<pthread_t> handles[kinds];
  std::atomic<int> ready{0};
  std::atomic<std::uint32_t> waited{0};
  std::atomic<std::int64_t> got{0};
  std::atomic<long long> slept_ms{0};
  std::atomic<bool> joined{false};
  std::atomic<bool> parked_done{false};

  const auto sleeper_target =
      mthread::start_new_thread("join-target", [] { mthread::sleep_for(400ms); });
  std::vector<mthread::thread_id> ids;
  ids.push_back(mthread::start_new_thread("waiter", [&] {
    handles[0] = pthread_self();
    ready++;
    auto value = mthread::wait(30s);
    waited = value.value_or(0);
  }));
  ids.push_back(mthread::start_new_thread("getter", [&] {
    handles[1] = pthread_self();
    ready++;
    got = mthread::get_msg(30s).integer;
  }));
  ids.push_back(mthread::start_new_thread("sleeper", [&] {
    handles[2] = pthread_self();
    ready++;
    const auto begin = clock_type::now();
    mthread::sleep_for(300ms);
    slept_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - begin).count();
  }));
  ids.push_back(mthread::start_new_thread("joiner", [&, sleeper_target] {
    handles[3] = pthread_self();
    ready++;
    joined = mthread::join(sleeper_target, 30s);
  }));
  ids.push_back(mthread::start_new_thread("suspended", [&] {
    handles[4] = pthread_self();
    mthread::allow_suspend(true);
    ready++;
    for (std::uint64_t i = 0; !parked_done.load(); ++i) {
      if ((i & 1023) == 0) mthread::checkpoint();
    }
  }));
  ASSERT_TRUE(eventually([&] { return ready.load() == kinds; }));
  ASSERT_TRUE(mthread::suspend(ids[4]));
  parked_done = true;
  // A storm of signals while they block (and while one is suspended).
  const auto storm_end = clock_type::now() + 200ms;
  int sent = 0;
  while (clock_type::now() < storm_end) {
    for (auto& handle : handles) {
      if (pthread_kill(handle.load(), SIGUSR1) == 0) ++sent;
    }
    std::this_thread::sleep_for(50us);
  }
  EXPECT_EQ(mthread::status(ids[4]), mthread::thread_state::suspended) << "a signal resumed it";
  EXPECT_EQ(mthread::status(ids[0]), mthread::thread_state::waiting);
  EXPECT_EQ(mthread::status(ids[1]), mthread::thread_state::waiting);
  ASSERT_TRUE(mthread::notify(ids[0], 4242));
  ASSERT_TRUE(mthread::send_msg(ids[1], std::int64_t{777}));
  ASSERT_TRUE(mthread::resume(ids[4]));
  for (auto id : ids) EXPECT_TRUE(mthread::join(id, 30s));
  EXPECT_EQ(waited.load(), 4242u) << "wait() returned early or lost the notification";
  EXPECT_EQ(got.load(), 777) << "get_msg() returned early or lost the message";
  EXPECT_GE(slept_ms.load(), 300) << "a signal cut the sleep short";
  EXPECT_TRUE(joined.load());
  EXPECT_GT(signals_seen.load(), 0);
  std::printf("[  info    ] %d signals sent, %d handled\n", sent, signals_seen.load());
  sigaction(SIGUSR1, &previous, nullptr);
}

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
