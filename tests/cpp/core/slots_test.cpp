// The registry's slots on their own (src/core/slots.hpp): a slot keeps its address while taken
// and comes back cleared; freed slots are taken again before the pool grows; the table finds
// every live id and none that left, across many adds and removes and the growth of its buckets.
#include "core/slots.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <set>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

using mthread::thread_id;
using mthread::thread_state;
using mthread::core::owned_slot;
using mthread::core::slot_pool;
using mthread::core::slot_table;
using mthread::core::thread_slot;

namespace {

constexpr std::size_t chunk = slot_pool::chunk_slots;

TEST(SlotPool, TakesClearedSlotsForTheGivenId) {
  slot_pool pool;
  thread_slot& slot = pool.take(7);
  EXPECT_EQ(slot.id, 7u);
  EXPECT_EQ(slot.next, nullptr);
  EXPECT_EQ(slot.record(), nullptr);
  EXPECT_EQ(slot.state(), thread_state::running);
  slot.waiting().store(true);
  slot.suspend_requested().store(true);
  pool.give_back(slot);

  thread_slot& again = pool.take(8);
  EXPECT_EQ(&again, &slot);  // the slot freed last is taken first: it is warm
  EXPECT_EQ(again.id, 8u);
  EXPECT_EQ(again.state(), thread_state::running);
  pool.give_back(again);
}

TEST(SlotPool, StateSaysSuspendedBeforeWaiting) {
  slot_pool pool;
  thread_slot& slot = pool.take(1);
  slot.waiting().store(true);
  EXPECT_EQ(slot.state(), thread_state::waiting);
  slot.suspend_requested().store(true);
  EXPECT_EQ(slot.state(), thread_state::suspended);
  pool.give_back(slot);
}

// The record's address and the flags share a word: neither may clobber the other, however the
// two writers (the registry, the thread and its suspender) interleave.
TEST(SlotPool, TheRecordAndTheFlagsShareAWordWithoutClobberingEachOther) {
  slot_pool pool;
  thread_slot& slot = pool.take(1);
  alignas(64) static char record_storage[64];  // a record's alignment (record.hpp)
  auto* record = reinterpret_cast<mthread::core::thread_record*>(record_storage);
  slot.waiting().store(true);
  slot.set_record(record);
  EXPECT_EQ(slot.record(), record);
  EXPECT_TRUE(slot.waiting().load());
  for (auto flag : {slot.suspendable(), slot.kill_requested(), slot.asleep_suspended()}) {
    EXPECT_FALSE(flag.exchange(true));
    EXPECT_EQ(slot.record(), record);
    EXPECT_TRUE(flag.exchange(false));
  }
  EXPECT_EQ(slot.record(), record);
  EXPECT_TRUE(slot.waiting().load());
  EXPECT_FALSE(slot.suspend_requested().exchange(true));
  EXPECT_TRUE(slot.suspend_requested().exchange(true));
  EXPECT_EQ(slot.record(), record);
  slot.waiting().store(false);
  EXPECT_EQ(slot.state(), thread_state::suspended);
  slot.set_record(nullptr);
  EXPECT_EQ(slot.record(), nullptr);
  EXPECT_TRUE(slot.suspend_requested().load());
  EXPECT_FALSE(slot.waiting().load());

  // Many flips from two threads while the record comes and goes: each sees its own writes.
  std::thread flipper([&] {
    for (int i = 0; i < 100000; ++i) {
      slot.waiting().store(true);
      ASSERT_TRUE(slot.waiting().load());
      slot.waiting().store(false);
      ASSERT_FALSE(slot.waiting().load());
    }
  });
  for (int i = 0; i < 100000; ++i) {
    slot.set_record(i % 2 == 0 ? record : nullptr);
    ASSERT_EQ(slot.record(), i % 2 == 0 ? record : nullptr);
    ASSERT_TRUE(slot.suspend_requested().load());
  }
  flipper.join();
  EXPECT_EQ(slot.word.load(), thread_slot::suspend_requested_bit);
  pool.give_back(slot);
}

// Each thread writes its slot's `waiting` bit at every wait: two threads started one after the
// other (often a pair that hands work back and forth) must not write one cache line.
TEST(SlotPool, SlotsTakenOneAfterTheOtherLieOnDifferentCacheLines) {
  slot_pool pool;
  std::vector<thread_slot*> taken;
  for (thread_id id = 1; id <= 2 * chunk; ++id) taken.push_back(&pool.take(id));
  for (std::size_t i = 1; i < taken.size(); ++i) {
    EXPECT_NE(reinterpret_cast<std::uintptr_t>(taken[i - 1]) / 64,
              reinterpret_cast<std::uintptr_t>(taken[i]) / 64)
        << "slots " << i - 1 << " and " << i;
  }
  for (thread_slot* slot : taken) pool.give_back(*slot);
}

TEST(SlotPool, SlotsKeepTheirAddressesWhileThePoolGrows) {
  slot_pool pool;
  std::vector<thread_slot*> taken;
  for (thread_id id = 1; id <= 10 * chunk + 3; ++id) {
    taken.push_back(&pool.take(id));
    // Earlier slots are where they were and hold what they held.
    EXPECT_EQ(taken.front()->id, 1u);
  }
  EXPECT_EQ(pool.capacity(), 11 * chunk);
  for (std::size_t i = 0; i < taken.size(); ++i) EXPECT_EQ(taken[i]->id, i + 1);
  // No two the same, each aligned for its word (whose low bits are the flags).
  const std::set<thread_slot*> distinct(taken.begin(), taken.end());
  EXPECT_EQ(distinct.size(), taken.size());
  for (thread_slot* slot : taken) {
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(slot) % alignof(std::uintptr_t), 0u);
    pool.give_back(*slot);
  }
}

TEST(SlotPool, FreedSlotsAreTakenBeforeThePoolGrows) {
  slot_pool pool;
  std::vector<thread_slot*> taken;
  for (thread_id id = 1; id <= 3 * chunk; ++id) taken.push_back(&pool.take(id));
  const std::set<thread_slot*> first(taken.begin(), taken.end());
  for (int round = 0; round < 20; ++round) {
    for (std::size_t i = 0; i < taken.size(); i += 2) pool.give_back(*taken[i]);
    for (std::size_t i = 0; i < taken.size(); i += 2) taken[i] = &pool.take(1000 + i);
    EXPECT_EQ(pool.capacity(), 3 * chunk);
  }
  const std::set<thread_slot*> now(taken.begin(), taken.end());
  EXPECT_EQ(now, first);
  for (thread_slot* slot : taken) pool.give_back(*slot);
}

TEST(SlotPool, OwnedSlotGivesItsSlotBackWhenItGoes) {
  slot_pool pool;
  thread_slot* first = nullptr;
  {
    const owned_slot owned(5, pool);
    first = &*owned;
    EXPECT_EQ(owned->id, 5u);
  }
  const owned_slot next(6, pool);
  EXPECT_EQ(&*next, first);
  EXPECT_EQ(pool.capacity(), chunk);
}

TEST(SlotPool, ThreadsTakeAndGiveBackConcurrently) {
  slot_pool pool;
  constexpr int threads = 4;
  constexpr int rounds = 2000;
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&pool, t] {
      for (int i = 0; i < rounds; ++i) {
        const auto id = static_cast<thread_id>(t * rounds + i + 1);
        const owned_slot owned(id, pool);
        owned->waiting().store(true);
        EXPECT_EQ(owned->id, id);  // nobody else holds it
      }
    });
  }
  for (std::thread& worker : workers) worker.join();
  EXPECT_LE(pool.capacity(), threads * chunk);
}

// --- slot_table ------------------------------------------------------------------------------

TEST(SlotTable, FindsWhatWasInsertedAndNotWhatLeft) {
  slot_pool pool;
  slot_table table;
  thread_slot& a = pool.take(1);
  thread_slot& b = pool.take(65);  // same bucket as 1 while there are 64
  table.insert(a);
  table.insert(b);
  EXPECT_EQ(table.size(), 2u);
  EXPECT_EQ(table.find(1), &a);
  EXPECT_EQ(table.find(65), &b);
  EXPECT_EQ(table.find(129), nullptr);
  EXPECT_EQ(table.erase(1), &a);
  EXPECT_EQ(table.erase(1), nullptr);
  EXPECT_EQ(table.find(1), nullptr);
  EXPECT_EQ(table.find(65), &b);
  EXPECT_EQ(table.size(), 1u);
  EXPECT_EQ(table.erase(65), &b);
  EXPECT_EQ(table.size(), 0u);
  pool.give_back(a);
  pool.give_back(b);
}

TEST(SlotTable, BucketsGrowWithTheEntriesAndLookupsHoldAcrossManyAddsAndRemoves) {
  slot_pool pool;
  slot_table table;
  const std::size_t initial_buckets = table.bucket_count();
  std::vector<thread_slot*> live;
  std::vector<thread_id> left;
  thread_id next_id = 1;
  for (int round = 0; round < 40; ++round) {
    for (int i = 0; i < 300; ++i) {
      thread_slot& slot = pool.take(next_id++);
      table.insert(slot);
      live.push_back(&slot);
    }
    // The older half leaves, but for the ids divisible by 7, which stay for good.
    std::vector<thread_slot*> kept;
    for (std::size_t i = 0; i < live.size(); ++i) {
      thread_slot* slot = live[i];
      if (i < live.size() / 2 && slot->id % 7 != 0) {
        ASSERT_EQ(table.erase(slot->id), slot);
        left.push_back(slot->id);
        pool.give_back(*slot);
      } else {
        kept.push_back(slot);
      }
    }
    live.swap(kept);
    ASSERT_EQ(table.size(), live.size());
    for (const thread_slot* slot : live) ASSERT_EQ(table.find(slot->id), slot);
  }
  EXPECT_GT(table.bucket_count(), initial_buckets);
  EXPECT_GE(2 * table.bucket_count(), table.size());
  for (const thread_id id : left) EXPECT_EQ(table.find(id), nullptr);
  EXPECT_EQ(left.size() + live.size(), next_id - 1);
  std::size_t visited = 0;
  table.for_each([&](const thread_slot& slot) {
    ++visited;
    EXPECT_EQ(table.find(slot.id), &slot);
  });
  EXPECT_EQ(visited, live.size());
  for (thread_slot* slot : live) {
    table.erase(slot->id);
    pool.give_back(*slot);
  }
  EXPECT_EQ(table.size(), 0u);
}

}  // namespace
