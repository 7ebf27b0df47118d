// A bounded FIFO of messages: many senders, one receiver. A full mailbox refuses at once;
// a closed one (its thread ended) refuses everything and has freed what it held.
#pragma once

#include <cstddef>
#include <mutex>
#include <vector>

#include "mthread/types.hpp"

namespace mthread::core {

class mailbox {
 public:
  explicit mailbox(std::size_t depth) : ring_(depth) {}

  bool push(message&& m);
  bool pop(message& out);
  bool empty() const;
  void close();

 private:
  mutable std::mutex lock_;
  std::vector<message> ring_;
  std::size_t head_ = 0;
  std::size_t count_ = 0;
  bool closed_ = false;
};

}  // namespace mthread::core
