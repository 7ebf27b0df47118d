// Notifications: one 32-bit slot a thread; notify overwrites, reading clears, 0 is none and an
// error to send; wait(timeout); is_notified; broadcast; the reserved values.
#include <atomic>
#include <optional>
#include <thread>

#include "test_util.hpp"

using namespace std::chrono_literals;
using mt_test::wait_for;

namespace {

class Notify : public mt_test::MthreadTest {};

TEST_F(Notify, ReservedValuesAreTheDevices) {
  EXPECT_EQ(mthread::notify_pause, 0x01000000u);
  EXPECT_EQ(mthread::notify_suspend, 0x01000000u);
  EXPECT_EQ(mthread::notify_resume, 0x02000000u);
  EXPECT_EQ(mthread::notify_exit, 0x04000000u);
  EXPECT_EQ(mthread::notify_stop, 0x04000000u);
  EXPECT_EQ(mthread::notify_status, 0x08000000u);
  EXPECT_EQ(static_cast<int>(mthread::thread_type::main), 1);
  EXPECT_EQ(static_cast<int>(mthread::thread_type::python), 2);
  EXPECT_EQ(static_cast<int>(mthread::thread_type::service), 3);
  EXPECT_EQ(static_cast<int>(mthread::thread_type::native), 4);
  EXPECT_EQ(static_cast<int>(mthread::thread_state::running), 0);
  EXPECT_EQ(static_cast<int>(mthread::thread_state::suspended), 1);
  EXPECT_EQ(static_cast<int>(mthread::thread_state::waiting), 2);
  EXPECT_EQ(static_cast<int>(mthread::thread_state::terminated), -1);
  EXPECT_EQ(static_cast<int>(mthread::msg_type::none), 0);
  EXPECT_EQ(static_cast<int>(mthread::msg_type::integer), 1);
  EXPECT_EQ(static_cast<int>(mthread::msg_type::string), 2);
  EXPECT_EQ(mthread::broadcast, 0u);
}

TEST_F(Notify, NoneIsZeroAndReadingClears) {
  EXPECT_EQ(mthread::get_notification(), 0u);
  const auto self = mthread::get_repl_id();
  EXPECT_FALSE(mthread::is_notified(self));
  EXPECT_TRUE(mthread::notify(self, 9));
  EXPECT_TRUE(mthread::is_notified(self));
  EXPECT_EQ(mthread::get_notification(), 9u);
  EXPECT_FALSE(mthread::is_notified(self));
  EXPECT_EQ(mthread::get_notification(), 0u);
}

TEST_F(Notify, LatestValueWins) {
  const auto self = mthread::get_repl_id();
  EXPECT_TRUE(mthread::notify(self, 1));
  EXPECT_TRUE(mthread::notify(self, 2));
  EXPECT_TRUE(mthread::notify(self, 0xFFFFFFFFu));
  EXPECT_EQ(mthread::get_notification(), 0xFFFFFFFFu) << "full 32-bit range";
  EXPECT_EQ(mthread::get_notification(), 0u);
}

TEST_F(Notify, ZeroIsAnError) {
  EXPECT_THROW(mthread::notify(mthread::get_repl_id(), 0), mthread::error);
  EXPECT_THROW(mthread::notify(999'999'999, 0), mthread::error);
  EXPECT_FALSE(mthread::is_notified(mthread::get_repl_id()));
}

TEST_F(Notify, UnknownAndEndedTargetsRefuse) {
  EXPECT_FALSE(mthread::notify(999'999'999, 1));
  EXPECT_FALSE(mthread::is_notified(999'999'999));
  const auto id = mthread::start_new_thread("ended", [] {});
  ASSERT_TRUE(mthread::join(id, 5s));
  EXPECT_FALSE(mthread::notify(id, 1));
}

TEST_F(Notify, OverwriteSeenByAThreadThatReadsLater) {
  const auto main_id = mthread::get_repl_id();
  const auto id = mthread::start_new_thread("late-reader", [&] {
    // Waits for a message, not a notification: notifications pile up (overwrite) meanwhile.
    mthread::get_msg(30s);
    mthread::send_msg(main_id, std::int64_t{mthread::get_notification()});
    mthread::send_msg(main_id, std::int64_t{mthread::get_notification()});
  });
  ASSERT_TRUE(wait_for([&] { return mthread::status(id) == mthread::thread_state::waiting; }));
  EXPECT_TRUE(mthread::notify(id, 10));
  EXPECT_TRUE(mthread::notify(id, 20));
  EXPECT_TRUE(mthread::notify(id, 30));
  EXPECT_TRUE(mthread::is_notified(id));
  EXPECT_EQ(mthread::status(id), mthread::thread_state::waiting)
      << "a notification does not end a get_msg wait";
  EXPECT_TRUE(mthread::send_msg(id, "go"));
  EXPECT_EQ(mthread::get_msg(5s).integer, 30) << "latest wins";
  EXPECT_EQ(mthread::get_msg(5s).integer, 0) << "reading cleared it";
  EXPECT_TRUE(mthread::join(id, 5s));
}

TEST_F(Notify, ThreadNotifiesMain) {
  const auto main_id = mthread::get_repl_id();
  const auto id = mthread::start_new_thread(
      "notifier", [&] { mthread::notify(main_id, mthread::notify_status); });
  const auto value = mthread::wait(5s);
  ASSERT_TRUE(value.has_value());
  EXPECT_EQ(*value, mthread::notify_status);
  EXPECT_TRUE(mthread::join(id, 5s));
}

TEST_F(Notify, WaitReturnsPendingValueAtOnceAndClearsIt) {
  ASSERT_TRUE(mthread::notify(mthread::get_repl_id(), 5));
  const auto t0 = mt_test::clock_type::now();
  const auto value = mthread::wait(10s);
  EXPECT_LT(mt_test::clock_type::now() - t0, 5s);
  ASSERT_TRUE(value.has_value());
  EXPECT_EQ(*value, 5u);
  EXPECT_EQ(mthread::get_notification(), 0u);
}

TEST_F(Notify, WaitTimesOutWithNullopt) {
  const auto t0 = mt_test::clock_type::now();
  const auto value = mthread::wait(50ms);
  const auto waited = mt_test::clock_type::now() - t0;
  EXPECT_FALSE(value.has_value());
  EXPECT_GE(waited, 50ms);
  EXPECT_LT(waited, 5s);
  EXPECT_FALSE(mthread::wait(0ms).has_value());
}

TEST_F(Notify, WaitBlocksUntilANotificationArrives) {
  std::atomic<std::uint32_t> got{0};
  std::atomic<bool> timed_out{false};
  const auto id = mthread::start_new_thread("waiter", [&] {
    const auto v = mthread::wait(30s);
    if (v) {
      got = *v;
    } else {
      timed_out = true;
    }
  });
  ASSERT_TRUE(wait_for([&] { return mthread::status(id) == mthread::thread_state::waiting; }));
  EXPECT_TRUE(mthread::notify(id, mthread::notify_exit));
  EXPECT_TRUE(mthread::join(id, 5s));
  EXPECT_EQ(got.load(), mthread::notify_exit);
  EXPECT_FALSE(timed_out);
}

// The longest timeouts mean "for ever", not an overflow into the past.
TEST_F(Notify, HugeTimeoutsWaitInsteadOfOverflowing) {
  std::atomic<int> returned{0};
  std::atomic<std::uint32_t> got{0};
  const auto id = mthread::start_new_thread("patient", [&] {
    got = mthread::wait(std::chrono::milliseconds::max()).value_or(0);
    ++returned;
    const auto m = mthread::get_msg(std::chrono::milliseconds::max());
    got = static_cast<std::uint32_t>(m.integer);
    ++returned;
    mthread::sleep_for(std::chrono::nanoseconds::max());
    ++returned;
  });
  ASSERT_TRUE(wait_for([&] { return mthread::status(id) == mthread::thread_state::waiting; }));
  EXPECT_FALSE(wait_for([&] { return returned.load() != 0; }, 50ms)) << "wait(max) returned";
  EXPECT_TRUE(mthread::notify(id, 11));
  ASSERT_TRUE(wait_for([&] { return returned.load() == 1; }));
  EXPECT_EQ(got.load(), 11u);
  EXPECT_FALSE(wait_for([&] { return returned.load() != 1; }, 50ms)) << "get_msg(max) returned";
  EXPECT_TRUE(mthread::send_msg(id, std::int64_t{12}));
  ASSERT_TRUE(wait_for([&] { return returned.load() == 2; }));
  EXPECT_EQ(got.load(), 12u);
  EXPECT_FALSE(wait_for([&] { return returned.load() != 2; }, 50ms)) << "sleep_for(max) returned";
  EXPECT_FALSE(mthread::join(id, 1ms));
  EXPECT_TRUE(mthread::kill(id));
  EXPECT_TRUE(mthread::join(id, std::chrono::nanoseconds::max()));
}

TEST_F(Notify, AMessageDoesNotEndAWait) {
  std::atomic<bool> returned{false};
  std::optional<std::uint32_t> result;
  const auto id = mthread::start_new_thread("waiter", [&] {
    result = mthread::wait(30s);
    returned = true;
  });
  ASSERT_TRUE(wait_for([&] { return mthread::status(id) == mthread::thread_state::waiting; }));
  EXPECT_TRUE(mthread::send_msg(id, 1));
  // The wait must go on: give it a moment to (wrongly) return.
  EXPECT_FALSE(wait_for([&] { return returned.load(); }, 50ms));
  EXPECT_TRUE(mthread::notify(id, 4));
  EXPECT_TRUE(mthread::join(id, 5s));
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(*result, 4u);
}

TEST_F(Notify, BroadcastReachesEveryThreadButTheCaller) {
  EXPECT_FALSE(mthread::notify(mthread::broadcast, 3)) << "no other thread";
  constexpr int n = 4;
  std::atomic<int> got_right{0};
  std::vector<mthread::thread_id> ids;
  for (int i = 0; i < n; ++i) {
    ids.push_back(mthread::start_new_thread("listener", [&] {
      const auto v = mthread::wait(30s);
      if (v && *v == 0xABCDu) ++got_right;
    }));
  }
  for (auto id : ids) {
    ASSERT_TRUE(wait_for([&] { return mthread::status(id) == mthread::thread_state::waiting; }));
  }
  EXPECT_TRUE(mthread::notify(0, 0xABCD));
  for (auto id : ids) EXPECT_TRUE(mthread::join(id, 5s));
  EXPECT_EQ(got_right.load(), n);
  EXPECT_EQ(mthread::get_notification(), 0u) << "the caller is not notified";
}

TEST_F(Notify, BroadcastFromAThreadReachesMainButNotItself) {
  std::atomic<std::uint32_t> own{1};
  const auto id = mthread::start_new_thread("caster", [&] {
    mthread::notify(0, 77);
    own = mthread::get_notification();
  });
  EXPECT_EQ(mthread::wait(5s).value_or(0), 77u);
  EXPECT_TRUE(mthread::join(id, 5s));
  EXPECT_EQ(own.load(), 0u);
}

TEST_F(Notify, ForeignThreadCanNotify) {
  bool ok = false;
  std::thread foreign([&] { ok = mthread::notify(mthread::get_repl_id(), 8); });
  foreign.join();
  EXPECT_TRUE(ok);
  EXPECT_EQ(mthread::get_notification(), 8u);
}

// Many notifiers racing: the value read is always one that was sent, never torn or lost to 0
// while one is pending.
TEST_F(Notify, ConcurrentNotifiersNeverTearTheValue) {
  const auto main_id = mthread::get_repl_id();
  std::atomic<bool> stop{false};
  std::vector<mthread::thread_id> ids;
  for (std::uint32_t k = 1; k <= 3; ++k) {
    ids.push_back(mthread::start_new_thread("notifier", [&, k] {
      while (!stop) {
        mthread::notify(main_id, k * 0x01010101u);
        mthread::sleep_for(10us);
      }
    }));
  }
  int reads = 0;
  const auto deadline = mt_test::clock_type::now() + 300ms;
  while (mt_test::clock_type::now() < deadline) {
    const auto v = mthread::wait(1s);
    ASSERT_TRUE(v.has_value());
    EXPECT_TRUE(*v == 0x01010101u || *v == 0x02020202u || *v == 0x03030303u) << *v;
    ++reads;
  }
  stop = true;
  for (auto id : ids) EXPECT_TRUE(mthread::join(id, 5s));
  EXPECT_GT(reads, 0);
}

}  // namespace
