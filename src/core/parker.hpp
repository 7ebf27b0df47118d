// A futex word a thread sleeps on, and that anyone can wake.
// Every wait and sleep of mthread's goes through one, so each is a place where suspend and kill
// are noticed: they wake the parker too. wait() is async-signal-safe (the suspend handler parks
// on it).
#pragma once

#include <time.h>

#include <atomic>
#include <cstdint>

namespace mthread::core {

class parker {
 public:
  // Read the word before checking the condition you wait for; pass it to wait().
  std::uint32_t prepare() const { return word_.load(std::memory_order_acquire); }

  // Returns when wake() was called after prepare() returned `seen`, when `deadline`
  // (CLOCK_MONOTONIC, nullptr: none) passes, or on a signal. Spins briefly before sleeping,
  // which halves a hand-off's latency when the waker is about to run on the other core.
  void wait(std::uint32_t seen, const timespec* deadline);

  void wake();

 private:
  std::atomic<std::uint32_t> word_{0};
  std::atomic<bool> sleeping_{false};
};

}  // namespace mthread::core
