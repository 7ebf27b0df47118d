// A program written only from SPEC section 5, as a user of the library writes it. It exits 0
// when every check holds and prints what failed otherwise.
#include <alloca.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iostream>
#include <mthread/mthread.hpp>
#include <sstream>
#include <string>
#include <thread>

using namespace std::chrono_literals;

namespace {

int failures = 0;

void check(bool ok, const std::string& what) {
  std::cout << (ok ? "ok   " : "FAIL ") << what << '\n';
  if (!ok) ++failures;
}

template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout = 5000ms) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(100us);
  }
  return true;
}

bool gone(mthread::thread_id id) {
  return eventually([&] { return mthread::status(id) == mthread::thread_state::terminated; });
}

long rss_kib() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

__attribute__((noinline)) void use_stack(std::size_t bytes) {
  auto* p = static_cast<char*>(alloca(bytes));
  std::memset(p, 1, bytes);
  asm volatile("" : : "r"(p) : "memory");
}

}  // namespace

int main() {
  const auto main_id = mthread::get_repl_id();
  check(mthread::get_self_name() == "MainThread", "main thread name");

  // Messages and notifications.
  const auto echo = mthread::start_new_thread("echo", [main_id] {
    const auto m = mthread::get_msg(5000ms);
    mthread::send_msg(main_id, m.text + "!");
    mthread::notify(main_id, 42);
  });
  check(mthread::send_msg(echo, "hi"), "send_msg");
  const auto reply = mthread::get_msg(5000ms);
  check(reply.type == mthread::msg_type::string && reply.text == "hi!" && reply.sender == echo,
        "reply with sender id");
  check(mthread::wait(5000ms).value_or(0) == 42, "notification");
  check(gone(echo), "echo ended");

  // Preemptive suspend of a loop that never calls mthread.
  std::atomic<bool> stop{false};
  std::atomic<unsigned long> count{0};
  const auto loop = mthread::start_new_thread("loop", [&] {
    mthread::allow_suspend(true);
    while (!stop.load(std::memory_order_relaxed)) count.fetch_add(1, std::memory_order_relaxed);
  });
  check(eventually([&] { return mthread::suspend(loop); }), "suspend");
  check(mthread::status(loop) == mthread::thread_state::suspended, "state suspended at once");
  unsigned long frozen = count.load();
  check(eventually([&] {
          const auto a = count.load();
          std::this_thread::sleep_for(20ms);
          frozen = count.load();
          return a == frozen;
        }),
        "compute loop stopped");
  check(mthread::resume(loop), "resume");
  check(eventually([&] { return count.load() > frozen; }), "compute loop goes on");
  stop = true;
  check(gone(loop), "loop ended");

  // Kill of a blocked thread: destructors run.
  std::atomic<bool> destroyed{false};
  const auto blocked = mthread::start_new_thread("blocked", [&] {
    struct guard {
      std::atomic<bool>& flag;
      ~guard() { flag = true; }
    } g{destroyed};
    mthread::get_msg(60000ms);
  });
  check(eventually([&] { return mthread::status(blocked) == mthread::thread_state::waiting; }),
        "blocked thread waiting");
  check(mthread::kill(blocked), "kill");
  check(gone(blocked) && destroyed, "killed thread gone, destructor ran");
  check(!mthread::kill(main_id), "main cannot be killed");

  // Stack high-water mark.
  std::atomic<bool> used{false};
  const auto deep = mthread::start_new_thread("deep", [&] {
    use_stack(512 * 1024);
    used = true;
    mthread::wait(5000ms);
  });
  check(eventually([&] { return used.load(); }), "deep thread ran");
  std::size_t max_used = 0;
  for (const auto& info : mthread::list()) {
    if (info.id == deep) max_used = info.max_stack_used;
  }
  check(max_used >= 512 * 1024 && max_used < 512 * 1024 + 64 * 1024, "max_stack_used");
  std::ostringstream listing;
  mthread::print_list(listing);
  check(listing.str().find(", Name: deep, State: ") != std::string::npos, "print_list");
  std::cout << listing.str();
  mthread::notify(deep, 1);
  check(gone(deep), "deep ended");

  // Lazy residency: 64 sleeping threads with 4 MiB stacks.
  mthread::stack_size(4u << 20);
  const long before = rss_kib();
  std::vector<mthread::thread_id> sleepers;
  for (int i = 0; i < 64; ++i) {
    sleepers.push_back(mthread::start_new_thread("sleeper", [] { mthread::sleep_for(60s); }));
  }
  for (auto id : sleepers) {
    eventually([&] { return mthread::status(id) == mthread::thread_state::waiting; });
  }
  const long grown = rss_kib() - before;
  std::cout << "64 idle threads with 4 MiB stacks: +" << grown << " KiB RSS\n";
  check(grown < 32 * 1024, "untouched stack pages not resident");
  for (auto id : sleepers) mthread::kill(id);
  for (auto id : sleepers) gone(id);
  mthread::stack_size(0);

  // Churn.
  const long churn_before = rss_kib();
  for (int i = 0; i < 1000; ++i) {
    const auto id = mthread::start_new_thread("churn", [] { mthread::sleep_for(60s); });
    mthread::kill(id);
    if (!gone(id)) {
      check(false, "churn thread ended");
      break;
    }
  }
  const long churn_grown = rss_kib() - churn_before;
  std::cout << "1000 start/kill cycles: " << churn_grown << " KiB RSS change\n";
  check(churn_grown < 4 * 1024, "churn leaves RSS where it was");

  check(mthread::list().size() == 1, "only main left");
  std::cout << (failures == 0 ? "consumer: all checks passed\n" : "consumer: FAILED\n");
  return failures == 0 ? 0 : 1;
}
