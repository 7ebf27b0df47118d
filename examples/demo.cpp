// mthread demo: the ESP32 MicroPython (LoBo) thread example, in C++.
//
// A "blinker" thread toggles a simulated LED; a "sensor" thread sends simulated temperature
// readings to the main thread as messages and raises an alarm notification when it gets hot. The
// main thread plays the device's REPL: it shows what arrives, lists the threads, suspends and
// resumes the blinker, kills the sensor and finally asks the blinker to stop, the device's way
// (an EXIT notification). It ends by itself after about 3 seconds.
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <iostream>
#include <mthread/mthread.hpp>
#include <string>

using namespace std::chrono_literals;

namespace {

const auto started = std::chrono::steady_clock::now();

// One line, written with a single write(): lines of different threads never mix, and no lock is
// taken. That matters for the blinker: a native thread is suspended wherever it is, and one
// suspended inside std::cout would hold the stream's lock until resumed.
void say(const char* who, const char* format, ...) {
  char line[256];
  const double t =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  int n = std::snprintf(line, sizeof line, "[%5.2fs] %-8s ", t, who);
  va_list args;
  va_start(args, format);
  n += std::vsnprintf(line + n, sizeof line - static_cast<std::size_t>(n), format, args);
  va_end(args);
  if (n > static_cast<int>(sizeof line) - 2) n = static_cast<int>(sizeof line) - 2;
  line[n++] = '\n';
  (void)!write(STDOUT_FILENO, line, static_cast<std::size_t>(n));
}

constexpr std::uint32_t hot_alarm = 0x100;  // the sensor's own notification value

// Toggles the LED every 150 ms until told to stop; answers a STATUS notification with a message.
void blinker(mthread::thread_id repl) {
  mthread::allow_suspend(true);  // as on the device: not suspendable until the thread says so
  bool led = false;
  long toggles = 0;
  for (;;) {
    led = !led;
    ++toggles;
    say("blinker", "LED %s", led ? "ON " : "off");
    // Waits for notifications until the next blink is due.
    const auto next = std::chrono::steady_clock::now() + 150ms;
    for (;;) {
      const auto left =
          std::chrono::ceil<std::chrono::milliseconds>(next - std::chrono::steady_clock::now());
      if (left <= 0ms) break;
      const auto note = mthread::wait(left);
      if (!note) continue;
      if (*note == mthread::notify_exit) {
        say("blinker", "EXIT received after %ld toggles, bye", toggles);
        return;
      }
      if (*note == mthread::notify_status) mthread::send_msg(repl, std::int64_t{toggles});
    }
  }
}

// Sends a reading every 200 ms; notifies the main thread when it gets hot.
void sensor(mthread::thread_id repl) {
  struct on_exit {  // runs when the thread ends, killed included: destructors run
    ~on_exit() { say("sensor", "cleaning up (the sensor is powered down)"); }
  } cleanup;
  for (int i = 0;; ++i) {
    const double celsius = 21.0 + 4.0 * std::sin(i * 0.7);
    char text[32];
    std::snprintf(text, sizeof text, "temperature %.1f C", celsius);
    mthread::send_msg(repl, text);
    if (celsius > 24.5) mthread::notify(repl, hot_alarm);
    mthread::sleep_for(200ms);  // kill takes effect here at once
  }
}

// Shows what arrived for the main thread during `period`, as the device's REPL does.
void show_incoming(std::chrono::milliseconds period) {
  const auto until = std::chrono::steady_clock::now() + period;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        until - std::chrono::steady_clock::now());
    if (left <= 0ms) return;
    if (const auto note = mthread::get_notification()) {
      say("main", "[Notification] %u%s", note, note == hot_alarm ? " (it is getting hot)" : "");
    }
    const auto m = mthread::get_msg(std::min(left, 20ms));
    const std::string from = mthread::get_thread_name(m.sender);
    if (m.type == mthread::msg_type::string) {
      say("main", "[Message from thread \"%s\"] %s", from.c_str(), m.text.c_str());
    } else if (m.type == mthread::msg_type::integer) {
      say("main", "[Message from thread \"%s\"] %lld", from.c_str(),
          static_cast<long long>(m.integer));
    }
  }
}

const char* state_name(mthread::thread_state state) {
  switch (state) {
    case mthread::thread_state::running:
      return "running";
    case mthread::thread_state::suspended:
      return "suspended";
    case mthread::thread_state::waiting:
      return "waiting";
    case mthread::thread_state::terminated:
      return "terminated";
  }
  return "?";
}

void show_list() {
  say("main", "thread list:");
  std::cout << std::flush;
  mthread::print_list(std::cout);
  std::cout << std::flush;
}

}  // namespace

int main() {
  const auto repl = mthread::get_repl_id();
  say("main", "REPL thread id %llu, name \"%s\"", static_cast<unsigned long long>(repl),
      mthread::get_self_name().c_str());

  mthread::stack_size(16 * 1024);  // a device-sized stack: clamped up to the safe minimum
  const auto blink = mthread::start_new_thread("blinker", blinker, repl);
  mthread::stack_size(0);
  const auto sense = mthread::start_new_thread("sensor", sensor, repl);
  say("main", "started blinker (id %llu) and sensor (id %llu)",
      static_cast<unsigned long long>(blink), static_cast<unsigned long long>(sense));

  show_incoming(900ms);
  show_list();

  say("main", "suspend(blinker) -> %s", mthread::suspend(blink) ? "True" : "False");
  say("main", "blinker is %s", state_name(mthread::status(blink)));
  show_incoming(600ms);  // the sensor goes on; the LED stays as it was
  say("main", "resume(blinker) -> %s", mthread::resume(blink) ? "True" : "False");
  show_incoming(500ms);

  say("main", "kill(sensor) -> %s", mthread::kill(sense) ? "True" : "False");
  mthread::join(sense, 1s);
  say("main", "sensor is %s", state_name(mthread::status(sense)));
  say("main", "kill(main) -> %s (the REPL thread cannot be killed)",
      mthread::kill(repl) ? "True" : "False");

  say("main", "notify(blinker, STATUS): how many toggles?");
  mthread::notify(blink, mthread::notify_status);
  show_incoming(300ms);
  show_list();

  say("main", "notify(blinker, EXIT)");
  mthread::notify(blink, mthread::notify_exit);
  mthread::join(blink, 1s);
  say("main", "blinker is %s; done", state_name(mthread::status(blink)));
  return 0;
}
