// Threads' life: start+join vs std::thread, resident memory per idle thread vs std::thread, and
// the latencies of suspend (compute loop → stopped) and kill (blocked thread → gone).
//
// The RSS benchmarks measure the growth of the whole process, so each must run alone in a fresh
// process (bench/run.sh runs them with --benchmark_filter, one process each).
#include <benchmark/benchmark.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <mthread/mthread.hpp>
#include <mutex>
#include <thread>
#include <vector>

#include "baseline.hpp"

using namespace std::chrono_literals;

namespace {

constexpr auto patience = 5000ms;

bool smoke() {
  return std::getenv("MTHREAD_BENCH_SMOKE") != nullptr;
}

// ---- start + join ---------------------------------------------------------------------------

void start_join_mthread(benchmark::State& state) {
  bench::batch_clock clock(state, 1);
  for (auto _ : state) {
    const mthread::thread_id id = mthread::start_new_thread("t", [] {});
    if (!mthread::join(id, patience)) {
      state.SkipWithError("thread did not end");
      break;
    }
    clock.tick();
  }
}

void start_join_std(benchmark::State& state) {
  bench::batch_clock clock(state, 1);
  for (auto _ : state) {
    std::thread t([] {});
    t.join();
    clock.tick();
  }
}

// ---- RSS per idle thread --------------------------------------------------------------------

// A thousand: the heap grows by whole pages, so with a few hundred threads one page more or less
// (where the allocator happened to cut) moves the figure by ~20 bytes a thread, as much as the
// difference being measured.
int idle_threads() {
  return smoke() ? 20 : 1000;
}

// Growth of the process's RSS while `n` threads wait idle, per thread.
double rss_of_idle_mthreads(int n) {
  const long before = bench::rss_bytes();
  std::vector<mthread::thread_id> ids;
  for (int i = 0; i < n; ++i) {
    ids.push_back(mthread::start_new_thread("idle", [] { mthread::wait(1h); }));
  }
  for (const auto id : ids) {
    while (mthread::status(id) != mthread::thread_state::waiting) std::this_thread::yield();
  }
  const long after = bench::rss_bytes();
  for (const auto id : ids) mthread::notify(id, 1);
  for (const auto id : ids) mthread::join(id, patience);
  return static_cast<double>(after - before) / n;
}

double rss_of_idle_std_threads(int n) {
  const long before = bench::rss_bytes();
  std::mutex lock;
  std::condition_variable wake;
  bool go = false;
  int waiting = 0;
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i) {
    threads.emplace_back([&] {
      std::unique_lock guard(lock);
      ++waiting;
      wake.wait(guard, [&] { return go; });
    });
  }
  for (;;) {
    std::lock_guard guard(lock);
    if (waiting == n) break;
  }
  const long after = bench::rss_bytes();
  {
    std::lock_guard guard(lock);
    go = true;
  }
  wake.notify_all();
  for (auto& t : threads) t.join();
  return static_cast<double>(after - before) / n;
}

// Each side first runs its scenario once with one thread: one-time costs (the code pages of
// the paths it runs, mthread's reaper, the allocator's first growth) are not per thread.
void rss_idle_mthread(benchmark::State& state) {
  rss_of_idle_mthreads(1);
  for (auto _ : state)
    state.counters["rss_per_thread_bytes"] = rss_of_idle_mthreads(idle_threads());
}

void rss_idle_std(benchmark::State& state) {
  rss_of_idle_std_threads(1);
  for (auto _ : state) {
    state.counters["rss_per_thread_bytes"] = rss_of_idle_std_threads(idle_threads());
  }
}

// ---- latencies ------------------------------------------------------------------------------

int latency_samples() {
  return smoke() ? 5 : 200;
}

void report_percentiles(benchmark::State& state, std::vector<double> samples_us) {
  if (samples_us.empty()) return;
  std::sort(samples_us.begin(), samples_us.end());
  const auto at = [&](double q) {
    const auto index =
        static_cast<std::size_t>(q * static_cast<double>(samples_us.size() - 1) + 0.5);
    return samples_us[std::min(index, samples_us.size() - 1)];
  };
  state.counters["p50_us"] = at(0.50);
  state.counters["p99_us"] = at(0.99);
  state.counters["max_us"] = samples_us.back();
}

// A compute loop that never calls mthread; the main thread suspends it, watches its counter
// stop, and confirms through /proc that it no longer runs. Latency: suspend() called → the
// loop's last step seen. The loop counts as stopped only once its counter has been still for
// 100 µs and the kernel shows the thread asleep (so a loop merely preempted by the OS is not
// taken for a suspended one).
void suspend_latency(benchmark::State& state) {
  std::atomic<std::uint64_t> counter{0};
  std::atomic<long> tid{0};
  std::atomic<bool> stop{false};
  const mthread::thread_id id = mthread::start_new_thread("spin", [&] {
    tid.store(static_cast<long>(syscall(SYS_gettid)));
    mthread::allow_suspend(true);
    while (!stop.load(std::memory_order_relaxed)) {
      counter.store(counter.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    }
  });
  while (tid.load() == 0 || counter.load() == 0) std::this_thread::yield();
  std::vector<double> samples;
  for (auto _ : state) {
    for (int s = 0; s < latency_samples(); ++s) {
      const std::uint64_t running_from = counter.load();
      while (counter.load() == running_from) bench::cpu_relax();
      const std::int64_t start = bench::now_ns();
      if (!mthread::suspend(id)) {
        state.SkipWithError("suspend refused");
        break;
      }
      std::uint64_t last = counter.load(std::memory_order_relaxed);
      std::int64_t last_change = bench::now_ns();
      bool stopped = false;
      while (!stopped) {
        const std::uint64_t value = counter.load(std::memory_order_relaxed);
        const std::int64_t now = bench::now_ns();
        if (value != last) {
          last = value;
          last_change = now;
        } else if (now - last_change > 100'000) {
          stopped = bench::thread_state_letter(tid.load()) == 'S';
        }
        if (now - start > 2'000'000'000) break;
      }
      if (!stopped) {
        state.SkipWithError("thread did not stop within 2 s");
        break;
      }
      samples.push_back(static_cast<double>(last_change - start) / 1000.0);
      mthread::resume(id);
    }
  }
  stop.store(true);
  mthread::resume(id);
  mthread::join(id, patience);
  report_percentiles(state, std::move(samples));
}

// A thread blocked in mthread::wait; latency: kill() called → join() sees it gone (ended, its
// stack and mailbox freed; status() is TERMINATED from then on).
void kill_latency(benchmark::State& state) {
  std::vector<double> samples;
  for (auto _ : state) {
    for (int s = 0; s < latency_samples(); ++s) {
      const mthread::thread_id id = mthread::start_new_thread("blocked", [] { mthread::wait(1h); });
      while (mthread::status(id) != mthread::thread_state::waiting) std::this_thread::yield();
      const std::int64_t start = bench::now_ns();
      mthread::kill(id);
      if (!mthread::join(id, patience)) {
        state.SkipWithError("killed thread did not end");
        break;
      }
      samples.push_back(static_cast<double>(bench::now_ns() - start) / 1000.0);
    }
  }
  report_percentiles(state, std::move(samples));
}

}  // namespace

BENCHMARK(start_join_mthread)->UseRealTime();
BENCHMARK(start_join_std)->UseRealTime();
BENCHMARK(rss_idle_mthread)->Iterations(1);
BENCHMARK(rss_idle_std)->Iterations(1);
BENCHMARK(suspend_latency)->Iterations(1)->UseRealTime();
BENCHMARK(kill_latency)->Iterations(1)->UseRealTime();

BENCHMARK_MAIN();
