#include "core/mailbox.hpp"

namespace mthread::core {

bool mailbox::push(message&& m) {
  std::lock_guard guard(lock_);
  if (closed_ || count_ == ring_.size()) return false;
  ring_[(head_ + count_) % ring_.size()] = std::move(m);
  ++count_;
  return true;
}

bool mailbox::pop(message& out) {
  std::lock_guard guard(lock_);
  if (count_ == 0) return false;
  out = std::move(ring_[head_]);
  ring_[head_].text = std::string();  // give the string's memory back now, not at the next lap
  head_ = (head_ + 1) % ring_.size();
  --count_;
  return true;
}

bool mailbox::empty() const {
  std::lock_guard guard(lock_);
  return count_ == 0;
}

void mailbox::close() {
  std::vector<message> dropped;
  {
    std::lock_guard guard(lock_);
    closed_ = true;
    count_ = 0;
    dropped.swap(ring_);
  }
}

}  // namespace mthread::core
