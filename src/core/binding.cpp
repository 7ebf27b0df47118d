// The binding:: calls of binding.hpp about the calling thread and its peers.
#include "mthread/binding.hpp"

#include <pthread.h>

#include <mutex>
#include <new>

#include "core/control.hpp"
#include "core/no_destroy.hpp"
#include "core/registry.hpp"

namespace mthread {

using core::registry;

namespace binding {

bool suspend_requested() {
  const core::thread_record* self = registry::self();
  return self != nullptr && self->suspend_requested.load(std::memory_order_acquire);
}

bool kill_requested() {
  const core::thread_record* self = registry::self();
  return self != nullptr && self->kill_requested.load(std::memory_order_acquire);
}

bool has_messages(thread_id id) {
  core::core_section section;
  const core::record_ptr target = registry::instance().find(id);
  return target != nullptr && !target->box.empty();
}

std::string sender_name(thread_id id) {
  core::core_section section;
  return registry::instance().recent_name(id).value_or("unknown");
}

void park_while_suspended() {
  core::core_section section;
  if (section.self() != nullptr) core::park_while_suspended(*section.self());
}

void body_over_but_for_release() {
  if (core::thread_record* self = registry::self()) {
    self->body_over.store(true, std::memory_order_seq_cst);
  }
}

kill_deferral::kill_deferral() {
  if (core::thread_record* self = registry::self()) ++self->kill_deferrals;
}

kill_deferral::~kill_deferral() {
  if (core::thread_record* self = registry::self()) --self->kill_deferrals;
}

namespace {
std::mutex& lock_queue() {
  static core::no_destroy<std::mutex> turn;  // waited on during exit too
  return turn.get();
}
// A thread holds the turn while it waits for the interpreter lock, which a thread that forks
// holds: in the child, where only the forking thread lives, nobody would give the turn back.
void free_turn_in_child() {
  ::new (static_cast<void*>(&lock_queue())) std::mutex();
}
[[maybe_unused]] const int turn_freed_in_child =
    pthread_atfork(nullptr, nullptr, free_turn_in_child);
}  // namespace

lock_queue_turn::lock_queue_turn() {
  lock_queue().lock();
}

lock_queue_turn::~lock_queue_turn() {
  lock_queue().unlock();
}

}  // namespace binding
}  // namespace mthread
