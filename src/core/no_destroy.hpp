// Process-wide objects that must outlive every thread: threads may still run while static
// destructors do at exit, so these are built once and never destroyed.
#pragma once

#include <new>
#include <utility>

namespace mthread::core {

template <class T>
class no_destroy {
 public:
  template <class... Args>
  explicit no_destroy(Args&&... args) {
    ::new (static_cast<void*>(storage_)) T(std::forward<Args>(args)...);
  }
  T& get() { return *std::launder(reinterpret_cast<T*>(storage_)); }

 private:
  alignas(T) unsigned char storage_[sizeof(T)];
};

}  // namespace mthread::core
