// mthread::condition_variable with std::unique_lock<mthread::mutex>: notify and wait, timeouts,
// kill in a wait (the mutex is locked again before thread_killed leaves wait(), a notify the
// killed waiter took goes to another), suspend in a wait.
#include <atomic>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "test_util.hpp"

using namespace std::chrono_literals;
using mt_test::now_ns;
using mt_test::set_on_destroy;
using mt_test::wait_for;

namespace {

class ConditionVariable : public mt_test::MthreadTest {};

TEST_F(ConditionVariable, WaitForTimesOutAndPredicateWaitsReturn) {
  mthread::mutex m;
  mthread::condition_variable cv;
  std::unique_lock lock(m);
  EXPECT_EQ(cv.wait_for(lock, 1ms), std::cv_status::timeout);
  EXPECT_TRUE(lock.owns_lock());
  EXPECT_FALSE(cv.wait_for(lock, 1ms, [] { return false; }));
  EXPECT_TRUE(cv.wait_for(lock, 1ms, [] { return true; }));
  EXPECT_EQ(cv.wait_until(lock, std::chrono::steady_clock::now() - 1s), std::cv_status::timeout);
}

TEST_F(ConditionVariable, QueueBetweenManagedAndPlainThreadsLosesNothing) {
  mthread::mutex m;
  mthread::condition_variable cv;
  std::deque<int> items;
  constexpr int per_producer = 5000;
  constexpr int producers = 2;
  std::atomic<long> sum{0};
  std::atomic<int> taken{0};
  auto consume = [&] {
    for (;;) {
      std::unique_lock lock(m);
      cv.wait(lock, [&] { return !items.empty(); });
      const int item = items.front();
      items.pop_front();
      if (item < 0) return;
      sum += item;
      ++taken;
    }
  };
  auto produce = [&] {
    for (int i = 1; i <= per_producer; ++i) {
      {
        std::lock_guard guard(m);
        items.push_back(i);
      }
      cv.notify_one();
    }
  };
  const auto consumer1 = mthread::start_new_thread("consumer", consume);
  std::thread consumer2(consume);
  const auto producer1 = mthread::start_new_thread("producer", produce);
  std::thread producer2(produce);
  EXPECT_TRUE(mthread::join(producer1, 30s));
  producer2.join();
  {
    std::lock_guard guard(m);
    items.push_back(-1);
    items.push_back(-1);
  }
  cv.notify_all();
  EXPECT_TRUE(mthread::join(consumer1, 30s));
  consumer2.join();
  EXPECT_EQ(taken.load(), producers * per_producer);
  EXPECT_EQ(sum.load(), producers * (per_producer * (per_producer + 1L) / 2));
}

TEST_F(ConditionVariable, KilledWaiterRelocksThenUnlocksAndPassesTheNotifyOn) {
  mthread::mutex m;
  mthread::condition_variable cv;
  bool ready = false;
  std::atomic<bool> destroyed{false};
  std::atomic<std::int64_t> destroyed_at{0};
  std::atomic<bool> held_at_unwind{false};
  const auto victim = mthread::start_new_thread("victim", [&] {
    std::unique_lock lock(m);
    struct check {
      std::unique_lock<mthread::mutex>& lock;
      std::atomic<bool>& held;
      ~check() { held = lock.owns_lock() && lock.mutex()->locked(); }
    } at_unwind{lock, held_at_unwind};
    set_on_destroy guard{destroyed, &destroyed_at};
    cv.wait(lock, [&] { return ready; });
  });
  std::atomic<bool> woke{false};
  const auto other = mthread::start_new_thread("other", [&] {
    std::unique_lock lock(m);
    cv.wait(lock, [&] { return ready; });
    woke = true;
  });
  ASSERT_TRUE(wait_for([&] {
    return mthread::status(victim) == mthread::thread_state::waiting &&
           mthread::status(other) == mthread::thread_state::waiting;
  }));
  const auto t0 = now_ns();
  EXPECT_TRUE(mthread::kill(victim));
  ASSERT_TRUE(wait_for([&] { return destroyed.load(); }));
  mt_test::report("condition_variable_kill_latency_us",
                  static_cast<double>(destroyed_at - t0) / 1000.0, "us");
  EXPECT_TRUE(mthread::join(victim, 5s));
  EXPECT_TRUE(held_at_unwind) << "the mutex is locked again when thread_killed leaves wait()";
  EXPECT_FALSE(m.locked()) << "and the unique_lock released it";
  {
    std::lock_guard guard(m);
    ready = true;
  }
  cv.notify_one();
  EXPECT_TRUE(mthread::join(other, 5s));
  EXPECT_TRUE(woke);
}

// A timeout too long to mean anything (any unit, up to the type's maximum) is a wait without
// limit, not an overflow into one that ends at once; the mutex's timed lock the same.
TEST_F(ConditionVariable, HugeTimeoutsWaitWithoutLimit) {
  mthread::mutex m;
  mthread::condition_variable cv;
  bool ready = false;
  std::atomic<bool> done{false};
  std::atomic<bool> timed_out{false};
  const auto waiter = mthread::start_new_thread("cv waiter", [&] {
    std::unique_lock lock(m);
    timed_out = !cv.wait_for(lock, std::chrono::hours::max(), [&] { return ready; });
    done = true;
  });
  ASSERT_TRUE(wait_for([&] { return mthread::status(waiter) == mthread::thread_state::waiting; }));
  EXPECT_FALSE(wait_for([&] { return done.load(); }, 50ms));
  {
    std::lock_guard guard(m);
    ready = true;
  }
  cv.notify_all();
  EXPECT_TRUE(mthread::join(waiter, 5s));
  EXPECT_TRUE(done.load());
  EXPECT_FALSE(timed_out.load());

  done = false;
  m.lock();
  const auto locker = mthread::start_new_thread("lock waiter", [&] {
    timed_out = !m.try_lock_for(std::chrono::milliseconds::max());
    if (!timed_out) m.unlock();
    done = true;
  });
  ASSERT_TRUE(wait_for([&] { return mthread::status(locker) == mthread::thread_state::waiting; }));
  EXPECT_FALSE(wait_for([&] { return done.load(); }, 50ms));
  m.unlock();
  EXPECT_TRUE(mthread::join(locker, 5s));
  EXPECT_TRUE(done.load());
  EXPECT_FALSE(timed_out.load());
}

TEST_F(ConditionVariable, SuspendedWaiterReturnsOnlyAfterResume) {
  mthread::mutex m;
  mthread::condition_variable cv;
  bool ready = false;
  std::atomic<bool> woke{false};
  const auto id = mthread::start_new_thread("waiter", [&] {
    mthread::allow_suspend(true);
    std::unique_lock lock(m);
    cv.wait(lock, [&] { return ready; });
    woke = true;
  });
  ASSERT_TRUE(wait_for([&] { return mthread::status(id) == mthread::thread_state::waiting; }));
  ASSERT_TRUE(mthread::suspend(id));
  EXPECT_EQ(mthread::status(id), mthread::thread_state::suspended);
  {
    std::lock_guard guard(m);
    ready = true;
  }
  cv.notify_all();
  // Still suspended: it may not run. A bounded wait on state shows it stays so.
  EXPECT_FALSE(wait_for([&] { return woke.load(); }, 50ms));
  EXPECT_EQ(mthread::status(id), mthread::thread_state::suspended);
  EXPECT_TRUE(mthread::resume(id));
  EXPECT_TRUE(mthread::join(id, 5s));
  EXPECT_TRUE(woke);
}

}  // namespace
