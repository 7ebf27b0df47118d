// The parker on its own (src/core/parker.hpp): a wake is never lost, whenever it comes; a wait
// ends at its deadline and not before (no signal sent, no wake); the spin before sleeping
// adapts to how soon the wakes come; a broadcast's relay reaches every sleeper.
#include "core/parker.hpp"

#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "../test_util.hpp"

using namespace std::chrono_literals;
using mt_test::wait_for;
using mthread::core::parker;
using mthread::core::wake_relay;
using steady = std::chrono::steady_clock;

namespace {

// --- The only code that knows the type of the parker's deadline -----------------------------
// parker::wait with a timeout (none: wait for a wake). `arrived` as in parker::wait, or none.
// Returns whether the wait lasted until its deadline.
template <class... Arrived>
bool park(parker& p, std::uint32_t seen, std::optional<std::chrono::nanoseconds> timeout,
          const Arrived&... arrived) {
  if (!timeout) {
    p.wait(seen, mthread::deadline::never(), arrived...);
    return false;
  }
  const auto end = steady::now() + *timeout;
  p.wait(seen, mthread::deadline::after(*timeout), arrived...);
  return steady::now() >= end;
}

// parker::wait_fds with a timeout; returns what it returned.
int park_on_fds(parker& p, std::uint32_t seen, pollfd* fds, nfds_t count,
                std::chrono::nanoseconds timeout) {
  return p.wait_fds(seen, fds, count, mthread::deadline::after(timeout));
}
// ---------------------------------------------------------------------------------------------

constexpr auto never = 30s;  // a deadline that only a lost wake reaches

auto nothing_arrives = [](bool) { return false; };

// How many times a wait for data that never comes looks at it while it spins: a measure of the
// spin, in looks rather than time, because being preempted only ever makes it fewer.
int looks_while_spinning(parker& p) {
  int looks = 0;
  const std::uint32_t seen = p.prepare();
  park(p, seen, 0ns, [&](bool going_to_sleep) {
    if (!going_to_sleep) ++looks;
    return false;
  });
  return looks;
}

// A run of the spin without an answer takes it to its floor.
void teach_that_nobody_answers(parker& p) {
  for (int i = 0; i < 16; ++i) looks_while_spinning(p);
}

std::vector<int> allowed_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof set, &set) != 0) return cpus;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
  }
  return cpus;
}

bool pin_to(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return pthread_setaffinity_np(pthread_self(), sizeof set, &set) == 0;
}

// Undoes pin_to() for the calling thread (gtest runs every test on the main thread).
class Unpin {
 public:
  Unpin() {
    CPU_ZERO(&saved_);
    ok_ = sched_getaffinity(0, sizeof saved_, &saved_) == 0;
  }
  ~Unpin() {
    if (ok_) pthread_setaffinity_np(pthread_self(), sizeof saved_, &saved_);
  }
  Unpin(const Unpin&) = delete;
  Unpin& operator=(const Unpin&) = delete;

 private:
  cpu_set_t saved_;
  bool ok_ = false;
};

// --- A wake is never lost ---

TEST(Parker, AWakeBeforeTheWaitEndsItAtOnce) {
  parker p;
  std::uint32_t seen = p.prepare();
  p.wake();
  EXPECT_FALSE(park(p, seen, never)) << "a sleep without data";
  seen = p.prepare();
  p.wake();
  EXPECT_FALSE(park(p, seen, never, nothing_arrives)) << "a wait for data";
  EXPECT_NE(p.prepare(), seen) << "the word tells a wake happened";
}

TEST(Parker, WhatArrivedEndsTheWaitWithoutAWake) {
  parker p;
  const std::uint32_t seen = p.prepare();
  int looks = 0;
  EXPECT_FALSE(park(p, seen, never, [&](bool) { return ++looks == 3; }));
  EXPECT_EQ(looks, 3);
  EXPECT_EQ(p.prepare(), seen);
}

// Two threads hand a turn back and forth, each sleeping on its own parker until its turn comes:
// a wake that fell between a look at the turn and the sleep would leave one asleep until its
// deadline. True when no wait lasted that long. `for_data`: the waits watch the turn (a wait
// for data) and the hand-over calls publish(), which wakes only an owner that sleeps; else they
// sleep until woken and the hand-over calls wake().
bool hand_a_turn_back_and_forth(bool for_data) {
  constexpr int rounds = 5000;
  parker ping, pong;
  std::atomic<int> turn{0};
  std::atomic<bool> lost{false};
  auto play = [&](parker& mine, parker& theirs, int parity) {
    for (int round = 0; round < rounds && !lost.load(); ++round) {
      const int wanted = 2 * round + parity;
      auto my_turn = [&](bool) { return turn.load(std::memory_order_seq_cst) == wanted; };
      for (;;) {
        const std::uint32_t seen = mine.prepare();
        if (my_turn(false) || lost.load()) break;
        const bool timed_out =
            for_data ? park(mine, seen, never, my_turn) : park(mine, seen, never);
        if (timed_out) lost.store(true);
      }
      turn.store(wanted + 1, std::memory_order_seq_cst);
      if (for_data) {
        theirs.publish();
      } else {
        theirs.wake();
      }
    }
  };
  std::thread other([&] { play(pong, ping, 1); });
  play(ping, pong, 0);
  other.join();
  return !lost.load() && turn.load() == 2 * rounds;
}

TEST(Parker, WakesBetweenThreadsAreNeverLost) {
  EXPECT_TRUE(hand_a_turn_back_and_forth(false));
}

TEST(Parker, PublishedDataIsNeverMissed) {
  EXPECT_TRUE(hand_a_turn_back_and_forth(true));
}

TEST(Parker, AWakeReachesASleeper) {
  parker p;
  std::atomic<bool> returned{false};
  std::thread sleeper([&] {
    park(p, p.prepare(), never);
    returned.store(true);
  });
  ASSERT_TRUE(wait_for([&] { return p.sleeping(); }, 10s));
  EXPECT_FALSE(returned.load());
  p.wake();
  EXPECT_TRUE(wait_for([&] { return returned.load(); }, 10s));
  sleeper.join();
}

// --- Deadlines ---

TEST(Parker, AWaitLastsUntilItsDeadlineAndNoLonger) {
  parker p;
  for (int i = 0; i < 5; ++i) {
    const std::uint32_t seen = p.prepare();
    const auto start = steady::now();
    EXPECT_TRUE(park(p, seen, 20ms)) << "no wake and no signal: no early return";
    EXPECT_LT(steady::now() - start, 5s);
    EXPECT_EQ(p.prepare(), seen);
  }
}

TEST(Parker, AWaitForDataLastsUntilItsDeadline) {
  parker p;
  for (int i = 0; i < 5; ++i) {
    const std::uint32_t seen = p.prepare();
    EXPECT_TRUE(park(p, seen, 20ms, nothing_arrives));
    EXPECT_EQ(p.prepare(), seen);
  }
}

TEST(Parker, ADeadlineAlreadyPastReturnsAtOnce) {
  parker p;
  const auto start = steady::now();
  for (int i = 0; i < 100; ++i) {
    park(p, p.prepare(), 0ns);
    park(p, p.prepare(), 0ns, nothing_arrives);
  }
  EXPECT_LT(steady::now() - start, 5s) << "each spin is bounded and the sleep is skipped";
}

// --- The adaptive spin ---

TEST(Parker, WaitsThatNobodyAnswersShrinkTheSpin) {
  int fresh = 0;  // the most looks of a fresh parker's first wait (its initial spin)
  for (int i = 0; i < 8; ++i) {
    parker p;
    fresh = std::max(fresh, looks_while_spinning(p));
  }
  parker p;
  teach_that_nobody_answers(p);
  int taught = 0;
  for (int i = 0; i < 8; ++i) taught = std::max(taught, looks_while_spinning(p));
  EXPECT_GT(taught, 0) << "it still spins a little";
  EXPECT_LE(taught * 4, fresh) << "fresh " << fresh << " looks, after idle waits " << taught;
}

// A wait that nobody answers, or that a waker answers long after any spin could have caught it
// (an idle thread's), makes the next wait spin the least at once: halving from the first spin
// took a thread's first four waits, each spinning while others needed the CPU.
TEST(Parker, OneWaitAnsweredFarTooLateOrNotAtAllShrinksTheSpinAtOnce) {
  int fresh = 0;
  for (int i = 0; i < 8; ++i) {
    parker p;
    fresh = std::max(fresh, looks_while_spinning(p));
  }
  parker unanswered;
  (void)looks_while_spinning(unanswered);  // the lesson: nothing came
  int after_none = 0;
  for (int i = 0; i < 4; ++i) after_none = std::max(after_none, looks_while_spinning(unanswered));
  EXPECT_GT(fresh, 0);
  EXPECT_LE(after_none * 6, fresh)
      << "fresh " << fresh << " looks, after one unanswered wait " << after_none;

  // From another CPU (a late wake from the owner's own CPU makes the next wait sleep at once),
  // once the owner sleeps (a wake its spin saw would teach nothing).
  const std::vector<int> cpus = allowed_cpus();
  if (cpus.size() < 2) GTEST_SKIP() << "needs two CPUs";
  const Unpin unpin;
  ASSERT_TRUE(pin_to(cpus[0]));
  parker answered_late;
  std::thread waker([&] {
    (void)pin_to(cpus[1]);
    while (!answered_late.sleeping()) std::this_thread::yield();
    std::this_thread::sleep_for(3ms);  // the lateness being taught
    answered_late.wake();
  });
  EXPECT_FALSE(park(answered_late, answered_late.prepare(), never, nothing_arrives));
  waker.join();
  const int after_late = looks_while_spinning(answered_late);
  EXPECT_LE(after_late * 6, fresh)
      << "fresh " << fresh << " looks, after one late wake " << after_late;
}

// A wait that found every spin slot taken (a crowd of threads started or woken together) slept
// at once; when nothing answers it, or only far too late for any spin, its next wait spins the
// least too, not the first budget it never spent: spent later, with slots free, that spin took a
// CPU from the threads doing the work.
TEST(Parker, AWaitThatFoundNoSpinSlotLearnsFromAnAnswerThatNeverCame) {
  int fresh = 0;
  for (int i = 0; i < 8; ++i) {
    parker p;
    fresh = std::max(fresh, looks_while_spinning(p));
  }
  // Threads whose spin stops at its first look take the slots, one more each, until one finds
  // none free and sleeps without spinning.
  struct holder {
    enum { started, spinning, slept };
    std::atomic<int> state{started};
    parker park;
    std::thread thread;
  };
  std::atomic<bool> release{false};
  std::vector<std::unique_ptr<holder>> holders;
  auto let_go = [&] {
    release.store(true);
    for (auto& h : holders) {
      h->park.wake();  // the one that slept; the others see `release`
      h->thread.join();
    }
  };
  bool crowded = false;
  const std::size_t most = allowed_cpus().size() + 2;  // every slot taken, then one more
  while (!crowded && holders.size() < most) {
    auto& h = *holders.emplace_back(std::make_unique<holder>());
    h.thread = std::thread([&h, &release] {
      park(h.park, h.park.prepare(), never, [&](bool going_to_sleep) {
        if (!going_to_sleep) {
          h.state.store(holder::spinning);
          while (!release.load()) std::this_thread::yield();
          return true;
        }
        if (h.state.load() == holder::started) h.state.store(holder::slept);
        return release.load();
      });
    });
    if (!wait_for([&] { return h.state.load() != holder::started; })) break;
    crowded = h.state.load() == holder::slept;
  }
  parker unanswered;
  if (crowded) (void)park(unanswered, unanswered.prepare(), 2ms, nothing_arrives);
  let_go();
  ASSERT_TRUE(crowded) << "no holder of " << holders.size() << " found every spin slot taken";
  const int after = looks_while_spinning(unanswered);
  EXPECT_LE(after * 6, fresh) << "fresh " << fresh << " looks, after a crowded wait " << after;
}

// A waker that ran on the CPU the owner spun on could only run once the spin let go of it:
// the owner then yields to it as it looks, and sees its answers without either of them going
// through a sleep and a wake-up (a thread started on its starter's CPU, a busy machine).
TEST(Parker, AnOwnerTaughtByAWakerOnItsCpuYieldsToItAndSeesItsAnswersAwake) {
  const std::vector<int> cpus = allowed_cpus();
  ASSERT_FALSE(cpus.empty());
  const Unpin unpin;
  ASSERT_TRUE(pin_to(cpus[0]));
  parker p;
  std::atomic<bool> answering{false};  // the owner waits for `answer` now
  std::atomic<bool> answer{false};
  std::atomic<bool> found_asleep{false};
  std::atomic<bool> stop{false};
  std::thread waker([&] {
    if (!pin_to(cpus[0])) return;
    while (!stop.load()) {
      if (answering.load() && !answer.load()) {
        answer.store(true, std::memory_order_seq_cst);  // published as notify() does
        if (p.sleeping()) {
          found_asleep.store(true);
          p.wake();
        }
      } else if (!answering.load() && p.sleeping()) {
        p.wake();
      }
      sched_yield();
    }
  });
  // The lesson: a wait that sleeps, woken by the waker as soon as it gets the CPU. A parker that
  // answered that by sleeping at once would then be found asleep at every answer.
  EXPECT_FALSE(park(p, p.prepare(), never, nothing_arrives));
  constexpr int rounds = 10;
  int answered_awake = 0;
  for (int round = 0; round < rounds; ++round) {
    found_asleep.store(false);
    answer.store(false);
    answering.store(true);
    EXPECT_FALSE(park(p, p.prepare(), never, [&](bool) { return answer.load(); }));
    answering.store(false);
    EXPECT_TRUE(answer.load());
    if (!found_asleep.load()) ++answered_awake;
  }
  stop.store(true);
  waker.join();
  // Under load an answer may come late (another process got the CPU), and the next wait sleeps
  // at once; the one after yields again. So not every one, but some.
  EXPECT_GT(answered_awake, 0) << "the owner slept at every answer: it did not yield to its waker";
}

// A waker on another CPU that answers within the longest spin makes the spin long enough to
// catch it, and no longer than that cap, however often it answers so.
TEST(Parker, AQuickWakerFromAnotherCpuGrowsTheSpinToItsCap) {
  const std::vector<int> cpus = allowed_cpus();
  if (cpus.size() < 2) GTEST_SKIP() << "needs two CPUs";
  const Unpin unpin;
  ASSERT_TRUE(pin_to(cpus[0]));
  int fresh = 0;
  for (int i = 0; i < 8; ++i) {
    parker p;
    fresh = std::max(fresh, looks_while_spinning(p));
  }

  parker p;
  std::atomic<bool> stop{false};
  std::thread waker([&] {
    if (!pin_to(cpus[1])) return;
    while (!stop.load()) {
      if (p.sleeping()) p.wake();
    }
  });
  // Whether the waker answers in time depends on the machine's load: a few tries.
  bool grew = false;
  int most = 0;
  const auto give_up = steady::now() + 20s;
  for (int attempt = 0; !grew && steady::now() < give_up; ++attempt) {
    teach_that_nobody_answers(p);
    for (int wake = 0; wake < 20; ++wake) park(p, p.prepare(), never, nothing_arrives);
    const int looks = looks_while_spinning(p);
    most = std::max(most, looks);
    grew = looks * 2 > fresh * 3;
  }
  stop.store(true);
  waker.join();
  EXPECT_TRUE(grew) << "fresh " << fresh << " looks, at most " << most << " after quick wakes";
  EXPECT_LE(most, fresh * 4) << "the spin is capped";
}

// --- wait_fds ---

TEST(Parker, WaitOnFdsReportsReadyDescriptors) {
  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  parker p;
  pollfd fd{pipe_fds[0], POLLIN, 0};
  EXPECT_EQ(park_on_fds(p, p.prepare(), &fd, 1, 20ms), 0) << "nothing to read: timed out";
  ASSERT_EQ(write(pipe_fds[1], "x", 1), 1);
  EXPECT_EQ(park_on_fds(p, p.prepare(), &fd, 1, never), 1);
  EXPECT_NE(fd.revents & POLLIN, 0);
  close(pipe_fds[0]);
  close(pipe_fds[1]);
}

TEST(Parker, AWakeEndsAWaitOnFds) {
  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  parker p;
  std::atomic<int> result{-2};
  std::atomic<bool> polling{false};
  std::thread owner([&] {
    pollfd fd{pipe_fds[0], POLLIN, 0};
    // Read before the flag that lets the test wake: the wait either sees the wake or is ended
    // by it.
    const std::uint32_t seen = p.prepare();
    polling.store(true);
    result.store(park_on_fds(p, seen, &fd, 1, never));
  });
  ASSERT_TRUE(wait_for([&] { return polling.load(); }, 10s));
  p.wake();
  EXPECT_TRUE(wait_for([&] { return result.load() != -2; }, 10s));
  owner.join();
  EXPECT_EQ(result.load(), 0);
  close(pipe_fds[0]);
  close(pipe_fds[1]);
}

// --- Relays: a broadcast's wakes spread over the threads it wakes ---

struct sleeper {
  std::shared_ptr<parker> owned = std::make_shared<parker>();
  std::thread thread;
};

TEST(Parker, ARelayReachesEverySleeper) {
  constexpr int count = 16;
  std::atomic<bool> go{false};
  std::atomic<int> returned{0};
  std::atomic<bool> lost{false};
  std::vector<sleeper> sleepers(count);
  for (auto& s : sleepers) {
    s.thread = std::thread([&, p = s.owned] {
      auto arrived = [&](bool) { return go.load(std::memory_order_seq_cst); };
      for (;;) {
        const std::uint32_t seen = p->prepare();
        if (arrived(false)) break;
        if (park(*p, seen, never, arrived)) lost.store(true);
      }
      returned.fetch_add(1);
    });
  }
  ASSERT_TRUE(wait_for(
      [&] {
        return std::all_of(sleepers.begin(), sleepers.end(),
                           [](const sleeper& s) { return s.owned->sleeping(); });
      },
      10s));
  go.store(true, std::memory_order_seq_cst);
  const wake_relay::ref relay = wake_relay::make();
  for (auto& s : sleepers) relay->add(*s.owned, s.owned);
  relay->hand_on(relay, 2);
  EXPECT_TRUE(wait_for([&] { return returned.load() == count; }, 10s));
  for (auto& s : sleepers) s.thread.join();
  EXPECT_FALSE(lost.load());
}

// An owner that paces relays keeps the one it is handed until it says so: the next sleeper
// stays asleep meanwhile. (Both wait for data that never comes: only the relay's wakes end
// their waits.)
TEST(Parker, APacingOwnerHoldsTheRelayUntilItLetsGo) {
  std::atomic<bool> first_woke{false};
  std::atomic<bool> let_go{false};
  std::atomic<bool> second_woke{false};
  sleeper first, second;
  first.thread = std::thread([&, p = first.owned] {
    p->pace_relays(true);
    park(*p, p->prepare(), never, nothing_arrives);
    first_woke.store(true);
    wait_for([&] { return let_go.load(); }, 10s);
    p->pace_relays(false);
  });
  second.thread = std::thread([&, p = second.owned] {
    park(*p, p->prepare(), never, nothing_arrives);
    second_woke.store(true);
  });
  ASSERT_TRUE(wait_for([&] { return first.owned->sleeping() && second.owned->sleeping(); }, 10s));
  const wake_relay::ref relay = wake_relay::make();
  relay->add(*first.owned, first.owned);
  relay->add(*second.owned, second.owned);
  relay->hand_on(relay, 1);
  EXPECT_TRUE(wait_for([&] { return first_woke.load(); }, 10s));
  EXPECT_FALSE(second_woke.load());
  EXPECT_TRUE(second.owned->sleeping());
  let_go.store(true);
  EXPECT_TRUE(wait_for([&] { return second_woke.load(); }, 10s));
  first.thread.join();
  second.thread.join();
}

}  // namespace
