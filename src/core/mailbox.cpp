#include "core/mailbox.hpp"

#include <sched.h>

#include <memory>

namespace mthread::core {
namespace {

// A cell's sequence number: even while it waits for the message of `position`, odd once that
// message is in (two states a lap, so that a mailbox of depth 1 works too).
constexpr std::uint64_t empty_for(std::uint64_t position) {
  return 2 * position;
}
constexpr std::uint64_t full_with(std::uint64_t position) {
  return 2 * position + 1;
}

constexpr std::uint64_t prefetch_distance = 8;

}  // namespace

mailbox::~mailbox() {
  // Takes back the ownership that ring_for_sender() handed to the atomic pointer.
  std::unique_ptr<cell[]> owned(ring_.load(std::memory_order_acquire));
}

mailbox::cell* mailbox::ring_for_sender() {
  cell* ring = ring_.load(std::memory_order_acquire);
  if (ring != nullptr) return ring;
  auto fresh = std::make_unique<cell[]>(depth_);
  for (std::size_t i = 0; i < depth_; ++i)
    fresh[i].sequence.store(empty_for(i), std::memory_order_relaxed);
  if (ring_.compare_exchange_strong(ring, fresh.get(), std::memory_order_acq_rel,
                                    std::memory_order_acquire)) {
    return fresh.release();  // owned by ring_ from now on
  }
  return ring;  // another sender was first; `fresh` goes away
}

mailbox::push_result mailbox::push(message&& m) {
  std::uint64_t tail = tail_.load(std::memory_order_relaxed);
  if ((tail & closed_bit) != 0) return refused;
  cell* ring = ring_for_sender();
  for (;;) {
    const std::uint64_t position = tail & position_mask;
    cell& c = ring[position % depth_];
    const std::uint64_t sequence = c.sequence.load(std::memory_order_acquire);
    const auto lag = static_cast<std::int64_t>(sequence - empty_for(position));
    if (lag == 0) {
      // Clears the wake bit; fails, among others, once close() has set the closed bit.
      // Acquire: a claim that sees the wake bit then sees the receiver going to sleep too.
      if (tail_.compare_exchange_weak(tail, position + 1, std::memory_order_acquire,
                                      std::memory_order_relaxed)) {
        c.value = std::move(m);
        c.sequence.store(full_with(position), std::memory_order_release);
        // Ask now for a cell a few ahead: the receiver wrote it last (a lap ago), and without
        // this the claim's locked instruction would wait for each cell's transfer in turn.
        if (depth_ > prefetch_distance) {
          __builtin_prefetch(&ring[(position + prefetch_distance) % depth_], 1);
        }
        return (tail & wake_bit) != 0 ? accepted_wake_receiver : accepted;
      }
    } else if (lag < 0) {
      return refused;  // full: this cell still holds the message of the lap before
    } else {
      tail = tail_.load(std::memory_order_relaxed);
    }
    if ((tail & closed_bit) != 0) return refused;
  }
}

bool mailbox::pop(message& out) {
  if (receiver_ring_ == nullptr) {
    receiver_ring_ = ring_.load(std::memory_order_acquire);
    if (receiver_ring_ == nullptr) return false;
  }
  const std::uint64_t position = head_.load(std::memory_order_relaxed);
  cell& c = receiver_ring_[position % depth_];
  if (c.sequence.load(std::memory_order_acquire) != full_with(position)) return false;
  out = std::move(c.value);
  c.value.text = std::string();  // give the string's memory back now, not at the next lap
  head_.store(position + 1, std::memory_order_relaxed);
  c.sequence.store(empty_for(position + depth_), std::memory_order_release);
  return true;
}

bool mailbox::has_message() const {
  const cell* ring =
      receiver_ring_ != nullptr ? receiver_ring_ : ring_.load(std::memory_order_acquire);
  if (ring == nullptr) return false;
  const std::uint64_t position = head_.load(std::memory_order_relaxed);
  return ring[position % depth_].sequence.load(std::memory_order_acquire) == full_with(position);
}

bool mailbox::wake_me_on_push() {
  // Ordered with every claim (all read-modify-writes of the tail): a claim before this one is
  // seen here, a later one sees the bit.
  const std::uint64_t tail = tail_.fetch_or(wake_bit, std::memory_order_seq_cst);
  return (tail & position_mask) != head_.load(std::memory_order_relaxed);
}

bool mailbox::empty() const {
  if ((tail_.load(std::memory_order_acquire) & closed_bit) != 0) return true;
  const cell* ring = ring_.load(std::memory_order_acquire);
  if (ring == nullptr) return true;
  const std::uint64_t position = head_.load(std::memory_order_relaxed);
  return ring[position % depth_].sequence.load(std::memory_order_acquire) != full_with(position);
}

void mailbox::close() {
  const std::uint64_t end = tail_.fetch_or(closed_bit, std::memory_order_acq_rel) & position_mask;
  // Every position before `end` is claimed; a sender still filling its cell finishes soon (it
  // never blocks), and only then is its message freed.
  message dropped;
  for (std::uint64_t position = head_.load(std::memory_order_relaxed); position < end; ++position) {
    while (!pop(dropped)) sched_yield();
  }
}

}  // namespace mthread::core
