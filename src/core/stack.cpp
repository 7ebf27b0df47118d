#include "core/stack.hpp"

#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "core/no_destroy.hpp"
#include "mthread/types.hpp"

namespace mthread::core {
namespace {

std::size_t page_size() {
  static const std::size_t size = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  return size;
}

std::size_t round_to_pages(std::size_t bytes) {
  const std::size_t page = page_size();
  return (bytes + page - 1) / page * page;
}

// Wider than any frame a program is likely to have (frames are not probed page by page unless
// built with -fstack-clash-protection): a frame that runs off the stack faults here, where the
// overflow is recognised, instead of writing into the signal stack or a mapping below. It costs
// address space only.
constexpr std::size_t guard_zone = 1u << 20;
constexpr std::size_t max_cached_stacks = 8;

}  // namespace

std::size_t stack_region::signal_stack_size() {
  return round_to_pages(std::max<std::size_t>(64u << 10, static_cast<std::size_t>(SIGSTKSZ)));
}

std::size_t effective_stack_size(std::size_t requested) {
  return round_to_pages(std::clamp(requested, min_stack_size, max_stack_size));
}

stack_region::stack_region(std::size_t usable) {
  const std::size_t page = page_size();
  const std::size_t below = page + signal_stack_size() + guard_zone;
  mapped_ = below + usable;
  void* base =
      mmap(nullptr, mapped_, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (base == MAP_FAILED) {
    throw error("mthread: cannot map a thread stack of " + std::to_string(usable) +
                " bytes: " + std::strerror(errno));
  }
  base_ = static_cast<char*>(base);
  usable_low_ = base_ + below;
  usable_ = usable;
  if (mprotect(base_ + page, signal_stack_size(), PROT_READ | PROT_WRITE) != 0 ||
      mprotect(usable_low_, usable_, PROT_READ | PROT_WRITE) != 0) {
    const int saved = errno;
    release();
    throw error("mthread: cannot map a thread stack of " + std::to_string(usable) +
                " bytes: " + std::strerror(saved));
  }
  // A huge page would make a whole 2 MiB resident on the first touch.
  madvise(base_, mapped_, MADV_NOHUGEPAGE);
}

stack_region::~stack_region() {
  release();
}

stack_region::stack_region(stack_region&& other) noexcept {
  *this = std::move(other);
}

stack_region& stack_region::operator=(stack_region&& other) noexcept {
  if (this != &other) {
    release();
    base_ = std::exchange(other.base_, nullptr);
    mapped_ = std::exchange(other.mapped_, 0);
    usable_low_ = std::exchange(other.usable_low_, nullptr);
    usable_ = std::exchange(other.usable_, 0);
    always_used_ = std::exchange(other.always_used_, 0);
    taken_from_top_ = std::exchange(other.taken_from_top_, 0);
    discarded_ = std::exchange(other.discarded_, false);
  }
  return *this;
}

void stack_region::release() {
  if (base_ != nullptr) munmap(base_, mapped_);
  base_ = nullptr;
}

char* stack_region::signal_stack() const {
  return base_ + page_size();
}

bool stack_region::in_guard(const void* address) const {
  const char* p = static_cast<const char*>(address);
  // Anything below the usable stack in this mapping: the guard zone, and the guard page at the
  // bottom for a frame that jumped over the zone and the signal stack.
  return base_ != nullptr && p >= base_ && p < usable_low_;
}

main_stack_figures measure_main_stack() {
  main_stack_figures figures;
  rlimit limit{};
  if (getrlimit(RLIMIT_STACK, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY) {
    figures.size = static_cast<std::size_t>(limit.rlim_cur);
  }
  // VmStk in /proc/self/status: the size of the main stack's mapping, in kB.
  if (std::FILE* status = std::fopen("/proc/self/status", "re")) {
    char line[256];
    while (std::fgets(line, sizeof line, status) != nullptr) {
      unsigned long kilobytes = 0;
      if (std::sscanf(line, "VmStk: %lu kB", &kilobytes) == 1) {
        figures.max_used = static_cast<std::size_t>(kilobytes) * 1024;
        break;
      }
    }
    std::fclose(status);
  }
  return figures;
}

std::size_t stack_region::max_used() const {
  if (base_ == nullptr) return 0;
  const std::size_t page = page_size();
  const std::size_t pages = usable_ / page;
  std::vector<unsigned char> resident(pages);
  if (mincore(usable_low_, usable_, resident.data()) != 0) return 0;
  for (std::size_t i = 0; i < pages; ++i) {
    if (resident[i] & 1) return (pages - i) * page;
  }
  return 0;
}

void stack_region::note_entry_frame(const void* frame) {
  const char* top = usable_low_ + usable_;
  const auto above = static_cast<std::size_t>(top - static_cast<const char*>(frame));
  always_used_ = std::min(usable_, round_to_pages(above));
}

void* stack_region::take_from_top(std::size_t bytes, std::size_t alignment) {
  const auto top = reinterpret_cast<std::uintptr_t>(usable_low_ + usable_ - taken_from_top_);
  const std::uintptr_t at = (top - bytes) & ~(std::uintptr_t{alignment} - 1);
  // Leave the thread at least half of the smallest stack.
  const auto below = reinterpret_cast<std::uintptr_t>(usable_low_);
  if (base_ == nullptr || bytes > top - below || at < below + min_stack_size / 2) return nullptr;
  taken_from_top_ = static_cast<std::size_t>(below + usable_ - at);
  return reinterpret_cast<void*>(at);
}

void stack_region::discard_contents() {
  if (base_ == nullptr || discarded_) return;
  discarded_ = true;
  // The signal stack, the guard zone between (never resident) and the usable stack, but for the
  // pages every thread touches before its body runs (the thread's control block and TLS, the
  // entry frames): dropping those would only make the next thread fault them in again, and they
  // count in its high-water mark anyway. One call over the whole range costs less than finding
  // the touched pages first (mincore over 8 MiB: 3.7 µs; this: under 1 µs).
  char* const low = signal_stack();
  madvise(low, static_cast<std::size_t>(usable_low_ + usable_ - always_used_ - low), MADV_DONTNEED);
}

namespace {
struct stack_cache {
  std::mutex lock;
  std::vector<stack_region> stacks;
  std::vector<stack_region> retired;  // to unmap
};

stack_cache& cache();

// A fork() child gets the lock free, and leaves the parent's retired stacks to nobody: the
// parent's reaper was told about them, and a child has no reaper. They are unmapped there, at
// once (give_back_stack tells only about the first one retired).
void lock_cache_for_fork() {
  cache().lock.lock();
}
void unlock_cache_in_parent() {
  cache().lock.unlock();
}
void unlock_cache_in_child() {
  cache().lock.unlock();
  (void)unmap_retired_stacks();
}

stack_cache& cache() {
  static no_destroy<stack_cache> instance;
  static const bool fork_handled = [] {
    return pthread_atfork(lock_cache_for_fork, unlock_cache_in_parent, unlock_cache_in_child) == 0;
  }();
  (void)fork_handled;
  return instance.get();
}
}  // namespace

stack_region take_stack(std::size_t usable) {
  {
    std::lock_guard guard(cache().lock);
    auto& stacks = cache().stacks;
    auto it = std::find_if(stacks.begin(), stacks.end(),
                           [&](const stack_region& s) { return s.size() == usable; });
    if (it != stacks.end()) {
      stack_region found = std::move(*it);
      stacks.erase(it);
      found.discarded_ = false;  // a thread is going to run on it
      return found;
    }
  }
  return stack_region(usable);
}

bool give_back_stack(stack_region stack) {
  if (stack.empty()) return false;
  stack.taken_from_top_ = 0;
  std::unique_lock guard(cache().lock);
  if (cache().stacks.size() < max_cached_stacks) {
    // Its pages are dropped outside the lock (a system call); should the cache fill meanwhile,
    // the stack is retired after all.
    guard.unlock();
    stack.discard_contents();
    guard.lock();
    if (cache().stacks.size() < max_cached_stacks) {
      cache().stacks.push_back(std::move(stack));
      return false;
    }
  }
  cache().retired.push_back(std::move(stack));
  return cache().retired.size() == 1;
}

std::size_t retired_stacks() {
  std::lock_guard guard(cache().lock);
  return cache().retired.size();
}

std::size_t unmap_retired_stacks() {
  std::vector<std::pair<char*, std::size_t>> ranges;  // base, length
  {
    std::lock_guard guard(cache().lock);
    for (stack_region& stack : cache().retired) {
      ranges.emplace_back(std::exchange(stack.base_, nullptr), stack.mapped_);  // unmapped below
    }
    cache().retired.clear();
  }
  std::sort(ranges.begin(), ranges.end(),
            [](const auto& a, const auto& b) { return std::less<>()(a.first, b.first); });
  std::size_t calls = 0;
  for (std::size_t first = 0; first < ranges.size();) {
    char* const from = ranges[first].first;
    char* to = from + ranges[first].second;
    std::size_t next = first + 1;
    while (next < ranges.size() && ranges[next].first == to) to += ranges[next++].second;
    munmap(from, static_cast<std::size_t>(to - from));
    ++calls;
    first = next;
  }
  return calls;
}

}  // namespace mthread::core
