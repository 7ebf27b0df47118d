// The stack cache and the retired stacks (src/core/stack.cpp): a stack given back goes to the
// cache while it has room, else it is retired, and the retired ones are unmapped together, those
// side by side in one call. No thread is started here, so no reaper unmaps them meanwhile.
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <vector>

#include <gtest/gtest.h>

#include "core/stack.hpp"

namespace {

using mthread::core::give_back_stack;
using mthread::core::stack_region;
using mthread::core::take_stack;
using mthread::core::unmap_retired_stacks;

constexpr std::size_t cache_room = 8;
constexpr std::size_t usable = 256u << 10;

bool mapped(const char* low) {
  unsigned char resident = 0;
  return mincore(const_cast<char*>(low), static_cast<std::size_t>(sysconf(_SC_PAGESIZE)),
                 &resident) == 0 ||
         errno != ENOMEM;
}

TEST(StackCache, StacksBeyondTheCacheAreRetiredAndUnmappedTogether) {
  std::vector<char*> lows;
  std::vector<stack_region> stacks;
  for (std::size_t i = 0; i < cache_room + 32; ++i) {
    stacks.push_back(take_stack(usable));
    lows.push_back(stacks.back().low());
    lows.back()[usable - 1] = 1;  // touched, as a thread would
  }
  std::size_t first_retired = 0;
  for (std::size_t i = 0; i < stacks.size(); ++i) {
    if (give_back_stack(std::move(stacks[i]))) first_retired += 1;
  }
  EXPECT_EQ(first_retired, 1u) << "only the first retired stack asks for the reaper";
  for (const char* low : lows) EXPECT_TRUE(mapped(low));

  const std::size_t calls = unmap_retired_stacks();
  for (std::size_t i = 0; i < lows.size(); ++i) {
    EXPECT_EQ(mapped(lows[i]), i < cache_room) << "stack " << i;
  }
  // Mapped one after another, the 32 lie side by side (Linux maps top-down into the hole below
  // the last mapping): a few calls, not one a stack.
  EXPECT_GE(calls, 1u);
  EXPECT_LE(calls, 4u);
  EXPECT_EQ(unmap_retired_stacks(), 0u) << "nothing is left to unmap";

  // The cached ones are taken again, their contents dropped.
  for (std::size_t i = 0; i < cache_room; ++i) {
    stack_region again = take_stack(usable);
    EXPECT_TRUE(mapped(again.low()));
    EXPECT_EQ(again.max_used(), 0u);
  }
}

TEST(StackCache, AStackOfAnotherSizeIsMappedAfresh) {
  stack_region first = take_stack(usable);
  char* const low = first.low();
  EXPECT_FALSE(give_back_stack(std::move(first)));  // cached
  stack_region other = take_stack(2 * usable);
  EXPECT_NE(other.low(), low);
  stack_region same = take_stack(usable);
  EXPECT_EQ(same.low(), low);
}

}  // namespace
