// Looking at threads: names, ids, states, list() and print_list().
#include <ostream>

#include "core/control.hpp"
#include "core/reaper.hpp"
#include "core/registry.hpp"
#include "core/stack.hpp"
#include "mthread/thread.hpp"

namespace mthread {

using core::api_call;
using core::registry;

std::string get_thread_name(thread_id id) {
  // A section: the lookup takes the registry's lock, which a suspended thread must not hold.
  core::core_section section;
  const core::record_ptr target = registry::instance().find(id);
  return target != nullptr ? target->name : "unknown";
}

std::string get_self_name() {
  const core::thread_record* self = registry::self();
  return self != nullptr ? self->name : "unknown";
}

thread_id get_self_id() {
  const core::thread_record* self = registry::self();
  return self != nullptr ? self->id : 0;
}

thread_id get_repl_id() {
  return registry::instance().main_thread().id;
}

thread_state status(thread_id id) {
  core::core_section section;  // as in get_thread_name
  const thread_state state = registry::instance().state_of(id);
  // Only a thread that looks running may have ended: a waiting one costs no further look.
  if (state != thread_state::running) return state;
  const core::record_ptr target = registry::instance().find(id);
  if (target == nullptr || core::reap_if_gone(target)) return thread_state::terminated;
  return target->state();
}

std::vector<thread_info> list() {
  api_call call;
  std::vector<thread_info> result;
  for (const core::record_ptr& record : registry::instance().all()) {
    if (record->type == thread_type::main) {
      const core::main_stack_figures stack = core::measure_main_stack();
      result.push_back(thread_info{record->id, record->type, record->name, record->state(),
                                   stack.size, stack.max_used});
      continue;
    }
    result.push_back(thread_info{record->id, record->type, record->name, record->state(),
                                 record->stack_size, record->max_stack_used()});
  }
  return result;
}

namespace {

const char* state_name(thread_state state) {
  switch (state) {
    case thread_state::running:
      return "running";
    case thread_state::suspended:
      return "suspended";
    case thread_state::waiting:
      return "waiting";
    case thread_state::terminated:
      return "terminated";
  }
  return "unknown";
}

const char* type_name(thread_type type) {
  switch (type) {
    case thread_type::main:
      return "MAIN";
    case thread_type::python:
      return "PYTHON";
    case thread_type::service:
      return "SERVICE";
    case thread_type::native:
      return "NATIVE";
  }
  return "UNKNOWN";
}

}  // namespace

void print_list(std::ostream& out) {
  for (const thread_info& info : list()) {
    out << "ID=" << info.id << ", Name: " << info.name << ", State: " << state_name(info.state)
        << ", Stack=" << info.stack_size << ", MaxUsed=" << info.max_stack_used
        << ", Type: " << type_name(info.type) << '\n';
  }
}

}  // namespace mthread
