// The soak: many threads doing random operations on each other for a given time, while a ledger
// records every message accepted. At the end:
// - every accepted message was received exactly once, in order, or freed with its receiver's
//   mailbox (the receiver was killed or ended before reading it);
// - nothing deadlocked (a watchdog thread dumps every thread's state and aborts if the main
//   thread makes no progress for a while);
// - the process's resident memory, mappings and file descriptors are back where they were.
//
//   mthread_soak [--seconds N] [--slots N] [--seed N]
//
// The ledger: every tracked message is an integer `slot << 40 | seq`, where seq counts the
// messages one sender incarnation got accepted by one receiver incarnation (1, 2, 3, ...).
// A mailbox is a FIFO, so a receiver must see each sender's seqs without a gap or a repeat;
// a gap is a lost message, a repeat a duplicate. Each side commits its count to a preallocated
// lock-free table when it ends (or switches partner); the two are compared at the end.
//
// Threads in even slots allow suspension and are stopped by a signal wherever they run. Between
// calls into mthread they run only code that takes no lock (no malloc, no stdio): a thread
// parked while holding a lock that another thread needs — malloc's included — stops that
// thread too, which no library can prevent (see docs/reliability.md). Odd slots do everything.
#include <dirent.h>
#include <malloc.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <mthread/mthread.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "sanitizers.hpp"

namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

// TSan keeps about 900 KiB of its own state at the top of every thread stack and refuses
// smaller ones: under it, "small" stacks are 1 MiB.
constexpr std::size_t small_stack = under_tsan ? std::size_t{1} << 20 : mthread::min_stack_size;

constexpr int max_slots = 64;
constexpr std::uint64_t seq_bits = 40;
constexpr std::uint64_t seq_mask = (std::uint64_t{1} << seq_bits) - 1;
constexpr std::int64_t broadcast_marker = -1;  // broadcasts are counted, not tracked

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "soak: FAILED: %s\n", what);
  std::fflush(stderr);
  std::abort();
}

// --- a tiny allocation-free random generator -----------------------------------------------
struct rng {
  std::uint64_t state;
  std::uint64_t next() {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  }
  std::uint32_t below(std::uint32_t n) { return static_cast<std::uint32_t>(next() % n); }
};

// --- the ledger ----------------------------------------------------------------------------
// A ring of commits: workers add (lock-free, no allocation), the main thread drains it as it
// goes and settles every (sender, receiver) pair once both threads are gone, so a soak of any
// length needs no more memory than the pairs still open.
struct commit {
  std::atomic<std::uint64_t> sender{0};
  std::atomic<std::uint64_t> receiver{0};
  std::atomic<std::uint64_t> count{0};
  std::atomic<int> kind{0};  // 0 free, 1: accepted by sender, 2: received by receiver, 3: read all
};

struct ledger {
  explicit ledger(std::size_t capacity) : entries(capacity) {}
  std::vector<commit> entries;  // a power of two
  std::atomic<std::size_t> claimed{0};
  std::atomic<std::size_t> consumed{0};
  void add(int kind, std::uint64_t sender, std::uint64_t receiver, std::uint64_t count) {
    if (count == 0) return;
    const std::size_t at = claimed.fetch_add(1);
    while (at - consumed.load(std::memory_order_acquire) >= entries.size()) sched_yield();
    commit& c = entries[at & (entries.size() - 1)];
    c.sender.store(sender, std::memory_order_relaxed);
    c.receiver.store(receiver, std::memory_order_relaxed);
    c.count.store(count, std::memory_order_relaxed);
    c.kind.store(kind, std::memory_order_release);
  }
  // The main thread only: hands each published commit, in order, to `take`.
  template <class Take>
  void drain(Take&& take) {
    std::size_t at = consumed.load(std::memory_order_relaxed);
    while (at < claimed.load()) {
      commit& c = entries[at & (entries.size() - 1)];
      const int kind = c.kind.load(std::memory_order_acquire);
      if (kind == 0) break;  // claimed, not yet written: later
      take(kind, c.sender.load(std::memory_order_relaxed),
           c.receiver.load(std::memory_order_relaxed), c.count.load(std::memory_order_relaxed));
      c.kind.store(0, std::memory_order_relaxed);
      consumed.store(++at, std::memory_order_release);
    }
  }
};

ledger* the_ledger = nullptr;

// --- shared state ----------------------------------------------------------------------------
std::atomic<mthread::thread_id> slot_ids[max_slots];
std::atomic<bool> stopping{false};       // the workers' time is up: drain and end
std::atomic<std::uint64_t> progress{0};  // bumped by the main thread's loop
std::atomic<std::uint64_t> operations{0};
std::atomic<std::uint64_t> broadcasts_sent{0}, broadcasts_received{0};
std::atomic<std::uint64_t> notifications_sent{0}, notifications_received{0};
std::atomic<std::uint64_t> suspends{0}, resumes{0}, kills{0}, starts{0}, self_kills{0};
std::atomic<std::uint64_t> exits{0}, killed_seen{0}, children{0};
std::atomic<std::uint64_t> text_messages{0};
std::atomic<int> live_workers{0};
std::atomic<int> in_loop{0};            // workers still doing random operations (and sending)
std::atomic<bool> senders_done{false};  // set once in_loop reached 0 after stopping
int slot_count = 16;

bool preemptible(int slot) {
  return slot % 2 == 0;
}

// What one worker incarnation knows about its partners. Fixed arrays: no allocation.
struct worker_state {
  int slot;
  mthread::thread_id self;
  rng random;
  // As a sender: per receiver slot, the receiver incarnation and the count it accepted.
  mthread::thread_id sent_to[max_slots] = {};
  std::uint64_t sent_count[max_slots] = {};
  // As a receiver: per sender slot, the sender incarnation and the last seq seen.
  mthread::thread_id got_from[max_slots] = {};
  std::uint64_t got_seq[max_slots] = {};

  void commit_all() {
    for (int s = 0; s < max_slots; ++s) {
      the_ledger->add(1, self, sent_to[s], sent_count[s]);
      the_ledger->add(2, got_from[s], self, got_seq[s]);
      sent_count[s] = got_seq[s] = 0;
    }
  }

  void accepted(int slot_to, mthread::thread_id to) {
    if (sent_to[slot_to] != to) {
      the_ledger->add(1, self, sent_to[slot_to], sent_count[slot_to]);
      sent_to[slot_to] = to;
      sent_count[slot_to] = 0;
    }
    ++sent_count[slot_to];
  }

  std::uint64_t next_seq(int slot_to, mthread::thread_id to) const {
    return sent_to[slot_to] == to ? sent_count[slot_to] + 1 : 1;
  }

  void received(const mthread::message& m) {
    std::int64_t value = m.integer;
    if (m.type == mthread::msg_type::string) {
      text_messages.fetch_add(1, std::memory_order_relaxed);
      value = static_cast<std::int64_t>(std::strtoull(m.text.c_str(), nullptr, 10));
    }
    if (m.type == mthread::msg_type::none) return;
    if (value == broadcast_marker) {
      broadcasts_received.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    const auto from_slot = static_cast<int>(static_cast<std::uint64_t>(value) >> seq_bits);
    const std::uint64_t seq = static_cast<std::uint64_t>(value) & seq_mask;
    if (from_slot < 0 || from_slot >= max_slots) fail("a message with a bad sender slot");
    if (got_from[from_slot] != m.sender) {
      the_ledger->add(2, got_from[from_slot], self, got_seq[from_slot]);
      got_from[from_slot] = m.sender;
      got_seq[from_slot] = 0;
    }
    if (seq != got_seq[from_slot] + 1) {
      char text[160];
      std::snprintf(text, sizeof text,
                    "thread %" PRIu64 " got seq %" PRIu64 " from %" PRIu64 " after %" PRIu64
                    " (%s)",
                    self, seq, m.sender, got_seq[from_slot],
                    seq <= got_seq[from_slot] ? "a duplicate" : "a message was lost");
      fail(text);
    }
    got_seq[from_slot] = seq;
  }
};

void drain(worker_state& w) {
  for (;;) {
    const mthread::message m = mthread::get_msg();
    if (m.type == mthread::msg_type::none) return;
    w.received(m);
  }
}

int random_slot(worker_state& w) {
  return static_cast<int>(w.random.below(static_cast<std::uint32_t>(slot_count)));
}

void send_tracked(worker_state& w, bool text) {
  const int to_slot = random_slot(w);
  const mthread::thread_id to = slot_ids[to_slot].load();
  if (to == 0 || to == w.self) return;
  const std::uint64_t seq = w.next_seq(to_slot, to);
  const auto value =
      static_cast<std::int64_t>((static_cast<std::uint64_t>(w.slot) << seq_bits) | seq);
  bool ok;
  // Strings only to threads that are never suspended (they allocate when they are freed).
  if (text && !preemptible(to_slot) && !preemptible(w.slot)) {
    std::string payload = std::to_string(value);
    payload.push_back(' ');
    const std::size_t extra = w.random.below(8) == 0
                                  ? w.random.below(mthread::max_message_length - 32)
                                  : w.random.below(64);
    payload.append(extra, 'x');
    ok = mthread::send_msg(to, payload);
  } else {
    ok = mthread::send_msg(to, value);
  }
  if (ok) w.accepted(to_slot, to);
}

// One random operation; the preemptible ones only those that take no lock outside mthread.
// False: end the thread now.
bool random_operation(worker_state& w) {
  const bool free_to_allocate = !preemptible(w.slot);
  const std::uint32_t pick = w.random.below(100);
  const int slot = random_slot(w);
  const mthread::thread_id target = slot_ids[slot].load();
  if (pick < 30) {
    send_tracked(w, pick < 10);
  } else if (pick < 45) {
    const mthread::message m = w.random.below(2) == 0
                                   ? mthread::get_msg()
                                   : mthread::get_msg(std::chrono::milliseconds(w.random.below(3)));
    w.received(m);
  } else if (pick < 50) {
    if (target != 0 && mthread::notify(target, 1 + w.random.below(1000)))
      notifications_sent.fetch_add(1, std::memory_order_relaxed);
  } else if (pick < 54) {
    if (mthread::wait(std::chrono::milliseconds(w.random.below(2)))) notifications_received++;
  } else if (pick < 57) {
    if (mthread::get_notification() != 0) notifications_received++;
  } else if (pick < 62) {
    if (target != 0 && mthread::suspend(target)) suspends++;
  } else if (pick < 70) {
    if (target != 0 && mthread::resume(target)) resumes++;
  } else if (pick < 71) {
    if (target != 0 && target != w.self && w.random.below(4) == 0 && mthread::kill(target)) kills++;
  } else if (pick < 72) {
    if (w.random.below(50) == 0) {
      self_kills++;
      mthread::kill(w.self);  // throws thread_killed here
      fail("kill(self) returned");
    }
  } else if (pick < 73) {
    if (w.random.below(50) == 0) {
      exits++;
      return false;  // ends the body early, its mailbox not drained
    }
  } else if (pick < 78) {
    // Compute without calling mthread: where a preemptive suspend stops the thread.
    std::uint64_t x = w.random.next();
    for (std::uint32_t i = 0, n = w.random.below(20000); i < n; ++i)
      x = x * 6364136223846793005u + 1;
    if (x == 42) progress++;
  } else if (pick < 82) {
    mthread::sleep_for(std::chrono::microseconds(w.random.below(500)));
  } else if (pick < 84) {
    mthread::checkpoint();
  } else if (pick < 86) {
    (void)mthread::status(target);
    (void)mthread::is_notified(target);
  } else if (pick < 88) {
    if (free_to_allocate && target != 0) {
      broadcasts_sent++;
      (void)mthread::send_msg(mthread::broadcast, broadcast_marker);
    }
  } else if (pick < 91) {
    if (free_to_allocate) {
      const auto rows = mthread::list();
      for (const auto& row : rows) {
        if (row.id == 0 || row.name.empty()) fail("list() returned a bad row");
      }
      (void)mthread::get_thread_name(target);
    }
  } else if (pick < 93) {
    if (free_to_allocate && w.random.below(4) == 0) {
      // A child started from a worker: sends to its parent and ends.
      const mthread::thread_id parent = w.self;
      mthread::start_options options;
      options.stack_size = w.random.below(3) == 0 ? small_stack : 0;
      options.mailbox_depth = 1 + w.random.below(16);
      try {
        mthread::start_new_thread(options, "child", [parent] {
          children++;
          mthread::notify(parent, 7);
        });
      } catch (const mthread::error&) {
        // the thread limit: a defined answer
      }
    }
  } else if (pick < 95) {
    if (!free_to_allocate) mthread::allow_suspend(false), mthread::allow_suspend(true);
  } else {
    mthread::sleep_for(std::chrono::microseconds(1));
  }
  operations.fetch_add(1, std::memory_order_relaxed);
  return true;
}

void worker(int slot, std::uint64_t seed) {
  live_workers++;
  worker_state w{slot, mthread::get_self_id(), rng{seed | 1}};
  struct at_end {
    worker_state& w;
    ~at_end() {
      w.commit_all();
      live_workers--;
    }
  } committer{w};
  if (preemptible(slot)) mthread::allow_suspend(true);
  {
    in_loop++;
    struct leave_loop {
      ~leave_loop() { in_loop--; }
    } leaving;
    try {
      while (!stopping.load(std::memory_order_relaxed)) {
        if (!random_operation(w)) return;  // mailbox not drained: freed with the thread
      }
    } catch (mthread::thread_killed&) {
      killed_seen++;
      throw;
    }
  }
  // Time is up: take everything that is still coming, then end having read it all.
  mthread::allow_suspend(false);
  while (!senders_done.load()) {
    drain(w);
    mthread::sleep_for(200us);
  }
  drain(w);
  the_ledger->add(3, 0, w.self, 1);  // this receiver read everything it accepted
}

}  // namespace

namespace {

// The main thread's side of the ledger.
struct accounts {
  std::map<std::pair<std::uint64_t, std::uint64_t>, std::pair<std::uint64_t, std::uint64_t>> open;
  std::vector<bool> read_all;  // by receiver id
  std::uint64_t accepted = 0, received = 0, freed = 0, settled_pairs = 0;

  void take(int kind, std::uint64_t sender, std::uint64_t receiver, std::uint64_t count) {
    if (kind == 3) {
      if (receiver >= read_all.size()) read_all.resize(receiver * 2 + 1024);
      read_all[receiver] = true;
      return;
    }
    auto& totals = open[{sender, receiver}];
    (kind == 1 ? totals.first : totals.second) += count;
  }

  void settle(std::uint64_t sender, std::uint64_t receiver, std::uint64_t in, std::uint64_t out) {
    const bool complete = receiver < read_all.size() && read_all[receiver];
    if (out > in || (complete && out != in)) {
      std::fprintf(stderr,
                   "pair %" PRIu64 " -> %" PRIu64 ": %" PRIu64 " received of %" PRIu64
                   " accepted%s\n",
                   sender, receiver, out, in, complete ? " (the receiver read to the end)" : "");
      fail(out > in ? "more messages received than accepted"
                    : "a receiver that read its mailbox to the end missed accepted messages");
    }
    accepted += in;
    received += out;
    freed += in - out;
    ++settled_pairs;
  }

  // Settles the pairs whose threads were both gone before every commit so far was drained.
  void settle_gone(ledger& book, bool everything) {
    const auto gone = [](std::uint64_t id) {
      return mthread::status(id) == mthread::thread_state::terminated;
    };
    if (everything) {  // every thread is gone: every commit is written
      book.drain(
          [&](int k, std::uint64_t a, std::uint64_t b, std::uint64_t n) { take(k, a, b, n); });
    }
    std::vector<std::pair<std::uint64_t, std::uint64_t>> ready;
    for (const auto& entry : open) {
      if (everything || (gone(entry.first.first) && gone(entry.first.second))) {
        ready.push_back(entry.first);
      }
    }
    const std::size_t upto = book.claimed.load();
    book.drain([&](int k, std::uint64_t a, std::uint64_t b, std::uint64_t n) { take(k, a, b, n); });
    if (book.consumed.load() < upto) return;  // a commit still being written: next time
    for (const auto& pair : ready) {
      const auto it = open.find(pair);
      settle(pair.first, pair.second, it->second.first, it->second.second);
      open.erase(it);
    }
  }
};

struct resources {
  long rss_kib = 0;
  int maps = 0;
  int fds = 0;
};

resources measure() {
  malloc_trim(0);
  resources r;
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) r.rss_kib = std::strtol(line.c_str() + 6, nullptr, 10);
  }
  std::ifstream maps("/proc/self/maps");
  while (std::getline(maps, line)) ++r.maps;
  if (DIR* dir = opendir("/proc/self/fd")) {
    while (readdir(dir) != nullptr) ++r.fds;
    closedir(dir);
  }
  return r;
}

void dump_everything() {
  std::fprintf(stderr, "soak: WATCHDOG: no progress; threads:\n");
  for (const auto& row : mthread::list()) {
    std::fprintf(stderr, "  id %" PRIu64 " %s state %d\n", row.id, row.name.c_str(),
                 static_cast<int>(row.state));
  }
  char command[128];
  std::snprintf(command, sizeof command,
                "gdb -p %d -batch -ex 'thread apply all bt 30' 1>&2 2>/dev/null || "
                "cat /proc/%d/task/*/stat 1>&2",
                getpid(), getpid());
  (void)std::system(command);
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 20;
  std::uint64_t seed = static_cast<std::uint64_t>(clock_type::now().time_since_epoch().count());
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--seconds") == 0) seconds = std::atof(argv[i + 1]);
    if (std::strcmp(argv[i], "--slots") == 0)
      slot_count = std::clamp(std::atoi(argv[i + 1]), 2, max_slots);
    if (std::strcmp(argv[i], "--seed") == 0) seed = std::strtoull(argv[i + 1], nullptr, 10);
  }
  std::printf("soak: %.0f s, %d slots, seed %" PRIu64 "\n", seconds, slot_count, seed);
  std::fflush(stdout);
  ledger book(std::size_t{1} << 16);
  the_ledger = &book;
  accounts ledger_accounts;

  // Warm up: a round of threads that use the stacks, the allocator's arenas and the reaper,
  // so the baseline includes what stays by design (the stack cache, malloc's arenas).
  {
    std::vector<mthread::thread_id> ids;
    for (int i = 0; i < slot_count; ++i) {
      ids.push_back(mthread::start_new_thread("warm", [] {
        std::vector<char> some(1 << 16, 1);
        mthread::sleep_for(1ms);
      }));
    }
    for (auto id : ids) mthread::join(id, 10s);
  }
  const resources before = measure();

  std::atomic<bool> watchdog_stop{false};
  std::thread watchdog([&] {
    std::uint64_t last = progress.load();
    auto last_change = clock_type::now();
    const auto limit = under_sanitizer ? 60s : 20s;
    while (!watchdog_stop.load()) {
      std::this_thread::sleep_for(100ms);
      const std::uint64_t now_progress = progress.load();
      if (now_progress != last) {
        last = now_progress;
        last_change = clock_type::now();
      } else if (clock_type::now() - last_change > limit) {
        dump_everything();
        fail("deadlock: the main thread made no progress");
      }
    }
  });

  rng random{seed | 1};
  worker_state main_state{-1, mthread::get_self_id(), rng{seed * 31 + 7}};
  auto start_slot = [&](int slot) {
    try {
      char name[32];
      std::snprintf(name, sizeof name, "soak-%d", slot);
      mthread::start_options options;
      options.stack_size = random.below(2) == 0 ? small_stack : small_stack * 2;
      options.mailbox_depth = 1 + random.below(12);
      const std::uint64_t worker_seed = random.next();
      slot_ids[slot] = mthread::start_new_thread(options, name, worker, slot, worker_seed);
      starts++;
    } catch (const mthread::error&) {
      slot_ids[slot] = 0;
    }
  };
  for (int s = 0; s < slot_count; ++s) start_slot(s);

  const auto deadline = clock_type::now() + std::chrono::duration<double>(seconds);
  std::uint64_t rounds = 0;
  while (clock_type::now() < deadline) {
    progress++;
    ++rounds;
    // Restart slots whose thread is gone.
    for (int s = 0; s < slot_count; ++s) {
      const mthread::thread_id id = slot_ids[s].load();
      if (id == 0 || mthread::status(id) == mthread::thread_state::terminated) start_slot(s);
    }
    // The main thread plays too: sends (as an odd slot would), reads, lists, resumes.
    for (int i = 0; i < 20; ++i) {
      const int slot = static_cast<int>(random.below(static_cast<std::uint32_t>(slot_count)));
      const mthread::thread_id target = slot_ids[slot].load();
      switch (random.below(6)) {
        case 0:
          mthread::resume(target);
          break;
        case 1:
          (void)mthread::list();
          break;
        case 2:
          main_state.received(mthread::get_msg());
          break;
        case 3:
          (void)mthread::get_notification();
          break;
        case 4:
          mthread::notify(target, 99);
          break;
        default:
          mthread::sleep_for(100us);
          break;
      }
    }
    if (rounds % 64 == 0) mthread::stack_size(random.below(2) == 0 ? 0 : small_stack);
    book.drain([&](int k, std::uint64_t a, std::uint64_t b, std::uint64_t n) {
      ledger_accounts.take(k, a, b, n);
    });
    if (rounds % 256 == 0) ledger_accounts.settle_gone(book, false);
  }

  // Time is up: stop the workers, resume every one, let them drain, and wait for all to end.
  stopping = true;
  const auto stop_deadline = clock_type::now() + (under_sanitizer ? 120s : 30s);
  while (live_workers.load() > 0 || mthread::list().size() > 1) {
    progress++;
    for (const auto& row : mthread::list()) mthread::resume(row.id);
    // Workers drain until every sender has left its loop of random operations.
    if (in_loop.load() == 0) senders_done = true;
    main_state.received(mthread::get_msg());
    book.drain([&](int k, std::uint64_t a, std::uint64_t b, std::uint64_t n) {
      ledger_accounts.take(k, a, b, n);
    });
    if (clock_type::now() > stop_deadline) {
      dump_everything();
      fail("threads did not end after the soak");
    }
    std::this_thread::sleep_for(1ms);
  }
  while (mthread::get_msg().type != mthread::msg_type::none) {
  }
  main_state.commit_all();
  watchdog_stop = true;
  watchdog.join();

  // Every thread is gone: settle every pair that is left.
  ledger_accounts.settle_gone(book, true);
  if (!ledger_accounts.open.empty()) fail("commits still unwritten after every thread ended");
  const std::uint64_t accepted = ledger_accounts.accepted;
  const std::uint64_t received = ledger_accounts.received;
  const std::uint64_t freed = ledger_accounts.freed;
  // Messages still unread at the end belong to receivers that were killed or ended early: the
  // receivers that ran to the end drained everything.
  // Stacks the stack cache has no room for are unmapped by the reaper about a millisecond after
  // their threads are gone: the mappings are looked at again until they are down, for at most 2 s.
  resources after = measure();
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (after.maps > before.maps + 8 * 4 && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    after = measure();
  }
  std::printf("soak: %" PRIu64 " operations, %" PRIu64 " messages accepted (%" PRIu64
              " text), %" PRIu64 " received exactly once, %" PRIu64
              " freed with their receiver's mailbox, 0 lost, 0 duplicated\n"
              "soak: %" PRIu64 " broadcasts sent, %" PRIu64 " broadcast copies received; %" PRIu64
              " notifications sent; %" PRIu64 " starts, %" PRIu64 " children, %" PRIu64
              " suspends, %" PRIu64 " resumes, %" PRIu64 " kills, %" PRIu64 " self-kills, %" PRIu64
              " early ends\n"
              "soak: RSS %ld -> %ld KiB, maps %d -> %d, fds %d -> %d\n",
              operations.load(), accepted, text_messages.load(), received, freed,
              broadcasts_sent.load(), broadcasts_received.load(), notifications_sent.load(),
              starts.load(), children.load(), suspends.load(), resumes.load(), kills.load(),
              self_kills.load(), exits.load(), before.rss_kib, after.rss_kib, before.maps,
              after.maps, before.fds, after.fds);
  if (after.fds != before.fds) fail("file descriptors leaked");
  if (!under_sanitizer) {
    // The stack cache keeps up to 8 stacks (4 mappings each, none of it resident).
    if (after.maps > before.maps + 8 * 4) fail("mappings leaked");
    if (after.rss_kib - before.rss_kib > 16 * 1024)
      fail("resident memory grew by more than 16 MiB");
  }
  if (operations.load() == 0 || accepted == 0 || received == 0) fail("the soak did nothing");
  std::printf("soak: PASSED\n");
  return 0;
}
