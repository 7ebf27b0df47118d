#include "core/record.hpp"

#include <memory>
#include <new>
#include <utility>

#include "core/no_destroy.hpp"
#include "core/reaper.hpp"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#endif

namespace mthread::core {
namespace {

// LeakSanitizer looks for pointers to heap blocks in the heap, globals and threads' stacks, not in
// other mappings: the part of a stack above the thread's (the record, the function) is one.
void note_thread_data(const stack_region& stack, bool present) {
#if defined(__SANITIZE_ADDRESS__)
  const void* begin = stack.low() + stack.thread_size();
  const std::size_t size = stack.size() - stack.thread_size();
  if (present) {
    __lsan_register_root_region(begin, size);
  } else {
    __lsan_unregister_root_region(begin, size);
  }
#else
  (void)stack;
  (void)present;
#endif
}

stack_region& no_stack() {
  static no_destroy<stack_region> empty;
  return empty.get();
}

// A started thread's stack's own description, kept at the very top of its mapping.
struct stack_home {
  explicit stack_home(stack_region taken) : stack(std::move(taken)) {}
  stack_region stack;
  bool data_noted = false;  // note_thread_data(stack, true) was called
};

// Places what std::allocate_shared allocates for a started thread's record (the reference
// counts and the record) at the top of the thread's stack, and gives the stack back when that
// is freed, after the last reference went.
template <class T>
class on_stack_top {
 public:
  using value_type = T;
  explicit on_stack_top(stack_home* home) : home_(home) {}
  template <class U>
  explicit on_stack_top(const on_stack_top<U>& other) : home_(other.home()) {}

  // Cannot fail on a stack of the library's (one of min_stack_size has room enough); if it did,
  // the stack is given back, as allocate_shared would after a failed construction.
  T* allocate(std::size_t count) {
    void* at = home_->stack.take_from_top(count * sizeof(T), alignof(T));
    if (at == nullptr) {
      deallocate(nullptr, count);
      throw std::bad_alloc();
    }
    return static_cast<T*>(at);
  }
  void deallocate(T*, std::size_t) {
    if (home_->data_noted) note_thread_data(home_->stack, false);
    stack_region stack = std::move(home_->stack);
    std::destroy_at(home_);
    if (give_back_stack(std::move(stack))) reaper::instance().unmap_retired_soon();
  }

  stack_home* home() const { return home_; }
  template <class U>
  bool operator==(const on_stack_top<U>& other) const {
    return home_ == other.home();
  }

 private:
  stack_home* home_;
};

}  // namespace

thread_record::thread_record(thread_id id_, thread_type type_, std::string name_,
                             std::size_t mailbox_depth)
    : id(id_),
      slot(id_),
      type(type_),
      name(std::move(name_)),
      stack(no_stack()),
      box(mailbox_depth) {}

record_ptr make_started_record(thread_id id, thread_type type, std::string_view name,
                               std::size_t mailbox_depth, std::size_t stack_bytes, void* body,
                               const detail::body_type& body_type) {
  std::string owned_name(name);
  stack_region taken = take_stack(stack_bytes);
  const std::size_t usable = taken.size();
  void* home_at = taken.take_from_top(sizeof(stack_home), alignof(stack_home));
  if (home_at == nullptr) throw std::bad_alloc();  // cannot happen: every stack has room for it
  stack_home* home = std::construct_at(static_cast<stack_home*>(home_at), std::move(taken));
  // From here on the record owns the stack (if making it fails, the allocator gives it back).
  record_ptr record =
      std::allocate_shared<thread_record>(on_stack_top<thread_record>(home), id, type,
                                          std::move(owned_name), mailbox_depth, home->stack);
  record->stack_size = usable;
  void* body_at = home->stack.take_from_top(body_type.size, body_type.alignment);
  if (body_at == nullptr) {
    throw error("mthread: the function and arguments of thread \"" + record->name + "\" (" +
                std::to_string(body_type.size) + " bytes) do not fit in its stack of " +
                std::to_string(usable) + " bytes");
  }
  body_type.move_to(body, body_at);
  record->body = thread_body(body_at, body_type);
  note_thread_data(home->stack, true);
  home->data_noted = true;
  return record;
}

}  // namespace mthread::core
