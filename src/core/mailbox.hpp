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

  // Any thread. False when the mailbox is full or closed.
  bool push(message&& m);
  // The owning thread only. False when the mailbox is empty.
  bool pop(message& out);
  // The owning thread only: true when pop() would succeed. Changes nothing.
  bool has_message() const;
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

  // Set in the tail by close(): a sender's claim of the next position then fails.
  static constexpr std::uint64_t closed_bit = std::uint64_t{1} << 63;

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
