// The stack cache and the retired stacks (src/core/stack.cpp): a stack given back goes to the
// cache while it has room, else it is retired, and the retired ones are unmapped together, those
// side by side in one call. Each test runs in a child process of its own (the other tests of
// this binary leave stacks in the cache, and a reaper that would unmap retired ones meanwhile):
// a failed check prints what failed and exits non-zero.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "core/stack.hpp"

namespace {

using mthread::core::give_back_stack;
using mthread::core::stack_region;
using mthread::core::take_stack;
using mthread::core::unmap_retired_stacks;

constexpr std::size_t cache_room = 8;
// A size no other test of the binary uses: what the cache holds already is of other sizes.
constexpr std::size_t usable = (256u << 10) + (12u << 12);

bool mapped(const char* low) {
  unsigned char resident = 0;
  const auto page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  return mincore(const_cast<char*>(low), page, &resident) == 0 || errno != ENOMEM;
}

void check(bool ok, const char* what, std::size_t value = 0) {
  if (ok) return;
  std::fprintf(stderr, "FAILED: %s (%zu)\n", what, value);
  std::_Exit(1);
}

void retired_stacks_are_unmapped_together() {
  (void)unmap_retired_stacks();  // whatever the parent had retired
  std::vector<char*> lows;
  std::vector<std::pair<char*, std::size_t>> mappings;
  std::vector<stack_region> stacks;
  for (std::size_t i = 0; i < cache_room + 32; ++i) {
    stacks.push_back(take_stack(usable));
    lows.push_back(stacks.back().low());
    mappings.emplace_back(stacks.back().mapping_start(), stacks.back().mapping_size());
    lows.back()[usable - 1] = 1;  // touched, as a thread would
  }
  std::size_t first_retired = 0;
  for (stack_region& stack : stacks) first_retired += give_back_stack(std::move(stack)) ? 1 : 0;
  check(first_retired == 1, "only the first retired stack asks for the reaper", first_retired);
  for (std::size_t i = 0; i < lows.size(); ++i) check(mapped(lows[i]), "mapped when given back", i);

  const std::size_t calls = unmap_retired_stacks();
  // The cache holds at most 8 (fewer when the parent left stacks of other sizes in it): the
  // first ones given back; every one after those is unmapped.
  std::size_t cached = 0;
  while (cached < lows.size() && mapped(lows[cached])) ++cached;
  check(cached <= cache_room, "at most 8 stacks cached", cached);
  for (std::size_t i = cached; i < lows.size(); ++i) check(!mapped(lows[i]), "unmapped", i);
  // One call for each run of retired stacks side by side. Mapped one after another, most lie
  // so (Linux maps top-down, into the highest hole that fits): fewer calls than stacks.
  std::vector<std::pair<char*, std::size_t>> retired(mappings.begin() + cached, mappings.end());
  std::sort(retired.begin(), retired.end());
  std::size_t runs = 0;
  for (std::size_t i = 0; i < retired.size(); ++i) {
    if (i == 0 || retired[i - 1].first + retired[i - 1].second != retired[i].first) ++runs;
  }
  check(calls == runs, "one munmap for each run of stacks side by side", calls);
  check(runs < retired.size(), "stacks mapped one after another lie side by side", runs);
  check(unmap_retired_stacks() == 0, "nothing left to unmap");
  // The cached ones are taken again, their contents dropped.
  for (std::size_t i = 0; i < cached; ++i) {
    const stack_region again = take_stack(usable);
    check(mapped(again.low()) && again.max_used() == 0, "a cached stack comes back empty", i);
  }
  std::fprintf(stderr, "ok\n");
  std::_Exit(0);
}

TEST(StackCache, StacksBeyondTheCacheAreRetiredAndUnmappedTogether) {
  EXPECT_EXIT(retired_stacks_are_unmapped_together(), ::testing::ExitedWithCode(0), "ok");
}

void stacks_apart_are_unmapped_one_by_one() {
  (void)unmap_retired_stacks();
  // Filling the cache first: the stacks below are retired as they are given back.
  std::vector<stack_region> filling;
  for (std::size_t i = 0; i < cache_room; ++i) filling.push_back(take_stack(usable));
  for (stack_region& stack : filling) (void)give_back_stack(std::move(stack));
  (void)unmap_retired_stacks();  // those the cache had no room for: it is full now
  // Every other one of six stacks side by side: three ranges with holes between them.
  std::vector<stack_region> six;
  for (int i = 0; i < 6; ++i) six.push_back(take_stack(2 * usable));
  std::vector<char*> lows;
  for (std::size_t i = 0; i < six.size(); i += 2) {
    lows.push_back(six[i].low());
    (void)give_back_stack(std::move(six[i]));
  }
  const std::size_t calls = unmap_retired_stacks();
  for (const char* low : lows) check(!mapped(low), "a retired stack is unmapped");
  for (std::size_t i = 1; i < six.size(); i += 2) check(mapped(six[i].low()), "a neighbour is not");
  check(calls == 3, "one munmap for each stack with kept neighbours", calls);
  std::fprintf(stderr, "ok\n");
  std::_Exit(0);
}

TEST(StackCache, RetiredStacksApartAreUnmappedAloneAndTheirNeighboursKept) {
  EXPECT_EXIT(stacks_apart_are_unmapped_one_by_one(), ::testing::ExitedWithCode(0), "ok");
}

}  // namespace
