// A bounded FIFO of messages: many senders, one receiver (the thread that owns it). A full
// mailbox refuses at once; a closed one (its thread ended) refuses everything and has freed the
// messages it held.
//
// Lock-free (D. Vyukov's bounded queue): a ring of cells, each with a sequence number that says
// whose turn it is. A sender claims a cell by advancing the tail, fills it and publishes it; the
// receiver takes it and hands the cell back to the next lap. Senders and the receiver share no
// cache line but the cell they hand over, and nobody ever waits for a lock: a hand-off between
// two threads costs a few cache-line transfers, not a futex call. A push is one atomic
// read-modify-write (the claim); a pop none.
//
// The ring is allocated at the first message, so a thread that never receives one pays nothing
// for it, and freed with the mailbox: whoever may still touch it (a sender, a has_messages()
// caller) holds the thread's record, and so the mailbox, alive.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "mthread/types.hpp"

namespace mthread::core {

class mailbox {
 public:
  explicit mailbox(std::size_t depth) : depth_(depth) {}
  ~mailbox();
  mailbox(const mailbox&) = delete;
  mailbox& operator=(const mailbox&) = delete;

  enum push_result { refused, accepted, accepted_wake_receiver };
  // Any thread. Refused when the mailbox is full or closed; accepted_wake_receiver when the
  // receiver asked to be woken (wake_me_on_push) and this push is the first since.
  push_result push(message&& m);
  // The owning thread only. False when the mailbox is empty.
  bool pop(message& out);
  // The owning thread only: true when pop() would succeed. Changes nothing.
  bool has_message() const;
  // The owning thread only, before it sleeps: the next push reports that it must wake the
  // receiver. True if a message is already on its way (then do not sleep).
  bool wake_me_on_push();
  // Any thread.
  bool empty() const;
  // The owning thread only, once, when it ends: later pushes fail; held messages are freed.
  void close();

 private:
  struct alignas(64) cell {
    std::atomic<std::uint64_t> sequence{0};
    message value;
  };
  cell* ring_for_sender();

  // Flags in the tail beside the position, so that a sender's claim (a compare-exchange of the
  // tail) sees them at no extra cost. closed_bit: set by close(), a claim then fails.
  // wake_bit: set by wake_me_on_push(), cleared by the next claim.
  static constexpr std::uint64_t closed_bit = std::uint64_t{1} << 63;
  static constexpr std::uint64_t wake_bit = std::uint64_t{1} << 62;
  static constexpr std::uint64_t position_mask = wake_bit - 1;

  // Each group on a line of its own, so that nobody's writes evict what the other side reads:
  // read-mostly (written once), ...
  alignas(64) const std::size_t depth_;
  std::atomic<cell*> ring_{nullptr};
  // ... the senders' claims, ...
  alignas(64) std::atomic<std::uint64_t> tail_{0};
  // ... and the receiver's.
  alignas(64) std::atomic<std::uint64_t> head_{0};
  cell* receiver_ring_ = nullptr;
};

}  // namespace mthread::core
