// Notifications and mailboxes: the public API of messaging.hpp.
#include "mthread/messaging.hpp"

#include <algorithm>
#include <mutex>
#include <string>

#include "core/control.hpp"
#include "core/no_destroy.hpp"
#include "core/registry.hpp"
#include "mthread/binding.hpp"

namespace mthread {

using core::api_call;
using core::registry;

namespace {

core::thread_record& require_self(const api_call& call, const char* function) {
  if (call.self() == nullptr) {
    throw error(std::string("mthread: ") + function +
                " needs a thread mthread knows (the main thread or one it started)");
  }
  return *call.self();
}

// Hands `deliver` each target: the one thread `id`, or for a broadcast every live thread but
// the caller. `deliver` returns whether the target accepted, and adds it to the relay when it
// must be woken. A single target is woken at once; a broadcast's targets are woken through the
// relay once every one has its delivery (see wake_relay). True if there was a target and every
// one accepted.
template <class Deliver>
bool for_targets(const api_call& call, thread_id id, Deliver&& deliver) {
  if (id != broadcast) {
    core::record_ptr keep;
    core::thread_record* target = registry::instance().find_cached(id, keep);
    if (target == nullptr || target->ended.load()) return false;
    bool wake = false;
    const bool accepted = deliver(*target, wake);
    if (wake) target->park.wake();
    return accepted;
  }
  const core::wake_relay::ref relay = core::wake_relay::make();
  bool any = false;
  bool all = true;
  for (core::record_ptr& target : registry::instance().all()) {
    if (target.get() == call.self() || target->ended.load()) continue;
    any = true;
    bool wake = false;
    all = deliver(*target, wake) && all;
    if (wake) {
      core::parker& park = target->park;
      relay->add(park, std::move(target));
    }
  }
  // Four to begin with: where the woken threads pace the relay (binding::paced_wakes), each
  // passes it to one more, and four such chains keep a thread ready for the interpreter's lock
  // even when the scheduler is slow to run a woken one (a busy machine).
  if (!relay->empty()) relay->hand_on(relay, 4);
  return any && all;
}

bool post(const api_call& call, thread_id id, message&& m) {
  return for_targets(call, id, [&](core::thread_record& target, bool& wake) {
    // One target takes the message itself; each target of a broadcast a copy.
    message copy = id == broadcast ? message(m) : std::move(m);
    switch (target.box.push(std::move(copy))) {
      case core::mailbox::refused:
        return false;
      case core::mailbox::accepted_wake_receiver:
        wake = true;
        return true;
      case core::mailbox::accepted:
        return true;
    }
    return false;
  });
}

thread_id sender_id(const api_call& call) {
  return call.self() != nullptr ? call.self()->id : 0;
}

// Saturates first: converting a huge millisecond count to nanoseconds would overflow.
timespec deadline_for(std::chrono::milliseconds timeout) {
  constexpr std::chrono::milliseconds longest = std::chrono::hours(24 * 365 * 100);
  return core::deadline_after(std::min(timeout, longest));
}

}  // namespace

bool notify(thread_id id, std::uint32_t value) {
  api_call call;
  if (value == 0) throw error("mthread: notify: value must be 1..4294967295, got 0");
  return for_targets(call, id, [&](core::thread_record& target, bool& wake) {
    target.notification.store(value, std::memory_order_seq_cst);  // see parker::publish
    wake = target.park.sleeping();
    return true;
  });
}

std::uint32_t get_notification() {
  api_call call;
  return call.self() != nullptr ? call.self()->notification.exchange(0) : 0;
}

bool is_notified(thread_id id) {
  api_call call;
  const core::record_ptr target = registry::instance().find(id);
  return target != nullptr && target->notification.load() != 0;
}

std::optional<std::uint32_t> wait(std::chrono::milliseconds timeout) {
  api_call call;
  core::thread_record& self = require_self(call, "wait");
  std::uint32_t value = 0;
  const timespec deadline = deadline_for(timeout);
  if (core::wait_until(
          self, &deadline, [&] { return (value = self.notification.exchange(0)) != 0; },
          [&](bool) { return self.notification.load(std::memory_order_seq_cst) != 0; })) {
    return value;
  }
  return std::nullopt;
}

bool send_msg(thread_id id, std::int64_t value) {
  api_call call;
  message m;
  m.type = msg_type::integer;
  m.sender = sender_id(call);
  m.integer = value;
  return post(call, id, std::move(m));
}

bool send_msg(thread_id id, std::string_view text) {
  api_call call;
  if (text.empty()) throw error("mthread: send_msg: the text must not be empty");
  if (text.size() > max_message_length) {
    throw error("mthread: send_msg: the text is " + std::to_string(text.size()) +
                " bytes, longer than the maximum of " + std::to_string(max_message_length));
  }
  message m;
  m.type = msg_type::string;
  m.sender = sender_id(call);
  m.text = std::string(text);
  return post(call, id, std::move(m));
}

message get_msg() {
  api_call call;
  message m;
  if (call.self() != nullptr) call.self()->box.pop(m);
  return m;
}

message get_msg(std::chrono::milliseconds timeout) {
  api_call call;
  core::thread_record& self = require_self(call, "get_msg");
  message m;
  // A message already there: what the first round of wait_until would do, without its clock
  // read and its stores (kill and suspend requests take the full path).
  if (!self.kill_requested.load(std::memory_order_acquire) &&
      !self.suspend_requested.load(std::memory_order_acquire) && self.box.pop(m)) {
    return m;
  }
  const timespec deadline = deadline_for(timeout);
  core::wait_until(
      self, &deadline, [&] { return self.box.pop(m); },
      [&](bool going_to_sleep) {
        return going_to_sleep ? self.box.wake_me_on_push() : self.box.has_message();
      });
  return m;
}

namespace binding {

paced_wakes::paced_wakes() {
  if (core::thread_record* self = registry::self()) self->park.pace_relays(true);
}

paced_wakes::~paced_wakes() {
  if (core::thread_record* self = registry::self()) self->park.pace_relays(false);
}

namespace {
std::mutex& lock_queue() {
  static core::no_destroy<std::mutex> turn;  // waited on during exit too
  return turn.get();
}
}  // namespace

lock_queue_turn::lock_queue_turn() {
  lock_queue().lock();
}

lock_queue_turn::~lock_queue_turn() {
  lock_queue().unlock();
}

}  // namespace binding

bool repl_accept_msg() {
  return registry::instance().repl_accepts_messages.load();
}

bool repl_accept_msg(bool accept) {
  api_call call;
  if (call.self() == nullptr || call.self()->type != thread_type::main) {
    throw error("mthread: repl_accept_msg(flag): only the main thread may set it");
  }
  // The previous setting, as the device's mp_thread_replAcceptMsg returns it.
  return registry::instance().repl_accepts_messages.exchange(accept);
}

}  // namespace mthread
