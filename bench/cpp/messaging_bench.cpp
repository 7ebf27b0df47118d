// Messages and notifications between two native threads, each figure beside its peer:
// - round trip: send + receive-with-timeout ping-pong, mthread vs a mutex+condvar+deque mailbox,
//   and vs two threads spinning on one atomic (the hardware floor);
// - notification round trip: notify + wait vs a mutex+condvar slot;
// - one-way int throughput into a deep mailbox vs the condvar mailbox of the same depth.
//
// The main thread (MAIN, known to mthread) is one side; the other is an mthread thread or a
// std::thread. Every wait has a generous timeout so a lost message shows as an error, not a hang.
#include <benchmark/benchmark.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <mthread/mthread.hpp>
#include <thread>

#include "baseline.hpp"

using namespace std::chrono_literals;

namespace {

constexpr auto patience = 5000ms;
constexpr std::size_t deep_mailbox = 1024;
constexpr int ops_per_batch = 64;  // round trips timed together; the figure is the median batch

bool smoke() {
  return std::getenv("MTHREAD_BENCH_SMOKE") != nullptr;
}
std::int64_t batch() {
  return smoke() ? 200 : 20000;
}

// ---- message round trip ---------------------------------------------------------------------

void msg_round_trip_mthread(benchmark::State& state) {
  const mthread::thread_id echo = mthread::start_new_thread("echo", [] {
    for (;;) {
      const mthread::message m = mthread::get_msg(patience);
      if (m.type == mthread::msg_type::none) continue;
      if (m.integer < 0) return;
      while (!mthread::send_msg(m.sender, m.integer)) std::this_thread::yield();
    }
  });
  std::int64_t i = 0;
  bench::batch_clock clock(state, ops_per_batch);
  for (auto _ : state) {
    mthread::send_msg(echo, ++i);
    const mthread::message reply = mthread::get_msg(patience);
    if (reply.integer != i) {
      state.SkipWithError("lost or wrong reply");
      break;
    }
    clock.tick();
  }
  mthread::send_msg(echo, std::int64_t{-1});
  mthread::join(echo, patience);
}

void msg_round_trip_cv(benchmark::State& state) {
  bench::cv_mailbox to_echo(mthread::default_mailbox_depth);
  bench::cv_mailbox to_main(mthread::default_mailbox_depth);
  std::thread echo([&] {
    for (;;) {
      bench::cv_mailbox::item m{};
      if (!to_echo.pop(m, patience)) continue;
      if (m.value < 0) return;
      while (!to_main.try_push({2, m.value})) std::this_thread::yield();
    }
  });
  std::int64_t i = 0;
  bench::batch_clock clock(state, ops_per_batch);
  for (auto _ : state) {
    to_echo.try_push({1, ++i});
    bench::cv_mailbox::item reply{};
    if (!to_main.pop(reply, patience) || reply.value != i) {
      state.SkipWithError("lost or wrong reply");
      break;
    }
    clock.tick();
  }
  to_echo.try_push({1, -1});
  echo.join();
}

// Two threads bouncing one cache line: the main thread writes an odd value, the echo thread
// answers with the next even one. No library can hand a message over faster.
void msg_round_trip_atomic_spin(benchmark::State& state) {
  std::atomic<std::int64_t> word{0};
  std::thread echo([&] {
    for (;;) {
      std::int64_t v;
      while (((v = word.load(std::memory_order_acquire)) & 1) == 0) bench::cpu_relax();
      if (v < 0) return;
      word.store(v + 1, std::memory_order_release);
    }
  });
  std::int64_t i = 0;
  bench::batch_clock clock(state, ops_per_batch);
  for (auto _ : state) {
    word.store(2 * ++i - 1, std::memory_order_release);
    while (word.load(std::memory_order_acquire) != 2 * i) bench::cpu_relax();
    clock.tick();
  }
  word.store(-1, std::memory_order_release);
  echo.join();
}

// ---- notification round trip ----------------------------------------------------------------

constexpr std::uint32_t stop_value = 0xFFFFFFFFu;

std::uint32_t notification_value(std::int64_t i) {
  return static_cast<std::uint32_t>(i % 1000000) + 1;
}

void notify_round_trip_mthread(benchmark::State& state) {
  const mthread::thread_id main_id = mthread::get_self_id();
  const mthread::thread_id echo = mthread::start_new_thread("echo", [main_id] {
    for (;;) {
      const auto value = mthread::wait(patience);
      if (!value) continue;
      if (*value == stop_value) return;
      mthread::notify(main_id, *value);
    }
  });
  std::int64_t i = 0;
  bench::batch_clock clock(state, ops_per_batch);
  for (auto _ : state) {
    const std::uint32_t value = notification_value(++i);
    mthread::notify(echo, value);
    const auto reply = mthread::wait(patience);
    if (!reply || *reply != value) {
      state.SkipWithError("lost or wrong notification");
      break;
    }
    clock.tick();
  }
  mthread::notify(echo, stop_value);
  mthread::join(echo, patience);
}

void notify_round_trip_cv(benchmark::State& state) {
  bench::cv_slot to_echo;
  bench::cv_slot to_main;
  std::thread echo([&] {
    for (;;) {
      const std::uint32_t value = to_echo.wait(patience);
      if (value == 0) continue;
      if (value == stop_value) return;
      to_main.notify(value);
    }
  });
  std::int64_t i = 0;
  bench::batch_clock clock(state, ops_per_batch);
  for (auto _ : state) {
    const std::uint32_t value = notification_value(++i);
    to_echo.notify(value);
    if (to_main.wait(patience) != value) {
      state.SkipWithError("lost or wrong notification");
      break;
    }
    clock.tick();
  }
  to_echo.notify(stop_value);
  echo.join();
}

// ---- one-way throughput ---------------------------------------------------------------------
// The sender retries a refused (full) send after std::this_thread::yield(), on both sides; each
// iteration sends a batch and waits until the receiver has taken all of it.

void wait_for_count(const std::atomic<std::int64_t>& received, std::int64_t target) {
  while (received.load(std::memory_order_acquire) < target) bench::cpu_relax();
}

void msg_throughput_mthread(benchmark::State& state) {
  std::atomic<std::int64_t> received{0};
  std::atomic<bool> disorder{false};
  mthread::start_options options;
  options.mailbox_depth = deep_mailbox;
  const mthread::thread_id sink = mthread::start_new_thread(options, "sink", [&] {
    std::int64_t expected = 0;
    for (;;) {
      const mthread::message m = mthread::get_msg(patience);
      if (m.type == mthread::msg_type::none) continue;
      if (m.integer < 0) return;
      if (m.integer != expected++) disorder.store(true);
      received.store(expected, std::memory_order_release);
    }
  });
  std::int64_t sent = 0;
  const std::int64_t n = batch();
  state.counters["batch"] = static_cast<double>(n);
  bench::batch_clock clock(state, 1);
  for (auto _ : state) {
    for (std::int64_t k = 0; k < n; ++k, ++sent) {
      while (!mthread::send_msg(sink, sent)) std::this_thread::yield();
    }
    wait_for_count(received, sent);
    clock.tick();
  }
  if (disorder.load()) state.SkipWithError("messages lost, duplicated or reordered");
  state.SetItemsProcessed(sent);
  while (!mthread::send_msg(sink, std::int64_t{-1})) std::this_thread::yield();
  mthread::join(sink, patience);
}

void msg_throughput_cv(benchmark::State& state) {
  std::atomic<std::int64_t> received{0};
  std::atomic<bool> disorder{false};
  bench::cv_mailbox box(deep_mailbox);
  std::thread sink([&] {
    std::int64_t expected = 0;
    for (;;) {
      bench::cv_mailbox::item m{};
      if (!box.pop(m, patience)) continue;
      if (m.value < 0) return;
      if (m.value != expected++) disorder.store(true);
      received.store(expected, std::memory_order_release);
    }
  });
  std::int64_t sent = 0;
  const std::int64_t n = batch();
  state.counters["batch"] = static_cast<double>(n);
  bench::batch_clock clock(state, 1);
  for (auto _ : state) {
    for (std::int64_t k = 0; k < n; ++k, ++sent) {
      while (!box.try_push({1, sent})) std::this_thread::yield();
    }
    wait_for_count(received, sent);
    clock.tick();
  }
  if (disorder.load()) state.SkipWithError("messages lost, duplicated or reordered");
  state.SetItemsProcessed(sent);
  while (!box.try_push({1, -1})) std::this_thread::yield();
  sink.join();
}

}  // namespace

BENCHMARK(msg_round_trip_mthread)->UseRealTime();
BENCHMARK(msg_round_trip_cv)->UseRealTime();
BENCHMARK(msg_round_trip_atomic_spin)->UseRealTime();
BENCHMARK(notify_round_trip_mthread)->UseRealTime();
BENCHMARK(notify_round_trip_cv)->UseRealTime();
BENCHMARK(msg_throughput_mthread)->UseRealTime();
BENCHMARK(msg_throughput_cv)->UseRealTime();

BENCHMARK_MAIN();
