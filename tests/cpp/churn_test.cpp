// Churn: thousands of start/kill and start/end cycles leave RSS, the count of mappings and the
// count of open fds where they were (allowing for the small stack cache: at most 8 stacks of 4
// mappings each). The stacks that do not fit the cache are unmapped by the reaper about a
// millisecond after their threads are gone, so the count is looked at until it is down, for at
// most 5 s. Also the cost of start+join next to std::thread's.
#include <atomic>
#include <thread>

#include "test_util.hpp"

using namespace std::chrono_literals;
using mt_test::wait_for;

namespace {

class Churn : public mt_test::MthreadTest {};

struct footprint {
  long rss_kib = mt_test::rss_kib();
  std::size_t maps = mt_test::maps_count();
  std::size_t fds = mt_test::fd_count();
};

// Each cached stack is one mapping split in 4 by its protections; 8 stacks are cached at most.
constexpr std::size_t cache_maps = 8 * 4;

// glibc's malloc gives threads arenas of their own as they come (up to 8 a core, 2 mappings
// each) and keeps them: a constant of the allocator, not of mthread. The warm-up below creates
// most of them; this allows for the rest. A leak of one mapping a cycle would still show
// thousands.
std::size_t arena_maps() {
  return 2 * 8 * static_cast<std::size_t>(sysconf(_SC_NPROCESSORS_ONLN));
}

std::size_t most_maps(const footprint& before) {
  return before.maps + cache_maps + arena_maps();
}

// The footprint once the count of mappings holds still: the warm-up's retired stacks unmapped.
footprint quiet_footprint() {
  (void)mt_test::quiet_maps_count();
  return footprint{};
}

// The footprint once the retired stacks are unmapped (or 5 s have passed).
footprint settled(const footprint& before) {
  (void)wait_for([&] { return mt_test::maps_count() <= most_maps(before); }, 5s);
  return footprint{};
}

void expect_no_growth(const footprint& before, const footprint& after, const char* what) {
  std::cout << "[  info    ] " << what << ": RSS " << before.rss_kib << " -> " << after.rss_kib
            << " KiB, maps " << before.maps << " -> " << after.maps << ", fds " << before.fds
            << " -> " << after.fds << std::endl;
  EXPECT_LE(after.maps, most_maps(before)) << what;
  EXPECT_EQ(after.fds, before.fds) << what;
#if defined(__SANITIZE_ADDRESS__)
  // AddressSanitizer keeps freed memory in quarantine: RSS says nothing about leaks there (its
  // leak checker does).
#else
  EXPECT_LT(after.rss_kib - before.rss_kib, 4 * 1024) << what << ": RSS grew (KiB)";
#endif
}

// Fills the stack cache and lets the allocator set up its per-thread arenas.
void warm_up() {
  for (int i = 0; i < 50; ++i) {
    const auto id = mthread::start_new_thread("warm", [] { mthread::sleep_for(30s); });
    mthread::kill(id);
    ASSERT_TRUE(mthread::join(id, 5s));
  }
  for (int round = 0; round < 3; ++round) {
    std::vector<mthread::thread_id> ids;
    for (int i = 0; i < 100; ++i) {
      ids.push_back(mthread::start_new_thread("warm", [] { (void)mthread::wait(30s); }));
    }
    for (auto id : ids) mthread::kill(id);
    for (auto id : ids) ASSERT_TRUE(mthread::join(id, 10s));
  }
}

TEST_F(Churn, StartKillCyclesLeaveNoTrace) {
  warm_up();
  const footprint before = quiet_footprint();
  constexpr int cycles = 3000;
  for (int i = 0; i < cycles; ++i) {
    const auto id = mthread::start_new_thread("churn-" + std::to_string(i), [] {
      std::vector<char> heap(4096, 'h');  // freed by the unwinding
      (void)mthread::wait(30s);
    });
    mthread::send_msg(id, "left in the mailbox");  // freed with the mailbox
    if (i % 4 == 0) {
      ASSERT_TRUE(wait_for([&] { return mthread::status(id) == mthread::thread_state::waiting; }));
    }
    ASSERT_TRUE(mthread::kill(id));
    ASSERT_TRUE(mthread::join(id, 5s)) << "cycle " << i;
  }
  expect_no_growth(before, settled(before), "3000 start/kill cycles");
}

TEST_F(Churn, StartEndCyclesLeaveNoTrace) {
  warm_up();
  const footprint before = quiet_footprint();
  constexpr int cycles = 3000;
  constexpr int batch = 8;
  for (int i = 0; i < cycles; i += batch) {
    std::vector<mthread::thread_id> ids;
    for (int k = 0; k < batch; ++k) {
      ids.push_back(mthread::start_new_thread("short", [] { mthread::send_msg(0, 1); }));
    }
    for (auto id : ids) ASSERT_TRUE(mthread::join(id, 5s));
    mt_test::drain_self();
  }
  expect_no_growth(before, settled(before), "3000 start/end cycles in batches of 8");
}

TEST_F(Churn, ManyConcurrentThreadsComeAndGo) {
  warm_up();
  const footprint before = quiet_footprint();
  for (int round = 0; round < 5; ++round) {
    std::vector<mthread::thread_id> ids;
    for (int i = 0; i < 200; ++i) {
      ids.push_back(mthread::start_new_thread("crowd", [] { (void)mthread::wait(30s); }));
    }
    for (auto id : ids) mthread::kill(id);
    for (auto id : ids) ASSERT_TRUE(mthread::join(id, 10s));
  }
  expect_no_growth(before, settled(before), "5 rounds of 200 concurrent threads");
}

TEST_F(Churn, MixedStackSizesOverflowTheCacheWithoutLeaking) {
  warm_up();
  const footprint before = quiet_footprint();
  for (int i = 0; i < 600; ++i) {
    mthread::start_options options;
    options.stack_size = (128u << 10) + static_cast<std::size_t>(i % 20) * (64u << 10);
    const auto id = mthread::start_new_thread(options, "sized", [] {});
    ASSERT_TRUE(mthread::join(id, 5s));
  }
  expect_no_growth(before, settled(before), "600 threads of 20 stack sizes");
}

TEST_F(Churn, StartPlusJoinCostNextToStdThread) {
  constexpr int n = 500;
  warm_up();
  const auto t0 = mt_test::clock_type::now();
  for (int i = 0; i < n; ++i) {
    const auto id = mthread::start_new_thread("quick", [] {});
    ASSERT_TRUE(mthread::join(id, 5s));
  }
  const auto t1 = mt_test::clock_type::now();
  for (int i = 0; i < n; ++i) {
    std::thread t([] {});
    t.join();
  }
  const auto t2 = mt_test::clock_type::now();
  const double ours = std::chrono::duration<double, std::micro>(t1 - t0).count() / n;
  const double theirs = std::chrono::duration<double, std::micro>(t2 - t1).count() / n;
  mt_test::report("start_join_mthread_us", ours, "us");
  mt_test::report("start_join_std_thread_us", theirs, "us");
  EXPECT_LT(ours, 50'000.0) << "start+join takes far too long";
}

}  // namespace
