#include "core/slots.hpp"

#include <pthread.h>

#include "core/no_destroy.hpp"

namespace mthread::core {

slot_pool& slot_pool::shared() {
  static no_destroy<slot_pool> pool;
  // A record that goes while another thread forks gives its slot back under this lock, which the
  // child's copy must not keep held by a thread that does not exist there. (It nests in no other
  // lock, so its place among the fork handlers does not matter.)
  static const bool fork_handled =
      pthread_atfork([] { pool.get().lock_.lock(); }, [] { pool.get().lock_.unlock(); },
                     [] { pool.get().lock_.unlock(); }) == 0;
  (void)fork_handled;
  return pool.get();
}

thread_slot& slot_pool::take(thread_id id) {
  std::lock_guard guard(lock_);
  if (free_ == nullptr) {
    chunks_.push_back(std::make_unique<slot_pool::chunk>());
    thread_slot* const made = chunks_.back()->slots;
    // Chained so that slots taken one after the other (threads started one after the other, often
    // a pair that hands work back and forth) lie a few cache lines apart, not on one line whose
    // `waiting` bits both write at every wait: 0, spread, 2 * spread, ..., then 1, 1 + spread, ...
    for (std::size_t position = chunk_slots; position-- > 0;) {
      const std::size_t index = (position % slot_lines) * spread + position / slot_lines;
      made[index].next = free_;
      free_ = &made[index];
    }
  }
  thread_slot& slot = *free_;
  free_ = slot.next;
  slot.id = id;
  slot.next = nullptr;
  slot.word.store(0, std::memory_order_relaxed);
  return slot;
}

void slot_pool::give_back(thread_slot& slot) {
  std::lock_guard guard(lock_);
  slot.id = 0;
  slot.next = free_;
  free_ = &slot;
}

std::size_t slot_pool::capacity() const {
  std::lock_guard guard(lock_);
  return chunks_.size() * chunk_slots;
}

void slot_table::insert(thread_slot& slot) {
  if (count_ == 2 * buckets_.size()) grow();
  thread_slot*& head = bucket_of(slot.id);
  slot.next = head;
  head = &slot;
  ++count_;
}

thread_slot* slot_table::find(thread_id id) const {
  thread_slot* slot = buckets_[id & (buckets_.size() - 1)];
  while (slot != nullptr && slot->id != id) slot = slot->next;
  return slot;
}

thread_slot* slot_table::erase(thread_id id) {
  thread_slot** link = &bucket_of(id);
  while (*link != nullptr && (*link)->id != id) link = &(*link)->next;
  thread_slot* found = *link;
  if (found == nullptr) return nullptr;
  *link = found->next;
  found->next = nullptr;
  --count_;
  return found;
}

void slot_table::grow() {
  std::vector<thread_slot*> old(2 * buckets_.size());
  old.swap(buckets_);
  for (thread_slot* chain : old) {
    while (chain != nullptr) {
      thread_slot* next = chain->next;
      thread_slot*& head = bucket_of(chain->id);
      chain->next = head;
      head = chain;
      chain = next;
    }
  }
}

}  // namespace mthread::core
