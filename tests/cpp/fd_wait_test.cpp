// wait_readable, wait_writable and poll: mthread waits on file descriptors. Readiness and
// timeouts; kill of a thread blocked on a pipe or a listening socket; suspend and resume
// there; the same calls in threads mthread does not know.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "test_util.hpp"

using namespace std::chrono_literals;
using mt_test::now_ns;
using mt_test::set_on_destroy;
using mt_test::wait_for;

namespace {

class FdWait : public mt_test::MthreadTest {};

struct pipe_pair {
  int read_end = -1;
  int write_end = -1;
  pipe_pair() {
    int fds[2];
    EXPECT_EQ(pipe2(fds, O_CLOEXEC), 0);
    read_end = fds[0];
    write_end = fds[1];
  }
  ~pipe_pair() {
    close(read_end);
    close(write_end);
  }
  pipe_pair(const pipe_pair&) = delete;
  pipe_pair& operator=(const pipe_pair&) = delete;
  void put() const { EXPECT_EQ(write(write_end, "x", 1), 1); }
};

TEST_F(FdWait, ReadinessAndTimeouts) {
  pipe_pair p;
  EXPECT_FALSE(mthread::wait_readable(p.read_end, 1ms));
  EXPECT_TRUE(mthread::wait_writable(p.write_end, 1ms));
  p.put();
  EXPECT_TRUE(mthread::wait_readable(p.read_end, 0ms));
  EXPECT_TRUE(mthread::wait_readable(p.read_end));
  pollfd both[2] = {{p.read_end, POLLIN, 0}, {p.write_end, POLLOUT, 0}};
  EXPECT_EQ(mthread::poll(both, 2, 1s), 2);
  EXPECT_EQ(both[0].revents & POLLIN, POLLIN);
  EXPECT_EQ(both[1].revents & POLLOUT, POLLOUT);
  const int closed = dup(p.read_end);
  close(closed);
  EXPECT_TRUE(mthread::wait_readable(closed, 1s)) << "a closed descriptor counts as ready";
}

TEST_F(FdWait, WorksInThreadsMthreadDoesNotKnow) {
  pipe_pair p;
  std::atomic<int> result{-1};
  std::thread timing_out([&] { result = mthread::wait_readable(p.read_end, 1ms); });
  timing_out.join();
  EXPECT_EQ(result.load(), 0);
  std::thread plain([&] { result = mthread::wait_readable(p.read_end, 10s); });
  p.put();
  plain.join();
  EXPECT_EQ(result.load(), 1);
}

TEST_F(FdWait, ManagedWaiterWakesOnDataAndShowsWaiting) {
  pipe_pair p;
  std::atomic<int> result{-1};
  const auto id =
      mthread::start_new_thread("reader", [&] { result = mthread::wait_readable(p.read_end); });
  ASSERT_TRUE(wait_for([&] { return mthread::status(id) == mthread::thread_state::waiting; }));
  p.put();
  EXPECT_TRUE(mthread::join(id, 5s));
  EXPECT_EQ(result.load(), 1);
}

TEST_F(FdWait, BlockedReaderIsKilled) {
  pipe_pair p;
  std::atomic<bool> destroyed{false};
  std::atomic<std::int64_t> destroyed_at{0};
  std::atomic<bool> fell_through{false};
  const auto id = mthread::start_new_thread("reader", [&] {
    set_on_destroy guard{destroyed, &destroyed_at};
    (void)mthread::wait_readable(p.read_end);
    fell_through = true;
  });
  ASSERT_TRUE(wait_for([&] { return mthread::status(id) == mthread::thread_state::waiting; }));
  const auto t0 = now_ns();
  EXPECT_TRUE(mthread::kill(id));
  ASSERT_TRUE(wait_for([&] { return destroyed.load(); }));
  EXPECT_TRUE(mthread::join(id, 5s));
  EXPECT_FALSE(fell_through);
  mt_test::report("fd_wait_kill_latency_us", static_cast<double>(destroyed_at - t0) / 1000.0, "us");
}

TEST_F(FdWait, SuspendedReaderStopsAndSeesTheDataAfterResume) {
  pipe_pair p;
  std::atomic<int> result{-1};
  const auto id = mthread::start_new_thread("reader", [&] {
    mthread::allow_suspend(true);
    result = mthread::wait_readable(p.read_end, 30s);
  });
  ASSERT_TRUE(wait_for([&] { return mthread::status(id) == mthread::thread_state::waiting; }));
  ASSERT_TRUE(mthread::suspend(id));
  EXPECT_EQ(mthread::status(id), mthread::thread_state::suspended);
  p.put();
  EXPECT_FALSE(wait_for([&] { return result.load() != -1; }, 50ms)) << "suspended: no return";
  EXPECT_TRUE(mthread::resume(id));
  EXPECT_TRUE(mthread::join(id, 5s));
  EXPECT_EQ(result.load(), 1);
}

TEST_F(FdWait, ServerBlockedBeforeAcceptIsKilled) {
  const int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ASSERT_EQ(listen(listener, 4), 0);
  std::atomic<bool> destroyed{false};
  std::atomic<int> accepted{0};
  const auto id = mthread::start_new_thread("server", [&] {
    set_on_destroy guard{destroyed};
    while (mthread::wait_readable(listener)) {
      const int client = accept(listener, nullptr, nullptr);
      if (client >= 0) {
        ++accepted;
        close(client);
      }
    }
  });
  ASSERT_TRUE(wait_for([&] { return mthread::status(id) == mthread::thread_state::waiting; }));
  EXPECT_TRUE(mthread::kill(id));
  EXPECT_TRUE(wait_for([&] { return destroyed.load(); }));
  EXPECT_TRUE(mthread::join(id, 5s));
  EXPECT_EQ(accepted.load(), 0);
  close(listener);
}

}  // namespace
