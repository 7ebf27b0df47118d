// A futex word a thread sleeps on, and that anyone can wake.
// Every wait and sleep of mthread's goes through one, so each is a place where suspend and kill
// are noticed: they wake the parker too. wait() without `arrived` is async-signal-safe (the
// suspend handler parks on it).
#pragma once

#include <poll.h>
#include <time.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "mthread/deadline.hpp"

namespace mthread::core {

class parker;

// The wakes a broadcast owes, shared out among the threads it wakes. Waking a sleeping thread
// is a system call that also hands it a CPU: a broadcaster that made all N of them would, on a
// machine with fewer CPUs than targets, run a share of the CPU that shrinks with every thread it
// woke, and its call would last as long as all the woken threads took to run. So the
// broadcaster delivers to all and wakes a few; every thread woken so wakes two more of the list
// as it leaves its wait, before it goes on: the wakes spread over the CPUs as a tree.
class wake_relay {
 public:
  // An owning reference (a count of the relay's own: a parker's slot holds one as a plain
  // atomic pointer, which std::atomic<std::shared_ptr> cannot do without a lock of its own).
  class ref {
   public:
    ref() = default;
    ref(const ref& other) : relay_(other.relay_) {
      if (relay_ != nullptr) relay_->refs_.fetch_add(1, std::memory_order_relaxed);
    }
    ref(ref&& other) noexcept : relay_(std::exchange(other.relay_, nullptr)) {}
    ref& operator=(ref other) noexcept {
      std::swap(relay_, other.relay_);
      return *this;
    }
    ~ref() {
      if (relay_ != nullptr && relay_->refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        const std::unique_ptr<wake_relay> last(relay_);
      }
    }
    wake_relay* get() const { return relay_; }
    wake_relay* operator->() const { return relay_; }
    explicit operator bool() const { return relay_ != nullptr; }
    // Hands the count to whoever stores the pointer; adopt() takes it back.
    wake_relay* release() { return std::exchange(relay_, nullptr); }
    static ref adopt(wake_relay* relay) { return ref(relay); }

   private:
    explicit ref(wake_relay* relay) : relay_(relay) {}
    wake_relay* relay_ = nullptr;
  };

  static ref make() { return ref::adopt(std::make_unique<wake_relay>().release()); }

  // `keep` holds the parker alive until it is woken.
  void add(parker& target, std::shared_ptr<const void> keep) {
    targets_.emplace_back(&target, std::move(keep));
  }
  bool empty() const { return targets_.empty(); }
  // Wakes parkers of the list not yet taken until `count` of them were handed the relay to go
  // on with (or the list is done). `self` is this relay.
  void hand_on(const ref& self, int count);

 private:
  std::vector<std::pair<parker*, std::shared_ptr<const void>>> targets_;
  std::atomic<std::size_t> next_{0};
  std::atomic<int> refs_{1};
};

class parker {
 public:
  parker();
  ~parker();
  parker(const parker&) = delete;
  parker& operator=(const parker&) = delete;

  // Read the word before checking the condition you wait for; pass it to wait().
  std::uint32_t prepare() const { return word_.load(std::memory_order_acquire); }

  // Returns when wake() was called after prepare() returned `seen`, when `arrived(false)` turns
  // true, when `until` passes, or on a signal. Only the owning thread waits.
  //
  // `arrived(false)` is the spin's look at what the owner waits for: cheap, and changing
  // nothing. `arrived(true)` is the last look before sleeping, made after the owner said it is
  // going to sleep: whoever publishes what it looks at after that must wake() it — publish()
  // does, or a protocol of the data's own (the mailbox's). Most hand-offs thus reach a spinning
  // owner without touching the parker at all.
  //
  // Spins before sleeping: a hand-off to a thread that is spinning costs a few cache-line
  // transfers, one to a sleeping thread a futex call on each side and a trip through the
  // scheduler (tens of microseconds on a busy machine). How long it spins adapts to how soon
  // the wakes of this parker come: wakers that answer within microseconds (a ping-pong
  // partner) keep the spin long enough to catch them; waits that last longer than any
  // reasonable spin (an idle thread) shrink it to almost nothing; wakers that answer as soon as
  // they get the spinner's CPU (two threads on one CPU: a busy machine, a thread started on its
  // starter's CPU) turn it into yields, each look handing them the CPU.
  template <class Arrived>
  void wait(std::uint32_t seen, const deadline& until, const Arrived& arrived) {
    wait_for(
        seen, until,
        [](const void* a, bool going_to_sleep) {
          return (*static_cast<const Arrived*>(a))(going_to_sleep);
        },
        &arrived);
  }
  // Without `arrived` only a wake() ends the wait: it sleeps at once (these waits are long:
  // suspended, joining, sleeping).
  void wait(std::uint32_t seen, const deadline& until) { wait_for(seen, until, nullptr, nullptr); }

  // As wait(seen, until), but also returns when `fds` (as for ::poll) are ready: the owner
  // polls them together with an eventfd of its own that wake() writes to while it polls, so a
  // kill or suspend reaches a thread blocked on a socket at once. Returns what ::poll returned
  // for `fds` (0 when woken or timed out, -1 with errno on failure; EINTR is 0).
  int wait_fds(std::uint32_t seen, pollfd* fds, nfds_t count, const deadline& until);

  // Wakes the owner whatever it waits for (kill, suspend, resume, a thread gone).
  void wake();

  // As wake(); if the owner sleeps in a wait for data (one with `arrived`), it is also handed
  // `relay`, to go on with as it leaves the wait. False when it was not handed over (the owner
  // was awake, or holds another relay): the caller goes on with it.
  bool wake_relaying(const wake_relay::ref& relay);

  // The owner only. While on, a relay this parker's owner is handed waits until pace_relays(false)
  // (or the owner's next wait) to go on, and then goes on to one thread, not two: a binding whose
  // threads run one at a time (an interpreter lock) turns it on around a receive, so that a
  // broadcast wakes its threads as fast as they take the lock, not all at once (thousands of
  // threads woken together only queue for the lock, and every one of them costs the CPUs).
  void pace_relays(bool on) {
    pacing_ = on;
    if (!on) pass_on_relay();
  }

  // Whether wake() would make a system call: the owner sleeps.
  bool sleeping() const { return sleeping_.load(std::memory_order_seq_cst) != awake; }

  // For whoever just published what the owner's `arrived()` looks at (a notification): wakes
  // the owner only if it sleeps. A spinning owner sees the data itself, so the common
  // hand-off touches no line of the parker's but one that only changes when the owner sleeps.
  // The data must be stored, and read by `arrived(true)`, with memory_order_seq_cst: then either
  // the owner's last look before sleeping sees it, or this load sees the owner going to sleep.
  void publish() {
    if (sleeping()) wake();
  }

 private:
  void wait_for(std::uint32_t seen, const deadline& until, bool (*arrived)(const void*, bool),
                const void* context);

  void take_relay();
  void pass_on_relay();

  std::atomic<std::uint32_t> word_{0};
  // Whether the owner sleeps, and if so whether it takes a relay as it wakes.
  enum : std::uint8_t { awake, asleep, asleep_taking_relay };
  std::atomic<std::uint8_t> sleeping_{awake};
  std::atomic<wake_relay*> relay_{nullptr};  // holds a count of the relay's while set
  // The owner's: whether relays are paced, and the one it holds meanwhile.
  bool pacing_ = false;
  wake_relay::ref held_relay_;
  // The eventfd of wait_fds(): made at the owner's first wait on descriptors, written by wake()
  // only while `polling_` (so the other waits pay nothing for it).
  std::atomic<int> event_fd_{-1};
  std::atomic<bool> polling_{false};
  std::atomic<std::uint32_t> spin_ns_;     // the owner's spin budget; only the owner writes it
  std::atomic<std::int64_t> woken_at_{0};  // when a waker last had to wake a sleeper (ns)
  std::atomic<int> woken_from_{-1};        // and on which CPU it ran
};

}  // namespace mthread::core
