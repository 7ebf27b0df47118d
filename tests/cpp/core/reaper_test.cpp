// What status() and join() count as a thread's end (src/core/reaper.cpp, reap_if_gone): the body
// returned (`ended`), or the binding said that only the release of its lock is left
// (binding::body_over_but_for_release). A thread that said neither is running, however long it
// spins; one that said it is reaped once it exits, and nothing of it is left.
#include <atomic>
#include <chrono>
#include <memory>
#include <thread>

#include <gtest/gtest.h>

#include "../test_util.hpp"
#include "core/registry.hpp"
#include "mthread/binding.hpp"
#include "mthread/thread.hpp"

using namespace std::chrono_literals;
using mt_test::wait_for;

namespace {

class Reaper : public mt_test::MthreadTest {};

// A SERVICE thread (as a binding's are) that, if told to, says its body is over but for the
// release, then spins (waiting for nothing mthread knows) until let go.
struct ending_thread {
  std::atomic<bool> spinning{false};
  std::atomic<bool> let_go{false};
  mthread::thread_id id = 0;

  explicit ending_thread(bool says_body_over) {
    id = mthread::binding::start("ending", mthread::start_options{}, mthread::thread_type::service,
                                 std::make_shared<mthread::thread_hooks>(), [this, says_body_over] {
                                   if (says_body_over)
                                     mthread::binding::body_over_but_for_release();
                                   spinning = true;
                                   while (!let_go.load()) std::this_thread::yield();
                                 });
  }
  // A test that stopped early must not leave the thread spinning on this object once it is gone:
  // no kill reaches a thread that waits for nothing mthread knows.
  ~ending_thread() {
    let_go = true;
    (void)mthread::join(id, 5s);
  }
  ending_thread(const ending_thread&) = delete;
  ending_thread& operator=(const ending_thread&) = delete;
};

TEST_F(Reaper, ABodyOverButForItsReleaseLeavesOnlyTheEnd) {
  ending_thread thread(true);
  ASSERT_TRUE(wait_for([&] { return thread.spinning.load(); }));
  const mthread::core::record_ptr record = mthread::core::registry::instance().find(thread.id);
  ASSERT_NE(record, nullptr);
  EXPECT_FALSE(record->ended.load());    // its body has not returned ...
  EXPECT_TRUE(record->only_end_left());  // ... but it said nothing else is left
  thread.let_go = true;
  EXPECT_TRUE(
      wait_for([&] { return mthread::status(thread.id) == mthread::thread_state::terminated; }));
  EXPECT_EQ(mthread::core::registry::instance().find(thread.id), nullptr);
}

TEST_F(Reaper, AThreadThatSaidNothingIsRunningUntilItsBodyReturns) {
  ending_thread thread(false);
  ASSERT_TRUE(wait_for([&] { return thread.spinning.load(); }));
  const mthread::core::record_ptr record = mthread::core::registry::instance().find(thread.id);
  ASSERT_NE(record, nullptr);
  EXPECT_FALSE(record->only_end_left());
  EXPECT_EQ(mthread::status(thread.id), mthread::thread_state::running);
  thread.let_go = true;
  EXPECT_TRUE(mthread::join(thread.id, 5s));
  EXPECT_EQ(mthread::status(thread.id), mthread::thread_state::terminated);
}

// Threads nobody joins are the reaper's. A start joins, without waiting, those that have already
// exited (reap_exited), which can empty the reaper's queue between a hand-over's wake-up and the
// reaper's look: the next hand-over must wake it again, or the threads after it stay for good.
// Nothing here asks about the threads (status() and join() would reap them themselves).
TEST_F(Reaper, ThreadsNobodyJoinsAreAllReapedWhileStartsKeepComing) {
  const std::size_t before = mthread::list().size();
  for (int round = 0; round < 400; ++round) {
    (void)mthread::start_new_thread("unjoined", [] {});
    if (round % 16 == 0) std::this_thread::sleep_for(100us);  // the reaper goes idle now and then
  }
  EXPECT_TRUE(wait_for([&] { return mthread::list().size() == before; }, 10s))
      << mthread::list().size() - before << " threads never reaped";
}

}  // namespace
