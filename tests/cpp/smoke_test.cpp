#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mthread/mthread.hpp>

using namespace std::chrono_literals;

TEST(Smoke, StartsMessagesAndKills) {
  std::atomic<int> spins{0};
  const auto main_id = mthread::get_repl_id();
  auto id = mthread::start_new_thread("worker", [&] {
    mthread::allow_suspend(true);
    mthread::send_msg(main_id, "hello");
    for (;;) {
      spins.fetch_add(1);
    }
  });
  auto m = mthread::get_msg(2000ms);
  ASSERT_EQ(m.type, mthread::msg_type::string);
  EXPECT_EQ(m.text, "hello");
  EXPECT_EQ(m.sender, id);
  EXPECT_TRUE(mthread::suspend(id));
  mthread::sleep_for(20ms);
  int before = spins.load();
  mthread::sleep_for(50ms);
  EXPECT_EQ(before, spins.load());
  EXPECT_TRUE(mthread::resume(id));
}
