// mthread::mutex: a std-compatible lock whose waits suspend and kill reach; mutual exclusion
// under contention from managed and plain threads; a killed or suspended waiter loses no wake.
#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include "test_util.hpp"

using namespace std::chrono_literals;
using mt_test::now_ns;
using mt_test::set_on_destroy;
using mt_test::wait_for;

namespace {

class Mutex : public mt_test::MthreadTest {};

TEST_F(Mutex, LocksUnlocksAndTellsWhetherLocked) {
  mthread::mutex m;
  EXPECT_FALSE(m.locked());
  EXPECT_TRUE(m.try_lock());
  EXPECT_TRUE(m.locked());
  EXPECT_FALSE(m.try_lock());
  EXPECT_FALSE(m.try_lock_for(1ms));
  EXPECT_FALSE(m.try_lock_until(std::chrono::steady_clock::now() + 1ms));
  m.unlock();
  EXPECT_FALSE(m.locked());
  EXPECT_THROW(m.unlock(), mthread::error);
  EXPECT_FALSE(m.unlock_if_locked());
  {
    std::lock_guard guard(m);
    EXPECT_TRUE(m.locked());
  }
  EXPECT_FALSE(m.locked());
  std::unique_lock lock(m, 10ms);
  EXPECT_TRUE(lock.owns_lock());
}

TEST_F(Mutex, AnyThreadMayUnlockIt) {
  mthread::mutex m;
  m.lock();
  std::thread([&] { m.unlock(); }).join();
  EXPECT_FALSE(m.locked());
  m.lock();
  const auto id = mthread::start_new_thread("unlocker", [&] { m.unlock(); });
  EXPECT_TRUE(mthread::join(id, 5s));
  EXPECT_FALSE(m.locked());
}

TEST_F(Mutex, ExcludesManagedAndPlainThreads) {
  mthread::mutex m;
  long counter = 0;  // guarded by m: a lost update shows as a wrong total
  constexpr int rounds = 20000;
  auto work = [&] {
    for (int i = 0; i < rounds; ++i) {
      std::lock_guard guard(m);
      ++counter;
    }
  };
  std::vector<mthread::thread_id> managed;
  for (int i = 0; i < 3; ++i) managed.push_back(mthread::start_new_thread("worker", work));
  std::thread plain1(work), plain2(work);
  plain1.join();
  plain2.join();
  for (auto id : managed) EXPECT_TRUE(mthread::join(id, 30s));
  EXPECT_EQ(counter, 5L * rounds);
  EXPECT_FALSE(m.locked());
}

TEST_F(Mutex, TimedLockWaitsAndGetsAReleasedMutex) {
  mthread::mutex m;
  m.lock();
  std::atomic<int> result{-1};
  const auto id = mthread::start_new_thread("timed", [&] { result = m.try_lock_for(30s); });
  ASSERT_TRUE(wait_for([&] { return mthread::status(id) == mthread::thread_state::waiting; }));
  m.unlock();
  ASSERT_TRUE(mthread::join(id, 5s));
  EXPECT_EQ(result.load(), 1);
  EXPECT_TRUE(m.locked());
  m.unlock();
}

TEST_F(Mutex, BlockedWaiterIsKilledAndTheMutexStillWorks) {
  mthread::mutex m;
  m.lock();
  std::atomic<bool> destroyed{false};
  std::atomic<std::int64_t> destroyed_at{0};
  std::atomic<bool> got_it{false};
  const auto victim = mthread::start_new_thread("victim", [&] {
    set_on_destroy guard{destroyed, &destroyed_at};
    std::lock_guard held(m);
    got_it = true;
  });
  std::atomic<bool> other_got_it{false};
  const auto other = mthread::start_new_thread("other", [&] {
    std::lock_guard held(m);
    other_got_it = true;
  });
  ASSERT_TRUE(wait_for([&] {
    return mthread::status(victim) == mthread::thread_state::waiting &&
           mthread::status(other) == mthread::thread_state::waiting;
  }));
  const auto t0 = now_ns();
  EXPECT_TRUE(mthread::kill(victim));
  ASSERT_TRUE(wait_for([&] { return destroyed.load(); }));
  EXPECT_TRUE(mthread::join(victim, 5s));
  EXPECT_FALSE(got_it);
  mt_test::report("mutex_kill_latency_us", static_cast<double>(destroyed_at - t0) / 1000.0, "us");
  m.unlock();  // the wake goes to the thread that is still waiting
  EXPECT_TRUE(mthread::join(other, 5s));
  EXPECT_TRUE(other_got_it);
  EXPECT_FALSE(m.locked());
}

TEST_F(Mutex, SuspendedWaiterStopsAndGoesOnWaitingAfterResume) {
  mthread::mutex m;
  m.lock();
  std::atomic<bool> got_it{false};
  const auto sleeper = mthread::start_new_thread("sleeper", [&] {
    mthread::allow_suspend(true);
    std::lock_guard held(m);
    got_it = true;
  });
  std::atomic<bool> other_got_it{false};
  const auto other = mthread::start_new_thread("other", [&] {
    std::lock_guard held(m);
    other_got_it = true;
  });
  ASSERT_TRUE(wait_for([&] {
    return mthread::status(sleeper) == mthread::thread_state::waiting &&
           mthread::status(other) == mthread::thread_state::waiting;
  }));
  ASSERT_TRUE(mthread::suspend(sleeper));
  EXPECT_EQ(mthread::status(sleeper), mthread::thread_state::suspended);
  // A suspended waiter never keeps the mutex from the others.
  m.unlock();
  EXPECT_TRUE(mthread::join(other, 5s));
  EXPECT_TRUE(other_got_it);
  EXPECT_FALSE(got_it);
  EXPECT_EQ(mthread::status(sleeper), mthread::thread_state::suspended);
  m.lock();
  EXPECT_TRUE(mthread::resume(sleeper));
  ASSERT_TRUE(wait_for([&] { return mthread::status(sleeper) == mthread::thread_state::waiting; }));
  EXPECT_FALSE(got_it);
  m.unlock();
  EXPECT_TRUE(mthread::join(sleeper, 5s));
  EXPECT_TRUE(got_it);
}

TEST_F(Mutex, KillWhileSuspendedInLockEndsTheThread) {
  mthread::mutex m;
  m.lock();
  std::atomic<bool> destroyed{false};
  const auto id = mthread::start_new_thread("victim", [&] {
    set_on_destroy guard{destroyed};
    mthread::allow_suspend(true);
    std::lock_guard held(m);
  });
  ASSERT_TRUE(wait_for([&] { return mthread::status(id) == mthread::thread_state::waiting; }));
  ASSERT_TRUE(mthread::suspend(id));
  EXPECT_TRUE(mthread::kill(id));
  EXPECT_TRUE(mthread::join(id, 5s));
  EXPECT_TRUE(destroyed);
  EXPECT_TRUE(m.locked());
  m.unlock();
  EXPECT_TRUE(m.try_lock());
  m.unlock();
}

TEST_F(Mutex, PingPongHandOffLosesNoWake) {
  // Two threads hand a token back and forth through two mutexes, many times: a lost wake
  // would hang (the join times out).
  mthread::mutex a, b;
  a.lock();
  b.lock();
  constexpr int rounds = 5000;
  const auto id = mthread::start_new_thread("ponger", [&] {
    for (int i = 0; i < rounds; ++i) {
      a.lock();  // released by the main thread
      b.unlock();
    }
  });
  for (int i = 0; i < rounds; ++i) {
    a.unlock();
    b.lock();
  }
  EXPECT_TRUE(mthread::join(id, 30s));
}

}  // namespace
