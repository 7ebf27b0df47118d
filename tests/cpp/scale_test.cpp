// Thousands of native threads at once: every one is started, reached by broadcasts, suspended,
// resumed, killed and joined, and nothing is lost on the way. The thread limit is read once per
// process, so the case re-runs this binary as a child with MTHREAD_MAX_THREADS raised (bounded by
// `timeout`: a hang fails the test instead of stopping the suite).
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <vector>

#include "test_util.hpp"

using namespace std::chrono_literals;
using mt_test::wait_for;

namespace {

constexpr std::size_t thread_count = 5000;
constexpr auto patience = std::chrono::milliseconds(50'000);
constexpr auto deadline = 20s;  // each step; the whole child is bounded by ctest's 60 s

enum point { started, got_message, got_notification, got_queued, points };

struct worker_state {
  std::atomic<std::int64_t> message{0};
  std::atomic<mthread::thread_id> sender{0};
  std::atomic<std::uint32_t> notification{0};
  std::atomic<bool> queued_text_ok{false};
  std::atomic<bool> cleaned_up{false};
};

// Only meaningful as a child of Scale.FiveThousandThreadsNothingLost, which runs it with
// --gtest_also_run_disabled_tests; disabled so a plain run does not list it.
TEST(ScaleChild, DISABLED_FiveThousandThreads) {
  if (mthread::max_threads() < thread_count) GTEST_SKIP() << "runs as a child of Scale";
  std::array<std::atomic<std::size_t>, points> arrived{};
  std::vector<worker_state> state(thread_count);
  std::vector<mthread::thread_id> ids;
  ids.reserve(thread_count);
  for (std::size_t i = 0; i < thread_count; ++i) {
    ids.push_back(mthread::start_new_thread("w", [&arrived, &slot = state[i]] {
      struct cleanup {
        worker_state& slot;
        ~cleanup() { slot.cleaned_up = true; }
      } at_end{slot};
      mthread::allow_suspend(true);
      ++arrived[started];
      const mthread::message m = mthread::get_msg(patience);
      slot.message = m.integer;
      slot.sender = m.sender;
      ++arrived[got_message];
      slot.notification = mthread::wait(patience).value_or(0);
      ++arrived[got_notification];
      slot.queued_text_ok = mthread::get_msg(patience).text == "while suspended";
      ++arrived[got_queued];
      for (;;) mthread::get_msg(patience);  // until killed
    }));
  }
  auto all_arrived = [&](point p) {
    return wait_for([&] { return arrived[p].load() == thread_count; }, deadline);
  };
  auto all_in_state = [&](mthread::thread_state s) {
    return wait_for(
        [&] {
          for (const auto id : ids) {
            if (mthread::status(id) != s) return false;
          }
          return true;
        },
        deadline);
  };
  ASSERT_TRUE(all_arrived(started));
  EXPECT_EQ(mthread::list().size(), thread_count + 1);
  ASSERT_TRUE(all_in_state(mthread::thread_state::waiting));

  ASSERT_TRUE(mthread::send_msg(mthread::broadcast, std::int64_t{42}));
  ASSERT_TRUE(all_arrived(got_message));
  std::size_t wrong = 0;
  for (const auto& slot : state) {
    if (slot.message != 42 || slot.sender != mthread::get_self_id()) ++wrong;
  }
  EXPECT_EQ(wrong, 0u) << "messages lost or wrong";
  ASSERT_TRUE(all_in_state(mthread::thread_state::waiting));

  ASSERT_TRUE(mthread::notify(mthread::broadcast, 7));
  ASSERT_TRUE(all_arrived(got_notification));
  wrong = 0;
  for (const auto& slot : state) wrong += slot.notification != 7 ? 1 : 0;
  EXPECT_EQ(wrong, 0u) << "notifications lost or wrong";
  ASSERT_TRUE(all_in_state(mthread::thread_state::waiting));

  std::size_t refused = 0;
  for (const auto id : ids) refused += mthread::suspend(id) ? 0 : 1;
  EXPECT_EQ(refused, 0u) << "suspend refused";
  // A broadcast to suspended threads is queued, and each takes it once resumed.
  ASSERT_TRUE(mthread::send_msg(mthread::broadcast, std::string_view("while suspended")));
  ASSERT_TRUE(all_in_state(mthread::thread_state::suspended));
  EXPECT_EQ(arrived[got_queued].load(), 0u) << "suspended threads ran";
  refused = 0;
  for (const auto id : ids) refused += mthread::resume(id) ? 0 : 1;
  EXPECT_EQ(refused, 0u) << "resume refused";
  ASSERT_TRUE(all_arrived(got_queued));
  wrong = 0;
  for (const auto& slot : state) wrong += slot.queued_text_ok ? 0 : 1;
  EXPECT_EQ(wrong, 0u) << "queued messages lost or wrong";
  ASSERT_TRUE(all_in_state(mthread::thread_state::waiting));

  refused = 0;
  for (const auto id : ids) refused += mthread::kill(id) ? 0 : 1;
  EXPECT_EQ(refused, 0u) << "kill refused";
  std::size_t not_joined = 0;
  for (const auto id : ids) not_joined += mthread::join(id, deadline) ? 0 : 1;
  EXPECT_EQ(not_joined, 0u) << "threads not joined";
  wrong = 0;
  for (const auto& slot : state) wrong += slot.cleaned_up ? 0 : 1;
  EXPECT_EQ(wrong, 0u) << "threads killed without unwinding";
  EXPECT_EQ(mthread::list().size(), 1u);
}

std::string self_path() {
  std::array<char, 4096> path{};
  const ssize_t length = readlink("/proc/self/exe", path.data(), path.size() - 1);
  return length > 0 ? std::string(path.data(), static_cast<std::size_t>(length)) : std::string();
}

TEST(Scale, FiveThousandThreadsNothingLost) {
  const std::string exe = self_path();
  ASSERT_FALSE(exe.empty());
  char out_path[] = "/tmp/mthread-scale-XXXXXX";
  const int out_fd = mkstemp(out_path);
  ASSERT_GE(out_fd, 0);
  close(out_fd);
  const std::string command =
      "MTHREAD_MAX_THREADS=" + std::to_string(thread_count + 100) + " timeout -s KILL 55 '" + exe +
      "' --gtest_filter=ScaleChild.* --gtest_also_run_disabled_tests >'" + out_path + "' 2>&1";
  const int status = std::system(command.c_str());
  std::ifstream in(out_path);
  std::ostringstream text;
  text << in.rdbuf();
  unlink(out_path);
  EXPECT_EQ(status, 0) << text.str();
  EXPECT_NE(text.str().find("[  PASSED  ] 1 test"), std::string::npos) << text.str();
  EXPECT_EQ(text.str().find("SKIPPED"), std::string::npos) << text.str();
}

}  // namespace
