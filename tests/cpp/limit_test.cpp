// The thread limit: the build's default (CMake option MTHREAD_MAX_THREADS) and the environment
// variable of the same name, read once when the library starts. Each case re-runs this test
// binary as a child process with the variable set and a filter selecting LimitChild.*.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "test_util.hpp"

extern char** environ;

using namespace std::chrono_literals;
using mt_test::wait_for;

#ifndef MTHREAD_TEST_DEFAULT_LIMIT
#error "tests/cpp/CMakeLists.txt passes the build's MTHREAD_MAX_THREADS"
#endif

namespace {

struct child_result {
  int exit_code = -1;
  std::string output;
};

// Runs this binary with `--gtest_filter=filter` and MTHREAD_MAX_THREADS set to `limit`
// (unset when null), and MTHREAD_TEST_EXPECT_LIMIT to `expected`.
child_result run_child(const char* limit, std::size_t expected, const std::string& filter) {
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry(*e);
    if (entry.rfind("MTHREAD_", 0) == 0 || entry.rfind("GTEST_", 0) == 0) continue;
    env_strings.push_back(entry);
  }
  if (limit != nullptr) env_strings.push_back(std::string("MTHREAD_MAX_THREADS=") + limit);
  env_strings.push_back("MTHREAD_TEST_EXPECT_LIMIT=" + std::to_string(expected));
  std::vector<char*> env;
  for (auto& s : env_strings) env.push_back(s.data());
  env.push_back(nullptr);

  std::string exe = "/proc/self/exe";
  std::string filter_arg = "--gtest_filter=" + filter;
  std::string disabled_arg = "--gtest_also_run_disabled_tests";
  std::vector<char*> argv{exe.data(), filter_arg.data(), disabled_arg.data(), nullptr};

  char out_path[] = "/tmp/mthread-limit-XXXXXX";
  const int out_fd = mkstemp(out_path);
  child_result result;
  if (out_fd < 0) return result;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out_fd, STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, out_fd, STDERR_FILENO);
  pid_t pid = 0;
  const int failed = posix_spawn(&pid, exe.c_str(), &actions, nullptr, argv.data(), env.data());
  posix_spawn_file_actions_destroy(&actions);
  close(out_fd);
  if (failed == 0) {
    int status = 0;
    // Bounded: the child's own tests are short; kill it if it hangs.
    const auto deadline = mt_test::clock_type::now() + 30s;
    while (waitpid(pid, &status, WNOHANG) == 0) {
      if (mt_test::clock_type::now() > deadline) {
        ::kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        break;
      }
      std::this_thread::sleep_for(1ms);
    }
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  std::ifstream in(out_path);
  std::ostringstream text;
  text << in.rdbuf();
  result.output = text.str();
  unlink(out_path);
  return result;
}

void expect_child_passes(const char* limit, std::size_t expected) {
  const auto r = run_child(limit, expected, "LimitChild.*");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("[  PASSED  ] 1 test"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("SKIPPED"), std::string::npos) << r.output;
}

// Only meaningful as a child of the tests below, which run it with
// --gtest_also_run_disabled_tests; disabled so a plain run does not list it.
TEST(LimitChild, DISABLED_LimitInForceAndEnforced) {
  const char* expected_text = std::getenv("MTHREAD_TEST_EXPECT_LIMIT");
  if (expected_text == nullptr) GTEST_SKIP() << "runs as a child of the Limit tests";
  const auto expected = static_cast<std::size_t>(std::strtoull(expected_text, nullptr, 10));
  ASSERT_EQ(mthread::max_threads(), expected);
  if (expected > 64) return;  // enforcing it is tested with small limits

  std::vector<mthread::thread_id> ids;
  for (std::size_t i = 0; i < expected; ++i) {
    ids.push_back(mthread::start_new_thread("worker", [] { mthread::sleep_for(30s); }));
  }
  try {
    mthread::start_new_thread("one-too-many", [] {});
    ADD_FAILURE() << "started one more thread than the limit";
  } catch (const mthread::error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(std::to_string(expected)), std::string::npos) << what;
    EXPECT_NE(what.find("MTHREAD_MAX_THREADS"), std::string::npos) << what;
    std::cout << "limit message: " << what << std::endl;
  }
  // A failed start leaves nothing behind and does not spend the limit.
  EXPECT_EQ(mthread::list().size(), expected + 1);
  EXPECT_THROW(mthread::start_new_thread("again", [] {}), mthread::error);
  // Ending one makes room for one.
  ASSERT_TRUE(mthread::kill(ids.back()));
  ASSERT_TRUE(mthread::join(ids.back(), 5s));
  ids.back() = mthread::start_new_thread("replacement", [] { mthread::sleep_for(30s); });
  EXPECT_THROW(mthread::start_new_thread("again", [] {}), mthread::error);
  for (auto id : ids) mthread::kill(id);
  for (auto id : ids) EXPECT_TRUE(mthread::join(id, 5s));
  // The main thread does not count.
  EXPECT_EQ(mthread::list().size(), 1u);
}

TEST(Limit, DefaultIsTheBuildOption) {
  if (std::getenv("MTHREAD_MAX_THREADS") == nullptr) {
    EXPECT_EQ(mthread::max_threads(), std::size_t{MTHREAD_TEST_DEFAULT_LIMIT});
  }
  expect_child_passes(nullptr, MTHREAD_TEST_DEFAULT_LIMIT);
}

TEST(Limit, EnvironmentVariableSetsTheLimit) {
  expect_child_passes("3", 3);
  expect_child_passes("1", 1);
  expect_child_passes("5000", 5000);
}

TEST(Limit, InvalidValuesFallBackToTheDefault) {
  for (const char* bad : {"", "abc", "0", "-3", "12x"}) {
    SCOPED_TRACE(std::string("MTHREAD_MAX_THREADS=\"") + bad + "\"");
    expect_child_passes(bad, MTHREAD_TEST_DEFAULT_LIMIT);
  }
}

}  // namespace
