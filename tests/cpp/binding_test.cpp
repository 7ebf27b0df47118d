// binding::start: the only way to a thread that no signal stops (PYTHON, SERVICE), and only with
// hooks that suspend and kill can reach it; a program written against mthread.hpp cannot make one.
#include <sched.h>

#include <atomic>
#include <memory>

#include "test_util.hpp"

using namespace std::chrono_literals;
using mt_test::wait_for;

namespace {

template <class Options>
concept names_a_type = requires(Options options) {
  options.type;
};
template <class Options>
concept holds_hooks = requires(Options options) {
  options.hooks;
};

// The public options say nothing of a thread's type or hooks: start_new_thread's threads are
// NATIVE, stopped by a signal wherever they run.
static_assert(!names_a_type<mthread::start_options>);
static_assert(!holds_hooks<mthread::start_options>);

class BindingStart : public mt_test::MthreadTest {};

struct counting_hooks : mthread::thread_hooks {
  std::atomic<int> suspends{0};
  std::atomic<int> kills{0};
  void on_suspend_request() override { ++suspends; }
  void on_kill_request() override { ++kills; }
};

TEST_F(BindingStart, CooperativeThreadWithoutHooksIsRefused) {
  const auto before = mthread::list().size();
  std::atomic<bool> ran{false};
  for (const auto type : {mthread::thread_type::service, mthread::thread_type::python}) {
    try {
      mthread::binding::start("no hooks", {}, type, nullptr, [&] { ran = true; });
      FAIL() << "no exception for type " << static_cast<int>(type);
    } catch (const mthread::error& e) {
      EXPECT_NE(std::string(e.what()).find("hooks"), std::string::npos) << e.what();
    }
  }
  EXPECT_EQ(mthread::list().size(), before);
  EXPECT_FALSE(ran.load());
}

TEST_F(BindingStart, OnlyCooperativeTypesAreStartedThisWay) {
  const auto before = mthread::list().size();
  const auto hooks = std::make_shared<counting_hooks>();
  EXPECT_THROW(mthread::binding::start("bad", {}, mthread::thread_type::main, hooks, [] {}),
               mthread::error);
  EXPECT_THROW(mthread::binding::start("bad", {}, mthread::thread_type::native, hooks, [] {}),
               mthread::error);
  mthread::start_options zero_depth;
  zero_depth.mailbox_depth = 0;
  EXPECT_THROW(
      mthread::binding::start("bad", zero_depth, mthread::thread_type::service, hooks, [] {}),
      mthread::error);
  EXPECT_EQ(mthread::list().size(), before);
}

// The hooks hear each request, in the thread that made it, once the request is recorded.
TEST_F(BindingStart, HooksHearSuspendAndKill) {
  const auto hooks = std::make_shared<counting_hooks>();
  std::atomic<bool> allowed{false};
  const auto id = mthread::binding::start("hooked", {}, mthread::thread_type::service, hooks, [&] {
    mthread::allow_suspend(true);
    allowed = true;
    for (;;) mthread::checkpoint();
  });
  ASSERT_TRUE(wait_for([&] { return allowed.load(); }));
  ASSERT_TRUE(mthread::suspend(id));
  EXPECT_EQ(hooks->suspends.load(), 1);
  EXPECT_EQ(mthread::status(id), mthread::thread_state::suspended);
  ASSERT_TRUE(mthread::kill(id));
  EXPECT_EQ(hooks->kills.load(), 1);
  EXPECT_TRUE(mthread::join(id, 5s));
}

// A PYTHON thread is created on its starter's CPU (the starter narrows its own CPUs for the
// creation): neither it nor its starter may stay narrowed. Each ends with the starter's CPUs.
TEST_F(BindingStart, APythonThreadEndsUpWithItsStartersCpusAndTheStarterKeepsThem) {
  cpu_set_t all;
  CPU_ZERO(&all);
  ASSERT_EQ(sched_getaffinity(0, sizeof all, &all), 0);
  if (CPU_COUNT(&all) < 2) GTEST_SKIP() << "one CPU: nothing is narrowed";
  const auto hooks = std::make_shared<counting_hooks>();
  for (int round = 0; round < 20; ++round) {
    cpu_set_t seen;
    CPU_ZERO(&seen);
    const auto id = mthread::binding::start("placed", {}, mthread::thread_type::python, hooks,
                                            [&] { sched_getaffinity(0, sizeof seen, &seen); });
    cpu_set_t starter_after;
    CPU_ZERO(&starter_after);
    ASSERT_EQ(sched_getaffinity(0, sizeof starter_after, &starter_after), 0);
    EXPECT_TRUE(CPU_EQUAL(&starter_after, &all)) << "round " << round;
    ASSERT_TRUE(mthread::join(id, 5s));
    EXPECT_TRUE(CPU_EQUAL(&seen, &all)) << "round " << round;
  }
}

}  // namespace
