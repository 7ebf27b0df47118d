// Stacks: stack_size() default / clamp / 0 restores; the size a thread really gets; the
// high-water mark (max_stack_used) to within a page; lazy residency; reuse measuring afresh; and
// an overflow stopping the process with a message naming the thread and its stack size.
#include <sys/resource.h>

#include <alloca.h>

#include <atomic>
#include <csignal>
#include <cstring>

#include "test_util.hpp"

using namespace std::chrono_literals;
using mt_test::wait_for;

namespace {

constexpr std::size_t KiB = 1024;
constexpr std::size_t MiB = 1024 * 1024;

class Stack : public mt_test::MthreadTest {};

TEST_F(Stack, Limits) {
  EXPECT_EQ(mthread::default_stack_size, 8 * MiB);
  EXPECT_EQ(mthread::min_stack_size, 128 * KiB);
  EXPECT_EQ(mthread::max_stack_size, 1024 * MiB);
  EXPECT_EQ(mthread::min_stack_size % mt_test::page_size(), 0u);
}

TEST_F(Stack, StackSizeDefaultClampAndZeroRestores) {
  EXPECT_EQ(mthread::stack_size(), mthread::default_stack_size);
  // The device's small sizes are clamped up, not refused.
  for (std::size_t device : {2 * KiB, 4 * KiB, 8 * KiB, 16 * KiB, 48 * KiB}) {
    EXPECT_EQ(mthread::stack_size(device), mthread::min_stack_size) << device;
    EXPECT_EQ(mthread::stack_size(), mthread::min_stack_size);
  }
  EXPECT_EQ(mthread::stack_size(1), mthread::min_stack_size);
  EXPECT_EQ(mthread::stack_size(mthread::max_stack_size + 1), mthread::max_stack_size);
  EXPECT_EQ(mthread::stack_size(SIZE_MAX), mthread::max_stack_size);
  // Rounded up to whole pages.
  const std::size_t odd = 200'000;
  const std::size_t page = mt_test::page_size();
  EXPECT_EQ(mthread::stack_size(odd), (odd + page - 1) / page * page);
  EXPECT_EQ(mthread::stack_size(512 * KiB), 512 * KiB);
  EXPECT_EQ(mthread::stack_size(), 512 * KiB);
  EXPECT_EQ(mthread::stack_size(0), mthread::default_stack_size);
  EXPECT_EQ(mthread::stack_size(), mthread::default_stack_size);
}

TEST_F(Stack, ThreadsStartedAfterGetTheNewDefault) {
  mthread::stack_size(256 * KiB);
  const auto a = mthread::start_new_thread("small", [] { mthread::wait(30s); });
  mthread::stack_size(0);
  const auto b = mthread::start_new_thread("default", [] { mthread::wait(30s); });
  mthread::start_options tiny;
  tiny.stack_size = 4 * KiB;  // clamped up
  const auto c = mthread::start_new_thread(tiny, "tiny", [] { mthread::wait(30s); });
  mthread::start_options huge;
  huge.stack_size = 4096 * MiB;  // clamped down
  const auto d = mthread::start_new_thread(huge, "huge", [] { mthread::wait(30s); });
  const auto infos = mthread::list();
  ASSERT_NE(mt_test::find_info(infos, a), nullptr);
  EXPECT_EQ(mt_test::find_info(infos, a)->stack_size, 256 * KiB);
  EXPECT_EQ(mt_test::find_info(infos, b)->stack_size, mthread::default_stack_size);
  EXPECT_EQ(mt_test::find_info(infos, c)->stack_size, mthread::min_stack_size);
  EXPECT_EQ(mt_test::find_info(infos, d)->stack_size, mthread::max_stack_size);
  // The main thread's stack is the kernel's: its limit (RLIMIT_STACK) and the depth it reached.
  rlimit limit{};
  ASSERT_EQ(getrlimit(RLIMIT_STACK, &limit), 0);
  EXPECT_EQ(infos.front().stack_size,
            limit.rlim_cur == RLIM_INFINITY ? 0u : static_cast<std::size_t>(limit.rlim_cur));
  EXPECT_GT(infos.front().max_stack_used, 0u) << "main: the stack it has used so far";
  for (auto id : {a, b, c, d}) mthread::notify(id, 1);
  for (auto id : {a, b, c, d}) EXPECT_TRUE(mthread::join(id, 5s));
}

// Touches `bytes` of stack below the caller's frame, every page of it.
__attribute__((noinline)) void touch_stack(std::size_t bytes) {
  if (bytes == 0) return;
  auto* p = static_cast<char*>(alloca(bytes));
  std::memset(p, 0x5A, bytes);
  asm volatile("" : : "r"(p) : "memory");
}

// Runs a thread that touches `bytes` of stack and then waits; returns its max_stack_used.
std::size_t measured_use(std::size_t bytes, std::size_t stack = 8 * MiB) {
  mthread::start_options options;
  options.stack_size = stack;
  std::atomic<bool> touched{false};
  const auto id = mthread::start_new_thread(options, "toucher", [&, bytes] {
    touch_stack(bytes);
    touched = true;
    mthread::wait(30s);
  });
  EXPECT_TRUE(wait_for(
      [&] { return touched.load() && mthread::status(id) == mthread::thread_state::waiting; }));
  const auto infos = mthread::list();
  const auto* info = mt_test::find_info(infos, id);
  const std::size_t used = info != nullptr ? info->max_stack_used : 0;
  mthread::notify(id, 1);
  EXPECT_TRUE(mthread::join(id, 5s));
  return used;
}

// max_stack_used is the high-water mark to within one page. What a thread uses besides its own
// frames is fixed: glibc puts the thread's control block and static TLS at the top of a stack it
// is given, and the entry frames sit below that. The test measures that overhead with a thread
// that touches nothing and allows it (plus one page for the rounding of the measure) on top of
// each N.
TEST_F(Stack, MaxStackUsedIsTheHighWaterMarkWithinAPage) {
  const std::size_t page = mt_test::page_size();
  const std::size_t baseline = measured_use(0);
  mt_test::report("stack_baseline_used_bytes", static_cast<double>(baseline), "bytes");
  EXPECT_GT(baseline, 0u);
  EXPECT_LT(baseline, 64 * KiB) << "an idle thread uses little stack";
  for (std::size_t kib : {16u, 64u, 100u, 256u, 1000u, 4096u}) {
    const std::size_t n = kib * KiB;
    const std::size_t used = measured_use(n);
    EXPECT_GE(used, n) << kib << " KiB touched";
    EXPECT_LE(used, n + baseline + page) << kib << " KiB touched";
    std::cout << "[  info    ] touched " << n << " B, max_stack_used " << used << " B, excess "
              << (used - n) << " B (baseline " << baseline << " B)" << std::endl;
    EXPECT_EQ(used % page, 0u);
  }
}

TEST_F(Stack, NearlyTheWholeStackIsUsable) {
  const std::size_t stack = 1 * MiB;
  const std::size_t used = measured_use(stack - 64 * KiB, stack);
  EXPECT_GE(used, stack - 64 * KiB);
  EXPECT_LE(used, stack);
}

TEST_F(Stack, AReusedStackMeasuresAfresh) {
  EXPECT_GE(measured_use(2 * MiB), 2 * MiB);
  // The next threads of the same size may get that stack back from the cache: they must not
  // inherit its high-water mark.
  for (int i = 0; i < 10; ++i) EXPECT_LT(measured_use(0), 64 * KiB);
}

TEST_F(Stack, HighWaterMarkSeenWhileTheThreadRunsAndStaysAfterItReturns) {
  std::atomic<int> phase{0};
  const auto id = mthread::start_new_thread("grower", [&] {
    touch_stack(300 * KiB);
    phase = 1;
    while (phase == 1) mthread::sleep_for(1ms);
    touch_stack(600 * KiB);
    phase = 3;
    mthread::wait(30s);
  });
  ASSERT_TRUE(wait_for([&] { return phase.load() == 1; }));
  auto infos = mthread::list();
  const std::size_t first = mt_test::find_info(infos, id)->max_stack_used;
  EXPECT_GE(first, 300 * KiB);
  EXPECT_LT(first, 600 * KiB);
  phase = 2;
  ASSERT_TRUE(wait_for([&] { return phase.load() == 3; }));
  infos = mthread::list();
  EXPECT_GE(mt_test::find_info(infos, id)->max_stack_used, 600 * KiB);
  mthread::notify(id, 1);
  EXPECT_TRUE(mthread::join(id, 5s));
}

// 64 threads with 4 MiB stacks that sleep must not cost 256 MiB: a page never touched is not
// resident.
TEST_F(Stack, UntouchedStackPagesAreNotResident) {
  constexpr int n = 64;
  mthread::stack_size(4 * MiB);
  // Warm up the allocator and the reaper so the measure is the threads' own.
  for (int i = 0; i < 4; ++i) {
    const auto id = mthread::start_new_thread("warm", [] {});
    ASSERT_TRUE(mthread::join(id, 5s));
  }
  const long before = mt_test::rss_kib();
  std::vector<mthread::thread_id> ids;
  for (int i = 0; i < n; ++i) {
    ids.push_back(
        mthread::start_new_thread("idle-" + std::to_string(i), [] { mthread::sleep_for(30s); }));
  }
  for (auto id : ids) {
    ASSERT_TRUE(wait_for([&] { return mthread::status(id) == mthread::thread_state::waiting; }));
  }
  const long after = mt_test::rss_kib();
  const auto infos = mthread::list();
  std::size_t max_used = 0;
  for (const auto& info : infos) {
    if (info.type == mthread::thread_type::native) {
      EXPECT_EQ(info.stack_size, 4 * MiB);
      max_used = std::max(max_used, info.max_stack_used);
    }
  }
  for (auto id : ids) mthread::kill(id);
  for (auto id : ids) EXPECT_TRUE(mthread::join(id, 5s));
  const double per_thread = static_cast<double>(after - before) / n;
  mt_test::report("rss_per_idle_thread_kib", per_thread, "KiB");
  mt_test::report("idle_thread_max_stack_used_bytes", static_cast<double>(max_used), "bytes");
  EXPECT_LT(after - before, 32 * 1024)
      << "RSS grew by " << (after - before) << " KiB for " << n << " threads with 4 MiB stacks";
  EXPECT_LT(max_used, 64 * KiB);
}

// Recurses with a real frame each level until the stack runs out.
__attribute__((noinline)) int recurse(int depth) {
  volatile char pad[512];
  pad[0] = static_cast<char>(depth);
  if (depth > 100'000'000) return pad[0];
  return recurse(depth + 1) + pad[0];
}

// Frames of 200 KiB: each overflowing step jumps far below the stack's end. Without a guard
// zone wider than a frame, the write lands in memory that is not the guard (the signal stack, or
// another mapping) and the process dies unexplained, or worse, goes on corrupted.
__attribute__((noinline)) int recurse_big(int depth) {
  volatile char pad[200 * 1024];
  pad[0] = static_cast<char>(depth);
  pad[sizeof pad - 1] = 1;
  if (depth > 100'000'000) return pad[0];
  return recurse_big(depth + 1) + pad[0];
}

TEST(StackDeathTest, OverflowWithBigFramesIsStillReported) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        mthread::start_options options;
        options.stack_size = 1 * MiB;
        const auto id =
            mthread::start_new_thread(options, "big-frames", [] { (void)recurse_big(0); });
        (void)mthread::join(id, 30s);
      },
      "thread \"big-frames\".*1048576");
}

TEST(StackDeathTest, OverflowStopsTheProcessNamingTheThreadAndItsStackSize) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        mthread::start_options options;
        options.stack_size = 128 * KiB;
        const auto id =
            mthread::start_new_thread(options, "deep-recursion", [] { (void)recurse(0); });
        (void)mthread::join(id, 30s);
      },
      "thread \"deep-recursion\".*131072");
  EXPECT_DEATH(
      {
        mthread::start_options options;
        options.stack_size = 1 * MiB;
        const auto id =
            mthread::start_new_thread(options, "bottomless \xC3\xA9", [] { (void)recurse(0); });
        (void)mthread::join(id, 30s);
      },
      "thread \"bottomless \xC3\xA9\".*1048576");
}

}  // namespace

namespace {

// A fault that is not an overflow goes on to the default action (here: death by SIGSEGV, as
// without mthread), it is neither swallowed nor reported as an overflow.
TEST(StackDeathTest, OtherFaultsInAThreadAreNotOverflows) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "AddressSanitizer handles the fault itself";
#endif
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        const auto id = mthread::start_new_thread("null-deref", [] {
          volatile int* volatile nowhere = nullptr;
          *nowhere = 1;
        });
        (void)mthread::join(id, 30s);
      },
      testing::KilledBySignal(SIGSEGV),
      testing::Matcher<const std::string&>(std::string()));  // nothing on stderr
}

}  // namespace
