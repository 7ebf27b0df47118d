// libFuzzer harness: reads its input as a program of operations on mthread's C++ API, run by the
// main thread (the fuzzer's) and up to four worker threads at once: start, send (integers,
// strings up to the maximum length, broadcasts), notify, wait, get, suspend, resume, kill (of
// others and of self), list, status, stack sizes, join, children started by workers.
//
// Input layout (every byte is valid; short inputs end early):
//   [workers W (0..4)]
//   W times: [config][length L (0..47)] then L operations of 2 bytes [opcode][argument]
//   the rest: the main thread's operations, 2 bytes each
// config: bit 0 the worker allows suspension; bits 1-2 its stack size; bits 3-6 its mailbox
// depth - 1. A worker runs its operations three times over, then ends.
//
// Checked, besides what ASan and UBSan see: every message is received at most once (a token
// carried by each); errors are thrown only where the API says; no thread outlives the input
// (all are resumed, killed and joined; one that will not end within 10 s is a hang: abort);
// answers that need no model (main thread, self, gone threads) are exact.
//
// A worker that allows suspension is stopped by a signal wherever it runs, so between calls
// into mthread it runs only code that takes no lock (no allocation: a thread parked inside
// malloc would stop every thread that needs that arena; docs/reliability.md).
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mthread/mthread.hpp>
#include <sstream>
#include <string>
#include <vector>

namespace {

using namespace std::chrono_literals;

constexpr int max_workers = 4;
constexpr int max_ops = 47;
constexpr int rounds = 3;
constexpr std::uint32_t max_tokens = 1u << 16;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fuzz_ops: FAILED: %s\n", what);
  std::abort();
}
void check(bool condition, const char* what) {
  if (!condition) fail(what);
}

struct op {
  std::uint8_t code;
  std::uint8_t arg;
};

struct worker_program {
  bool preemptible = false;
  std::size_t stack = 0;
  std::size_t depth = 8;
  op ops[max_ops];
  int count = 0;
};

// Shared between the main thread and the workers of one input.
std::atomic<mthread::thread_id> slots[max_workers + 1];  // slot max_workers: the main thread
std::atomic<bool> slot_preemptible[max_workers + 1];     // such a thread gets no text: see above
std::atomic<bool> stop{false};
// Message tokens: each accepted-or-not message carries a fresh one; receiving one twice is a
// duplicate. `generation` separates inputs without clearing the table.
std::atomic<std::uint32_t> next_token{1};
std::atomic<std::uint32_t> seen[max_tokens];
std::uint32_t generation = 0;

std::int64_t make_token() {
  const std::uint32_t t = next_token.fetch_add(1) % max_tokens;
  return static_cast<std::int64_t>(generation) << 32 | t;
}

void receive(const mthread::message& m) {
  if (m.type == mthread::msg_type::none) {
    check(m.sender == 0, "an empty message has a sender");
    return;
  }
  check(m.type == mthread::msg_type::integer || m.type == mthread::msg_type::string,
        "a message of an unknown type");
  std::int64_t value = m.integer;
  if (m.type == mthread::msg_type::string) {
    check(!m.text.empty() && m.text.size() <= mthread::max_message_length, "a bad text length");
    value = std::strtoll(m.text.c_str(), nullptr, 10);
  }
  if (value < 0) return;  // broadcasts: one copy per thread, not tracked
  const auto token = static_cast<std::uint32_t>(value & 0xffffffff);
  const auto from_generation = static_cast<std::uint32_t>(value >> 32);
  check(from_generation == generation, "a message from an earlier input survived");
  check(token < max_tokens, "a bad token");
  const std::uint32_t before = seen[token].exchange(generation + 1);
  check(before != generation + 1, "a message was received twice");
}

mthread::thread_id slot_id(std::uint8_t arg) {
  return slots[arg % (max_workers + 1)].load();
}

std::string text_for(std::int64_t token, std::uint8_t arg) {
  std::string text = std::to_string(token);
  const std::size_t length = arg >= 250 ? mthread::max_message_length : arg >= 240 ? 4096 : arg;
  if (text.size() < length) text.append(length - text.size(), ' ');
  return text;
}

// One operation. `allocating`: the caller may allocate between calls into mthread (it is not
// suspendable). Returns false to end the thread.
bool run(const op& o, bool allocating, bool is_main) {
  const mthread::thread_id self = mthread::get_self_id();
  const mthread::thread_id target = slot_id(o.arg);
  switch (o.code % 26) {
    // A tracked message goes to one thread (an empty slot's id 0 would broadcast it).
    case 0:
      if (target != 0) mthread::send_msg(target, make_token());
      break;
    case 1:
      if (target != 0 && allocating && !slot_preemptible[o.arg % (max_workers + 1)].load()) {
        const std::string text = text_for(make_token(), o.arg);
        mthread::send_msg(target, text);
      }
      break;
    case 2:
      mthread::send_msg(mthread::broadcast, std::int64_t{-1});
      break;
    case 3:
      mthread::notify(target, 1u + o.arg);
      break;
    case 4:
      receive(mthread::get_msg());
      break;
    case 5:
      receive(mthread::get_msg(std::chrono::milliseconds(o.arg % 3)));
      break;
    case 6: {
      const auto value = mthread::wait(std::chrono::milliseconds(o.arg % 3));
      check(!value || *value != 0, "wait() returned notification 0");
      break;
    }
    case 7:
      (void)mthread::get_notification();
      break;
    case 8: {
      const bool done = mthread::suspend(target);
      if (target == self || target == mthread::get_repl_id() || target == 0) {
        check(!done, "suspend() of self, of the main thread or of 0 succeeded");
      }
      break;
    }
    case 9:
      mthread::resume(target);
      break;
    case 10:
      if (target == self) break;  // case 17 does that
      if (target == mthread::get_repl_id() || target == 0) {
        check(!mthread::kill(target), "kill() of the main thread or of 0 succeeded");
      } else if (o.arg % 4 == 0) {
        mthread::kill(target);
      }
      break;
    case 11:
      if (allocating) {
        const auto rows = mthread::list();
        check(!rows.empty() && rows.front().id == mthread::get_repl_id(),
              "list() does not start with the main thread");
        for (const auto& row : rows)
          check(row.state != mthread::thread_state::terminated, "a terminated row");
        std::ostringstream out;
        mthread::print_list(out);
      }
      break;
    case 12:
      (void)mthread::status(target);
      (void)mthread::is_notified(target);
      if (allocating) (void)mthread::get_thread_name(target);
      break;
    case 13:
      mthread::sleep_for(std::chrono::microseconds(o.arg * 4));
      break;
    case 14:
      mthread::checkpoint();
      break;
    case 15: {
      volatile std::uint64_t x = o.arg;
      for (int i = 0; i < o.arg * 200; ++i) x = x * 6364136223846793005u + 1;
      break;
    }
    case 16:
      if (!is_main && !allocating) {
        mthread::allow_suspend(false);
        mthread::allow_suspend(true);
      }
      break;
    case 17:
      if (!is_main && o.arg % 8 == 0) {
        mthread::kill(self);
        fail("kill(self) returned");
      }
      break;
    case 18:
      if (!is_main && o.arg % 8 == 0) return false;
      break;
    case 19:
      if (allocating) {
        try {
          mthread::start_options options;
          options.stack_size = (o.arg & 1) ? mthread::min_stack_size : 0;
          options.mailbox_depth = 1 + o.arg % 4;
          const mthread::thread_id parent = self;
          mthread::start_new_thread(options, "child", [parent, arg = o.arg] {
            mthread::notify(parent, 1u + arg);
            receive(mthread::get_msg(std::chrono::milliseconds(arg % 2)));
          });
        } catch (const mthread::error&) {
          // the thread limit
        }
      }
      break;
    case 20:
      if (allocating) mthread::stack_size(o.arg == 0 ? 0 : std::size_t{o.arg} << 12);
      break;
    case 21:
      if (target != 0 && target != self && target != mthread::get_repl_id()) {
        (void)mthread::join(target, std::chrono::microseconds(o.arg * 8));
      }
      break;
    case 22:
      if (allocating && !is_main) {
        try {
          mthread::repl_accept_msg(true);
          fail("repl_accept_msg(flag) worked outside the main thread");
        } catch (const mthread::error&) {
        }
      }
      break;
    case 23:
      if (allocating) {
        bool threw = false;
        try {
          mthread::notify(target, 0);
        } catch (const mthread::error&) {
          threw = true;
        }
        check(threw, "notify(id, 0) did not throw");
        threw = false;
        try {
          mthread::send_msg(target, std::string(mthread::max_message_length + 1, 'x'));
        } catch (const mthread::error&) {
          threw = true;
        }
        check(threw, "a text longer than the maximum did not throw");
      }
      break;
    case 24:
      mthread::send_msg(self, make_token());
      break;
    case 25:
      mthread::notify(mthread::broadcast, 1u + o.arg);
      break;
  }
  return true;
}

void worker(const worker_program& program) {
  const bool allocating = !program.preemptible;
  if (program.preemptible) mthread::allow_suspend(true);
  for (int r = 0; r < rounds && !stop.load(); ++r) {
    for (int i = 0; i < program.count && !stop.load(); ++i) {
      if (!run(program.ops[i], allocating, false)) return;
    }
  }
}

void end_every_thread() {
  stop = true;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  for (;;) {
    const auto rows = mthread::list();
    if (rows.size() == 1) break;
    for (const auto& row : rows) {
      if (row.type == mthread::thread_type::main) continue;
      mthread::resume(row.id);
      mthread::kill(row.id);
    }
    for (const auto& row : rows) {
      if (row.type != mthread::thread_type::main) (void)mthread::join(row.id, 100ms);
    }
    if (std::chrono::steady_clock::now() > deadline) {
      for (const auto& row : mthread::list()) {
        std::fprintf(stderr, "  left: id %llu %s state %d\n",
                     static_cast<unsigned long long>(row.id), row.name.c_str(),
                     static_cast<int>(row.state));
      }
      fail("a thread did not end within 10 s of being resumed and killed");
    }
  }
  while (mthread::get_msg().type != mthread::msg_type::none) {
  }
  (void)mthread::get_notification();
  mthread::stack_size(0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  ++generation;
  std::size_t at = 0;
  auto next = [&]() -> std::uint8_t { return at < size ? data[at++] : 0; };
  const int workers = next() % (max_workers + 1);
  std::vector<worker_program> programs(static_cast<std::size_t>(workers));
  for (auto& program : programs) {
    const std::uint8_t config = next();
    program.preemptible = (config & 1) != 0;
    static constexpr std::size_t stacks[] = {0, mthread::min_stack_size, 1u << 20, 4096};
    program.stack = stacks[(config >> 1) & 3];
    program.depth = 1 + ((config >> 3) & 15);
    program.count = next() % (max_ops + 1);
    for (int i = 0; i < program.count; ++i) program.ops[i] = op{next(), next()};
  }
  stop = false;
  for (auto& slot : slots) slot = 0;
  for (auto& flag : slot_preemptible) flag = false;
  slots[max_workers] = mthread::get_repl_id();
  for (int w = 0; w < workers; ++w) {
    mthread::start_options options;
    options.stack_size = programs[static_cast<std::size_t>(w)].stack;
    options.mailbox_depth = programs[static_cast<std::size_t>(w)].depth;
    slot_preemptible[w] = programs[static_cast<std::size_t>(w)].preemptible;
    slots[w] = mthread::start_new_thread(options, "worker-" + std::to_string(w), worker,
                                         programs[static_cast<std::size_t>(w)]);
  }
  int main_ops = 0;
  while (at + 1 < size && main_ops < 256) {
    const op o{next(), next()};
    run(o, true, true);
    ++main_ops;
  }
  // The main thread's exact answers.
  const mthread::thread_id main_id = mthread::get_repl_id();
  check(!mthread::kill(main_id), "kill(main) succeeded");
  check(!mthread::suspend(main_id), "suspend(main) succeeded");
  check(mthread::get_self_id() == main_id, "the fuzzer's thread is not the main thread");
  end_every_thread();
  for (int w = 0; w < workers; ++w) {
    const mthread::thread_id id = slots[w].load();
    check(mthread::status(id) == mthread::thread_state::terminated,
          "a joined thread is not terminated");
    check(mthread::get_thread_name(id) == "unknown", "a gone thread still has a name");
    check(!mthread::send_msg(id, std::int64_t{1}), "a gone thread accepted a message");
    check(!mthread::notify(id, 1), "a gone thread accepted a notification");
    check(!mthread::resume(id) && !mthread::suspend(id) && !mthread::kill(id),
          "a gone thread was controlled");
  }
  return 0;
}
