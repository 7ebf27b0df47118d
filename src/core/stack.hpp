// Thread stacks the library allocates itself, so it can put a guard below each, measure how
// deep each went (mincore: a page never touched is never resident), and give each thread an
// alternate signal stack for reporting an overflow.
//
// Layout of one mapping, low to high addresses:
//   [guard page][signal stack][guard zone][usable stack ............]
// The guard zone (1 MiB of address space, nothing resident) is wider than a big frame, so such
// a frame cannot jump over it.
#pragma once

#include <cstddef>

namespace mthread::core {

class stack_region {
 public:
  stack_region() = default;
  // Maps a stack with `usable` bytes (a whole number of pages). Throws mthread::error on failure.
  explicit stack_region(std::size_t usable);
  ~stack_region();
  stack_region(stack_region&& other) noexcept;
  stack_region& operator=(stack_region&& other) noexcept;

  bool empty() const { return base_ == nullptr; }
  // The whole mapping: guard page, signal stack, guard zone and usable stack.
  char* mapping_start() const { return base_; }
  std::size_t mapping_size() const { return mapped_; }
  char* low() const { return usable_low_; }
  std::size_t size() const { return usable_; }
  // Takes `bytes` (aligned to `alignment`) off the top of the usable stack, for what the thread's
  // starter keeps there (its record, its function): the thread itself runs below all that was
  // taken, on thread_size() bytes. Null when the stack cannot spare them. Reset by give_back.
  void* take_from_top(std::size_t bytes, std::size_t alignment);
  std::size_t thread_size() const { return usable_ - taken_from_top_; }
  char* signal_stack() const;
  static std::size_t signal_stack_size();

  bool in_guard(const void* address) const;
  // Bytes between the top and the lowest page ever touched: within one page of the truth.
  std::size_t max_used() const;
  // Told by the thread running on it where its entry frame is: what lies above is used by every
  // thread, and is kept resident by discard_contents().
  void note_entry_frame(const void* frame);
  // Drops the pages' contents, so a reused stack is again not resident and measures afresh.
  void discard_contents();

 private:
  friend stack_region take_stack(std::size_t usable);
  friend bool give_back_stack(stack_region stack);
  friend std::size_t unmap_retired_stacks();
  void release();
  char* base_ = nullptr;
  std::size_t mapped_ = 0;
  char* usable_low_ = nullptr;
  std::size_t usable_ = 0;
  std::size_t always_used_ = 0;
  std::size_t taken_from_top_ = 0;
  bool discarded_ = false;  // given back since a thread last ran on it: nothing to drop
};

// The process's main thread runs on the stack the kernel gave it: its size limit
// (RLIMIT_STACK; 0 when unlimited) and how deep it went (the kernel grows its mapping on demand
// and never shrinks it, so the mapping's size is the high-water mark, within a page; it includes
// the few pages of arguments and environment above the first frame).
struct main_stack_figures {
  std::size_t size = 0;
  std::size_t max_used = 0;
};
main_stack_figures measure_main_stack();

// Clamps to [min_stack_size, max_stack_size] and rounds up to whole pages.
std::size_t effective_stack_size(std::size_t requested);

// A small cache of stacks of ended threads, so starting a thread costs no mmap in a steady state.
stack_region take_stack(std::size_t usable);
// A stack the cache has no room for is retired: unmapped later by unmap_retired_stacks(). True
// when it is the first one retired since they were last unmapped (the reaper is to be told).
bool give_back_stack(stack_region stack);

// Unmaps the retired stacks, stacks next to each other in one call (threads started one after
// another have their stacks side by side): an munmap costs a TLB shootdown on each other CPU
// running the process, and when thousands of threads end at once that was the largest part of
// each one's end. Their pages were dropped when their threads were joined; what waits here is
// address space and the few top pages. Returns the number of munmap calls made.
std::size_t unmap_retired_stacks();
// How many retired stacks wait to be unmapped.
std::size_t retired_stacks();

}  // namespace mthread::core
