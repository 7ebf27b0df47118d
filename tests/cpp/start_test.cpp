// start_new_thread, ids, names (whole, and the OS-level name), arguments, options, the thread's
// own view of itself, threads mthread does not know, join, and exceptions escaping a thread.
#include <array>
#include <atomic>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "test_util.hpp"

using namespace std::chrono_literals;
using mt_test::wait_for;

namespace {

class Start : public mt_test::MthreadTest {};

TEST_F(Start, RunsTheFunctionAndReturnsAPositiveIdNotMains) {
  std::atomic<bool> ran{false};
  const auto id = mthread::start_new_thread("runner", [&] { ran = true; });
  EXPECT_GT(id, 0u);
  EXPECT_NE(id, mthread::get_repl_id());
  EXPECT_TRUE(mthread::join(id, 5s));
  EXPECT_TRUE(ran);
}

TEST_F(Start, IdsAreUniqueIncreasingAndNeverReused) {
  std::set<mthread::thread_id> seen{mthread::get_repl_id()};
  mthread::thread_id previous = mthread::get_repl_id();
  for (int i = 0; i < 200; ++i) {
    const auto id = mthread::start_new_thread("short", [] {});
    EXPECT_GT(id, previous);
    EXPECT_TRUE(seen.insert(id).second) << "id " << id << " reused";
    previous = id;
    ASSERT_TRUE(mthread::join(id, 5s));
  }
  // Concurrent starts too.
  std::vector<mthread::thread_id> live;
  for (int i = 0; i < 20; ++i) {
    live.push_back(mthread::start_new_thread("live", [] { mthread::sleep_for(10s); }));
  }
  for (auto id : live) EXPECT_TRUE(seen.insert(id).second);
  for (auto id : live) EXPECT_TRUE(mthread::kill(id));
  for (auto id : live) EXPECT_TRUE(mthread::join(id, 5s));
}

TEST_F(Start, ThreadKnowsItsOwnIdAndName) {
  std::atomic<mthread::thread_id> seen_id{0};
  std::string seen_name;
  std::atomic<bool> done{false};
  const auto id = mthread::start_new_thread("self-aware", [&] {
    seen_id = mthread::get_self_id();
    seen_name = mthread::get_self_name();
    done = true;
  });
  ASSERT_TRUE(mthread::join(id, 5s));
  ASSERT_TRUE(done);
  EXPECT_EQ(seen_id.load(), id);
  EXPECT_EQ(seen_name, "self-aware");
}

TEST_F(Start, MainThreadIdentity) {
  EXPECT_EQ(mthread::get_self_id(), mthread::get_repl_id());
  EXPECT_EQ(mthread::get_self_name(), "MainThread");
  EXPECT_EQ(mthread::get_thread_name(mthread::get_repl_id()), "MainThread");
  const auto infos = mthread::list();
  ASSERT_FALSE(infos.empty());
  EXPECT_EQ(infos.front().id, mthread::get_repl_id());
  EXPECT_EQ(infos.front().type, mthread::thread_type::main);
  EXPECT_EQ(infos.front().name, "MainThread");
  // Seen from a started thread, the REPL id is still the main thread's.
  std::atomic<mthread::thread_id> repl{0};
  const auto id = mthread::start_new_thread("asker", [&] { repl = mthread::get_repl_id(); });
  ASSERT_TRUE(mthread::join(id, 5s));
  EXPECT_EQ(repl.load(), mthread::get_repl_id());
}

TEST_F(Start, UnknownIdsHaveNameUnknown) {
  EXPECT_EQ(mthread::get_thread_name(0), "unknown");
  EXPECT_EQ(mthread::get_thread_name(999'999'999), "unknown");
  const auto id = mthread::start_new_thread("ephemeral", [] {});
  ASSERT_TRUE(mthread::join(id, 5s));
  EXPECT_EQ(mthread::get_thread_name(id), "unknown");
}

TEST_F(Start, NamesAreKeptWhole) {
  const std::string names[] = {
      "",
      "x",
      "exactly15bytes!",
      "a name that is much longer than the fifteen bytes the kernel keeps for a thread",
      "température-capteur-numéro-1",
      "スレッド名前テスト",
      "emoji \xF0\x9F\x98\x80 thread \xF0\x9F\x9A\x80",
      std::string(1000, 'n'),
  };
  for (const auto& name : names) {
    std::atomic<bool> go{false};
    std::string self_name;
    const auto id = mthread::start_new_thread(name, [&] {
      self_name = mthread::get_self_name();
      while (!go) mthread::sleep_for(1ms);
    });
    EXPECT_EQ(mthread::get_thread_name(id), name);
    const auto infos = mthread::list();
    const auto* info = mt_test::find_info(infos, id);
    ASSERT_NE(info, nullptr);
    EXPECT_EQ(info->name, name);
    go = true;
    ASSERT_TRUE(mthread::join(id, 5s));
    EXPECT_EQ(self_name, name);
  }
}

// The kernel keeps 15 bytes of a thread's name: the OS-level name is the name's first 15 bytes,
// cut back to a whole UTF-8 character so `top -H` and gdb show valid text.
TEST_F(Start, OsLevelNameIsSet) {
  struct expectation {
    std::string name;
    std::string comm;
  };
  const expectation cases[] = {
      {"blink", "blink"},
      {"exactly15bytes!", "exactly15bytes!"},
      {"sixteen-bytes-xx", "sixteen-bytes-x"},
      {"a very long thread name indeed", "a very long thr"},
      // 7 two-byte characters are 14 bytes; the 8th would straddle byte 15.
      {"éééééééé", "ééééééé"},
      // A 4-byte character at bytes 12..15 does not fit: cut before it.
      {"abcdefghijkl\xF0\x9F\x98\x80xyz", "abcdefghijkl"},
  };
  for (const auto& c : cases) {
    std::atomic<long> tid{0};
    std::atomic<bool> go{false};
    const auto id = mthread::start_new_thread(c.name, [&] {
      tid = mt_test::gettid_now();
      while (!go) mthread::sleep_for(1ms);
    });
    ASSERT_TRUE(wait_for([&] { return tid.load() != 0; }));
    EXPECT_EQ(mt_test::read_comm(tid), c.comm) << "name " << c.name;
    EXPECT_LE(mt_test::read_comm(tid).size(), 15u);
    EXPECT_EQ(c.name.compare(0, c.comm.size(), c.comm), 0);
    go = true;
    ASSERT_TRUE(mthread::join(id, 5s));
  }
}

TEST_F(Start, ArgumentsAreCopiedMovedOrReferenced) {
  std::atomic<long> sum{0};
  const auto a = mthread::start_new_thread(
      "args",
      [&](int x, long y, const std::string& s) { sum = x + y + static_cast<long>(s.size()); }, 1,
      20L, std::string("abc"));
  ASSERT_TRUE(mthread::join(a, 5s));
  EXPECT_EQ(sum.load(), 24);

  // Move-only argument and move-only callable.
  auto owned = std::make_unique<int>(42);
  std::atomic<int> got{0};
  const auto b = mthread::start_new_thread(
      "move-only", [&got, p = std::make_unique<int>(1)](std::unique_ptr<int> q) { got = *p + *q; },
      std::move(owned));
  ASSERT_TRUE(mthread::join(b, 5s));
  EXPECT_EQ(got.load(), 43);

  // std::ref passes a reference.
  int counter = 0;
  const auto c = mthread::start_new_thread(
      "by-ref", [](int& n) { n = 7; }, std::ref(counter));
  ASSERT_TRUE(mthread::join(c, 5s));
  EXPECT_EQ(counter, 7);

  // A plain function pointer.
  static std::atomic<int> plain{0};
  const auto d = mthread::start_new_thread(
      "fn-ptr", +[](int v) { plain = v; }, 5);
  ASSERT_TRUE(mthread::join(d, 5s));
  EXPECT_EQ(plain.load(), 5);
}

TEST_F(Start, CapturedStateIsDestroyedWhenTheThreadEnds) {
  auto shared = std::make_shared<int>(1);
  std::weak_ptr<int> watch = shared;
  const auto id = mthread::start_new_thread("holder", [s = std::move(shared)] { (void)*s; });
  ASSERT_TRUE(mthread::join(id, 5s));
  EXPECT_TRUE(watch.expired());
}

// The function and its arguments are moved into the top of the thread's stack: large ones
// work, and ones that would leave the thread too little stack are refused before it starts.
TEST_F(Start, LargeCapturesRunAndOnesTooLargeForTheStackAreRefused) {
  const auto big = std::make_unique<std::array<unsigned char, 64 * 1024>>();
  big->fill(1);
  std::atomic<long> sum{0};
  const auto id = mthread::start_new_thread("big", [&sum, copy = *big] {
    long total = 0;
    for (const unsigned char byte : copy) total += byte;
    sum = total;
  });
  ASSERT_TRUE(mthread::join(id, 5s));
  EXPECT_EQ(sum.load(), 64 * 1024);

  const auto before = mthread::list().size();
  mthread::start_options small;
  small.stack_size = mthread::min_stack_size;
  const auto huge = std::make_unique<std::array<unsigned char, mthread::min_stack_size>>();
  try {
    mthread::start_new_thread(small, "huge", [copy = *huge] { (void)copy; });
    FAIL() << "no exception";
  } catch (const mthread::error& e) {
    EXPECT_NE(std::string(e.what()).find("do not fit"), std::string::npos) << e.what();
  }
  EXPECT_EQ(mthread::list().size(), before);
  const auto after = mthread::start_new_thread("after", [] {});
  EXPECT_TRUE(mthread::join(after, 5s));
}

TEST_F(Start, OptionsSetStackSizeAndMailboxDepth) {
  mthread::start_options options;
  options.stack_size = 256u << 10;
  options.mailbox_depth = 3;
  const auto id = mthread::start_new_thread(options, "opts", [] { mthread::wait(10s); });
  const auto infos = mthread::list();
  const auto* info = mt_test::find_info(infos, id);
  ASSERT_NE(info, nullptr);
  EXPECT_EQ(info->stack_size, 256u << 10);
  EXPECT_EQ(info->type, mthread::thread_type::native);
  // Depth 3: the fourth message is refused.
  EXPECT_TRUE(mthread::send_msg(id, 1));
  EXPECT_TRUE(mthread::send_msg(id, 2));
  EXPECT_TRUE(mthread::send_msg(id, 3));
  EXPECT_FALSE(mthread::send_msg(id, 4));
  EXPECT_TRUE(mthread::kill(id));
  EXPECT_TRUE(mthread::join(id, 5s));
}

TEST_F(Start, InvalidOptionsThrowAndStartNothing) {
  const auto before = mthread::list().size();
  mthread::start_options zero_depth;
  zero_depth.mailbox_depth = 0;
  EXPECT_THROW(mthread::start_new_thread(zero_depth, "bad", [] {}), mthread::error);
  mthread::start_options deep;
  deep.mailbox_depth = mthread::max_mailbox_depth + 1;
  EXPECT_THROW(mthread::start_new_thread(deep, "bad", [] {}), mthread::error);
  try {
    mthread::start_new_thread(zero_depth, "bad", [] {});
    FAIL() << "no exception";
  } catch (const mthread::error& e) {
    EXPECT_NE(std::string(e.what()).find("mailbox_depth"), std::string::npos) << e.what();
  }
  EXPECT_EQ(mthread::list().size(), before);
  // error derives from std::runtime_error.
  static_assert(std::is_base_of_v<std::runtime_error, mthread::error>);
  // thread_killed is deliberately not a std::exception.
  static_assert(!std::is_base_of_v<std::exception, mthread::thread_killed>);
  mthread::start_options max_depth;
  max_depth.mailbox_depth = mthread::max_mailbox_depth;
  const auto id = mthread::start_new_thread(max_depth, "deep-box", [] {});
  EXPECT_TRUE(mthread::join(id, 5s));
}

TEST_F(Start, ForeignThreadIsNotOneOfOurs) {
  mthread::thread_id self_id = 1;
  std::string self_name;
  mthread::thread_id repl = 0;
  bool threw_get_msg = false, threw_wait = false, threw_repl_set = false;
  mthread::message m;
  std::uint32_t note = 1;
  std::thread foreign([&] {
    self_id = mthread::get_self_id();
    self_name = mthread::get_self_name();
    repl = mthread::get_repl_id();
    m = mthread::get_msg();
    note = mthread::get_notification();
    try {
      mthread::get_msg(1ms);
    } catch (const mthread::error&) {
      threw_get_msg = true;
    }
    try {
      mthread::wait(1ms);
    } catch (const mthread::error&) {
      threw_wait = true;
    }
    try {
      mthread::repl_accept_msg(true);
    } catch (const mthread::error&) {
      threw_repl_set = true;
    }
    mthread::checkpoint();         // a no-op here
    mthread::sleep_for(1ms);       // a plain sleep here
    mthread::allow_suspend(true);  // ignored
  });
  foreign.join();
  EXPECT_EQ(self_id, 0u);
  EXPECT_EQ(self_name, "unknown");
  EXPECT_EQ(repl, mthread::get_repl_id());
  EXPECT_EQ(m.type, mthread::msg_type::none);
  EXPECT_EQ(note, 0u);
  EXPECT_TRUE(threw_get_msg);
  EXPECT_TRUE(threw_wait);
  EXPECT_TRUE(threw_repl_set);
  EXPECT_EQ(mthread::list().size(), 1u) << "a foreign thread must not be listed";
}

TEST_F(Start, ForeignThreadCanStartAndJoinThreads) {
  std::atomic<bool> ran{false};
  bool joined = false;
  std::thread foreign([&] {
    const auto id = mthread::start_new_thread("from-foreign", [&] { ran = true; });
    joined = mthread::join(id, 5s);
  });
  foreign.join();
  EXPECT_TRUE(joined);
  EXPECT_TRUE(ran);
}

TEST_F(Start, ThreadsStartThreads) {
  std::atomic<mthread::thread_id> child{0};
  std::atomic<bool> child_ran{false};
  const auto parent = mthread::start_new_thread("parent", [&] {
    child = mthread::start_new_thread("child", [&] { child_ran = true; });
    mthread::join(child, 5s);
  });
  ASSERT_TRUE(mthread::join(parent, 5s));
  EXPECT_TRUE(child_ran);
  EXPECT_GT(child.load(), parent);
}

TEST_F(Start, JoinEdgeCases) {
  EXPECT_TRUE(mthread::join(999'999'999, 1ms)) << "an id that never was is gone";
  EXPECT_THROW(mthread::join(mthread::get_repl_id(), 1ms), mthread::error);
  std::atomic<bool> threw{false};
  const auto id = mthread::start_new_thread("self-joiner", [&] {
    try {
      mthread::join(mthread::get_self_id(), 1ms);
    } catch (const mthread::error&) {
      threw = true;
    }
    mthread::sleep_for(10s);
  });
  ASSERT_TRUE(wait_for([&] { return threw.load(); }));
  const auto t0 = mt_test::clock_type::now();
  EXPECT_FALSE(mthread::join(id, 30ms)) << "join returns false on timeout";
  EXPECT_GE(mt_test::clock_type::now() - t0, 30ms);
  EXPECT_EQ(mthread::status(id), mthread::thread_state::waiting);
  EXPECT_TRUE(mthread::kill(id));
  EXPECT_TRUE(mthread::join(id, 5s));
}

// A thread_local of the target whose destructor holds the thread up after its body returned.
struct hold_at_exit {
  std::atomic<bool>* release = nullptr;
  ~hold_at_exit() {
    if (release != nullptr) wait_for([&] { return release->load(); }, 5s);
  }
};
thread_local hold_at_exit held_at_exit;

TEST_F(Start, JoinKeepsItsTimeoutWhileTheThreadIsStillEnding) {
  std::atomic<bool> release{false};
  const auto id = mthread::start_new_thread("slow-end", [&] { held_at_exit.release = &release; });
  // The body has returned, but the thread is not gone until its thread_locals are destroyed.
  ASSERT_FALSE(mthread::join(id, 50ms)) << "the thread cannot be gone yet";
  EXPECT_FALSE(release.load());
  EXPECT_NE(mthread::status(id), mthread::thread_state::terminated);
  release = true;
  EXPECT_TRUE(mthread::join(id, 5s));
  EXPECT_EQ(mthread::status(id), mthread::thread_state::terminated);
}

// A thread mthread does not know (a std::thread, a threading.Thread) has no record to be woken
// through: its join() joins the ended thread itself, as status() does (the reaper gathers ended
// threads for a millisecond before it joins them). What that saves is time, measured outside the
// tests (start + join from a std::thread, mean of 300: 1109 µs with the reaper's round, 283 µs
// now); here, that the thread is gone when join() returns, round after round.
TEST_F(Start, JoinFromAThreadMthreadDoesNotKnowLeavesTheThreadGone) {
  std::thread([] {
    for (int round = 0; round < 31; ++round) {
      std::atomic<bool> over{false};
      const auto id = mthread::start_new_thread("quick", [&] { over = true; });
      ASSERT_TRUE(wait_for([&] { return over.load(); }));
      ASSERT_TRUE(mthread::join(id, 5s));
      EXPECT_EQ(mthread::status(id), mthread::thread_state::terminated);
      EXPECT_FALSE(mt_test::in_list(id));
    }
  }).join();
}

TEST_F(Start, StatusAnswersWhileAThreadIsHeldUpInItsEndAndItIsReapedAfter) {
  std::atomic<bool> release{false};
  std::atomic<bool> body_over{false};
  const auto id = mthread::start_new_thread("slow-end", [&] {
    held_at_exit.release = &release;
    body_over = true;
  });
  ASSERT_TRUE(wait_for([&] { return body_over.load(); }));
  // status() waits for a thread's last moments, not for one held up in them: nobody joins it.
  for (int look = 0; look < 3; ++look) {
    EXPECT_NE(mthread::status(id), mthread::thread_state::terminated);
  }
  EXPECT_FALSE(release.load());
  release = true;
  EXPECT_TRUE(wait_for([&] { return mthread::status(id) == mthread::thread_state::terminated; }));
  EXPECT_FALSE(mt_test::in_list(id));
}

TEST_F(Start, AKillReachesAThreadJoiningOneThatIsStillEnding) {
  std::atomic<bool> release{false};
  const auto slow = mthread::start_new_thread("slow-end", [&] { held_at_exit.release = &release; });
  std::atomic<bool> joined{false};
  std::atomic<bool> unwound{false};
  const auto joiner = mthread::start_new_thread("joiner", [&] {
    mt_test::set_on_destroy at_end{unwound};
    joined = mthread::join(slow, 1h);
  });
  ASSERT_TRUE(wait_for([&] { return mthread::status(joiner) == mthread::thread_state::waiting; }));
  EXPECT_TRUE(mthread::kill(joiner));
  EXPECT_TRUE(mthread::join(joiner, 5s)) << "the joiner is killable while the target ends";
  EXPECT_TRUE(unwound.load());
  EXPECT_FALSE(joined.load());
  release = true;
  EXPECT_TRUE(mthread::join(slow, 5s));
}

TEST_F(Start, AThreadWhoseJoinerIsSuspendedIsStillReaped) {
  std::atomic<bool> finish{false};
  const auto target =
      mthread::start_new_thread("target", [&] { wait_for([&] { return finish.load(); }); });
  std::atomic<bool> joined{false};
  const auto joiner = mthread::start_new_thread("joiner", [&] {
    mthread::allow_suspend(true);
    joined = mthread::join(target, 1h);
  });
  ASSERT_TRUE(wait_for([&] { return mthread::status(joiner) == mthread::thread_state::waiting; }));
  ASSERT_TRUE(mthread::suspend(joiner));
  finish = true;
  // Gone (stack and mailbox freed) although the thread that joins it cannot act.
  EXPECT_TRUE(
      wait_for([&] { return mthread::status(target) == mthread::thread_state::terminated; }));
  EXPECT_FALSE(mt_test::in_list(target));
  EXPECT_FALSE(joined.load());
  EXPECT_TRUE(mthread::resume(joiner));
  EXPECT_TRUE(mthread::join(joiner, 5s));
  EXPECT_TRUE(joined.load());
}

TEST_F(Start, UncaughtExceptionIsPrintedWithTheNameAndTheProcessGoesOn) {
  testing::internal::CaptureStderr();
  const auto a = mthread::start_new_thread("thrower", [] { throw std::runtime_error("boom-42"); });
  ASSERT_TRUE(mthread::join(a, 5s));
  const auto b = mthread::start_new_thread("odd-thrower", [] { throw 17; });
  ASSERT_TRUE(mthread::join(b, 5s));
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("thrower"), std::string::npos) << err;
  EXPECT_NE(err.find("boom-42"), std::string::npos) << err;
  EXPECT_NE(err.find("odd-thrower"), std::string::npos) << err;
  // The process goes on: threads still start and talk.
  const auto main_id = mthread::get_repl_id();
  const auto c = mthread::start_new_thread("after", [&] { mthread::send_msg(main_id, 5); });
  const auto m = mthread::get_msg(5s);
  EXPECT_EQ(m.type, mthread::msg_type::integer);
  EXPECT_EQ(m.integer, 5);
  EXPECT_TRUE(mthread::join(c, 5s));
}

TEST_F(Start, ReturningOrBeingKilledEndsSilently) {
  testing::internal::CaptureStderr();
  const auto a = mthread::start_new_thread("returns", [] {});
  const auto b = mthread::start_new_thread("killed", [] { mthread::sleep_for(10s); });
  ASSERT_TRUE(wait_for([&] { return mthread::status(b) == mthread::thread_state::waiting; }));
  EXPECT_TRUE(mthread::kill(b));
  const auto c = mthread::start_new_thread("throws-killed", [] { throw mthread::thread_killed{}; });
  EXPECT_TRUE(mthread::join(a, 5s));
  EXPECT_TRUE(mthread::join(b, 5s));
  EXPECT_TRUE(mthread::join(c, 5s));
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
}

}  // namespace

namespace {

class Sleep : public mt_test::MthreadTest {};

TEST_F(Sleep, SleepsAtLeastTheDurationAndZeroOrNegativeReturnAtOnce) {
  auto t0 = mt_test::clock_type::now();
  mthread::sleep_for(30ms);
  EXPECT_GE(mt_test::clock_type::now() - t0, 30ms);
  t0 = mt_test::clock_type::now();
  mthread::sleep_for(0ns);
  mthread::sleep_for(-5s);
  EXPECT_LT(mt_test::clock_type::now() - t0, 1s);
  std::atomic<bool> slept{false};
  std::atomic<std::int64_t> took_us{0};
  const auto id = mthread::start_new_thread("sleeper", [&] {
    const auto s = mt_test::clock_type::now();
    mthread::sleep_for(20ms);
    took_us = std::chrono::duration_cast<std::chrono::microseconds>(mt_test::clock_type::now() - s)
                  .count();
    slept = true;
  });
  ASSERT_TRUE(mthread::join(id, 5s));
  EXPECT_TRUE(slept);
  EXPECT_GE(took_us.load(), 20'000);
}

TEST_F(Sleep, SleepingThreadIsWaiting) {
  const auto id = mthread::start_new_thread("sleeper", [] { mthread::sleep_for(30s); });
  EXPECT_TRUE(wait_for([&] { return mthread::status(id) == mthread::thread_state::waiting; }));
  EXPECT_TRUE(mthread::kill(id));
  EXPECT_TRUE(mthread::join(id, 5s));
}

}  // namespace
