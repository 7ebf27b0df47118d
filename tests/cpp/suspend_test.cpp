// allow_suspend, suspend, resume: who may be suspended, preemptive suspension of a native
// thread in pure computation, suspension inside mthread's waits and sleeps, latency, and that a
// suspended thread never holds a lock of mthread's own.
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <thread>

#include "test_util.hpp"

using namespace std::chrono_literals;
using mt_test::now_ns;
using mt_test::wait_for;

namespace {

class Suspend : public mt_test::MthreadTest {};

// A native thread in a loop that never calls mthread: it publishes the time of its latest
// iteration (the vDSO clock takes no lock) and counts iterations.
struct compute_loop {
  std::atomic<bool> stop{false};
  std::atomic<bool> allowed{false};
  std::atomic<std::int64_t> last{0};
  std::atomic<std::uint64_t> count{0};
  mthread::thread_id id = 0;

  explicit compute_loop(bool allow = true) {
    id = mthread::start_new_thread("compute", [this, allow] {
      mthread::allow_suspend(allow);
      allowed = true;
      while (!stop.load(std::memory_order_relaxed)) {
        last.store(now_ns(), std::memory_order_relaxed);
        count.fetch_add(1, std::memory_order_relaxed);
      }
    });
    EXPECT_TRUE(wait_for([&] { return allowed.load() && count.load() > 0; }));
  }
  bool advancing(std::chrono::nanoseconds within = 5s) const {
    const auto before = count.load();
    return wait_for([&] { return count.load() != before; }, within);
  }
  // Waits until the loop has not published for `quiet`; returns false after `timeout`.
  bool stopped(std::chrono::nanoseconds quiet = 2ms, std::chrono::nanoseconds timeout = 5s) const {
    const auto deadline = now_ns() + timeout.count();
    while (now_ns() - last.load() < quiet.count()) {
      if (now_ns() > deadline) return false;
    }
    return true;
  }
  void end() {
    mthread::resume(id);
    stop = true;
    EXPECT_TRUE(mthread::join(id, 5s));
  }
};

TEST_F(Suspend, NewThreadIsNotSuspendableUntilItAllows) {
  compute_loop loop(false);
  EXPECT_FALSE(mthread::suspend(loop.id));
  EXPECT_EQ(mthread::status(loop.id), mthread::thread_state::running);
  EXPECT_TRUE(loop.advancing());
  EXPECT_FALSE(mthread::resume(loop.id));
  loop.end();
}

TEST_F(Suspend, AllowSuspendFalseRevokes) {
  std::atomic<int> phase{0};
  const auto id = mthread::start_new_thread("toggler", [&] {
    mthread::allow_suspend(true);
    phase = 1;
    while (phase == 1) mthread::sleep_for(1ms);
    mthread::allow_suspend(false);
    phase = 3;
    while (phase == 3) mthread::sleep_for(1ms);
  });
  ASSERT_TRUE(wait_for([&] { return phase.load() == 1; }));
  EXPECT_TRUE(mthread::suspend(id));
  EXPECT_TRUE(mthread::resume(id));
  phase = 2;
  ASSERT_TRUE(wait_for([&] { return phase.load() == 3; }));
  EXPECT_FALSE(mthread::suspend(id));
  phase = 4;
  EXPECT_TRUE(mthread::join(id, 5s));
}

TEST_F(Suspend, RefusedForSelfMainUnknownAndEnded) {
  mthread::allow_suspend(true);  // the main thread can never be suspended, allowed or not
  EXPECT_FALSE(mthread::suspend(mthread::get_repl_id()));
  EXPECT_FALSE(mthread::suspend(999'999'999));
  EXPECT_FALSE(mthread::resume(999'999'999));
  EXPECT_FALSE(mthread::resume(mthread::get_repl_id()));
  std::atomic<int> self_result{-1};
  std::atomic<int> main_result{-1};
  const auto id = mthread::start_new_thread("selfish", [&] {
    mthread::allow_suspend(true);
    self_result = mthread::suspend(mthread::get_self_id()) ? 1 : 0;
    main_result = mthread::suspend(mthread::get_repl_id()) ? 1 : 0;
  });
  ASSERT_TRUE(mthread::join(id, 5s));
  EXPECT_EQ(self_result.load(), 0);
  EXPECT_EQ(main_result.load(), 0);
  EXPECT_FALSE(mthread::suspend(id)) << "ended";
  EXPECT_FALSE(mthread::resume(id));
  mthread::allow_suspend(false);
}

TEST_F(Suspend, SecondSuspendAndSecondResumeAreFalse) {
  compute_loop loop;
  EXPECT_TRUE(mthread::suspend(loop.id));
  EXPECT_FALSE(mthread::suspend(loop.id)) << "already suspended";
  EXPECT_TRUE(mthread::resume(loop.id));
  EXPECT_FALSE(mthread::resume(loop.id)) << "not suspended";
  loop.end();
}

TEST_F(Suspend, PreemptsAPureComputeLoopAndResumeContinuesIt) {
  compute_loop loop;
  EXPECT_TRUE(loop.advancing());
  ASSERT_TRUE(mthread::suspend(loop.id));
  EXPECT_EQ(mthread::status(loop.id), mthread::thread_state::suspended) << "at once";
  ASSERT_TRUE(loop.stopped());
  const auto frozen = loop.count.load();
  // It stays stopped: watch it for a while.
  EXPECT_FALSE(wait_for([&] { return loop.count.load() != frozen; }, 100ms));
  const auto infos = mthread::list();
  const auto* info = mt_test::find_info(infos, loop.id);
  ASSERT_NE(info, nullptr);
  EXPECT_EQ(info->state, mthread::thread_state::suspended);
  ASSERT_TRUE(mthread::resume(loop.id));
  EXPECT_TRUE(loop.advancing()) << "goes on where it stopped";
  EXPECT_GT(loop.count.load(), frozen);
  EXPECT_EQ(mthread::status(loop.id), mthread::thread_state::running);
  loop.end();
}

TEST_F(Suspend, LatencyFromCallToStop) {
  compute_loop loop;
  std::vector<double> latencies_us;
  constexpr int trials = 200;
  for (int i = 0; i < trials; ++i) {
    ASSERT_TRUE(loop.advancing());
    // Call right after the loop was seen running, so the figure is the signal's and not the
    // scheduler's (on a busy host the loop may be off the CPU for a while).
    const auto seen = loop.last.load();
    while (loop.last.load() == seen) {
    }
    const auto t0 = now_ns();
    ASSERT_TRUE(mthread::suspend(loop.id));
    ASSERT_TRUE(loop.stopped(2ms, 5s)) << "trial " << i;
    latencies_us.push_back(static_cast<double>(std::max<std::int64_t>(0, loop.last.load() - t0)) /
                           1000.0);
    ASSERT_TRUE(mthread::resume(loop.id));
  }
  const double p50 = mt_test::percentile(latencies_us, 50);
  const double p99 = mt_test::percentile(latencies_us, 99);
  const double worst = latencies_us.back();
  mt_test::report("suspend_latency_p50_us", p50, "us");
  mt_test::report("suspend_latency_p99_us", p99, "us");
  mt_test::report("suspend_latency_max_us", worst, "us");
  // SPEC: within 1 ms. The machine that runs the tests is shared and noisy: assert with slack.
  EXPECT_LT(p50, 50'000.0);
  EXPECT_LT(worst, 1'000'000.0);
  loop.end();
}

TEST_F(Suspend, InsideSleepForTheThreadStopsAndTheSleepWaitsForResume) {
  std::atomic<int> ticks{0};
  std::atomic<bool> slept{false};
  const auto id = mthread::start_new_thread("sleeper", [&] {
    mthread::allow_suspend(true);
    ++ticks;
    mthread::sleep_for(100ms);
    slept = true;
  });
  ASSERT_TRUE(wait_for([&] { return ticks.load() == 1; }));
  ASSERT_TRUE(mthread::suspend(id));
  EXPECT_EQ(mthread::status(id), mthread::thread_state::suspended);
  // Well past the sleep's end, it is still held.
  EXPECT_FALSE(wait_for([&] { return slept.load(); }, 300ms));
  EXPECT_EQ(mthread::status(id), mthread::thread_state::suspended);
  ASSERT_TRUE(mthread::resume(id));
  EXPECT_TRUE(wait_for([&] { return slept.load(); }));
  EXPECT_TRUE(mthread::join(id, 5s));
}

TEST_F(Suspend, SuspendedReceiverTakesNoMessageUntilResumed) {
  std::atomic<int> received{0};
  std::atomic<bool> ready{false};
  const auto id = mthread::start_new_thread("receiver", [&] {
    mthread::allow_suspend(true);
    ready = true;
    for (;;) {
      if (mthread::get_msg(30s).type != mthread::msg_type::none) ++received;
    }
  });
  ASSERT_TRUE(wait_for(
      [&] { return ready.load() && mthread::status(id) == mthread::thread_state::waiting; }));
  ASSERT_TRUE(mthread::suspend(id));
  EXPECT_TRUE(mthread::send_msg(id, 1)) << "a suspended thread's mailbox still accepts";
  EXPECT_TRUE(mthread::notify(id, 1));
  EXPECT_FALSE(wait_for([&] { return received.load() != 0; }, 100ms));
  EXPECT_EQ(mthread::status(id), mthread::thread_state::suspended);
  ASSERT_TRUE(mthread::resume(id));
  EXPECT_TRUE(wait_for([&] { return received.load() == 1; }));
  EXPECT_TRUE(wait_for([&] { return mthread::status(id) == mthread::thread_state::waiting; }));
  EXPECT_TRUE(mthread::kill(id));
  EXPECT_TRUE(mthread::join(id, 5s));
}

TEST_F(Suspend, WaitForNotificationHeldWhileSuspended) {
  std::atomic<std::uint32_t> got{0};
  const auto id = mthread::start_new_thread("waiter", [&] {
    mthread::allow_suspend(true);
    got = mthread::wait(30s).value_or(0);
  });
  ASSERT_TRUE(wait_for([&] { return mthread::status(id) == mthread::thread_state::waiting; }));
  ASSERT_TRUE(mthread::suspend(id));
  EXPECT_TRUE(mthread::notify(id, 6));
  EXPECT_FALSE(wait_for([&] { return got.load() != 0; }, 100ms));
  ASSERT_TRUE(mthread::resume(id));
  EXPECT_TRUE(mthread::join(id, 5s));
  EXPECT_EQ(got.load(), 6u);
}

TEST_F(Suspend, ForeignThreadCanSuspendAndResume) {
  compute_loop loop;
  bool suspended = false, resumed = false;
  std::thread foreign([&] { suspended = mthread::suspend(loop.id); });
  foreign.join();
  EXPECT_TRUE(suspended);
  EXPECT_TRUE(loop.stopped());
  std::thread foreign2([&] { resumed = mthread::resume(loop.id); });
  foreign2.join();
  EXPECT_TRUE(resumed);
  EXPECT_TRUE(loop.advancing());
  loop.end();
}

TEST_F(Suspend, ThreadSuspendsAnotherThread) {
  compute_loop loop;
  std::atomic<bool> ok{false};
  const auto id = mthread::start_new_thread("controller", [&] { ok = mthread::suspend(loop.id); });
  ASSERT_TRUE(mthread::join(id, 5s));
  EXPECT_TRUE(ok);
  EXPECT_TRUE(loop.stopped());
  EXPECT_TRUE(mthread::resume(loop.id));
  loop.end();
}

// A lock of the core held by a suspended thread blocks every later call, resume() included: the
// process cannot recover, so it ends at once instead of hanging until the test's timeout.
[[noreturn]] void deadlocked() {
  std::cerr << "mthread deadlocked: a suspended thread holds a lock of the core's" << std::endl;
  std::fflush(nullptr);
  std::_Exit(1);
}

// SPEC: "No lock of mthread's own is ever held by a suspended thread." A thread hammers every
// call of the API; it is suspended again and again, and each time another thread makes the same
// calls. If a suspended thread held a lock of the core's, those calls would hang.
TEST_F(Suspend, ASuspendedThreadHoldsNoLockOfMthreads) {
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> rounds{0};
  const auto main_id = mthread::get_repl_id();
  const auto hammer = mthread::start_new_thread("hammer", [&] {
    mthread::allow_suspend(true);
    const auto self = mthread::get_self_id();
    while (!stop.load()) {
      (void)mthread::status(main_id);
      (void)mthread::get_thread_name(main_id);
      (void)mthread::get_self_name();
      (void)mthread::is_notified(self);
      mthread::notify(self, 1);
      (void)mthread::get_notification();
      mthread::send_msg(self, 1);
      (void)mthread::get_msg();
      (void)mthread::list();
      (void)mthread::stack_size();
      mthread::checkpoint();
      rounds.fetch_add(1);
    }
  });
  ASSERT_TRUE(wait_for([&] { return rounds.load() > 10; }));
  int hangs = 0;
  constexpr int trials = 300;
  for (int i = 0; i < trials && hangs == 0; ++i) {
    const auto before = rounds.load();
    ASSERT_TRUE(wait_for([&] { return rounds.load() > before + 2; }));
    ASSERT_TRUE(mthread::suspend(hammer));
    std::atomic<bool> done{false};
    std::thread prober([&] {
      (void)mthread::status(hammer);
      (void)mthread::get_thread_name(hammer);
      (void)mthread::list();
      (void)mthread::is_notified(hammer);
      mthread::notify(hammer, 2);
      mthread::send_msg(hammer, 2);
      mthread::send_msg(main_id, 3);
      if (i % 25 == 0) {
        const auto t = mthread::start_new_thread("probe-child", [] {});
        mthread::join(t, 5s);
      }
      done = true;
    });
    if (!wait_for([&] { return done.load(); }, 3s)) {
      ++hangs;
      ADD_FAILURE() << "a call hung while \"hammer\" was suspended (trial " << i << ")";
      deadlocked();
    }
    mthread::resume(hammer);
    prober.join();
    mt_test::drain_self();
  }
  EXPECT_EQ(hangs, 0);
  stop = true;
  EXPECT_TRUE(mthread::join(hammer, 5s));
}

// The calls that only look a thread up (status, get_thread_name) take the registry's lock too:
// a thread suspended inside one must not hold it.
TEST_F(Suspend, SuspendedInsideALookupHoldsNoLock) {
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> rounds{0};
  const auto main_id = mthread::get_repl_id();
  const auto looker = mthread::start_new_thread("looker", [&] {
    mthread::allow_suspend(true);
    while (!stop.load()) {
      (void)mthread::status(main_id);
      (void)mthread::get_thread_name(main_id);
      rounds.fetch_add(1);
    }
  });
  ASSERT_TRUE(wait_for([&] { return rounds.load() > 10; }));
  int hangs = 0;
  for (int i = 0; i < 1000 && hangs == 0; ++i) {
    const auto before = rounds.load();
    ASSERT_TRUE(wait_for([&] { return rounds.load() > before + 2; }));
    ASSERT_TRUE(mthread::suspend(looker));
    std::atomic<bool> done{false};
    std::thread prober([&] {
      (void)mthread::status(looker);
      (void)mthread::list();
      done = true;
    });
    if (!wait_for([&] { return done.load(); }, 3s)) {
      ++hangs;
      ADD_FAILURE() << "list()/status() hung while \"looker\" was suspended (trial " << i << ")";
      deadlocked();
    }
    mthread::resume(looker);
    prober.join();
  }
  EXPECT_EQ(hangs, 0);
  stop = true;
  EXPECT_TRUE(mthread::join(looker, 5s));
}

// Suspend and resume storms must not lose a wake-up or leave the thread stuck.
TEST_F(Suspend, RapidSuspendResumeCycles) {
  compute_loop loop;
  for (int i = 0; i < 2000; ++i) {
    ASSERT_TRUE(mthread::suspend(loop.id));
    ASSERT_TRUE(mthread::resume(loop.id));
  }
  EXPECT_TRUE(loop.advancing());
  EXPECT_EQ(mthread::status(loop.id), mthread::thread_state::running);
  loop.end();
}

}  // namespace

namespace {

// A thread that is not native (here SERVICE, as a binding's threads are PYTHON) is never stopped
// by a signal: it stops at its next checkpoint() or inside mthread's waits and sleeps. (Hooks
// that do nothing: this thread reaches its checkpoints by itself.)
TEST_F(Suspend, CooperativeThreadStopsAtItsCheckpoint) {
  std::atomic<std::uint64_t> count{0};
  std::atomic<bool> stop{false};
  const auto hooks = std::make_shared<mthread::thread_hooks>();
  const auto id =
      mthread::binding::start("cooperative", {}, mthread::thread_type::service, hooks, [&] {
        mthread::allow_suspend(true);
        while (!stop.load()) {
          for (int i = 0; i < 100; ++i) count.fetch_add(1, std::memory_order_relaxed);
          mthread::checkpoint();
        }
      });
  ASSERT_TRUE(wait_for([&] { return count.load() > 0; }));
  const auto infos = mthread::list();
  ASSERT_NE(mt_test::find_info(infos, id), nullptr);
  EXPECT_EQ(mt_test::find_info(infos, id)->type, mthread::thread_type::service);
  ASSERT_TRUE(mthread::suspend(id));
  EXPECT_EQ(mthread::status(id), mthread::thread_state::suspended);
  // Stopped at a checkpoint: the count settles on a multiple of 100. (A count that stands still
  // elsewhere is the thread descheduled by a busy machine, not stopped: look again.)
  std::uint64_t settled = 0;
  ASSERT_TRUE(wait_for([&] {
    const auto a = count.load();
    std::this_thread::sleep_for(5ms);
    settled = count.load();
    return a == settled && settled % 100 == 0;
  })) << "the count never stood still on a multiple of 100; last "
      << settled;
  std::ostringstream listing;
  mthread::print_list(listing);
  EXPECT_NE(listing.str().find("Name: cooperative, State: suspended, Stack="), std::string::npos)
      << listing.str();
  EXPECT_NE(listing.str().find(", Type: SERVICE\n"), std::string::npos) << listing.str();
  ASSERT_TRUE(mthread::resume(id));
  EXPECT_TRUE(wait_for([&] { return count.load() > settled; }));
  stop = true;
  EXPECT_TRUE(mthread::join(id, 5s));
}

}  // namespace
