// Notifications and mailboxes: the public API of messaging.hpp.
#include "mthread/messaging.hpp"

#include <string>

#include "core/control.hpp"
#include "core/registry.hpp"
#include "mthread/binding.hpp"

namespace mthread {

using core::api_call;
using core::registry;

namespace {

// `what` never reaches a thread mthread does not know: waiting for it there would never end.
core::thread_record& require_self(const api_call& call, const char* function, const char* what) {
  if (call.self() == nullptr) {
    throw wrong_thread(function, std::string("the calling thread is not one mthread knows (the "
                                             "main thread or one it started): no ") +
                                     what + " can ever reach it");
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
  // One to begin with. Where the woken threads pace the relay (binding::paced_wakes: each wakes
  // the next once it holds the interpreter's lock), one chain has the next thread arrive about when
  // the lock is let go of; with two or more, a thread always waits on the lock's own condition
  // and each hand-over pays its wake-up: 55 µs a target against 38 (1000 or 4000 Python threads,
  // 2 vCPUs; 1 chain also did better with a busy loop on one CPU). Threads that do not pace wake
  // two more each as they wake: the relay fans out whatever it starts with.
  if (!relay->empty()) relay->hand_on(relay, 1);
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

}  // namespace

bool notify(thread_id id, std::uint32_t value) {
  api_call call;
  if (value == 0) throw invalid_argument("notify", "value", "must be in 1..4294967295, got 0");
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
  return binding::wait(deadline::after(timeout));
}

std::optional<std::uint32_t> binding::wait(const deadline& until) {
  api_call call;
  core::thread_record& self = require_self(call, "wait", "notification");
  std::uint32_t value = 0;
  if (core::wait_until(
          self, until, [&] { return (value = self.notification.exchange(0)) != 0; },
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

bool send_msg(thread_id id, std::string_view msg) {
  api_call call;
  if (msg.empty()) throw invalid_argument("send_msg", "msg", "must not be empty");
  if (msg.size() > max_message_length) {
    throw invalid_argument("send_msg", "msg",
                           "is " + std::to_string(msg.size()) +
                               " bytes of UTF-8, longer than the maximum of " +
                               std::to_string(max_message_length));
  }
  message m;
  m.type = msg_type::string;
  m.sender = sender_id(call);
  m.text = std::string(msg);
  return post(call, id, std::move(m));
}

message get_msg() {
  api_call call;
  message m;
  if (call.self() != nullptr) call.self()->box.pop(m);
  return m;
}

message get_msg(std::chrono::milliseconds timeout) {
  return binding::get_msg(deadline::after(timeout));
}

message binding::get_msg(const deadline& until) {
  api_call call;
  core::thread_record& self = require_self(call, "get_msg", "message");
  message m;
  core::wait_until(
      self, until, [&] { return self.box.pop(m); },
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

}  // namespace binding

bool repl_accept_msg() {
  return registry::instance().repl_accepts_messages.load();
}

bool repl_accept_msg(bool accept) {
  api_call call;
  if (call.self() == nullptr || call.self()->type != thread_type::main) {
    throw wrong_thread("repl_accept_msg", "only the main thread may set it");
  }
  // The previous setting, as the device's mp_thread_replAcceptMsg returns it.
  return registry::instance().repl_accepts_messages.exchange(accept);
}

}  // namespace mthread
