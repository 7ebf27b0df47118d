// Who is alive: id -> record, the main thread's record, the thread limit, and the calling
// thread's own record.
#pragma once

#include <atomic>
#include <cstddef>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/no_destroy.hpp"
#include "core/record.hpp"
#include "core/slots.hpp"

namespace mthread::core {

class registry {
 public:
  static registry& instance();

  // The calling thread's record: a started thread's, the main thread's, or nullptr.
  static thread_record* self();
  static void set_self(thread_record* record);

  thread_record& main_thread() { return *main_; }
  thread_id next_id() { return next_id_.fetch_add(1, std::memory_order_relaxed); }
  std::size_t limit() const { return limit_; }

  // Adds a started thread's record and returns how many threads are alive (the main one
  // included); throws mthread::error when the limit is reached.
  std::size_t add(record_ptr record);
  record_ptr remove(thread_id id);
  // The name of a thread that is alive or among the last `names_kept` that ended: a message
  // outlives its sender, and whoever shows it wants the sender's name.
  std::optional<std::string> recent_name(thread_id id) const;
  record_ptr find(thread_id id) const;
  // For calls that go by a thread's flags (suspend(), resume()): runs `decide(slot, joining)` on
  // the slot of live thread `id` (nullptr when there is none) under the registry's lock, so that
  // the slot stays that thread's meanwhile; `joining` says whether any thread is blocked in
  // join(). Returns the thread's record if `decide` returns true, else nullptr: the record sits a
  // stack away from every other (with thousands of threads, a TLB miss each), so a call takes it
  // only when the flags do not do.
  template <class Decide>
  record_ptr decide_by_slot(thread_id id, Decide&& decide) const {
    std::lock_guard guard(lock_);
    thread_slot* const slot = live_.find(id);
    if (!decide(slot, !joiners_.empty()) || slot == nullptr) return nullptr;
    return slot->record()->in_registry;
  }
  // The state of a live thread, or terminated; takes no reference and touches only slots, not
  // records (it is the whole of status() for a thread that is not running).
  thread_state state_of(thread_id id) const;
  // find() for the hot path of a thread that sends to the same thread again and again: the
  // calling thread remembers its last target, so a repeat takes no lock and no reference count
  // that other threads touch too. The record stays valid until this thread's next call, held by
  // the thread or by `keep`. May be a record that has ended (ids are never reused).
  thread_record* find_cached(thread_id id, record_ptr& keep) const;
  // Lets go of the remembered target if it has ended: its record holds its mailbox's ring.
  static void forget_ended_target();
  std::vector<record_ptr> all() const;  // by id; the main thread first

  // Threads blocked in join(): woken when the thread they join ends and when it is removed
  // (only its own joiners: ending or removing one thread costs the same however many join).
  void add_joiner(thread_record* joiner, thread_record* target);
  void remove_joiner(thread_record* joiner);
  // Wakes the joiners of `ended`; true if one of them can join it (is not suspended). Under the
  // same lock as the next call, so that a joiner suspended at the same time is seen by one of
  // the two.
  bool wake_joiners_of(const thread_record& ended) const;
  // The thread `joiner` joins if it has ended: a suspended joiner cannot join it.
  record_ptr ended_target_of(const thread_record& joiner) const;

  std::atomic<bool> repl_accepts_messages{true};

  // For the reaper's fork handler (reaper.cpp), which takes this lock after its own, the order
  // in which the reaper nests them: the child's copy is then consistent, and free.
  void lock_for_fork() { lock_.lock(); }
  void unlock_after_fork() { lock_.unlock(); }

 private:
  friend class no_destroy<registry>;
  registry();
  // The registry's reference to the record of a live thread, or nullptr.
  const record_ptr* lookup(thread_id id) const;
  mutable std::mutex lock_;
  slot_table live_;  // the live threads' slots; each holds the registry's reference to its record
  // target -> the threads blocked in join() on it
  std::unordered_multimap<const thread_record*, thread_record*> joiners_;
  static constexpr std::size_t names_kept = 64;
  std::deque<std::pair<thread_id, std::string>> ended_names_;
  record_ptr main_;
  std::atomic<thread_id> next_id_{1};
  std::size_t limit_;
};

}  // namespace mthread::core
