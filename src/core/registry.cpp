#include "core/registry.hpp"

#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <string>

#include "core/no_destroy.hpp"

// The default thread limit is CMake's MTHREAD_MAX_THREADS, stated there only.
#ifndef MTHREAD_MAX_THREADS_DEFAULT
#error "MTHREAD_MAX_THREADS_DEFAULT comes from CMake (the MTHREAD_MAX_THREADS option)"
#endif

namespace mthread::core {
namespace {

// initial-exec: the overflow and suspend signal handlers read it, and a lazily allocated TLS
// block is not safe to touch there.
__attribute__((tls_model("initial-exec"))) thread_local thread_record* current = nullptr;
// Whether this thread already asked whether it is the main thread: a thread mthread does not
// know (a threading thread taking a contended mthread::mutex) asks once, not two system calls
// a call.
__attribute__((tls_model("initial-exec"))) thread_local bool main_checked = false;

std::size_t limit_from_environment() {
  const char* text = std::getenv("MTHREAD_MAX_THREADS");
  if (text != nullptr && *text != '\0') {
    char* end = nullptr;
    const unsigned long long value = std::strtoull(text, &end, 10);
    if (*end == '\0' && value > 0 && text[0] != '-') return static_cast<std::size_t>(value);
  }
  return MTHREAD_MAX_THREADS_DEFAULT;
}

}  // namespace

registry& registry::instance() {
  static no_destroy<registry> instance;
  return instance.get();
}

registry::registry() : limit_(limit_from_environment()) {
  main_ = std::make_shared<thread_record>(next_id(), thread_type::main, "MainThread",
                                          default_mailbox_depth);
  main_->os_tid.store(getpid(), std::memory_order_relaxed);
  main_->slot->set_record(main_.get());
  main_->in_registry = main_;
  live_.insert(*main_->slot);
  // The thread that forks is the child's main thread: it asks again there.
  pthread_atfork(nullptr, nullptr, [] { main_checked = false; });
}

thread_record* registry::self() {
  if (current == nullptr && !main_checked) {
    main_checked = true;
    if (syscall(SYS_gettid) == getpid()) current = &instance().main_thread();
  }
  return current;
}

void registry::set_self(thread_record* record) {
  current = record;
}

const record_ptr* registry::lookup(thread_id id) const {
  const thread_slot* slot = live_.find(id);
  return slot == nullptr ? nullptr : &slot->record()->in_registry;
}

std::size_t registry::add(record_ptr record) {
  std::lock_guard guard(lock_);
  if (live_.size() - 1 >= limit_) {
    throw error("mthread: cannot start thread \"" + record->name + "\": the limit of " +
                std::to_string(limit_) +
                " threads is reached (raise it with the environment variable "
                "MTHREAD_MAX_THREADS or the CMake option MTHREAD_MAX_THREADS)");
  }
  thread_slot& slot = *record->slot;
  slot.set_record(record.get());
  slot.record()->in_registry = std::move(record);
  live_.insert(slot);
  return live_.size();
}

record_ptr registry::remove(thread_id id) {
  std::lock_guard guard(lock_);
  thread_slot* found = live_.erase(id);
  if (found == nullptr) return nullptr;
  record_ptr removed = std::move(found->record()->in_registry);
  found->set_record(nullptr);
  if (ended_names_.size() == names_kept) ended_names_.pop_front();
  ended_names_.emplace_back(id, removed->name);
  const auto [first, last] = joiners_.equal_range(removed.get());
  for (auto joiner = first; joiner != last; ++joiner) joiner->second->park.wake();
  return removed;
}

std::optional<std::string> registry::recent_name(thread_id id) const {
  std::lock_guard guard(lock_);
  if (const record_ptr* record = lookup(id)) return (*record)->name;
  for (const auto& [ended, name] : ended_names_) {
    if (ended == id) return name;
  }
  return std::nullopt;
}

thread_state registry::state_of(thread_id id) const {
  std::lock_guard guard(lock_);
  const thread_slot* slot = live_.find(id);
  return slot == nullptr ? thread_state::terminated : slot->state();
}

record_ptr registry::find(thread_id id) const {
  std::lock_guard guard(lock_);
  const record_ptr* record = lookup(id);
  return record == nullptr ? nullptr : *record;
}

namespace {

// The calling thread's last send target. The strong reference lives behind a pthread key, whose
// destructor runs after every C++ thread_local destructor of the thread (any of which may still
// send); the thread_local part is trivially destructible, so it is never torn down under a sender.
struct last_target {
  thread_id id = 0;
  record_ptr* held = nullptr;  // owned by the key; null before the first send and once released
  bool released = false;       // the thread is ending: remember nothing any more
};
thread_local last_target last;

void release_last_target(void* held) {
  last = {0, nullptr, true};
  std::unique_ptr<record_ptr> owned(static_cast<record_ptr*>(held));
}

record_ptr* last_target_slot() {
  if (last.held != nullptr || last.released) return last.held;
  // Without a key (the process used up all of them) nothing is remembered: every send looks up.
  static const std::optional<pthread_key_t> key = []() -> std::optional<pthread_key_t> {
    pthread_key_t created{};
    if (pthread_key_create(&created, release_last_target) != 0) return std::nullopt;
    return created;
  }();
  if (!key) return nullptr;
  auto slot = std::make_unique<record_ptr>();
  if (pthread_setspecific(*key, slot.get()) != 0) return nullptr;
  last.held = slot.release();  // owned by the key from now on
  return last.held;
}

}  // namespace

thread_record* registry::find_cached(thread_id id, record_ptr& keep) const {
  if (last.held != nullptr && last.id == id && *last.held != nullptr &&
      !(*last.held)->ended.load()) {
    return last.held->get();
  }
  keep = find(id);
  if (record_ptr* slot = last_target_slot()) {
    *slot = keep;
    last.id = id;
  }
  return keep.get();
}

void registry::forget_ended_target() {
  if (last.held != nullptr && *last.held != nullptr && (*last.held)->ended.load()) {
    last.held->reset();
  }
}

std::vector<record_ptr> registry::all() const {
  std::vector<record_ptr> result;
  {
    std::lock_guard guard(lock_);
    result.reserve(live_.size());
    live_.for_each([&](const thread_slot& slot) { result.push_back(slot.record()->in_registry); });
  }
  std::sort(result.begin(), result.end(),
            [](const record_ptr& a, const record_ptr& b) { return a->id < b->id; });
  return result;
}

bool registry::wake_joiners_of(const thread_record& ended) const {
  std::lock_guard guard(lock_);
  bool can_join = false;
  const auto [begin, end] = joiners_.equal_range(&ended);
  for (auto entry = begin; entry != end; ++entry) {
    thread_record* joiner = entry->second;
    joiner->park.wake();
    if (!joiner->suspend_requested.load()) can_join = true;
  }
  return can_join;
}

record_ptr registry::ended_target_of(const thread_record& joiner) const {
  std::lock_guard guard(lock_);
  if (joiner.joining == nullptr || !joiner.joining->ended.load()) return nullptr;
  const record_ptr* target = lookup(joiner.joining->id);
  return target == nullptr ? nullptr : *target;
}

void registry::add_joiner(thread_record* joiner, thread_record* target) {
  std::lock_guard guard(lock_);
  joiners_.emplace(target, joiner);
  joiner->joining = target;
}

void registry::remove_joiner(thread_record* joiner) {
  std::lock_guard guard(lock_);
  const auto [begin, end] = joiners_.equal_range(joiner->joining);
  joiner->joining = nullptr;
  joiners_.erase(
      std::find_if(begin, end, [&](const auto& entry) { return entry.second == joiner; }));
}

}  // namespace mthread::core
