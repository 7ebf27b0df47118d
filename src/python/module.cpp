// mthread._mthread: the device's `_thread` functions, each a thin call into the core (like
// MicroPython's py/modthread.c). Here Python values become the core's types and back
// (convert.hpp); the core checks what it is given and owns the threading logic, and what it
// throws becomes a Python exception in errors.cpp. The lock type is in lock.cpp, the descriptor
// waits in waits.cpp, the interpreter glue in interpreter.cpp.
#include <pybind11/pybind11.h>

#include <array>
#include <atomic>
#include <csignal>
#include <mthread/mthread.hpp>
#include <sstream>
#include <thread>

#include "convert.hpp"
#include "errors.hpp"
#include "interpreter.hpp"
#include "lock.hpp"
#include "repl_hook.hpp"
#include "waits.hpp"

namespace mthread::python {
namespace {

std::atomic<unsigned long long> unnamed_threads{0};

bool is_callable(py::handle value) {
  return PyCallable_Check(value.ptr()) != 0;
}

// Both forms: the device's start_new_thread(name, func, args[, kwargs]) and CPython's
// start_new_thread(func, args[, kwargs]); keywords stacksize=, mailbox_depth= and the final
// firmware's samecore=.
thread_id py_start_new_thread(PyObject* const* positional, Py_ssize_t given, py::handle stacksize,
                              py::handle mailbox_depth, py::handle samecore) {
  const char* function = "start_new_thread";
  Py_ssize_t first = 0;
  std::string name;
  if (given > 0 && PyUnicode_Check(positional[0])) {
    name = std::string(to_utf8(positional[0], function, "name"));
    first = 1;
  } else {
    name = "Thread-" + std::to_string(++unnamed_threads);
  }
  const Py_ssize_t count = given - first;
  if (count < 2 || count > 3) {
    raise(PyExc_TypeError,
          "start_new_thread() takes (name, func, args[, kwargs]) or "
          "(func, args[, kwargs]); got " +
              std::to_string(given) + " positional argument" + (given == 1 ? "" : "s"));
  }
  py::object func = py::reinterpret_borrow<py::object>(positional[first]);
  if (!is_callable(func)) {
    raise(PyExc_TypeError, "start_new_thread(): func must be callable, not " + type_name(func));
  }
  py::object args = py::reinterpret_borrow<py::object>(positional[first + 1]);
  if (!PyTuple_Check(args.ptr())) {
    raise(PyExc_TypeError, "start_new_thread(): args must be a tuple, not " + type_name(args));
  }
  py::dict kwargs;
  if (count == 3) {
    py::object extra = py::reinterpret_borrow<py::object>(positional[first + 2]);
    if (!PyDict_Check(extra.ptr())) {
      raise(PyExc_TypeError, "start_new_thread(): kwargs must be a dict, not " + type_name(extra));
    }
    kwargs = extra;
  }
  // The final firmware's default stacksize is -1: the default stack, as 0 is here.
  long long stack_bytes = 0;
  if (stacksize) stack_bytes = to_integer(stacksize, function, "stacksize", -1, LLONG_MAX);
  // 0 is the default depth, as stacksize=0 is the default stack; the core checks the others.
  std::size_t depth = 0;
  if (mailbox_depth) depth = to_unsigned<std::size_t>(mailbox_depth, function, "mailbox_depth");
  // A PC has no pair of cores to choose between: samecore= is checked and accepted.
  if (samecore) to_bool(samecore);
  return start_python_thread(name, func, args, kwargs,
                             static_cast<std::size_t>(std::max(stack_bytes, 0LL)),
                             depth == 0 ? default_mailbox_depth : depth);
}

py::tuple message_tuple(const message& m) {
  switch (m.type) {
    case msg_type::integer:
      return py::make_tuple(1, m.sender, m.integer);
    case msg_type::string:
      return py::make_tuple(2, m.sender,
                            py::reinterpret_steal<py::object>(PyUnicode_DecodeUTF8(
                                m.text.data(), static_cast<Py_ssize_t>(m.text.size()), "replace")));
    case msg_type::none:
      break;
  }
  return py::make_tuple(0, 0, py::none());
}

py::object py_getmsg(py::handle timeout_ms, py::handle) {
  if (timeout_ms.is_none()) return message_tuple(get_msg());
  const deadline until = to_deadline<std::chrono::milliseconds>(timeout_ms, "getmsg", "timeout_ms");
  // A message already there costs no GIL hand-off. (A thread mthread does not know has none;
  // the get_msg in the wait throws mthread::wrong_thread there.)
  if (message ready = get_msg(); ready.type != msg_type::none) return message_tuple(ready);
  // A broadcast that wakes this thread wakes the next one once this one holds the GIL again.
  const binding::paced_wakes paced;
  const auto received = wait_without_gil<message>(until, [](const deadline& slice_end) {
    message m = binding::get_msg(slice_end);
    return m.type == msg_type::none ? std::nullopt : std::optional<message>(std::move(m));
  });
  return message_tuple(received.value_or(message{}));
}

py::object py_wait(py::handle timeout_ms, py::handle) {
  const deadline until = timeout_ms.is_none() ? deadline::never()
                                              : to_deadline<std::chrono::milliseconds>(
                                                    timeout_ms, "wait", "timeout_ms");
  // A notification already there costs no GIL hand-off (as in getmsg).
  if (const std::uint32_t pending = get_notification(); pending != 0) return py::int_(pending);
  const binding::paced_wakes paced;  // as in getmsg
  const auto value = wait_without_gil<std::uint32_t>(
      until, [](const deadline& slice_end) { return binding::wait(slice_end); });
  return value ? py::object(py::int_(*value)) : py::object(py::none());
}

// A broadcast (id 0) lets go of the GIL for the core's loop, which needs no Python object: it
// delivers to every target (a few hundred nanoseconds each) and wakes a few at its end (see
// core::wake_relay and getmsg's paced_wakes); those take the GIL in turn (wait_without_gil), so
// the caller wins it back at once: 0.5-0.9 µs a target at 1000 and 4000 targets, as with the
// GIL kept.
template <class Call>
bool without_gil(Call&& call) {
  gil_release released;
  bool result = false;
  try {
    result = call();
  } catch (...) {
    released.reacquire();
    throw;
  }
  released.reacquire();
  return result;
}

py::object py_notify(py::handle id, py::handle value) {
  const auto target = to_thread_id(id, "notify");
  const auto checked = to_unsigned<std::uint32_t>(value, "notify", "value");
  return py::bool_(target == 0 ? without_gil([&] { return notify(target, checked); })
                               : notify(target, checked));
}

py::object py_sendmsg(py::handle id, py::handle msg) {
  const auto target = to_thread_id(id, "sendmsg");
  if (PyLong_Check(msg.ptr())) {
    const auto checked =
        static_cast<std::int64_t>(to_integer(msg, "sendmsg", "msg", LLONG_MIN, LLONG_MAX));
    return py::bool_(target == 0 ? without_gil([&] { return send_msg(target, checked); })
                                 : send_msg(target, checked));
  }
  if (!PyUnicode_Check(msg.ptr())) {
    raise(PyExc_TypeError, "sendmsg(): msg must be an int or a str, not " + type_name(msg));
  }
  // `text` is the str's own UTF-8, kept alive by the caller's reference to `msg`.
  const std::string_view text = to_utf8(msg, "sendmsg", "msg");
  return py::bool_(target == 0 ? without_gil([&] { return send_msg(target, text); })
                               : send_msg(target, text));
}

void sleep_for_python(const deadline& until) {
  const bool zero = until.passed();
  wait_without_gil<bool>(until, [&](const deadline& slice_end) -> std::optional<bool> {
    binding::sleep_until(slice_end);
    // A zero sleep yields the processor, as vTaskDelay(0) does on the device: with the GIL
    // released, a thread waiting for it on this CPU runs (a sleep that is over returns at once,
    // and the caller would take the GIL straight back).
    if (zero) std::this_thread::yield();
    if (until.passed()) return true;
    return std::nullopt;
  });
}

py::object py_replAcceptMsg(py::handle flag, py::handle) {
  // As on the device, the flag is honoured in the main thread only; setting returns the
  // previous setting, as the device's mp_thread_replAcceptMsg does.
  if (!flag.is_none() && get_self_id() == get_repl_id()) {
    return py::bool_(repl_accept_msg(to_bool(flag)));
  }
  return py::bool_(repl_accept_msg());
}

py::object py_list(py::handle print, py::handle) {
  if (print.is_none() || to_bool(print)) {
    std::ostringstream lines;
    print_list(lines);
    py::module_::import("sys").attr("stdout").attr("write")(lines.str());
    return py::none();
  }
  py::list rows;
  for (const thread_info& info : list()) {
    rows.append(py::make_tuple(info.id, static_cast<int>(info.type), info.name,
                               static_cast<int>(info.state), info.stack_size, info.max_stack_used));
  }
  return py::tuple(rows);
}

// --- calling a body from CPython ------------------------------------------------------------
// Plain METH_FASTCALL functions rather than pybind11's dispatcher: a wrong call gets CPython's
// own wording naming the argument ("missing required argument 'th_id'"), never a dump of
// overloads, and a call costs no argument tuple (pybind11's costs about 100 ns, as much as
// sending a message).

struct signature {
  const char* name;
  std::array<const char*, 2> parameters;  // nullptr past the last
  Py_ssize_t required;
};

// Binds positional and keyword arguments to `out` by parameter name, as CPython's own
// functions do; an argument not given stays nullptr. False with a TypeError set.
bool bind_arguments(const char* function, const char* const* parameters, Py_ssize_t most,
                    Py_ssize_t required, PyObject* const* args, Py_ssize_t count,
                    PyObject* keywords, PyObject** out) {
  if (count > most) {
    PyErr_Format(PyExc_TypeError, "%s() takes at most %zd argument%s (%zd given)", function, most,
                 most == 1 ? "" : "s", count);
    return false;
  }
  for (Py_ssize_t i = 0; i < count; ++i) out[i] = args[i];
  const Py_ssize_t named = keywords != nullptr ? PyTuple_GET_SIZE(keywords) : 0;
  for (Py_ssize_t k = 0; k < named; ++k) {
    PyObject* keyword = PyTuple_GET_ITEM(keywords, k);
    Py_ssize_t slot = 0;
    while (slot < most && PyUnicode_CompareWithASCIIString(keyword, parameters[slot]) != 0) {
      ++slot;
    }
    if (slot == most) {
      PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%U'", function,
                   keyword);
      return false;
    }
    if (out[slot] != nullptr) {
      PyErr_Format(PyExc_TypeError, "%s() got multiple values for argument '%s'", function,
                   parameters[slot]);
      return false;
    }
    out[slot] = args[count + k];
  }
  for (Py_ssize_t i = 0; i < required; ++i) {
    if (out[i] == nullptr) {
      PyErr_Format(PyExc_TypeError, "%s() missing required argument '%s'", function, parameters[i]);
      return false;
    }
  }
  return true;
}

// Runs `body` and turns what it throws into the Python error, naming `function` (the Python
// name; nullptr: the core's message as it is); the result as a new reference.
template <class Body>
PyObject* call_translating(const char* function, Body&& body) {
  return returning_python_error<PyObject*>(function, nullptr,
                                           [&] { return body().release().ptr(); });
}

using body_function = py::object (*)(py::handle, py::handle);

template <const signature& Sig, body_function Body>
PyObject* fast_call(PyObject*, PyObject* const* args, Py_ssize_t count, PyObject* keywords) {
  PyObject* bound[2] = {nullptr, nullptr};
  Py_ssize_t most = 0;
  while (most < static_cast<Py_ssize_t>(Sig.parameters.size()) && Sig.parameters[most]) ++most;
  if (!bind_arguments(Sig.name, Sig.parameters.data(), most, Sig.required, args, count, keywords,
                      bound)) {
    return nullptr;
  }
  // An optional argument not given is None.
  return call_translating(Sig.name, [&] {
    return Body(bound[0] != nullptr ? bound[0] : Py_None, bound[1] != nullptr ? bound[1] : Py_None);
  });
}

template <const signature& Sig, body_function Body>
constexpr PyMethodDef method(const char* doc) {
  return {Sig.name,
          reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&fast_call<Sig, Body>)),
          METH_FASTCALL | METH_KEYWORDS, doc};
}

template <py::object (*Body)()>
PyObject* no_arguments_call(PyObject*, PyObject*) {
  return call_translating(nullptr, [] { return Body(); });
}

template <py::object (*Body)()>
constexpr PyMethodDef no_arguments(const char* name, const char* doc) {
  return {name, &no_arguments_call<Body>, METH_NOARGS, doc};
}

PyObject* start_new_thread_entry(PyObject*, PyObject* const* args, Py_ssize_t count,
                                 PyObject* keywords) {
  static constexpr std::array<const char*, 3> options{"stacksize", "mailbox_depth", "samecore"};
  PyObject* bound[3] = {nullptr, nullptr, nullptr};
  // The keywords only: the positional arguments have two forms, told apart by the first.
  if (!bind_arguments("start_new_thread", options.data(), options.size(), 0, args + count, 0,
                      keywords, bound)) {
    return nullptr;
  }
  return call_translating("start_new_thread", [&] {
    return py::int_(py_start_new_thread(args, count, bound[0], bound[1], bound[2]));
  });
}

// --- the other bodies ------------------------------------------------------------------------

// A function of one thread id (th_id), its result converted as pybind11 converts it.
template <const signature& Sig, auto Operation>
py::object on_thread(py::handle id, py::handle) {
  return py::cast(Operation(to_thread_id(id, Sig.name)));
}

int status_code(thread_id id) {
  return static_cast<int>(status(id));
}
bool send_exit(thread_id id) {
  return notify(id, notify_exit);
}

py::object py_stack_size(py::handle size, py::handle) {
  if (size.is_none()) return py::int_(stack_size());
  const long long bytes = to_integer(size, "stack_size", "size", 0, LLONG_MAX);
  return py::int_(stack_size(static_cast<std::size_t>(bytes)));
}

py::object py_allowsuspend(py::handle allow, py::handle) {
  allow_suspend(to_bool(allow));
  return py::none();
}

py::object py_sleep(py::handle seconds, py::handle) {
  sleep_for_python(to_deadline<std::chrono::seconds>(seconds, "sleep", "seconds"));
  return py::none();
}
py::object py_sleep_ms(py::handle ms, py::handle) {
  sleep_for_python(to_deadline<std::chrono::milliseconds>(ms, "sleep_ms", "ms"));
  return py::none();
}
py::object py_sleep_us(py::handle us, py::handle) {
  sleep_for_python(to_deadline<std::chrono::microseconds>(us, "sleep_us", "us"));
  return py::none();
}

// Set when a Ctrl-C was taken by Python code waiting before the join at exit: the join then
// begins with it (a Ctrl-C raised again in Python would only be raised there again).
std::atomic<bool> interrupt_next_join{false};

py::object py_interrupt_next_join() {
  interrupt_next_join.store(true);
  return py::none();
}

py::object py_join_all(py::handle grace, py::handle) {
  const auto limit = to_duration<std::chrono::seconds>(grace, "_join_all", "grace");
  if (interrupt_next_join.exchange(false)) PyErr_SetInterruptEx(SIGINT);
  return py::int_(join_all(limit));
}

py::object py_set_repl_display(py::handle display, py::handle) {
  set_repl_display(py::reinterpret_borrow<py::object>(display));
  return py::none();
}

py::object py_repl_write(py::handle text, py::handle) {
  queue_repl_output(std::string(to_utf8(text, "_repl_write", "text")));
  return py::none();
}

py::object py_lock() {
  enter_atomic_section();
  return py::none();
}
py::object py_unlock() {
  leave_atomic_section();
  return py::none();
}

py::object py_getSelfName() {
  return py::str(get_self_name());
}
py::object py_getReplID() {
  return py::int_(get_repl_id());
}
py::object py_getnotification() {
  return py::int_(get_notification());
}
py::object py_getSelfID() {
  return py::int_(get_self_id());
}
// In a thread mthread started, its mthread id: the value start_new_thread returned, as CPython
// and MicroPython make them equal. Elsewhere (the main thread, threading's threads) CPython's
// own ident, so that it matches threading.main_thread().ident and threading.get_ident() there.
// threading keeps CPython's get_ident for itself: it took it from the real _thread at import.
py::object py_get_ident() {
  const thread_id self = get_self_id();
  if (self != 0 && self != get_repl_id()) return py::int_(self);
  return py::int_(PyThread_get_thread_ident());
}
py::object py_redisplay_prompt() {
  return py::bool_(redisplay_prompt());
}
py::object py_take_repl_output() {
  return py::str(take_repl_output());
}
py::object py_request_scheduled_run(py::handle runner, py::handle) {
  request_scheduled_run(py::reinterpret_borrow<py::object>(runner));
  return py::none();
}
py::object py_repl_output_pending() {
  return py::bool_(repl_output_pending());
}
py::object py_at_prompt() {
  return py::bool_(prompt_waiting());
}

constexpr signature sendmsg_sig{"sendmsg", {"th_id", "msg"}, 2};
constexpr signature getmsg_sig{"getmsg", {"timeout_ms", nullptr}, 0};
constexpr signature notify_sig{"notify", {"th_id", "value"}, 2};
constexpr signature wait_sig{"wait", {"timeout_ms", nullptr}, 0};
constexpr signature stack_size_sig{"stack_size", {"size", nullptr}, 0};
constexpr signature allowsuspend_sig{"allowsuspend", {"allow", nullptr}, 1};
constexpr signature suspend_sig{"suspend", {"th_id", nullptr}, 1};
constexpr signature resume_sig{"resume", {"th_id", nullptr}, 1};
constexpr signature kill_sig{"kill", {"th_id", nullptr}, 1};
constexpr signature getThreadName_sig{"getThreadName", {"th_id", nullptr}, 1};
constexpr signature status_sig{"status", {"th_id", nullptr}, 1};
constexpr signature isnotified_sig{"isnotified", {"th_id", nullptr}, 1};
constexpr signature stop_sig{"stop", {"th_id", nullptr}, 1};
constexpr signature replAcceptMsg_sig{"replAcceptMsg", {"flag", nullptr}, 0};
constexpr signature mainAcceptMsg_sig{"mainAcceptMsg", {"flag", nullptr}, 0};
constexpr signature list_sig{"list", {"print", nullptr}, 0};
constexpr signature sleep_sig{"sleep", {"seconds", nullptr}, 1};
constexpr signature sleep_ms_sig{"sleep_ms", {"ms", nullptr}, 1};
constexpr signature sleep_us_sig{"sleep_us", {"us", nullptr}, 1};
constexpr signature join_all_sig{"_join_all", {"grace", nullptr}, 1};
constexpr signature set_repl_display_sig{"_set_repl_display", {"display", nullptr}, 1};
constexpr signature sender_name_sig{"_sender_name", {"th_id", nullptr}, 1};
constexpr signature repl_write_sig{"_repl_write", {"text", nullptr}, 1};
constexpr signature request_scheduled_run_sig{"_request_scheduled_run", {"runner", nullptr}, 1};

PyMethodDef methods[] = {
    {"start_new_thread",
     reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&start_new_thread_entry)),
     METH_FASTCALL | METH_KEYWORDS,
     "start_new_thread(name, func, args[, kwargs], *, samecore=True, stacksize=0, "
     "mailbox_depth=0) -> id\n"
     "start_new_thread(func, args[, kwargs], *, stacksize=0, mailbox_depth=0) -> id\n\n"
     "Start func(*args, **kwargs) in a new thread named `name` (CPython's form: \"Thread-N\")\n"
     "and return its id. `args` must be a tuple, `kwargs` a dict. stacksize=0 (or the final\n"
     "firmware's -1) uses stack_size(); other sizes are clamped to the allowed range, as on\n"
     "the device. mailbox_depth: how many messages its mailbox holds, 1..65536; 0 is the\n"
     "default, 8. samecore: the final firmware's choice of core; a PC has no such pair of\n"
     "cores, so it is accepted and changes nothing."},
    method<sendmsg_sig, py_sendmsg>(
        "sendmsg(th_id, msg) -> bool\n\nQueue `msg` (an int in the signed 64-bit range, or a "
        "non-empty str of at most 64 KiB\nof UTF-8) in a thread's mailbox. Never blocks: False "
        "when the mailbox is full or the\nthread unknown or ended. th_id 0 sends to every thread "
        "but the caller (True if all\naccepted)."),
    method<getmsg_sig, py_getmsg>(
        "getmsg([timeout_ms]) -> (type, sender_id, msg)\n\nThe oldest message for the calling "
        "thread: type 1 with an int, type 2 with a str;\n(0, 0, None) when there is none. Without "
        "timeout_ms it never blocks; with it, waits\nup to that many milliseconds."),
    method<notify_sig, py_notify>(
        "notify(th_id, value) -> bool\n\nSet a thread's notification to `value` (1..2**32-1; the "
        "latest wins). th_id 0 sends\nto every thread but the caller. False for an unknown or "
        "ended thread."),
    method<wait_sig, py_wait>(
        "wait([timeout_ms]) -> int or None\n\nReturn the pending notification at once (cleared), "
        "else block until one arrives,\nor return None after timeout_ms milliseconds."),
    method<stack_size_sig, py_stack_size>(
        "stack_size([size]) -> int\n\nThe stack size in bytes for threads started from now on. "
        "With `size`, set it first:\nclamped to [min, max] and rounded to pages; 0 restores the "
        "default (8 MiB)."),
    method<allowsuspend_sig, py_allowsuspend>(
        "allowsuspend(allow)\n\nLet (or stop letting) the calling thread be suspended. "
        "New threads start not suspendable."),
    method<suspend_sig, on_thread<suspend_sig, &suspend>>(
        "suspend(th_id) -> bool\n\nSuspend a thread that allowed it: it stops before its next "
        "line, or at once inside\nmthread's waits and sleeps. False if it is unknown, already "
        "suspended, did not allow it,\nor is the caller."),
    method<resume_sig, on_thread<resume_sig, &resume>>(
        "resume(th_id) -> bool\n\nResume a suspended thread where it stopped. False if it was "
        "not suspended."),
    method<kill_sig, on_thread<kill_sig, &kill>>(
        "kill(th_id) -> bool\n\nEnd a thread: it gets ThreadKilled at its next bytecode (again "
        "if it swallows it), so\n`finally` and `with` run; a thread blocked in mthread's waits "
        "or sleeps, or suspended,\nends within milliseconds. False for the main thread or an "
        "unknown id. kill() of the\ncaller's own id raises ThreadKilled in the caller."),
    method<getThreadName_sig, on_thread<getThreadName_sig, &get_thread_name>>(
        "getThreadName(th_id) -> str\n\nThe thread's name, or \"unknown\"."),
    method<status_sig, on_thread<status_sig, &status_code>>(
        "status(th_id) -> int\n\nRUNNING, SUSPENDED or WAITING; TERMINATED for a thread that is "
        "gone or never was."),
    method<isnotified_sig, on_thread<isnotified_sig, &is_notified>>(
        "isnotified(th_id) -> bool\n\nWhether the thread has a notification pending."),
    method<stop_sig, on_thread<stop_sig, &send_exit>>(
        "stop(th_id) -> bool\n\nSend the EXIT notification: ask the thread to end itself."),
    method<replAcceptMsg_sig, py_replAcceptMsg>(
        "replAcceptMsg([flag]) -> bool\n\nWhether the REPL shows incoming messages and "
        "notifications at its prompt. In the main\nthread `flag` sets it, and the previous "
        "setting is returned (as on the device); while\noff, they stay queued for "
        "getmsg()/getnotification(). Default on."),
    method<mainAcceptMsg_sig, py_replAcceptMsg>(
        "mainAcceptMsg([flag]) -> bool\n\nThe final firmware's name for replAcceptMsg(): the "
        "same function."),
    method<list_sig, py_list>(
        "list([print=True])\n\nPrint one line a thread, in the device's format. list(False) "
        "returns a tuple of\n(id, type, name, state, stack_size, max_stack_used) instead."),
    method<sleep_sig, py_sleep>("sleep(seconds)\n\nSleep; suspend and kill take effect at once."),
    method<sleep_ms_sig, py_sleep_ms>(
        "sleep_ms(ms)\n\nSleep `ms` milliseconds; suspend and kill take effect at once."),
    method<sleep_us_sig, py_sleep_us>(
        "sleep_us(us)\n\nSleep `us` microseconds; suspend and kill take effect at once."),
    no_arguments<py_lock>(
        "lock",
        "lock()\n\nEnter an atomic section, as the device's firmware does: until unlock(), every "
        "other thread\nmthread started stops at its next line (or as it leaves one of mthread's "
        "waits). Threads\nmthread did not start (threading's, the main thread for another "
        "caller) go on. Nested\nlock() calls need as many unlock() calls; waits while another "
        "thread holds the section."),
    no_arguments<py_unlock>(
        "unlock",
        "unlock()\n\nLeave the atomic section lock() entered; the stopped threads go on. Does "
        "nothing in a\nthread that holds no section, as on the device."),
    no_arguments<py_getSelfName>("getSelfName",
                                 "getSelfName() -> str\n\nThe calling thread's name."),
    no_arguments<py_getReplID>(
        "getReplID",
        "getReplID() -> int\n\nThe main (REPL) thread's id: send it messages and notifications."),
    no_arguments<py_getReplID>("getMainID", "getMainID() -> int\n\nThe same as getReplID()."),
    no_arguments<py_getnotification>(
        "getnotification",
        "getnotification() -> int\n\nThe calling thread's pending notification (then cleared), "
        "or 0 when none."),
    no_arguments<py_getSelfID>(
        "getSelfID",
        "getSelfID() -> int\n\nThe calling thread's id (0 in a thread mthread does not know)."),
    no_arguments<py_get_ident>(
        "get_ident",
        "get_ident() -> int\n\nCPython's _thread.get_ident(), but in a thread that mthread "
        "started it is the thread's\nmthread id, the value start_new_thread() returned (as "
        "CPython and MicroPython make\nthem equal). threading keeps CPython's own idents."),
    method<join_all_sig, py_join_all>(
        "Wait for every started thread to end; on Ctrl-C kill them, wait `grace` s; return how "
        "many remain."),
    method<set_repl_display_sig, py_set_repl_display>(
        "Set the callable the REPL input hook runs about ten times a second (None: stop)."),
    method<sender_name_sig, on_thread<sender_name_sig, &binding::sender_name>>(
        "The name of a message's sender, even if it ended since; \"unknown\" otherwise."),
    method<repl_write_sig, py_repl_write>(
        "Queue text (a thread's traceback) for the REPL display to print above the prompt."),
    no_arguments<py_take_repl_output>("_take_repl_output",
                                      "Take the text queued by _repl_write(); \"\" if none."),
    method<request_scheduled_run_sig, py_request_scheduled_run>(
        "Have `runner` called in the main thread very soon (micropython.schedule)."),
    no_arguments<py_interrupt_next_join>(
        "_interrupt_next_join",
        "Make the next _join_all() start as if Ctrl-C were pressed: kill, then reap."),
    no_arguments<py_repl_output_pending>(
        "_repl_output_pending", "Whether text queued by _repl_write() waits for the display."),
    no_arguments<py_at_prompt>("_at_prompt",
                               "Whether the interactive prompt is waiting for input now."),
    no_arguments<py_redisplay_prompt>(
        "_redisplay_prompt",
        "Redraw readline's prompt and the text typed so far; False without readline."),
    {nullptr, nullptr, 0, nullptr},
};

// --- the module: the function table above, the lock type, the descriptor waits, the constants --

void init_module(py::module_& m) {
  m.doc() = "The C++ half of mthread; import mthread instead.";
  prepare_interpreter(m);
  py::register_exception_translator(&translate_core_error);
  install_repl_hook();
  if (PyModule_AddFunctions(m.ptr(), methods) != 0) throw py::error_already_set();
  add_lock_type(m);
  add_descriptor_waits(m);

  m.attr("MAIN") = static_cast<int>(thread_type::main);
  m.attr("PYTHON") = static_cast<int>(thread_type::python);
  m.attr("SERVICE") = static_cast<int>(thread_type::service);
  m.attr("NATIVE") = static_cast<int>(thread_type::native);
  m.attr("RUNNING") = static_cast<int>(thread_state::running);
  m.attr("SUSPENDED") = static_cast<int>(thread_state::suspended);
  m.attr("WAITING") = static_cast<int>(thread_state::waiting);
  m.attr("TERMINATED") = static_cast<int>(thread_state::terminated);
  m.attr("PAUSE") = notify_pause;
  m.attr("SUSPEND") = notify_suspend;
  m.attr("RESUME") = notify_resume;
  m.attr("EXIT") = notify_exit;
  m.attr("STOP") = notify_stop;
  m.attr("STATUS") = notify_status;
  m.attr("DEFAULT_STACK_SIZE") = default_stack_size;
  m.attr("MIN_STACK_SIZE") = min_stack_size;
  m.attr("MAX_STACK_SIZE") = max_stack_size;
  m.attr("MAX_MESSAGE_LENGTH") = max_message_length;
  m.attr("MAX_THREADS") = max_threads();
}

}  // namespace
}  // namespace mthread::python

PYBIND11_MODULE(_mthread, m) {
  mthread::python::init_module(m);
}
