// list(), print_list() in the device's line format, and status() in every state.
#include <atomic>
#include <regex>
#include <sstream>

#include "test_util.hpp"

using namespace std::chrono_literals;
using mt_test::wait_for;

namespace {

class List : public mt_test::MthreadTest {};

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  return lines;
}

TEST_F(List, OnlyMainAtRest) {
  const auto infos = mthread::list();
  ASSERT_EQ(infos.size(), 1u);
  const auto& main = infos.front();
  EXPECT_EQ(main.id, mthread::get_repl_id());
  EXPECT_EQ(main.type, mthread::thread_type::main);
  EXPECT_EQ(main.name, "MainThread");
  EXPECT_EQ(main.state, mthread::thread_state::running);
  std::ostringstream out;
  mthread::print_list(out);
  EXPECT_GT(main.max_stack_used, 0u) << "the main thread's stack is measured too";
  EXPECT_EQ(out.str(),
            "ID=" + std::to_string(main.id) +
                ", Name: MainThread, State: running, Stack=" + std::to_string(main.stack_size) +
                ", MaxUsed=" + std::to_string(main.max_stack_used) + ", Type: MAIN\n");
}

TEST_F(List, ShowsEveryThreadSortedWithItsFields) {
  std::atomic<bool> spinning{false};
  std::atomic<bool> stop{false};
  const auto waiting_id = mthread::start_new_thread("waiter", [] { mthread::wait(30s); });
  const auto running_id = mthread::start_new_thread("spinner", [&] {
    mthread::allow_suspend(true);
    spinning = true;
    while (!stop.load()) {
    }
  });
  const auto suspended_id = mthread::start_new_thread("napper", [&] {
    mthread::allow_suspend(true);
    while (!stop.load()) mthread::sleep_for(1ms);
  });
  ASSERT_TRUE(wait_for([&] {
    return spinning.load() && mthread::status(waiting_id) == mthread::thread_state::waiting;
  }));
  ASSERT_TRUE(wait_for([&] { return mthread::suspend(suspended_id); }));

  EXPECT_EQ(mthread::status(waiting_id), mthread::thread_state::waiting);
  EXPECT_EQ(mthread::status(running_id), mthread::thread_state::running);
  EXPECT_EQ(mthread::status(suspended_id), mthread::thread_state::suspended);
  EXPECT_EQ(mthread::status(mthread::get_repl_id()), mthread::thread_state::running);

  const auto infos = mthread::list();
  ASSERT_EQ(infos.size(), 4u);
  for (std::size_t i = 1; i < infos.size(); ++i) EXPECT_LT(infos[i - 1].id, infos[i].id);
  const auto* w = mt_test::find_info(infos, waiting_id);
  const auto* r = mt_test::find_info(infos, running_id);
  const auto* s = mt_test::find_info(infos, suspended_id);
  ASSERT_TRUE(w && r && s);
  EXPECT_EQ(w->name, "waiter");
  EXPECT_EQ(w->state, mthread::thread_state::waiting);
  EXPECT_EQ(r->state, mthread::thread_state::running);
  EXPECT_EQ(s->state, mthread::thread_state::suspended);
  for (const auto* info : {w, r, s}) {
    EXPECT_EQ(info->type, mthread::thread_type::native);
    EXPECT_EQ(info->stack_size, mthread::default_stack_size);
    EXPECT_GT(info->max_stack_used, 0u);
    EXPECT_LT(info->max_stack_used, info->stack_size);
  }

  std::ostringstream out;
  mthread::print_list(out);
  const auto lines = lines_of(out.str());
  ASSERT_EQ(lines.size(), 4u) << out.str();
  const std::regex format(
      R"(ID=([0-9]+), Name: (.*), State: (running|suspended|waiting), Stack=([0-9]+), MaxUsed=([0-9]+), Type: (MAIN|PYTHON|SERVICE|NATIVE))");
  for (std::size_t i = 0; i < lines.size(); ++i) {
    std::smatch m;
    ASSERT_TRUE(std::regex_match(lines[i], m, format)) << lines[i];
    const auto& info = infos[i];
    EXPECT_EQ(m[1].str(), std::to_string(info.id));
    EXPECT_EQ(m[2].str(), info.name);
    EXPECT_EQ(m[4].str(), std::to_string(info.stack_size));
  }
  EXPECT_EQ(lines[0].find("Type: MAIN"), lines[0].size() - 10);
  const std::string expected_waiter =
      "ID=" + std::to_string(waiting_id) +
      ", Name: waiter, State: waiting, Stack=" + std::to_string(mthread::default_stack_size) +
      ", MaxUsed=";
  EXPECT_EQ(lines[1].rfind(expected_waiter, 0), 0u) << lines[1];
  EXPECT_NE(lines[1].find(", Type: NATIVE"), std::string::npos);
  EXPECT_NE(lines[2].find("State: running"), std::string::npos) << lines[2];
  EXPECT_NE(lines[3].find("State: suspended"), std::string::npos) << lines[3];

  stop = true;
  mthread::resume(suspended_id);
  mthread::notify(waiting_id, 1);
  for (auto id : {waiting_id, running_id, suspended_id}) EXPECT_TRUE(mthread::join(id, 5s));
}

TEST_F(List, NamesWithCommasAndUnicodePrintedWhole) {
  const std::string name = "sensor, zone 2 — température";
  const auto id = mthread::start_new_thread(name, [] { mthread::wait(30s); });
  ASSERT_TRUE(wait_for([&] { return mthread::status(id) == mthread::thread_state::waiting; }));
  std::ostringstream out;
  mthread::print_list(out);
  EXPECT_NE(out.str().find("Name: " + name + ", State: waiting"), std::string::npos) << out.str();
  mthread::notify(id, 1);
  EXPECT_TRUE(mthread::join(id, 5s));
}

TEST_F(List, MainWaitingShowsAsWaiting) {
  std::atomic<int> seen{-5};
  const auto main_id = mthread::get_repl_id();
  const auto id = mthread::start_new_thread("observer", [&] {
    while (mthread::status(main_id) != mthread::thread_state::waiting) mthread::sleep_for(100us);
    seen = static_cast<int>(mthread::status(main_id));
    mthread::notify(main_id, 1);
  });
  const auto v = mthread::wait(20s);
  EXPECT_TRUE(v.has_value());
  EXPECT_TRUE(mthread::join(id, 5s));
  EXPECT_EQ(seen.load(), static_cast<int>(mthread::thread_state::waiting));
  EXPECT_EQ(mthread::status(main_id), mthread::thread_state::running);
}

TEST_F(List, StatusIsTerminatedForEndedAndUnknownIds) {
  EXPECT_EQ(mthread::status(999'999'999), mthread::thread_state::terminated);
  EXPECT_EQ(mthread::status(0), mthread::thread_state::terminated);
  const auto id = mthread::start_new_thread("brief", [] {});
  ASSERT_TRUE(mthread::join(id, 5s));
  EXPECT_EQ(mthread::status(id), mthread::thread_state::terminated);
  EXPECT_FALSE(mt_test::in_list(id));
  const auto killed = mthread::start_new_thread("killed", [] { mthread::sleep_for(30s); });
  ASSERT_TRUE(mthread::kill(killed));
  ASSERT_TRUE(mthread::join(killed, 5s));
  EXPECT_EQ(mthread::status(killed), mthread::thread_state::terminated);
  EXPECT_FALSE(mt_test::in_list(killed));
}

TEST_F(List, StateFollowsTheThread) {
  std::atomic<int> phase{0};
  const auto id = mthread::start_new_thread("phased", [&] {
    mthread::allow_suspend(true);
    phase = 1;
    while (phase.load() == 1) {
    }
    (void)mthread::get_msg(30s);
    phase = 3;
    while (phase.load() == 3) {
    }
  });
  ASSERT_TRUE(wait_for([&] { return phase.load() == 1; }));
  EXPECT_EQ(mthread::status(id), mthread::thread_state::running);
  phase = 2;
  ASSERT_TRUE(wait_for([&] { return mthread::status(id) == mthread::thread_state::waiting; }));
  ASSERT_TRUE(mthread::suspend(id));
  EXPECT_EQ(mthread::status(id), mthread::thread_state::suspended);
  ASSERT_TRUE(mthread::resume(id));
  EXPECT_EQ(mthread::status(id), mthread::thread_state::waiting);
  mthread::send_msg(id, 1);
  ASSERT_TRUE(wait_for([&] { return phase.load() == 3; }));
  EXPECT_EQ(mthread::status(id), mthread::thread_state::running);
  phase = 4;
  EXPECT_TRUE(mthread::join(id, 5s));
  EXPECT_EQ(mthread::status(id), mthread::thread_state::terminated);
}

TEST_F(List, ListFromAThreadAndFromAForeignThread) {
  std::atomic<std::size_t> from_thread{0};
  const auto id =
      mthread::start_new_thread("lister", [&] { from_thread = mthread::list().size(); });
  ASSERT_TRUE(mthread::join(id, 5s));
  EXPECT_EQ(from_thread.load(), 2u);
  std::size_t from_foreign = 0;
  std::string printed;
  std::thread foreign([&] {
    from_foreign = mthread::list().size();
    std::ostringstream out;
    mthread::print_list(out);
    printed = out.str();
  });
  foreign.join();
  EXPECT_EQ(from_foreign, 1u);
  EXPECT_NE(printed.find("MainThread"), std::string::npos);
}

}  // namespace
