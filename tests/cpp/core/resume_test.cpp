// resume() wakes a thread only if it stopped for the suspension (src/core/control.cpp): one
// suspended while it slept in a wait is left asleep there, and still sees the resume; one that
// woke meanwhile and stopped is woken; no resume is lost however the two race.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <thread>

#include <gtest/gtest.h>

#include "../test_util.hpp"
#include "core/registry.hpp"
#include "mthread/binding.hpp"
#include "mthread/messaging.hpp"
#include "mthread/thread.hpp"

using namespace std::chrono_literals;
using mt_test::wait_for;

namespace {

class Resume : public mt_test::MthreadTest {};

// A thread that takes messages until it is killed, counting them. A SERVICE thread, as a
// binding's are: a NATIVE one is stopped by a signal, which ends a sleep with a deadline.
struct receiver {
  std::atomic<int> received{0};
  mthread::thread_id id = 0;

  receiver() {
    id =
        mthread::binding::start("receiver", mthread::start_options{}, mthread::thread_type::service,
                                std::make_shared<mthread::thread_hooks>(), [this] {
                                  mthread::allow_suspend(true);
                                  for (;;) {
                                    if (mthread::get_msg(30s).type != mthread::msg_type::none) {
                                      ++received;
                                    }
                                  }
                                });
  }
  ~receiver() {
    mthread::kill(id);
    EXPECT_TRUE(mthread::join(id, 10s));
  }
  receiver(const receiver&) = delete;
  receiver& operator=(const receiver&) = delete;
};

TEST_F(Resume, AThreadSuspendedAsleepInAWaitIsNotWokenAndStillResumes) {
  receiver r;
  const auto record = mthread::core::registry::instance().find(r.id);
  ASSERT_NE(record, nullptr);
  // Asleep in get_msg (not spinning): the parker's word then changes only with a wake.
  ASSERT_TRUE(wait_for([&] {
    return mthread::status(r.id) == mthread::thread_state::waiting && record->park.sleeping();
  }));
  const std::uint32_t before = record->park.prepare();
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(mthread::suspend(r.id));
    EXPECT_EQ(mthread::status(r.id), mthread::thread_state::suspended);
    ASSERT_TRUE(mthread::resume(r.id));
    EXPECT_EQ(mthread::status(r.id), mthread::thread_state::waiting);
  }
  EXPECT_EQ(record->park.prepare(), before) << "suspend or resume woke the sleeping thread";
  // It was resumed all the same: a message reaches it at once.
  ASSERT_TRUE(mthread::send_msg(r.id, 1));
  EXPECT_TRUE(wait_for([&] { return r.received.load() == 1; }));
}

// A native thread is suspended by a signal; the kernel restarts a sleep without a deadline
// after the handler, so one asleep in such a wait stays asleep there, as a binding's thread does.
TEST_F(Resume, ANativeThreadAsleepInAWaitWithoutDeadlineIsNotWokenAndStillResumes) {
  std::atomic<int> received{0};
  const auto id = mthread::start_new_thread("native-receiver", [&] {
    mthread::allow_suspend(true);
    for (;;) {
      if (mthread::binding::get_msg(mthread::deadline::never()).type != mthread::msg_type::none) {
        ++received;
      }
    }
  });
  const auto record = mthread::core::registry::instance().find(id);
  ASSERT_NE(record, nullptr);
  ASSERT_TRUE(wait_for([&] {
    return mthread::status(id) == mthread::thread_state::waiting && record->park.sleeping();
  }));
  const std::uint32_t before = record->park.prepare();
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(mthread::suspend(id));
    ASSERT_TRUE(mthread::resume(id));
  }
  EXPECT_EQ(record->park.prepare(), before) << "suspend or resume woke the sleeping thread";
  ASSERT_TRUE(mthread::send_msg(id, 1));
  EXPECT_TRUE(wait_for([&] { return received.load() == 1; }));
  EXPECT_TRUE(mthread::kill(id));
  EXPECT_TRUE(mthread::join(id, 10s));
}

TEST_F(Resume, AThreadThatStoppedForTheSuspensionIsWoken) {
  receiver r;
  ASSERT_TRUE(wait_for([&] { return mthread::status(r.id) == mthread::thread_state::waiting; }));
  ASSERT_TRUE(mthread::suspend(r.id));
  // The message wakes it; it sees the suspension and stops, holding the message back.
  ASSERT_TRUE(mthread::send_msg(r.id, 1));
  EXPECT_FALSE(wait_for([&] { return r.received.load() != 0; }, 50ms));
  ASSERT_TRUE(mthread::resume(r.id));
  EXPECT_TRUE(wait_for([&] { return r.received.load() == 1; }));
}

// Messages wake the thread while suspends and resumes come from another: whichever way each
// resume meets the thread (asleep in get_msg, on its way to stop, stopped), none is lost.
TEST_F(Resume, NoResumeIsLostAgainstAThreadGoingToStop) {
  receiver r;
  ASSERT_TRUE(wait_for([&] { return mthread::status(r.id) == mthread::thread_state::waiting; }));
  constexpr int rounds = 3000;
  for (int i = 0; i < rounds; ++i) {
    ASSERT_TRUE(mthread::suspend(r.id));
    ASSERT_TRUE(mthread::send_msg(r.id, i));
    if (i % 3 == 0) std::this_thread::yield();
    ASSERT_TRUE(mthread::resume(r.id));
    // The mailbox holds eight: let the thread catch up before it is full.
    if (i % 8 == 7) {
      ASSERT_TRUE(wait_for([&] { return r.received.load() == i + 1; }));
    }
  }
  EXPECT_TRUE(wait_for([&] { return r.received.load() == rounds; }))
      << "received " << r.received.load() << " of " << rounds;
}

}  // namespace
