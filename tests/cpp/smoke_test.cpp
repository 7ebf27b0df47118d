#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mthread/mthread.hpp>
#include <thread>

using namespace std::chrono_literals;

TEST(Smoke, StartsMessagesAndKills) {
  std::atomic<int> spins{0};
  std::atomic<bool> stop{false};
  const auto main_id = mthread::get_repl_id();
  auto id = mthread::start_new_thread("worker", [&] {
    mthread::allow_suspend(true);
    mthread::send_msg(main_id, "hello");
    while (!stop.load()) {
      spins.fetch_add(1);
    }
    mthread::sleep_for(30s);  // ended by the kill below
  });
  auto m = mthread::get_msg(2000ms);
  ASSERT_EQ(m.type, mthread::msg_type::string);
  EXPECT_EQ(m.text, "hello");
  EXPECT_EQ(m.sender, id);
  EXPECT_TRUE(mthread::suspend(id));
  // Bounded wait for the loop to stop, then check that it stays stopped.
  int before = spins.load();
  for (int i = 0; i < 500; ++i) {
    std::this_thread::sleep_for(2ms);
    const int now = spins.load();
    if (now == before) break;
    before = now;
  }
  mthread::sleep_for(50ms);
  EXPECT_EQ(before, spins.load());
  EXPECT_TRUE(mthread::resume(id));
  stop = true;
  EXPECT_TRUE(mthread::kill(id));
  EXPECT_TRUE(mthread::join(id, 5s));
}
