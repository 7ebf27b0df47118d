// Mailboxes: send_msg / get_msg, FIFO order, depth, full / unknown / ended targets, strings
// and their limits, sender ids, broadcast, timeouts, and many senders into one receiver.
#include <algorithm>
#include <array>
#include <atomic>
#include <climits>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "test_util.hpp"

using namespace std::chrono_literals;
using mt_test::wait_for;

namespace {

class Messaging : public mt_test::MthreadTest {};

// A thread that sleeps in wait() until notified, then drains its mailbox into `out` and ends.
struct collector {
  std::vector<mthread::message> received;
  mthread::thread_id id = 0;

  explicit collector(std::size_t depth = mthread::default_mailbox_depth) {
    mthread::start_options options;
    options.mailbox_depth = depth;
    id = mthread::start_new_thread(options, "collector", [this] {
      mthread::wait(30s);
      for (;;) {
        auto m = mthread::get_msg();
        if (m.type == mthread::msg_type::none) break;
        received.push_back(std::move(m));
      }
    });
    EXPECT_TRUE(wait_for([&] { return mthread::status(id) == mthread::thread_state::waiting; }));
  }
  void finish() {
    mthread::notify(id, 1);
    EXPECT_TRUE(mthread::join(id, 5s));
  }
};

TEST_F(Messaging, IntegerAndStringRoundTripWithSender) {
  const auto main_id = mthread::get_repl_id();
  const auto id = mthread::start_new_thread("sender", [&] {
    mthread::send_msg(main_id, std::int64_t{12345});
    mthread::send_msg(main_id, "hello, main");
  });
  auto a = mthread::get_msg(5s);
  EXPECT_EQ(a.type, mthread::msg_type::integer);
  EXPECT_EQ(a.integer, 12345);
  EXPECT_EQ(a.sender, id);
  auto b = mthread::get_msg(5s);
  EXPECT_EQ(b.type, mthread::msg_type::string);
  EXPECT_EQ(b.text, "hello, main");
  EXPECT_EQ(b.sender, id);
  EXPECT_TRUE(mthread::join(id, 5s));
}

TEST_F(Messaging, IntegerExtremesAndTextContentSurvive) {
  const std::string utf8 = "ünïcødé \xF0\x9F\x8C\xA1 23.5°C";
  const std::string with_nul("a\0b\0c", 5);
  const std::string longest(mthread::max_message_length, 'z');
  const auto self = mthread::get_repl_id();
  EXPECT_TRUE(mthread::send_msg(self, INT64_MIN));
  EXPECT_TRUE(mthread::send_msg(self, INT64_MAX));
  EXPECT_TRUE(mthread::send_msg(self, std::int64_t{0}));
  EXPECT_TRUE(mthread::send_msg(self, utf8));
  EXPECT_TRUE(mthread::send_msg(self, with_nul));
  EXPECT_TRUE(mthread::send_msg(self, longest));
  EXPECT_EQ(mthread::get_msg().integer, INT64_MIN);
  EXPECT_EQ(mthread::get_msg().integer, INT64_MAX);
  auto zero = mthread::get_msg();
  EXPECT_EQ(zero.type, mthread::msg_type::integer);
  EXPECT_EQ(zero.integer, 0);
  EXPECT_EQ(mthread::get_msg().text, utf8);
  EXPECT_EQ(mthread::get_msg().text, with_nul);
  EXPECT_EQ(mthread::get_msg().text, longest);
  EXPECT_EQ(mthread::get_msg().type, mthread::msg_type::none);
}

TEST_F(Messaging, SendingToSelfHasOwnIdAsSender) {
  EXPECT_TRUE(mthread::send_msg(mthread::get_repl_id(), 3));
  const auto m = mthread::get_msg();
  EXPECT_EQ(m.sender, mthread::get_repl_id());
  EXPECT_EQ(m.integer, 3);
}

TEST_F(Messaging, ForeignSenderIdIsZero) {
  bool sent = false;
  std::thread foreign([&] {
    sent = mthread::send_msg(mthread::get_repl_id(), "from outside") &&
           mthread::send_msg(mthread::get_repl_id(), 9);
  });
  foreign.join();
  EXPECT_TRUE(sent);
  const auto a = mthread::get_msg();
  EXPECT_EQ(a.sender, 0u);
  EXPECT_EQ(a.text, "from outside");
  const auto b = mthread::get_msg();
  EXPECT_EQ(b.sender, 0u);
  EXPECT_EQ(b.integer, 9);
}

TEST_F(Messaging, EmptyAndTooLongStringsAreErrors) {
  const auto self = mthread::get_repl_id();
  EXPECT_THROW(mthread::send_msg(self, std::string_view{}), mthread::error);
  EXPECT_THROW(mthread::send_msg(self, ""), mthread::error);
  const std::string too_long(mthread::max_message_length + 1, 'x');
  try {
    mthread::send_msg(self, too_long);
    FAIL() << "no exception";
  } catch (const mthread::error& e) {
    EXPECT_NE(std::string(e.what()).find(std::to_string(mthread::max_message_length)),
              std::string::npos)
        << e.what();
  }
  // Errors are thrown even for an unknown target, and nothing was queued.
  EXPECT_THROW(mthread::send_msg(999'999'999, ""), mthread::error);
  EXPECT_EQ(mthread::get_msg().type, mthread::msg_type::none);
  EXPECT_EQ(mthread::max_message_length, 64u << 10);
}

TEST_F(Messaging, MailboxIsFifo) {
  collector c(64);
  for (int i = 0; i < 64; ++i) {
    if (i % 2 == 0) {
      ASSERT_TRUE(mthread::send_msg(c.id, std::int64_t{i}));
    } else {
      ASSERT_TRUE(mthread::send_msg(c.id, std::to_string(i)));
    }
  }
  c.finish();
  ASSERT_EQ(c.received.size(), 64u);
  for (int i = 0; i < 64; ++i) {
    const auto& m = c.received[static_cast<std::size_t>(i)];
    EXPECT_EQ(m.sender, mthread::get_repl_id());
    if (i % 2 == 0) {
      EXPECT_EQ(m.type, mthread::msg_type::integer);
      EXPECT_EQ(m.integer, i);
    } else {
      EXPECT_EQ(m.type, mthread::msg_type::string);
      EXPECT_EQ(m.text, std::to_string(i));
    }
  }
}

TEST_F(Messaging, DefaultDepthIsEightAndFullFailsAtOnce) {
  EXPECT_EQ(mthread::default_mailbox_depth, 8u);
  collector c;
  for (int i = 0; i < 8; ++i) EXPECT_TRUE(mthread::send_msg(c.id, std::int64_t{i})) << i;
  const auto t0 = mt_test::clock_type::now();
  EXPECT_FALSE(mthread::send_msg(c.id, std::int64_t{8}));
  EXPECT_FALSE(mthread::send_msg(c.id, "no room"));
  EXPECT_LT(mt_test::clock_type::now() - t0, 1s) << "a full mailbox must not block";
  c.finish();
  ASSERT_EQ(c.received.size(), 8u) << "the refused messages were not queued";
  for (int i = 0; i < 8; ++i) EXPECT_EQ(c.received[static_cast<std::size_t>(i)].integer, i);
}

TEST_F(Messaging, MainMailboxAlsoHoldsEight) {
  const auto main_id = mthread::get_repl_id();
  std::atomic<int> accepted{0};
  std::atomic<bool> refused{false};
  const auto id = mthread::start_new_thread("filler", [&] {
    while (mthread::send_msg(main_id, std::int64_t{accepted.load()})) ++accepted;
    refused = true;
  });
  ASSERT_TRUE(mthread::join(id, 5s));
  EXPECT_TRUE(refused);
  EXPECT_EQ(accepted.load(), 8);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(mthread::get_msg().integer, i);
  EXPECT_EQ(mthread::get_msg().type, mthread::msg_type::none);
}

TEST_F(Messaging, UnknownAndEndedTargetsRefuse) {
  EXPECT_FALSE(mthread::send_msg(999'999'999, 1));
  EXPECT_FALSE(mthread::send_msg(999'999'999, "x"));
  const auto id = mthread::start_new_thread("gone", [] {});
  ASSERT_TRUE(mthread::join(id, 5s));
  EXPECT_FALSE(mthread::send_msg(id, 1));
  EXPECT_FALSE(mthread::send_msg(id, "late"));
}

TEST_F(Messaging, ThreadEndingWithQueuedMessagesFreesThem) {
  // Messages left in a mailbox are freed with it; nothing leaks (checked by ASan builds and
  // by the churn test), and the thread still ends promptly.
  const auto id = mthread::start_new_thread("leaves-mail", [] { mthread::wait(30s); });
  ASSERT_TRUE(wait_for([&] { return mthread::status(id) == mthread::thread_state::waiting; }));
  for (int i = 0; i < 8; ++i) ASSERT_TRUE(mthread::send_msg(id, std::string(1000, 'm')));
  mthread::notify(id, 1);
  EXPECT_TRUE(mthread::join(id, 5s));
  EXPECT_FALSE(mthread::send_msg(id, 1));
}

TEST_F(Messaging, GetMsgWithoutTimeoutNeverBlocks) {
  const auto t0 = mt_test::clock_type::now();
  for (int i = 0; i < 1000; ++i) {
    const auto m = mthread::get_msg();
    ASSERT_EQ(m.type, mthread::msg_type::none);
    EXPECT_EQ(m.sender, 0u);
    EXPECT_EQ(m.integer, 0);
    EXPECT_TRUE(m.text.empty());
  }
  EXPECT_LT(mt_test::clock_type::now() - t0, 1s);
}

TEST_F(Messaging, GetMsgWithTimeoutWaitsThenReturnsNone) {
  const auto t0 = mt_test::clock_type::now();
  const auto m = mthread::get_msg(60ms);
  const auto waited = mt_test::clock_type::now() - t0;
  EXPECT_EQ(m.type, mthread::msg_type::none);
  EXPECT_GE(waited, 60ms);
  EXPECT_LT(waited, 5s);
  // A zero timeout is a poll.
  EXPECT_EQ(mthread::get_msg(0ms).type, mthread::msg_type::none);
  EXPECT_EQ(mthread::get_msg(-5ms).type, mthread::msg_type::none);
}

TEST_F(Messaging, GetMsgWithTimeoutWakesWhenAMessageArrives) {
  const auto main_id = mthread::get_repl_id();
  std::atomic<bool> go{false};
  const auto id = mthread::start_new_thread("late-sender", [&] {
    while (!go) mthread::sleep_for(1ms);
    mthread::send_msg(main_id, "arrived");
  });
  go = true;
  const auto t0 = mt_test::clock_type::now();
  const auto m = mthread::get_msg(20s);
  EXPECT_LT(mt_test::clock_type::now() - t0, 10s) << "woke on arrival, not at the timeout";
  EXPECT_EQ(m.text, "arrived");
  EXPECT_TRUE(mthread::join(id, 5s));
}

TEST_F(Messaging, ReceiverBlockedInGetMsgIsWaitingAndWakes) {
  std::atomic<std::int64_t> got{0};
  const auto id = mthread::start_new_thread("receiver", [&] {
    const auto m = mthread::get_msg(30s);
    got = m.integer;
  });
  ASSERT_TRUE(wait_for([&] { return mthread::status(id) == mthread::thread_state::waiting; }));
  EXPECT_TRUE(mthread::send_msg(id, std::int64_t{77}));
  EXPECT_TRUE(mthread::join(id, 5s));
  EXPECT_EQ(got.load(), 77);
}

TEST_F(Messaging, BroadcastReachesEveryThreadButTheSender) {
  collector a, b, c;
  EXPECT_TRUE(mthread::send_msg(mthread::broadcast, std::int64_t{5}));
  EXPECT_TRUE(mthread::send_msg(0, "all"));
  a.finish();
  b.finish();
  c.finish();
  for (auto* col : {&a, &b, &c}) {
    ASSERT_EQ(col->received.size(), 2u);
    EXPECT_EQ(col->received[0].integer, 5);
    EXPECT_EQ(col->received[1].text, "all");
    EXPECT_EQ(col->received[0].sender, mthread::get_repl_id());
  }
  EXPECT_EQ(mthread::get_msg().type, mthread::msg_type::none) << "the sender gets no copy";
}

TEST_F(Messaging, BroadcastFromAThreadReachesMain) {
  const auto id = mthread::start_new_thread("caster", [] { mthread::send_msg(0, "to all"); });
  const auto m = mthread::get_msg(5s);
  EXPECT_EQ(m.text, "to all");
  EXPECT_EQ(m.sender, id);
  EXPECT_TRUE(mthread::join(id, 5s));
}

TEST_F(Messaging, BroadcastIsFalseWhenOneMailboxIsFullOrNoOneListens) {
  EXPECT_FALSE(mthread::send_msg(0, 1)) << "no other thread";
  collector small(1), roomy(8);
  ASSERT_TRUE(mthread::send_msg(small.id, std::int64_t{100}));
  EXPECT_FALSE(mthread::send_msg(0, std::int64_t{200})) << "one mailbox was full";
  small.finish();
  roomy.finish();
  ASSERT_EQ(small.received.size(), 1u);
  EXPECT_EQ(small.received[0].integer, 100);
  ASSERT_EQ(roomy.received.size(), 1u) << "the others still got it";
  EXPECT_EQ(roomy.received[0].integer, 200);
}

// Several senders, one receiver with a small mailbox: senders retry on "full"; every message
// arrives exactly once and each sender's messages in the order sent.
TEST_F(Messaging, ManySendersOneReceiverNothingLostOrDuplicated) {
  constexpr int senders = 4;
  constexpr int per_sender = 3000;
  const auto main_id = mthread::get_repl_id();
  std::atomic<long> refusals{0};
  std::vector<mthread::thread_id> ids;
  for (int s = 0; s < senders; ++s) {
    ids.push_back(mthread::start_new_thread("sender-" + std::to_string(s), [&, s] {
      for (int i = 0; i < per_sender; ++i) {
        const std::int64_t value = std::int64_t{s} * 1'000'000 + i;
        bool sent = (i % 3 == 0) ? mthread::send_msg(main_id, std::to_string(value))
                                 : mthread::send_msg(main_id, value);
        while (!sent) {
          ++refusals;
          std::this_thread::yield();
          sent = (i % 3 == 0) ? mthread::send_msg(main_id, std::to_string(value))
                              : mthread::send_msg(main_id, value);
        }
      }
    }));
  }
  std::map<mthread::thread_id, std::int64_t> next;  // next expected index per sender
  for (int s = 0; s < senders; ++s) next[ids[static_cast<std::size_t>(s)]] = 0;
  int total = 0;
  const auto deadline = mt_test::clock_type::now() + 40s;
  while (total < senders * per_sender && mt_test::clock_type::now() < deadline) {
    const auto m = mthread::get_msg(1s);
    if (m.type == mthread::msg_type::none) continue;
    const std::int64_t value =
        m.type == mthread::msg_type::integer ? m.integer : std::stoll(m.text);
    const std::int64_t s = value / 1'000'000, i = value % 1'000'000;
    ASSERT_LT(s, senders);
    ASSERT_EQ(m.sender, ids[static_cast<std::size_t>(s)]) << "sender id is the sending thread's";
    ASSERT_EQ(i, next[m.sender]) << "lost, duplicated or reordered";
    ASSERT_EQ(m.type, i % 3 == 0 ? mthread::msg_type::string : mthread::msg_type::integer);
    ++next[m.sender];
    ++total;
  }
  EXPECT_EQ(total, senders * per_sender);
  for (auto id : ids) EXPECT_TRUE(mthread::join(id, 10s));
  EXPECT_EQ(mthread::get_msg().type, mthread::msg_type::none) << "nothing extra";
  std::cout << "[  info    ] full-mailbox refusals: " << refusals.load() << std::endl;
}

// Threads sending to each other in a ring: exercises concurrent push and pop on every mailbox.
TEST_F(Messaging, RingOfThreadsPassesATokenExactly) {
  constexpr int n = 5;
  constexpr int laps = 200;
  std::vector<std::atomic<mthread::thread_id>> ids(n);
  std::atomic<bool> ready{false};
  std::atomic<int> hops{0};
  std::vector<mthread::thread_id> started;
  const auto main_id = mthread::get_repl_id();
  for (int k = 0; k < n; ++k) {
    started.push_back(mthread::start_new_thread("ring-" + std::to_string(k), [&, k] {
      while (!ready) mthread::sleep_for(1ms);
      const auto next_id = ids[static_cast<std::size_t>((k + 1) % n)].load();
      for (;;) {
        const auto m = mthread::get_msg(30s);
        if (m.type != mthread::msg_type::integer) return;
        ++hops;
        if (m.integer >= std::int64_t{n} * laps) {
          mthread::send_msg(main_id, m.integer);
          return;
        }
        while (!mthread::send_msg(next_id, m.integer + 1)) mthread::sleep_for(100us);
      }
    }));
    ids[static_cast<std::size_t>(k)] = started.back();
  }
  ready = true;
  ASSERT_TRUE(mthread::send_msg(started[0], std::int64_t{1}));
  const auto m = mthread::get_msg(30s);
  EXPECT_EQ(m.integer, std::int64_t{n} * laps);
  EXPECT_EQ(hops.load(), n * laps);
  for (auto id : started) mthread::kill(id);
  for (auto id : started) EXPECT_TRUE(mthread::join(id, 5s));
}

TEST_F(Messaging, ReplAcceptMsgFlag) {
  EXPECT_TRUE(mthread::repl_accept_msg()) << "on by default";
  EXPECT_TRUE(mthread::repl_accept_msg(false)) << "setting returns the previous value";
  EXPECT_FALSE(mthread::repl_accept_msg());
  bool seen_from_thread = true;
  bool threw = false;
  const auto id = mthread::start_new_thread("asker", [&] {
    seen_from_thread = mthread::repl_accept_msg();
    try {
      mthread::repl_accept_msg(true);
    } catch (const mthread::error&) {
      threw = true;
    }
  });
  ASSERT_TRUE(mthread::join(id, 5s));
  EXPECT_FALSE(seen_from_thread);
  EXPECT_TRUE(threw) << "only the main thread may set it";
  EXPECT_FALSE(mthread::repl_accept_msg()) << "the refused set changed nothing";
  // Messages still queue for get_msg() while it is off.
  EXPECT_TRUE(mthread::send_msg(mthread::get_repl_id(), 1));
  EXPECT_EQ(mthread::get_msg().integer, 1);
  EXPECT_FALSE(mthread::repl_accept_msg(true));
  EXPECT_TRUE(mthread::repl_accept_msg(true));
  EXPECT_TRUE(mthread::repl_accept_msg());
}

// Sends its message from a thread_local's destructor, after the thread's other thread_locals
// (the library's included) may already be gone.
struct send_at_exit {
  mthread::thread_id to = 0;
  ~send_at_exit() {
    if (to != 0) mthread::send_msg(to, "bye");
  }
};
thread_local send_at_exit farewell;

TEST_F(Messaging, AThreadLocalsDestructorCanStillSend) {
  const auto main_id = mthread::get_self_id();
  const auto id = mthread::start_new_thread("leaver", [main_id] {
    farewell.to = main_id;  // constructed before the library remembers a target
    mthread::send_msg(main_id, std::int64_t{1});
  });
  ASSERT_TRUE(mthread::join(id, 5s));
  const auto first = mthread::get_msg(5s);
  EXPECT_EQ(first.integer, 1);
  const auto last = mthread::get_msg(5s);
  EXPECT_EQ(last.type, mthread::msg_type::string);
  EXPECT_EQ(last.text, "bye");
  EXPECT_EQ(last.sender, id);
}

// A broadcast's wakes go from target to target, from one thread to start with. Threads that pace
// them (as a binding's do around a receive: the next target is woken once the receiver holds its
// interpreter's lock, here a mutex the main thread also takes) and threads that do not are mixed,
// some are suspended and resumed, one is killed: every receiver that is not suspended takes every
// broadcast, and a resumed one takes what came meanwhile.
TEST_F(Messaging, ABroadcastReachesPacedAndUnpacedReceiversThroughSuspendsAndAKill) {
  constexpr std::size_t per_kind = 8;
  constexpr std::size_t threads = 2 * per_kind;
  constexpr std::int64_t rounds = 30;
  // Shared with the threads, which outlive the test's frame if an assertion ends it early.
  struct shared_state {
    std::mutex interpreter_lock;
    std::array<std::atomic<std::int64_t>, threads> last{};
  };
  const auto state = std::make_shared<shared_state>();
  std::vector<mthread::thread_id> ids;
  const auto hooks = std::make_shared<mthread::thread_hooks>();
  mthread::start_options options;
  options.mailbox_depth = 2 * static_cast<std::size_t>(rounds);  // a suspended one keeps them all
  for (std::size_t i = 0; i < threads; ++i) {
    if (i % 2 == 0) {
      ids.push_back(mthread::binding::start(
          "paced", options, mthread::thread_type::service, hooks, [state, i] {
            mthread::allow_suspend(true);
            for (;;) {
              std::int64_t value = 0;
              {
                const mthread::binding::paced_wakes paced;
                value = mthread::binding::get_msg(mthread::deadline::never()).integer;
                state->interpreter_lock.lock();
              }
              state->last[i] = value;
              state->interpreter_lock.unlock();
              if (value < 0) return;
            }
          }));
    } else {
      ids.push_back(mthread::start_new_thread(options, "unpaced", [state, i] {
        mthread::allow_suspend(true);
        for (;;) {
          const std::int64_t value = mthread::get_msg(30s).integer;
          state->last[i] = value;
          if (value <= 0) return;
        }
      }));
    }
  }
  for (const auto id : ids) {
    ASSERT_TRUE(wait_for([&] { return mthread::status(id) == mthread::thread_state::waiting; }));
  }
  const std::vector<std::size_t> suspended{2, 3, 8, 9};  // two of each kind
  const std::size_t killed = 4;
  auto takes_part = [&](std::size_t i, std::int64_t round) {
    if (i == killed && round > 10) return false;
    return std::find(suspended.begin(), suspended.end(), i) == suspended.end() || round <= 5 ||
           round > 20;
  };
  for (std::int64_t round = 1; round <= rounds; ++round) {
    if (round == 6) {
      for (const auto i : suspended) ASSERT_TRUE(mthread::suspend(ids[i]));
    }
    if (round == 11) {
      ASSERT_TRUE(mthread::kill(ids[killed]));
      ASSERT_TRUE(mthread::join(ids[killed], 5s));
    }
    if (round == 21) {
      for (const auto i : suspended) {
        EXPECT_EQ(state->last[i].load(), 5) << "thread " << i << " took messages while suspended";
        ASSERT_TRUE(mthread::resume(ids[i]));
      }
    }
    {
      // Every other round the lock is held while the broadcast goes out, as a Python sender's
      // interpreter lock is just after.
      std::unique_lock held(state->interpreter_lock, std::defer_lock);
      if (round % 2 == 0) held.lock();
      ASSERT_TRUE(mthread::send_msg(mthread::broadcast, round));
    }
    for (std::size_t i = 0; i < threads; ++i) {
      if (!takes_part(i, round)) continue;
      ASSERT_TRUE(wait_for([&] { return state->last[i].load() == round; }, 10s))
          << "thread " << i << " missed round " << round << " (it has " << state->last[i].load()
          << ")";
    }
  }
  (void)mthread::send_msg(mthread::broadcast, std::int64_t{-1});
  for (std::size_t i = 0; i < threads; ++i) {
    if (i == killed) continue;
    EXPECT_TRUE(mthread::join(ids[i], 10s)) << "thread " << i;
  }
}
}  // namespace
