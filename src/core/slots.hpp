// The registry's dense side of a thread: a slot per record, in a pool of fixed chunks, holding
// what a lookup and status() read (the id, the bucket chain, the record, the two state flags);
// and the table of live threads by id, chained through the slots.
//
// A started thread's record lives at the top of its own stack, so records sit a stack apart
// (megabytes): with thousands of threads, a lookup that walked records would take a TLB miss and
// cache misses a thread. Slots sit 24 bytes apart, so ten thousand of them fit in the L2 cache and
// a few pages, and status() never touches a record.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "mthread/types.hpp"

namespace mthread::core {

struct thread_record;

// A flag of a slot, a bit of its word: reads and writes like a std::atomic<bool> (the same orders,
// lock-free, so safe in a signal handler).
class slot_flag {
 public:
  slot_flag(std::atomic<std::uintptr_t>& word, std::uintptr_t bit) : word_(word), bit_(bit) {}

  bool load(std::memory_order order = std::memory_order_seq_cst) const {
    return (word_.load(order) & bit_) != 0;
  }
  void store(bool value, std::memory_order order = std::memory_order_seq_cst) {
    exchange(value, order);
  }
  bool exchange(bool value, std::memory_order order = std::memory_order_seq_cst) {
    const std::uintptr_t before =
        value ? word_.fetch_or(bit_, order) : word_.fetch_and(~bit_, order);
    return (before & bit_) != 0;
  }

 private:
  std::atomic<std::uintptr_t>& word_;
  const std::uintptr_t bit_;
};

// 24 bytes: a slot is memory every thread pays for, and an idle thread must cost no more than a
// std::thread (whose state is 48 bytes of heap). So the record's address and the thread's flags
// share a word (a record is aligned to 64: its low bits are free). The flags are those that
// status(), suspend() and resume() decide by, so that those read no record (a stack away from
// every other: with thousands of threads, a TLB miss each); and, one word, every change of one
// flag sees all the others as they were at that instant. None is read by a thread's senders,
// whose every message would otherwise fetch the line its owner writes at every wait (a C++
// message round trip: 450 → 650 ns, when `ended` was here). Two or three slots share a cache line,
// and a thread writes its `waiting` bit twice a wait: slot_pool hands out a new chunk's slots so
// that threads started one after the other do not share one.
struct thread_slot {
  static constexpr std::uintptr_t suspend_requested_bit = 1;
  static constexpr std::uintptr_t waiting_bit = 2;
  static constexpr std::uintptr_t suspendable_bit = 4;
  static constexpr std::uintptr_t kill_requested_bit = 8;
  static constexpr std::uintptr_t asleep_suspended_bit = 16;
  static constexpr std::uintptr_t flag_bits = suspend_requested_bit | waiting_bit |
                                              suspendable_bit | kill_requested_bit |
                                              asleep_suspended_bit;

  thread_id id = 0;
  // The next slot of the same bucket while the thread is in the table; the next free slot while
  // the slot is in the pool. Guarded by the table's owner (the registry's lock) or the pool's.
  thread_slot* next = nullptr;
  // The record (while the thread is in the registry; set and read under its lock) and the flags.
  std::atomic<std::uintptr_t> word{0};

  slot_flag suspend_requested() { return {word, suspend_requested_bit}; }
  slot_flag waiting() { return {word, waiting_bit}; }
  slot_flag suspendable() { return {word, suspendable_bit}; }
  slot_flag kill_requested() { return {word, kill_requested_bit}; }
  slot_flag asleep_suspended() { return {word, asleep_suspended_bit}; }

  thread_record* record() const {
    return reinterpret_cast<thread_record*>(word.load(std::memory_order_relaxed) & ~flag_bits);
  }
  // The registry holds its reference to the record in the record itself
  // (thread_record::in_registry).
  void set_record(thread_record* registered) {
    const auto address = reinterpret_cast<std::uintptr_t>(registered);
    std::uintptr_t expected = word.load(std::memory_order_relaxed);
    while (!word.compare_exchange_weak(expected, (expected & flag_bits) | address,
                                       std::memory_order_relaxed)) {
    }
  }

  // What status() says of a live thread.
  thread_state state() const {
    const std::uintptr_t flags = word.load(std::memory_order_acquire);
    if ((flags & suspend_requested_bit) != 0) return thread_state::suspended;
    if ((flags & waiting_bit) != 0) return thread_state::waiting;
    return thread_state::running;
  }
};

static_assert(sizeof(thread_slot) == 24, "a slot's size is an idle thread's memory: see above");

// Slots in chunks that never move or go back to the heap; a freed slot is the next one taken.
class slot_pool {
 public:
  static constexpr std::size_t chunk_slots = 32;  // 768 bytes: few slots made and never used
  // The order a new chunk's slots are taken in (see take()): every `spread`-th slot first.
  static constexpr std::size_t spread = 8;  // 192 bytes, three cache lines
  static constexpr std::size_t slot_lines = chunk_slots / spread;

  static slot_pool& shared();  // the one every record takes its slot from

  slot_pool() = default;
  slot_pool(const slot_pool&) = delete;
  slot_pool& operator=(const slot_pool&) = delete;

  // A slot for thread `id`, its flags cleared; its address holds until it is given back.
  thread_slot& take(thread_id id);
  void give_back(thread_slot& slot);
  std::size_t capacity() const;  // slots made so far, taken or free

 private:
  // On a cache line of its own: the last slot a chunk hands out is its last, and the next
  // chunk's first one must not share that slot's line (the heap may put chunks side by side).
  struct alignas(64) chunk {
    thread_slot slots[chunk_slots];
  };
  mutable std::mutex lock_;
  std::vector<std::unique_ptr<chunk>> chunks_;
  thread_slot* free_ = nullptr;
};

// A record's slot: taken when the record is made, given back when it goes (not when the thread
// leaves the registry: whoever still holds the record reads and writes its flags).
class owned_slot {
 public:
  explicit owned_slot(thread_id id, slot_pool& pool = slot_pool::shared())
      : pool_(&pool), slot_(&pool.take(id)) {}
  ~owned_slot() { pool_->give_back(*slot_); }
  owned_slot(const owned_slot&) = delete;
  owned_slot& operator=(const owned_slot&) = delete;

  thread_slot& operator*() const { return *slot_; }
  thread_slot* operator->() const { return slot_; }

 private:
  slot_pool* pool_;
  thread_slot* slot_;
};

// The live threads by id, chained through their slots (an entry costs no allocation). Ids come
// in sequence, so the low bits spread them evenly; the table doubles when there are twice as many
// entries as buckets (chains of two cost less than a bucket a thread). Not thread-safe: its owner
// locks.
class slot_table {
 public:
  slot_table() : buckets_(64) {}

  void insert(thread_slot& slot);
  thread_slot* find(thread_id id) const;
  // Takes the slot of `id` out of the table; nullptr if it is not in it.
  thread_slot* erase(thread_id id);
  std::size_t size() const { return count_; }
  std::size_t bucket_count() const { return buckets_.size(); }

  template <class Visit>
  void for_each(Visit&& visit) const {
    for (thread_slot* chain : buckets_) {
      for (; chain != nullptr; chain = chain->next) visit(*chain);
    }
  }

 private:
  thread_slot*& bucket_of(thread_id id) { return buckets_[id & (buckets_.size() - 1)]; }
  void grow();

  std::vector<thread_slot*> buckets_;
  std::size_t count_ = 0;
};

}  // namespace mthread::core
