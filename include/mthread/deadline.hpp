// When one of mthread's waits ends: never, or at an instant of the steady clock.
//
// A wait's timeout becomes a deadline once, where it enters mthread (a C++ duration in the public
// calls, a binding's argument), and that deadline is carried unchanged through every layer down
// to the futex and ppoll calls: a wait cut into slices (a binding's, to look at its signals) or
// woken early keeps its end, and no layer converts or caps it again. The cap for timeouts too
// long to mean anything is here, in after(), and nowhere else.
#pragma once

#include <time.h>

#include <algorithm>
#include <chrono>
#include <type_traits>

namespace mthread {

class deadline {
 public:
  // CLOCK_MONOTONIC, as futex and pthread_clockjoin_np take it (libstdc++ and libc++ on Linux).
  using clock = std::chrono::steady_clock;

  // A timeout this long or longer has no limit: about a century, longer than any program waits
  // and far from where the clock's arithmetic overflows (nearly three centuries of nanoseconds).
  static constexpr std::chrono::hours longest{24 * 365 * 100};

  static constexpr deadline never() noexcept { return deadline(clock::time_point::max()); }

  // `timeout` from now. Zero, negative (or NaN): already passed, without reading the clock. A
  // count of any unit and representation, huge or a float, is compared with `longest` before it
  // is converted, so nothing overflows.
  template <class Rep, class Period>
  static deadline after(const std::chrono::duration<Rep, Period>& timeout) noexcept {
    if (!(timeout > timeout.zero())) return deadline(clock::time_point());
    if (std::chrono::duration<double>(timeout) >= longest) return never();
    return deadline(clock::now() + std::chrono::ceil<clock::duration>(timeout));
  }

  // At `when` of any clock: the time left until then, from now. Measured in floating point
  // first: the exact difference of instants a century or more apart (a time_point's min() or
  // max(), a date in days centuries ahead), in the finer of the two units, would overflow; such
  // a gap goes to after() as it is, which caps it.
  template <class Clock, class Duration>
  static deadline at(const std::chrono::time_point<Clock, Duration>& when) noexcept {
    using seconds = std::chrono::duration<double>;
    using exact = std::common_type_t<Duration, typename Clock::duration>;
    const auto now = Clock::now();
    const seconds gap = seconds(when.time_since_epoch()) - seconds(now.time_since_epoch());
    // Exact when the gap is within the cap and both instants fit in the finer unit with room
    // for their difference (false for a NaN).
    const double room = seconds(exact::max()).count() / 2;
    const auto fits = [room](seconds s) { return -room < s.count() && s.count() < room; };
    if (-longest < gap && gap < longest && fits(seconds(when.time_since_epoch())) &&
        fits(seconds(now.time_since_epoch()))) {
      return after(exact(when.time_since_epoch()) - exact(now.time_since_epoch()));
    }
    return after(gap);
  }

  bool is_never() const noexcept { return when_ == clock::time_point::max(); }
  bool passed() const noexcept { return !is_never() && clock::now() >= when_; }
  // The instant; clock::time_point::max() for never.
  clock::time_point when() const noexcept { return when_; }
  // What is left, zero once passed; nanoseconds::max() for never.
  std::chrono::nanoseconds left() const noexcept {
    if (is_never()) return std::chrono::nanoseconds::max();
    return std::max(std::chrono::duration_cast<std::chrono::nanoseconds>(when_ - clock::now()),
                    std::chrono::nanoseconds::zero());
  }

  // For the system calls; both only for a deadline that is not never.
  // The instant on CLOCK_MONOTONIC (futex, pthread_clockjoin_np).
  timespec monotonic() const noexcept { return to_timespec(when_.time_since_epoch()); }
  // What is left as a relative timeout (ppoll).
  timespec left_timespec() const noexcept { return to_timespec(left()); }

  friend bool operator==(const deadline&, const deadline&) = default;
  friend deadline earlier(const deadline& a, const deadline& b) noexcept {
    return a.when_ <= b.when_ ? a : b;
  }

 private:
  constexpr explicit deadline(clock::time_point when) noexcept : when_(when) {}

  static timespec to_timespec(clock::duration since) noexcept {
    const auto seconds = std::chrono::floor<std::chrono::seconds>(since);
    timespec result{};
    result.tv_sec = static_cast<time_t>(seconds.count());
    result.tv_nsec = static_cast<long>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(since - seconds).count());
    return result;
  }

  clock::time_point when_;
};

}  // namespace mthread
