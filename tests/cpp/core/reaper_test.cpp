// What status() and join() count as a thread's end (src/core/reaper.cpp, reap_if_gone): the body
// returned (`ended`), or the binding said that only the release of its lock is left
// (binding::body_over_but_for_release). A thread that said neither is running, however long it
// spins; one that said it is reaped once it exits, and nothing of it is left.
#include <sys/prctl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "../test_util.hpp"
#include "core/reaper.hpp"
#include "core/registry.hpp"
#include "core/stack.hpp"
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

// Quick starts, each waited for through status() until TERMINATED, as Python's start + gone
// does: each ended thread is handed over to the reaper, and the starter joins it first. The
// reaper, woken by a hand-over, gathers for a millisecond before it sleeps again, even if the
// starter took what woke it: at most one wake-up a millisecond, not one every few starts (each
// paid for by the thread that ends).
TEST_F(Reaper, QuickStartsWakeItAtMostOnceAMillisecond) {
  auto& reaper = mthread::core::reaper::instance();
  const auto began = std::chrono::steady_clock::now();
  const std::size_t wake_ups_before = reaper.wake_ups();
  for (int round = 0; round < 600; ++round) {
    const mthread::thread_id id = mthread::start_new_thread("quick", [] {});
    // Looked at without sleeping: a sleep would give the reaper all the time it needs.
    const auto give_up = std::chrono::steady_clock::now() + 5s;
    while (mthread::status(id) != mthread::thread_state::terminated) {
      ASSERT_LT(std::chrono::steady_clock::now(), give_up) << "thread " << id << " did not end";
      std::this_thread::yield();
    }
  }
  const auto took = std::chrono::steady_clock::now() - began;
  const std::size_t wake_ups = reaper.wake_ups() - wake_ups_before;
  const auto most = static_cast<std::size_t>(took / 1ms) + 2;
  EXPECT_LE(wake_ups, most) << "600 starts in "
                            << std::chrono::duration_cast<std::chrono::microseconds>(took).count()
                            << " µs woke the reaper " << wake_ups << " times";
}

// A thread whose end is slow (a thread_local destructor that takes its time), handed to the
// reaper, keeps it joining; the stacks of the threads that end meanwhile and do not fit the
// stack cache are unmapped all the same, not once the slow one is gone.
std::atomic<bool> let_the_slow_end_go{false};
struct slow_to_destroy {
  ~slow_to_destroy() {
    while (!let_the_slow_end_go.load()) std::this_thread::sleep_for(1ms);
  }
};
thread_local slow_to_destroy slow_end;

void start_kill_join(int n) {
  std::vector<mthread::thread_id> ids;
  for (int i = 0; i < n; ++i) {
    ids.push_back(mthread::start_new_thread("crowd", [] { (void)mthread::wait(30s); }));
  }
  for (const auto id : ids) mthread::kill(id);
  for (const auto id : ids) ASSERT_TRUE(mthread::join(id, 10s));
}

TEST_F(Reaper, RetiredStacksAreUnmappedWhileAThreadIsSlowToEnd) {
  start_kill_join(50);
  std::atomic<bool> body_over{false};
  const auto slow = mthread::start_new_thread("slow", [&] {
    (void)&slow_end;  // constructed: destroyed as the thread ends
    body_over = true;
  });
  ASSERT_TRUE(wait_for([&] { return body_over.load(); }));
  // Handed over to the reaper (nobody joins it), which claims it and waits for its end.
  ASSERT_TRUE(wait_for([&] {
    const auto record = mthread::core::registry::instance().find(slow);
    return record != nullptr && record->reap_claimed.load();
  }));
  start_kill_join(200);
  EXPECT_TRUE(wait_for([] { return mthread::core::retired_stacks() == 0; }, 2s))
      << mthread::core::retired_stacks() << " stacks still retired";
  let_the_slow_end_go = true;
  EXPECT_TRUE(mthread::join(slow, 10s));
}

// A child forked when no thread runs has none of the parent's threads, its reaper included: the
// stacks of the threads it starts and joins are unmapped all the same (by a reaper of its own).
void start_kill_join_in_child() {
  const std::size_t before = mt_test::maps_count();
  std::vector<mthread::thread_id> ids;
  for (int i = 0; i < 100; ++i) {
    ids.push_back(mthread::start_new_thread("child's", [] { (void)mthread::wait(30s); }));
  }
  for (const auto id : ids) mthread::kill(id);
  for (const auto id : ids) {
    if (!mthread::join(id, 10s)) std::_Exit(2);
  }
  const bool unmapped = wait_for([] { return mthread::core::retired_stacks() == 0; }, 2s);
  const std::size_t after = mt_test::quiet_maps_count();
  std::fprintf(stderr, "maps %zu -> %zu, %zu stacks left retired\n", before, after,
               mthread::core::retired_stacks());
  if (!unmapped) std::_Exit(1);
#if !defined(__SANITIZE_ADDRESS__)
  // (AddressSanitizer maps memory of its own for each thread and keeps some of it.) The cached
  // stacks, 4 mappings each, and the malloc arenas glibc may give the new threads (8 a CPU, 2
  // mappings each): a stack left mapped a thread would be 400 more.
  if (after > before + 8 * 4 + 2 * 8 * static_cast<std::size_t>(sysconf(_SC_NPROCESSORS_ONLN))) {
    std::_Exit(3);
  }
#endif
  std::_Exit(0);
}

TEST_F(Reaper, AForkedChildUnmapsTheStacksOfItsThreads) {
  start_kill_join(20);  // the reaper runs
  EXPECT_EXIT(start_kill_join_in_child(), ::testing::ExitedWithCode(0), "maps");
}

// The parent's reaper did not come along either: the child starts one of its own, which reaps the
// threads that end there with nobody to join them (a start reaps only those already gone before
// it, so the last ones would stay).
void end_threads_unjoined_in_child() {
  for (int i = 0; i < 20; ++i) (void)mthread::start_new_thread("child's", [] {});
  const bool reaped = wait_for([] { return mthread::list().size() == 1; }, 10s);
  std::fprintf(stderr, "threads left %zu\n", mthread::list().size());
  std::_Exit(reaped ? 0 : 1);
}

TEST_F(Reaper, AForkedChildReapsTheThreadsNobodyJoins) {
  start_kill_join(20);  // the reaper runs
  EXPECT_EXIT(end_threads_unjoined_in_child(), ::testing::ExitedWithCode(0), "threads left 1\n");
}

// Only the forking thread exists in a child: the parent's other threads leave its registry,
// one still running (which a supported fork has none of) as well as one the parent's reaper was
// still joining, so that list() and the thread limit count only the child's own threads.
void list_in_child() {
  const std::size_t listed = mthread::list().size();
  std::fprintf(stderr, "listed %zu\n", listed);
  std::_Exit(listed == 1 ? 0 : 1);
}

TEST_F(Reaper, AForkedChildListsOnlyItsOwnThreads) {
  const auto running = mthread::start_new_thread("running", [] { (void)mthread::wait(30s); });
  let_the_slow_end_go = false;
  std::atomic<bool> body_over{false};
  const auto slow = mthread::start_new_thread("slow", [&] {
    (void)&slow_end;  // constructed: destroyed as the thread ends
    body_over = true;
  });
  ASSERT_TRUE(wait_for([&] { return body_over.load(); }));
  ASSERT_TRUE(wait_for([&] {  // handed over: the reaper waits for its end
    const auto record = mthread::core::registry::instance().find(slow);
    return record != nullptr && record->reap_claimed.load();
  }));
  EXPECT_EXIT(list_in_child(), ::testing::ExitedWithCode(0), "listed 1\n");
  let_the_slow_end_go = true;
  mthread::kill(running);
  EXPECT_TRUE(mthread::join(running, 10s));
  EXPECT_TRUE(mthread::join(slow, 10s));
}

// A fork waits for a thread that holds the registry's lock to let go of it (a start, a
// status() or the reaper's work hold it for moments): the child's copy is free, and its starts
// do not block on a lock whose holder does not exist there.
void start_in_child_within_seconds() {
  alarm(5);  // a start blocked for good ends the child here
  const auto id = mthread::start_new_thread("child's", [] {});
  std::_Exit(mthread::join(id, 10s) ? 0 : 2);
}

TEST_F(Reaper, AForkWhileAnotherThreadHoldsTheRegistryLeavesTheChildsCopyFree) {
  start_kill_join(1);  // the reaper, and its fork handler, are there
  auto& registry = mthread::core::registry::instance();
  std::atomic<bool> holding{false};
  std::thread holder([&] {
    registry.lock_for_fork();  // as any call does for a moment, here for longer
    holding = true;
    std::this_thread::sleep_for(50ms);
    registry.unlock_after_fork();
  });
  ASSERT_TRUE(wait_for([&] { return holding.load(); }));
  EXPECT_EXIT(start_in_child_within_seconds(), ::testing::ExitedWithCode(0), "");
  holder.join();
}

// The kernel's table of futex wait queues is per process, and a child begins with the first
// one again: its reaper does not grow it to what the parent needed (1000 threads: 4096 slots for
// a child of one thread).
int futex_table_slots() {
  constexpr int futex_hash = 78;  // PR_FUTEX_HASH
  constexpr int get_slots = 2;
  return prctl(futex_hash, get_slots, 0, 0, 0);
}

void start_one_in_child(int slots_at_fork) {
  const auto id = mthread::start_new_thread("child's", [] {});
  if (!mthread::join(id, 10s)) std::_Exit(2);
  // The reaper grows the table, when it does, as soon as it runs after the start.
  const bool grown = wait_for([&] { return futex_table_slots() >= slots_at_fork; }, 200ms);
  std::fprintf(stderr, "slots: parent %d, child %d\n", slots_at_fork, futex_table_slots());
  std::_Exit(grown ? 1 : 0);
}

TEST_F(Reaper, AForkedChildKeepsTheKernelsFirstFutexTable) {
  // 400 threads: the reaper sizes the table at 4 slots a thread, a power of two, once the thread
  // count passes the size it last set: 1024 slots or more, far above what the kernel gives a
  // process of two threads.
  std::vector<mthread::thread_id> ids;
  for (int i = 0; i < 400; ++i) {
    ids.push_back(mthread::start_new_thread("crowd", [] { (void)mthread::wait(30s); }));
  }
  const bool grown = wait_for([&] { return futex_table_slots() >= 1024; });
  const int slots = futex_table_slots();
  for (const auto id : ids) mthread::kill(id);
  for (const auto id : ids) ASSERT_TRUE(mthread::join(id, 10s));
  if (slots <= 0) GTEST_SKIP() << "this kernel has no PR_FUTEX_HASH";
  if (!grown) GTEST_SKIP() << "the kernel kept the table at " << slots << " slots";
  EXPECT_EXIT(start_one_in_child(slots), ::testing::ExitedWithCode(0), "slots");
}

}  // namespace
