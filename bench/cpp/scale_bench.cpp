// How mthread's per-thread costs grow with the number of threads, beside std::thread with a
// mutex and condition variable per thread (the peer a C++ programmer writes without mthread).
//
//   scale_bench [--ns 10,100,1000,10000] [--reps 3] [--json FILE]
//
// For each N, N threads are started that block in a wait, and every operation is applied to all
// N of them, one phase after another (see bench/scale.py for the same phases in Python):
// start (until every thread runs), send (one message each, until every one received it), bcast
// (send_msg(0, ...); the peer has none: N pushes), notify (one notification each), nbcast
// (notify(0, ...); the peer: one notify_all on a shared condition variable), list, status,
// suspend, resume, kill (the peer: a stop request through each thread's mailbox), join (until
// TERMINATED / std::thread::join), end (kill + join of the same run: the killed threads end while
// the kill loop still runs, so a slow kill phase leaves a short join phase, and the two medians
// taken apart do not add up to the median of a run's whole end), rss (resident memory after the
// start, less before).
//
// A figure is the phase's wall time divided by N (the mean over the N threads), in-process (each
// side in a fresh process of its own); of the runs, the median (three times as many runs below
// 1000 threads; status, suspend and resume: the median of 5 rounds a run). Between phases the
// threads settle outside the timed part (between suspend and resume: a pause, every thread then
// parked). The phases that wake threads also report the process's CPU time per thread (`send_cpu`,
// ...).
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <latch>
#include <map>
#include <memory>
#include <mthread/mthread.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "baseline.hpp"

namespace {

using namespace std::chrono_literals;
using bench::now_ns;
using figures = std::map<std::string, double>;

constexpr auto patience = std::chrono::milliseconds(600'000);
constexpr int phases = 5;  // the points each thread reports reaching

// Counts threads reaching a point; the last one releases the main thread (one wake-up, not N).
struct arrivals {
  explicit arrivals(std::ptrdiff_t n) : all(n) {}
  std::latch all;
};

using points = std::vector<std::unique_ptr<arrivals>>;

points make_points(std::size_t n) {
  points made;
  for (int i = 0; i < phases; ++i) {
    made.push_back(std::make_unique<arrivals>(static_cast<std::ptrdiff_t>(n)));
  }
  return made;
}

// CPU time of the whole process (every thread), beside the wall time of the phases that wake
// threads: on two CPUs a short burst of wakes overlaps the waker's work with the woken threads'
// on the other CPU, and a long one shares both CPUs between them, so the wall time per thread
// grows with N where the work per thread does not. Read only around those phases: the kernel
// sums every thread's time, a cost that grows with N (0.15 µs a thread at 10000).
double cpu_ns() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) * 1e9 + static_cast<double>(t.tv_nsec);
}

// As in bench/scale.py: the cheap phases' rounds in a run, and the runs below small_n threads
// (small_n_runs_factor times --reps: a phase over 100 threads lasts a millisecond or less, and
// the CPUs' state when it begins moves it by a third or more).
constexpr int cheap_rounds = 5;
constexpr std::size_t small_n = 1000;
constexpr int small_n_runs_factor = 3;

void settle_pause(std::size_t n) {
  std::this_thread::sleep_for(std::chrono::microseconds(20'000 + 2 * n));
}

figures run_mthread(std::size_t n) {
  figures f;
  points at = make_points(n);
  std::vector<mthread::thread_id> ids;
  ids.reserve(n);
  const long rss_before = bench::rss_bytes();
  auto t0 = now_ns();
  auto c0 = cpu_ns();
  for (std::size_t i = 0; i < n; ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "w%zu", i);
    ids.push_back(mthread::start_new_thread(name, [&at] {
      mthread::allow_suspend(true);
      at[0]->all.count_down();
      mthread::get_msg(patience);
      at[1]->all.count_down();
      mthread::get_msg(patience);
      at[2]->all.count_down();
      mthread::wait(patience);
      at[3]->all.count_down();
      mthread::wait(patience);
      at[4]->all.count_down();
      for (;;) mthread::get_msg(patience);  // idle until killed
    }));
  }
  at[0]->all.wait();
  f["start"] = static_cast<double>(now_ns() - t0);
  f["rss"] = static_cast<double>(bench::rss_bytes() - rss_before);

  auto settle = [&] {
    for (const auto id : ids) {
      while (mthread::status(id) != mthread::thread_state::waiting) {
        std::this_thread::sleep_for(100us);
      }
    }
    settle_pause(n);
  };
  settle();

  t0 = now_ns();
  c0 = cpu_ns();
  for (const auto id : ids) mthread::send_msg(id, std::int64_t{1});
  at[1]->all.wait();
  f["send"] = static_cast<double>(now_ns() - t0);
  f["send_cpu"] = static_cast<double>(cpu_ns() - c0);
  settle();

  t0 = now_ns();
  c0 = cpu_ns();
  mthread::send_msg(mthread::broadcast, std::int64_t{2});
  f["bcast_call"] = static_cast<double>(now_ns() - t0);
  at[2]->all.wait();
  f["bcast"] = static_cast<double>(now_ns() - t0);
  f["bcast_cpu"] = static_cast<double>(cpu_ns() - c0);
  settle();

  t0 = now_ns();
  c0 = cpu_ns();
  for (const auto id : ids) mthread::notify(id, 7);
  at[3]->all.wait();
  f["notify"] = static_cast<double>(now_ns() - t0);
  f["notify_cpu"] = static_cast<double>(cpu_ns() - c0);
  settle();

  t0 = now_ns();
  c0 = cpu_ns();
  mthread::notify(mthread::broadcast, 8);
  f["nbcast_call"] = static_cast<double>(now_ns() - t0);
  at[4]->all.wait();
  f["nbcast"] = static_cast<double>(now_ns() - t0);
  f["nbcast_cpu"] = static_cast<double>(cpu_ns() - c0);
  settle();

  t0 = now_ns();
  const auto listed = mthread::list();
  f["list"] = static_cast<double>(now_ns() - t0);
  if (listed.size() < n + 1) throw std::runtime_error("list() misses threads");

  // These calls cost tens to hundreds of nanoseconds: one pass over 100 threads is a few
  // microseconds, as much the CPU's state after the phase before as the calls. So these three
  // phases are taken cheap_rounds times, and the round with the median time counts.
  std::map<std::string, std::vector<double>> rounds;
  for (int round = 0; round < cheap_rounds; ++round) {
    t0 = now_ns();
    for (const auto id : ids) {
      if (mthread::status(id) != mthread::thread_state::waiting) {
        throw std::runtime_error("a thread is not waiting");
      }
    }
    rounds["status"].push_back(static_cast<double>(now_ns() - t0));

    t0 = now_ns();
    for (const auto id : ids) {
      if (!mthread::suspend(id)) throw std::runtime_error("suspend refused");
    }
    rounds["suspend"].push_back(static_cast<double>(now_ns() - t0));
    // The suspended threads park (each in its suspend signal's handler) after the loop above has
    // moved on; resuming one that has not parked yet costs no wake-up. Without this pause the
    // resume figure at 100 threads, whose suspend phase ends while many still run to their park,
    // is that cheaper mix, and the growth to 10000 an artifact.
    settle_pause(n);
    t0 = now_ns();
    for (const auto id : ids) {
      if (!mthread::resume(id)) throw std::runtime_error("resume refused");
    }
    rounds["resume"].push_back(static_cast<double>(now_ns() - t0));
    settle();
  }
  for (const auto& [phase, times] : rounds) f[phase] = bench::median(times);

  t0 = now_ns();
  for (const auto id : ids) {
    if (!mthread::kill(id)) throw std::runtime_error("kill refused");
  }
  f["kill"] = static_cast<double>(now_ns() - t0);
  t0 = now_ns();
  for (const auto id : ids) {
    if (!mthread::join(id, patience)) throw std::runtime_error("join timed out");
  }
  f["join"] = static_cast<double>(now_ns() - t0);
  f["end"] = f["kill"] + f["join"];
  return f;
}

// The peer: a thread blocked on its own mutex + condition variable mailbox; notifications on
// its own slot; a broadcast notification on one shared condition variable.
struct shared_signal {
  std::mutex lock;
  std::condition_variable changed;
  bool set = false;
};

figures run_std(std::size_t n) {
  figures f;
  points at = make_points(n);
  std::vector<std::unique_ptr<bench::cv_mailbox>> boxes;
  std::vector<std::unique_ptr<bench::cv_slot>> slots;
  for (std::size_t i = 0; i < n; ++i) {
    boxes.push_back(std::make_unique<bench::cv_mailbox>(mthread::default_mailbox_depth));
    slots.push_back(std::make_unique<bench::cv_slot>());
  }
  shared_signal everyone;
  std::vector<std::thread> threads;
  threads.reserve(n);
  const long rss_before = bench::rss_bytes();
  auto t0 = now_ns();
  auto c0 = cpu_ns();
  for (std::size_t i = 0; i < n; ++i) {
    threads.emplace_back([&at, &everyone, box = boxes[i].get(), slot = slots[i].get()] {
      bench::cv_mailbox::item item{};
      at[0]->all.count_down();
      box->pop(item, patience);
      at[1]->all.count_down();
      box->pop(item, patience);
      at[2]->all.count_down();
      slot->wait(patience);
      at[3]->all.count_down();
      {
        std::unique_lock guard(everyone.lock);
        everyone.changed.wait_for(guard, patience, [&] { return everyone.set; });
      }
      at[4]->all.count_down();
      box->pop(item, patience);  // the stop request
    });
  }
  at[0]->all.wait();
  f["start"] = static_cast<double>(now_ns() - t0);
  f["rss"] = static_cast<double>(bench::rss_bytes() - rss_before);
  settle_pause(n);

  t0 = now_ns();
  c0 = cpu_ns();
  for (auto& box : boxes) box->try_push({0, 1});
  at[1]->all.wait();
  f["send"] = static_cast<double>(now_ns() - t0);
  f["send_cpu"] = static_cast<double>(cpu_ns() - c0);
  settle_pause(n);

  t0 = now_ns();
  c0 = cpu_ns();
  for (auto& box : boxes) box->try_push({0, 2});
  f["bcast_call"] = static_cast<double>(now_ns() - t0);
  at[2]->all.wait();
  f["bcast"] = static_cast<double>(now_ns() - t0);
  f["bcast_cpu"] = static_cast<double>(cpu_ns() - c0);
  settle_pause(n);

  t0 = now_ns();
  c0 = cpu_ns();
  for (auto& slot : slots) slot->notify(7);
  at[3]->all.wait();
  f["notify"] = static_cast<double>(now_ns() - t0);
  f["notify_cpu"] = static_cast<double>(cpu_ns() - c0);
  settle_pause(n);

  t0 = now_ns();
  c0 = cpu_ns();
  {
    std::lock_guard guard(everyone.lock);
    everyone.set = true;
  }
  everyone.changed.notify_all();
  f["nbcast_call"] = static_cast<double>(now_ns() - t0);
  at[4]->all.wait();
  f["nbcast"] = static_cast<double>(now_ns() - t0);
  f["nbcast_cpu"] = static_cast<double>(cpu_ns() - c0);
  settle_pause(n);

  t0 = now_ns();
  for (auto& box : boxes) box->try_push({0, 3});
  f["kill"] = static_cast<double>(now_ns() - t0);
  t0 = now_ns();
  for (auto& thread : threads) thread.join();
  f["join"] = static_cast<double>(now_ns() - t0);
  f["end"] = f["kill"] + f["join"];
  return f;
}

std::vector<std::size_t> parse_list(const std::string& text) {
  std::vector<std::size_t> values;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (!item.empty()) values.push_back(std::stoul(item));
  }
  return values;
}

// Runs `body` in a forked child (this process has started no thread yet) and returns the text
// it returned; empty if the child failed.
std::string in_child_process(const std::function<std::string()>& body) {
  char path[] = "/tmp/mthread-scale-bench-XXXXXX";
  const int fd = mkstemp(path);
  if (fd < 0) return {};
  close(fd);
  std::fflush(stdout);
  const pid_t child = fork();
  if (child == 0) {
    int code = 0;
    try {
      std::ofstream(path) << body();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "scale_bench: %s\n", e.what());
      code = 1;
    }
    std::fflush(stdout);
    std::_Exit(code);  // the threads of the side are gone; skip static destructors
  }
  int status = 0;
  if (child < 0 || waitpid(child, &status, 0) != child || !WIFEXITED(status) ||
      WEXITSTATUS(status) != 0) {
    unlink(path);
    return {};
  }
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  unlink(path);
  return text.str();
}

}  // namespace

int main(int argc, char** argv) {
  // Before the library reads it: the default limit is below the largest N.
  setenv("MTHREAD_MAX_THREADS", "20000", 0);
  std::vector<std::size_t> ns{10, 100, 1000, 10000};
  int reps = 3;
  std::string json_path;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--ns" && i + 1 < argc) {
      ns = parse_list(argv[++i]);
    } else if (arg == "--reps" && i + 1 < argc) {
      reps = std::stoi(argv[++i]);
    } else if (arg == "--json" && i + 1 < argc) {
      json_path = argv[++i];
    } else {
      std::fprintf(stderr,
                   "usage: scale_bench [--ns 10,100,1000,10000] [--reps 3] [--json FILE]\n");
      return 2;
    }
  }
  std::ostringstream json;
  json << "{\"method\": \"per thread: a phase's wall time / N (mean over the N threads), "
          "in-process, each side in a fresh process of its own; median of "
       << reps << " runs (" << small_n_runs_factor << "x as many below " << small_n
       << " threads); status, suspend and resume: the median of " << cheap_rounds
       << " rounds a run\", \"reps\": " << reps << ", \"scale\": {";
  const std::vector<std::pair<std::string, std::function<figures(std::size_t)>>> sides{
      {"mthread", run_mthread}, {"std", run_std}};
  bool first_side = true;
  for (const auto& [side, run] : sides) {
    json << (first_side ? "" : ", ") << "\"" << side << "\": ";
    first_side = false;
    // Each side in a process of its own: what one side leaves behind (the heap's arenas, the
    // kernel's futex hash table, which mthread grows with its thread count) must not help or
    // hinder the other.
    const std::string fragment = in_child_process([&, &run = run, &side = side] {
      std::ostringstream out;
      out << "{";
      bool first_n = true;
      for (const std::size_t n : ns) {
        std::map<std::string, std::vector<double>> samples;
        const int runs = n < small_n ? reps * small_n_runs_factor : reps;
        for (int r = 0; r < runs; ++r) {
          for (const auto& [phase, total] : run(n)) {
            samples[phase].push_back(total / static_cast<double>(n));
          }
        }
        out << (first_n ? "" : ", ") << "\"" << n << "\": {";
        first_n = false;
        std::printf("%-7s N=%5zu:", side.c_str(), n);
        bool first_phase = true;
        for (const auto& [phase, values] : samples) {
          double mean = 0;
          for (const double v : values) mean += v / static_cast<double>(values.size());
          const double median = bench::median(values);
          out << (first_phase ? "" : ", ") << "\"" << phase << "\": {\"median\": " << median
              << ", \"mean\": " << mean << "}";
          first_phase = false;
          std::printf(" %s=%.2f", phase.c_str(), median / 1000);
        }
        out << "}";
        std::printf(" (µs a thread; rss: kB)\n");
        std::fflush(stdout);
      }
      out << "}";
      return out.str();
    });
    if (fragment.empty()) {
      std::fprintf(stderr, "scale_bench: the %s side failed\n", side.c_str());
      return 1;
    }
    json << fragment;
  }
  json << "}}\n";
  if (!json_path.empty()) std::ofstream(json_path) << json.str();
  return 0;
}
