// The lock-free mailbox on its own (src/core/mailbox.hpp): a bounded FIFO, many senders and one
// receiver; full refuses at once; the wake bit hands the receiver's "wake me" to exactly the
// next push; close refuses everything after it, even with pushes in flight.
#include "core/mailbox.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "../test_util.hpp"

using namespace std::chrono_literals;
using mt_test::wait_for;
using mthread::message;
using mthread::core::mailbox;

namespace {

message integer(std::int64_t value) {
  message m;
  m.type = mthread::msg_type::integer;
  m.integer = value;
  return m;
}

message text(std::string value) {
  message m;
  m.type = mthread::msg_type::string;
  m.text = std::move(value);
  return m;
}

// Pops one message and returns its integer; -1 when the mailbox is empty.
std::int64_t pop_integer(mailbox& box) {
  message m;
  return box.pop(m) ? m.integer : -1;
}

TEST(Mailbox, AFreshMailboxIsEmptyAndPopFindsNothing) {
  mailbox box(4);
  EXPECT_TRUE(box.empty());
  EXPECT_FALSE(box.has_message());
  message m;
  EXPECT_FALSE(box.pop(m));
  EXPECT_EQ(m.type, mthread::msg_type::none) << "a failed pop leaves the output alone";
}

TEST(Mailbox, DepthOneHoldsOneMessageLapAfterLap) {
  mailbox box(1);
  for (std::int64_t lap = 0; lap < 1000; ++lap) {
    ASSERT_NE(box.push(integer(lap)), mailbox::refused) << "lap " << lap;
    EXPECT_EQ(box.push(integer(-2)), mailbox::refused) << "full at one, lap " << lap;
    EXPECT_FALSE(box.empty());
    EXPECT_TRUE(box.has_message());
    EXPECT_EQ(pop_integer(box), lap);
    EXPECT_TRUE(box.empty());
    EXPECT_EQ(pop_integer(box), -1);
  }
}

TEST(Mailbox, FullRefusesAtOnceAndAPopMakesRoom) {
  constexpr std::int64_t depth = 8;
  mailbox box(depth);
  for (std::int64_t i = 0; i < depth; ++i) ASSERT_EQ(box.push(integer(i)), mailbox::accepted);
  EXPECT_EQ(box.push(integer(99)), mailbox::refused);
  EXPECT_EQ(pop_integer(box), 0);
  EXPECT_EQ(box.push(integer(depth)), mailbox::accepted) << "the popped cell is free again";
  EXPECT_EQ(box.push(integer(99)), mailbox::refused);
  for (std::int64_t i = 1; i <= depth; ++i) EXPECT_EQ(pop_integer(box), i);
  EXPECT_EQ(pop_integer(box), -1);
}

// A depth that is not a power of two, run for many laps at every fill level: positions
// wrap around the ring at every cell, and the order stays first in, first out.
TEST(Mailbox, TheRingWrapsAroundInOrder) {
  constexpr std::int64_t depth = 3;
  mailbox box(depth);
  std::int64_t pushed = 0;
  std::int64_t popped = 0;
  for (std::int64_t round = 0; round < 300; ++round) {
    const std::int64_t room = depth - (pushed - popped);  // at least one: see the pops below
    const std::int64_t fill = 1 + round % room;
    for (std::int64_t i = 0; i < fill; ++i) {
      ASSERT_NE(box.push(integer(pushed++)), mailbox::refused);
    }
    const std::int64_t take = 1 + (round * 7) % (pushed - popped);
    for (std::int64_t i = 0; i < take; ++i) ASSERT_EQ(pop_integer(box), popped++);
  }
  while (popped < pushed) ASSERT_EQ(pop_integer(box), popped++);
  EXPECT_TRUE(box.empty());
}

TEST(Mailbox, MessagesArriveWhole) {
  mailbox box(2);
  const std::string long_text(10'000, 'x');
  message sent = text(long_text);
  sent.sender = 42;
  ASSERT_EQ(box.push(std::move(sent)), mailbox::accepted);
  message got;
  ASSERT_TRUE(box.pop(got));
  EXPECT_EQ(got.type, mthread::msg_type::string);
  EXPECT_EQ(got.sender, 42u);
  EXPECT_EQ(got.text, long_text);
}

TEST(Mailbox, HasMessageChangesNothing) {
  mailbox box(2);
  ASSERT_EQ(box.push(integer(7)), mailbox::accepted);
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(box.has_message());
  EXPECT_EQ(pop_integer(box), 7);
  EXPECT_FALSE(box.has_message());
}

TEST(Mailbox, TheWakeBitGoesToTheNextPushOnly) {
  mailbox box(4);
  EXPECT_FALSE(box.wake_me_on_push()) << "nothing on its way: the receiver may sleep";
  EXPECT_EQ(box.push(integer(1)), mailbox::accepted_wake_receiver);
  EXPECT_EQ(box.push(integer(2)), mailbox::accepted) << "the first push since took the bit";
  EXPECT_TRUE(box.wake_me_on_push()) << "messages wait: do not sleep";
  EXPECT_EQ(pop_integer(box), 1);
  EXPECT_EQ(pop_integer(box), 2);
  EXPECT_FALSE(box.wake_me_on_push());
  EXPECT_FALSE(box.wake_me_on_push()) << "asking twice is asking once";
  EXPECT_EQ(box.push(integer(3)), mailbox::accepted_wake_receiver);
  EXPECT_EQ(box.push(integer(4)), mailbox::accepted);
}

TEST(Mailbox, ARefusedPushDoesNotTakeTheWakeBit) {
  mailbox box(1);
  ASSERT_EQ(box.push(integer(1)), mailbox::accepted);
  EXPECT_TRUE(box.wake_me_on_push());
  EXPECT_EQ(box.push(integer(2)), mailbox::refused);
  EXPECT_EQ(pop_integer(box), 1);
  EXPECT_EQ(box.push(integer(3)), mailbox::accepted_wake_receiver)
      << "the bit waits for a push that lands";
}

TEST(Mailbox, CloseRefusesEverythingAfterAndEmptiesTheMailbox) {
  mailbox box(4);
  ASSERT_EQ(box.push(text("held")), mailbox::accepted);
  ASSERT_EQ(box.push(integer(2)), mailbox::accepted);
  box.close();
  EXPECT_TRUE(box.empty());
  EXPECT_FALSE(box.has_message());
  EXPECT_EQ(pop_integer(box), -1) << "held messages were dropped";
  EXPECT_EQ(box.push(integer(3)), mailbox::refused);
  EXPECT_EQ(box.push(integer(4)), mailbox::refused);
}

TEST(Mailbox, CloseBeforeAnyMessageRefusesToo) {
  mailbox box(4);
  box.close();
  EXPECT_TRUE(box.empty());
  EXPECT_EQ(box.push(integer(1)), mailbox::refused);
  EXPECT_EQ(pop_integer(box), -1);
}

// Senders push as fast as they can while the receiver takes a few and closes: close() waits
// for a push caught between its claim and its publication, every push after it is refused,
// and nothing accepted is delivered twice (the sanitizer builds check the rest: no race, no
// leak of a dropped message).
TEST(Mailbox, CloseWithPushesInFlight) {
  constexpr int senders = 3;
  for (int trial = 0; trial < 200; ++trial) {
    mailbox box(4);
    std::atomic<bool> closed{false};
    std::atomic<int> accepted_after_close{0};
    std::atomic<int> pushes{0};
    std::vector<std::thread> threads;
    for (int s = 0; s < senders; ++s) {
      threads.emplace_back([&, s] {
        for (;;) {
          const bool was_closed = closed.load(std::memory_order_acquire);
          const auto result = box.push(text("sender " + std::to_string(s)));
          pushes.fetch_add(1, std::memory_order_relaxed);
          if (was_closed) {
            if (result != mailbox::refused) accepted_after_close.fetch_add(1);
            return;
          }
        }
      });
    }
    ASSERT_TRUE(wait_for([&] { return pushes.load() >= senders; }, 10s));
    message m;
    for (int i = 0; i < trial % 5; ++i) (void)box.pop(m);
    box.close();
    closed.store(true, std::memory_order_release);
    for (auto& t : threads) t.join();
    EXPECT_EQ(accepted_after_close.load(), 0) << "trial " << trial;
    EXPECT_TRUE(box.empty());
    EXPECT_FALSE(box.pop(m));
  }
}

// Several senders, one receiver that sleeps whenever the mailbox is empty, woken only by the
// push that took its wake bit: every message arrives exactly once, each sender's in the order
// it sent them, and no wake is lost (a lost one leaves the receiver asleep past its deadline).
TEST(Mailbox, ConcurrentSendersDeliverExactlyOnceInOrderWithoutLostWakes) {
  constexpr int senders = 4;
  constexpr std::int64_t per_sender = 20'000;
  mailbox box(8);

  std::mutex mutex;
  std::condition_variable woken;
  std::uint64_t wakes = 0;
  auto wake_receiver = [&] {
    const std::lock_guard lock(mutex);
    ++wakes;
    woken.notify_one();
  };

  std::vector<std::thread> threads;
  for (int s = 0; s < senders; ++s) {
    threads.emplace_back([&, s] {
      for (std::int64_t i = 0; i < per_sender;) {
        switch (box.push(integer(s * per_sender + i))) {
          case mailbox::refused:
            std::this_thread::yield();  // full: the receiver is behind
            continue;
          case mailbox::accepted_wake_receiver:
            wake_receiver();
            break;
          case mailbox::accepted:
            break;
        }
        ++i;
      }
    });
  }

  std::vector<std::int64_t> next(senders, 0);
  std::int64_t received = 0;
  bool lost_wake = false;
  while (received < senders * per_sender && !lost_wake) {
    message m;
    if (box.pop(m)) {
      const auto sender = static_cast<std::size_t>(m.integer / per_sender);
      ASSERT_LT(sender, next.size());
      ASSERT_EQ(m.integer % per_sender, next[sender]) << "sender " << sender;
      ++next[sender];
      ++received;
      continue;
    }
    std::unique_lock lock(mutex);
    const std::uint64_t seen = wakes;
    lock.unlock();
    if (box.wake_me_on_push()) continue;  // a message is on its way
    lock.lock();
    lost_wake = !woken.wait_for(lock, 10s, [&] { return wakes != seen; });
  }
  for (auto& t : threads) t.join();
  EXPECT_FALSE(lost_wake) << "the receiver slept through a push";
  EXPECT_EQ(received, senders * per_sender);
  EXPECT_EQ(pop_integer(box), -1) << "nothing delivered twice";
}

// empty() may be asked from any thread while the receiver works.
TEST(Mailbox, EmptyIsSafeFromAnyThread) {
  mailbox box(2);
  std::atomic<bool> done{false};
  std::thread watcher([&] {
    while (!done.load()) (void)box.empty();
  });
  for (std::int64_t i = 0; i < 20'000; ++i) {
    ASSERT_NE(box.push(integer(i)), mailbox::refused);
    ASSERT_EQ(pop_integer(box), i);
  }
  done.store(true);
  watcher.join();
  EXPECT_TRUE(box.empty());
}

}  // namespace
