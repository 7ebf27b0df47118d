#include "core/mailbox.hpp"

#include <sched.h>

#include <memory>

namespace mthread::core {
namespace {

// Counts a sender (or a reader) in for as long as it may touch the ring.
class sender_guard {
 public:
  explicit sender_guard(std::atomic<std::uint32_t>& senders) : senders_(senders) {
    senders_.fetch_add(1, std::memory_order_seq_cst);
  }
  ~sender_guard() { senders_.fetch_sub(1, std::memory_order_release); }
  sender_guard(const sender_guard&) = delete;
  sender_guard& operator=(const sender_guard&) = delete;

 private:
  std::atomic<std::uint32_t>& senders_;
};

// A cell's sequence number: even while it waits for the message of `position`, odd once that
// message is in (two states a lap, so that a mailbox of depth 1 works too).
constexpr std::uint64_t empty_for(std::uint64_t position) {
  return 2 * position;
}
constexpr std::uint64_t full_with(std::uint64_t position) {
  return 2 * position + 1;
}

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

bool mailbox::push(message&& m) {
  sender_guard guard(senders_);
  // Pairs with close(): either close() sees this sender counted, or this sender sees closed_.
  if (closed_.load(std::memory_order_seq_cst)) return false;
  cell* ring = ring_for_sender();
  std::uint64_t position = tail_.load(std::memory_order_relaxed);
  for (;;) {
    cell& c = ring[position % depth_];
    const std::uint64_t sequence = c.sequence.load(std::memory_order_acquire);
    const auto lag = static_cast<std::int64_t>(sequence - empty_for(position));
    if (lag == 0) {
      if (tail_.compare_exchange_weak(position, position + 1, std::memory_order_relaxed)) {
        c.value = std::move(m);
        c.sequence.store(full_with(position), std::memory_order_release);
        return true;
      }
    } else if (lag < 0) {
      return false;  // full: this cell still holds the message of the lap before
    } else {
      position = tail_.load(std::memory_order_relaxed);
    }
  }
}

bool mailbox::pop(message& out) {
  cell* ring = receiver_ring_.load(std::memory_order_relaxed);
  if (ring == nullptr) {
    ring = ring_.load(std::memory_order_acquire);
    if (ring == nullptr) return false;
    receiver_ring_.store(ring, std::memory_order_relaxed);
  }
  const std::uint64_t position = head_.load(std::memory_order_relaxed);
  cell& c = ring[position % depth_];
  if (c.sequence.load(std::memory_order_acquire) != full_with(position)) return false;
  out = std::move(c.value);
  c.value.text = std::string();  // give the string's memory back now, not at the next lap
  head_.store(position + 1, std::memory_order_relaxed);
  c.sequence.store(empty_for(position + depth_), std::memory_order_release);
  return true;
}

bool mailbox::has_message() const {
  const cell* ring = receiver_ring_.load(std::memory_order_relaxed);
  if (ring == nullptr) ring = ring_.load(std::memory_order_acquire);
  if (ring == nullptr) return false;
  const std::uint64_t position = head_.load(std::memory_order_relaxed);
  return ring[position % depth_].sequence.load(std::memory_order_acquire) == full_with(position);
}

bool mailbox::empty() const {
  sender_guard guard(senders_);
  if (closed_.load(std::memory_order_seq_cst)) return true;
  const cell* ring = ring_.load(std::memory_order_acquire);
  if (ring == nullptr) return true;
  const std::uint64_t position = head_.load(std::memory_order_relaxed);
  return ring[position % depth_].sequence.load(std::memory_order_acquire) != full_with(position);
}

void mailbox::close() {
  closed_.store(true, std::memory_order_seq_cst);
  while (senders_.load(std::memory_order_seq_cst) != 0) sched_yield();
  receiver_ring_.store(nullptr, std::memory_order_relaxed);
  std::unique_ptr<cell[]> owned(ring_.exchange(nullptr, std::memory_order_acq_rel));
}

}  // namespace mthread::core
