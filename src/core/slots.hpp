// The registry's dense side of a thread: a slot per record, in a pool of fixed chunks, holding
// what a lookup and status() read (the id, the bucket chain, the registry's reference, the two
// state flags); and the table of live threads by id, chained through the slots.
//
// A started thread's record lives at the top of its own stack, so records sit a stack apart
// (megabytes): with thousands of threads, a lookup that walked records would take a TLB miss and
// cache misses a thread. Slots sit 64 bytes apart, so ten thousand of them fit in the L2 cache and
// a few pages, and a lookup or status() never touches a record.
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <mutex>
#include <vector>

#include "mthread/types.hpp"

namespace mthread::core {

struct thread_record;

// One cache line each: the thread itself writes `waiting` at every wait, and a neighbour's line
// must not be read by other threads' lookups for it.
struct alignas(64) thread_slot {
  thread_id id = 0;
  // The next slot of the same bucket while the thread is in the table; the next free slot while
  // the slot is in the pool. Guarded by the table's owner (the registry's lock) or the pool's.
  thread_slot* next = nullptr;
  // The registry's reference to the record while the thread is in the registry (its lock).
  std::shared_ptr<thread_record> registered;
  std::atomic<bool> suspend_requested{false};
  std::atomic<bool> waiting{false};

  // What status() says of a live thread.
  thread_state state() const {
    if (suspend_requested.load(std::memory_order_acquire)) return thread_state::suspended;
    if (waiting.load(std::memory_order_acquire)) return thread_state::waiting;
    return thread_state::running;
  }
};

// Slots in chunks that never move or go back to the heap; a freed slot is the next one taken.
class slot_pool {
 public:
  static constexpr std::size_t chunk_slots = 64;  // a page of slots

  static slot_pool& shared();  // the one every record takes its slot from

  slot_pool() = default;
  slot_pool(const slot_pool&) = delete;
  slot_pool& operator=(const slot_pool&) = delete;

  // A slot for thread `id`, its flags cleared; its address holds until it is given back.
  thread_slot& take(thread_id id);
  void give_back(thread_slot& slot);
  std::size_t capacity() const;  // slots made so far, taken or free

 private:
  mutable std::mutex lock_;
  std::vector<std::unique_ptr<thread_slot[]>> chunks_;
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
// in sequence, so the low bits spread them evenly; the table doubles when there are more entries
// than buckets. Not thread-safe: its owner locks.
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
