// deadline: made once from a timeout and carried to the futex; the one place huge and negative
// timeouts are handled.
#include <time.h>

#include <chrono>
#include <cmath>
#include <limits>
#include <mthread/deadline.hpp>
#include <thread>

#include "test_util.hpp"

using namespace std::chrono_literals;
using mthread::deadline;

namespace {

std::chrono::nanoseconds monotonic_now() {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  return std::chrono::seconds(now.tv_sec) + std::chrono::nanoseconds(now.tv_nsec);
}

std::chrono::nanoseconds as_duration(const timespec& t) {
  return std::chrono::seconds(t.tv_sec) + std::chrono::nanoseconds(t.tv_nsec);
}

TEST(Deadline, ZeroNegativeAndNaNTimeoutsHavePassed) {
  EXPECT_TRUE(deadline::after(0ns).passed());
  EXPECT_TRUE(deadline::after(-5s).passed());
  EXPECT_TRUE(deadline::after(std::chrono::hours::min()).passed());
  EXPECT_TRUE(
      deadline::after(std::chrono::duration<double>(std::numeric_limits<double>::quiet_NaN()))
          .passed());
  EXPECT_EQ(deadline::after(-1ms).left(), 0ns);
}

// Whatever the unit and representation, a timeout of a century or more is a wait without limit,
// and no conversion on the way overflows.
TEST(Deadline, HugeTimeoutsAreNeverAndDoNotOverflow) {
  EXPECT_TRUE(deadline::after(std::chrono::milliseconds::max()).is_never());
  EXPECT_TRUE(deadline::after(std::chrono::nanoseconds::max()).is_never());
  EXPECT_TRUE(deadline::after(std::chrono::hours::max()).is_never());
  EXPECT_TRUE(deadline::after(deadline::longest).is_never());
  EXPECT_TRUE(
      deadline::after(std::chrono::duration<double>(std::numeric_limits<double>::infinity()))
          .is_never());
  EXPECT_TRUE(deadline::after(std::chrono::duration<double, std::milli>(1e300)).is_never());
  EXPECT_FALSE(deadline::never().passed());
  EXPECT_EQ(deadline::never().left(), std::chrono::nanoseconds::max());
  // Just under the cap: a real instant, about a century ahead.
  const deadline far = deadline::after(deadline::longest - 1h);
  EXPECT_FALSE(far.is_never());
  EXPECT_GT(far.left(), deadline::longest - 2h);
}

TEST(Deadline, IsHonouredOnTheMonotonicClock) {
  const auto before = monotonic_now();
  const deadline soon = deadline::after(30ms);
  const auto after = monotonic_now();
  EXPECT_FALSE(soon.passed());
  EXPECT_LE(soon.left(), 30ms);
  // The instant handed to futex and pthread_clockjoin_np is on CLOCK_MONOTONIC.
  const auto instant = as_duration(soon.monotonic());
  EXPECT_GE(instant, before + 30ms);
  EXPECT_LE(instant, after + 30ms);
  EXPECT_LE(as_duration(soon.left_timespec()), 30ms);
  ASSERT_TRUE(mt_test::wait_for([&] { return soon.passed(); }));
  EXPECT_EQ(soon.left(), 0ns);
  EXPECT_GE(monotonic_now(), before + 30ms);
}

TEST(Deadline, EarlierAndAt) {
  const deadline soon = deadline::after(1s);
  const deadline later = deadline::after(1h);
  EXPECT_EQ(earlier(soon, later), soon);
  EXPECT_EQ(earlier(later, soon), soon);
  EXPECT_EQ(earlier(deadline::never(), soon), soon);
  EXPECT_TRUE(earlier(deadline::never(), deadline::never()).is_never());
  EXPECT_TRUE(deadline::at(std::chrono::system_clock::now() - 1s).passed());
  const deadline in_a_minute = deadline::at(std::chrono::steady_clock::now() + 1min);
  EXPECT_GT(in_a_minute.left(), 59s);
}

// An instant of any clock and unit, however far from now, is compared before it is converted:
// the exact difference of time_point::min() and now, or of a date in days centuries ahead and
// now, does not fit in the clocks' 64-bit nanoseconds.
TEST(Deadline, AtFarInstantsDoesNotOverflow) {
  using std::chrono::days;
  using std::chrono::steady_clock;
  using std::chrono::system_clock;
  EXPECT_TRUE(deadline::at(steady_clock::time_point::min()).passed());
  EXPECT_TRUE(deadline::at(system_clock::time_point::min()).passed());
  EXPECT_TRUE(deadline::at(steady_clock::time_point::max()).is_never());
  EXPECT_TRUE(deadline::at(system_clock::time_point::max()).is_never());
  EXPECT_TRUE(deadline::at(std::chrono::sys_days(days(500 * 366))).is_never());
  EXPECT_TRUE(deadline::at(std::chrono::sys_days(days(-500 * 366))).passed());
  using floating_instant = std::chrono::time_point<steady_clock, std::chrono::duration<double>>;
  EXPECT_TRUE(deadline::at(floating_instant(std::chrono::duration<double>(
                               std::numeric_limits<double>::quiet_NaN())))
                  .passed());
  // Near ones stay exact.
  const auto soon = system_clock::now() + 10min;
  const deadline in_ten_minutes = deadline::at(soon);
  EXPECT_GT(in_ten_minutes.left(), 9min);
  EXPECT_LE(in_ten_minutes.left(), 10min);
}

}  // namespace
