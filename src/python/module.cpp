// mthread._mthread: the device's `_thread` functions, one table, each a thin call into the core
// (like MicroPython's py/modthread.c). Argument checks and conversions are here; threading
// logic is in the core; interpreter glue is in interpreter.cpp.
#include <pybind11/pybind11.h>

#include <array>
#include <atomic>
#include <csignal>
#include <mthread/mthread.hpp>
#include <sstream>
#include <thread>

#include "convert.hpp"
#include "interpreter.hpp"
#include "lock.hpp"
#include "repl_hook.hpp"
#include "waits.hpp"

namespace py = pybind11;
using namespace mthread;
using namespace mthread::python;

namespace {

std::atomic<unsigned long long> unnamed_threads{0};

bool is_callable(py::handle value) {
  return PyCallable_Check(value.ptr()) != 0;
}

// Both forms: the device's start_new_thread(name, func, args[, kwargs]) and CPython's
// start_new_thread(func, args[, kwargs]); keywords stacksize=, mailbox_depth= and the final
// firmware's samecore=.
thread_id start_thread(PyObject* const* positional, Py_ssize_t given, py::handle stacksize,
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
  // 0 is the default depth, as stacksize=0 is the default stack.
  long long depth = 0;
  if (mailbox_depth) {
    depth = to_integer(mailbox_depth, function, "mailbox_depth", 0, max_mailbox_depth);
  }
  // A PC has no pair of cores to choose between: samecore= is checked and accepted.
  if (samecore) to_bool(samecore);
  return start_python_thread(name, func, args, kwargs,
                             static_cast<std::size_t>(std::max(stack_bytes, 0LL)),
                             depth == 0 ? default_mailbox_depth : static_cast<std::size_t>(depth));
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

py::object getmsg(py::handle timeout_ms, py::handle = {}) {
  if (timeout_ms.is_none()) return message_tuple(get_msg());
  const auto timeout = to_duration<std::chrono::milliseconds>(timeout_ms, "getmsg", "timeout_ms");
  if (get_self_id() == 0) {
    raise(error_type(),
          "getmsg(timeout_ms) needs a thread mthread knows (the main thread or one "
          "it started): no message can ever reach this one");
  }
  // A message already there costs no GIL hand-off.
  if (message ready = get_msg(); ready.type != msg_type::none) return message_tuple(ready);
  // A broadcast that wakes this thread wakes the next one once this one holds the GIL again.
  const binding::paced_wakes paced;
  const auto received = wait_without_gil<message>(timeout, [](std::chrono::nanoseconds slice) {
    message m = get_msg(std::chrono::ceil<std::chrono::milliseconds>(slice));
    return m.type == msg_type::none ? std::nullopt : std::optional<message>(std::move(m));
  });
  return message_tuple(received.value_or(message{}));
}

py::object wait_notification(py::handle timeout_ms, py::handle = {}) {
  std::optional<std::chrono::nanoseconds> timeout;
  if (!timeout_ms.is_none()) {
    timeout = to_duration<std::chrono::milliseconds>(timeout_ms, "wait", "timeout_ms");
  }
  if (get_self_id() == 0) {
    raise(error_type(),
          "wait() needs a thread mthread knows (the main thread or one it "
          "started): no notification can ever reach this one");
  }
  // A notification already there costs no GIL hand-off.
  if (const std::uint32_t pending = get_notification(); pending != 0) return py::int_(pending);
  const binding::paced_wakes paced;  // as in getmsg
  const auto value = wait_without_gil<std::uint32_t>(timeout, [](std::chrono::nanoseconds slice) {
    return mthread::wait(std::chrono::ceil<std::chrono::milliseconds>(slice));
  });
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

py::object notify_thread(py::handle id, py::handle value) {
  const auto target = to_thread_id(id, "notify");
  const auto checked =
      static_cast<std::uint32_t>(to_integer(value, "notify", "value", 1, 0xFFFFFFFFLL));
  return py::bool_(target == 0 ? without_gil([&] { return notify(target, checked); })
                               : notify(target, checked));
}

py::object sendmsg(py::handle id, py::handle msg) {
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
  const std::string_view text = to_utf8(msg, "sendmsg", "msg");
  if (text.empty()) raise(PyExc_ValueError, "sendmsg(): msg must not be an empty string");
  if (text.size() > max_message_length) {
    raise(PyExc_ValueError, "sendmsg(): msg is " + std::to_string(text.size()) +
                                " bytes of UTF-8, longer than the maximum of " +
                                std::to_string(max_message_length));
  }
  // `text` is the str's own UTF-8, kept alive by the caller's reference to `msg`.
  return py::bool_(target == 0 ? without_gil([&] { return send_msg(target, text); })
                               : send_msg(target, text));
}

void sleep_for_python(std::optional<std::chrono::nanoseconds> duration) {
  const auto deadline = duration ? std::chrono::steady_clock::now() + *duration
                                 : std::chrono::steady_clock::time_point::max();
  wait_without_gil<bool>(duration, [&](std::chrono::nanoseconds slice) -> std::optional<bool> {
    sleep_for(slice);
    // A zero sleep yields the processor, as vTaskDelay(0) does on the device: with the GIL
    // released, a thread waiting for it on this CPU runs (sleep_for(0) alone returns at once,
    // and the caller would take the GIL straight back).
    if (duration && duration->count() == 0) std::this_thread::yield();
    if (std::chrono::steady_clock::now() >= deadline) return true;
    return std::nullopt;
  });
}

py::object repl_accept(py::handle flag, py::handle) {
  // As on the device, the flag is honoured in the main thread only; setting returns the
  // previous setting, as the device's mp_thread_replAcceptMsg does.
  if (!flag.is_none() && get_self_id() == get_repl_id()) {
    return py::bool_(repl_accept_msg(to_bool(flag)));
  }
  return py::bool_(repl_accept_msg());
}

py::object list_threads(py::handle print, py::handle) {
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

void translate_core_exceptions(std::exception_ptr thrown) {
  try {
    std::rethrow_exception(thrown);
  } catch (const thread_killed&) {
    set_thread_killed_error();
  } catch (const mthread::error& e) {
    PyErr_SetString(error_type(), e.what());
  }
}

// --- the function table ----------------------------------------------------------------------
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

// The Python error for a C++ exception, as pybind11's dispatcher would set it.
void set_python_error(std::exception_ptr thrown) {
  try {
    try {
      std::rethrow_exception(thrown);
    } catch (py::error_already_set& e) {
      e.restore();
    } catch (const std::bad_alloc&) {
      PyErr_NoMemory();
    }
  } catch (...) {
    try {
      translate_core_exceptions(std::current_exception());
    } catch (const std::exception& e) {
      PyErr_SetString(PyExc_RuntimeError, e.what());
    } catch (...) {
      PyErr_SetString(PyExc_SystemError, "mthread: unknown C++ exception");
    }
  }
}

// Runs `body` and turns what it throws into the Python error; the result as a new reference.
template <class Body>
PyObject* call_translating(Body&& body) {
  try {
    return body().release().ptr();
  } catch (...) {
    set_python_error(std::current_exception());
    return nullptr;
  }
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
  return call_translating([&] {
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
  return call_translating([] { return Body(); });
}

template <py::object (*Body)()>
constexpr PyMethodDef no_arguments(const char* name, const char* doc) {
  return {name, &no_arguments_call<Body>, METH_NOARGS, doc};
}

PyObject* start_new_thread_call(PyObject*, PyObject* const* args, Py_ssize_t count,
                                PyObject* keywords) {
  static constexpr std::array<const char*, 3> options{"stacksize", "mailbox_depth", "samecore"};
  PyObject* bound[3] = {nullptr, nullptr, nullptr};
  // The keywords only: the positional arguments have two forms, told apart by the first.
  if (!bind_arguments("start_new_thread", options.data(), options.size(), 0, args + count, 0,
                      keywords, bound)) {
    return nullptr;
  }
  return call_translating(
      [&] { return py::int_(start_thread(args, count, bound[0], bound[1], bound[2])); });
}

// --- bodies: a wrong type or value is an error naming the argument (see convert.hpp) ---------

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

py::object stack_size_body(py::handle size, py::handle) {
  if (size.is_none()) return py::int_(stack_size());
  const long long bytes = to_integer(size, "stack_size", "size", 0, LLONG_MAX);
  return py::int_(stack_size(static_cast<std::size_t>(bytes)));
}

py::object allowsuspend_body(py::handle allow, py::handle) {
  allow_suspend(to_bool(allow));
  return py::none();
}

py::object sleep_body(py::handle seconds, py::handle) {
  sleep_for_python(to_duration<std::chrono::seconds>(seconds, "sleep", "seconds"));
  return py::none();
}
py::object sleep_ms_body(py::handle ms, py::handle) {
  sleep_for_python(to_duration<std::chrono::milliseconds>(ms, "sleep_ms", "ms"));
  return py::none();
}
py::object sleep_us_body(py::handle us, py::handle) {
  sleep_for_python(to_duration<std::chrono::microseconds>(us, "sleep_us", "us"));
  return py::none();
}

// Set when a Ctrl-C was taken by Python code waiting before the join at exit: the join then
// begins with it (a Ctrl-C raised again in Python would only be raised there again).
std::atomic<bool> interrupt_next_join{false};

py::object interrupt_next_join_body() {
  interrupt_next_join.store(true);
  return py::none();
}

py::object join_all_body(py::handle grace, py::handle) {
  const auto limit = to_duration<std::chrono::seconds>(grace, "_join_all", "grace");
  if (interrupt_next_join.exchange(false)) PyErr_SetInterruptEx(SIGINT);
  return py::int_(join_all(std::chrono::duration_cast<std::chrono::milliseconds>(
      limit.value_or(std::chrono::hours(24)))));
}

py::object set_repl_display_body(py::handle display, py::handle) {
  set_repl_display(py::reinterpret_borrow<py::object>(display));
  return py::none();
}

py::object repl_write_body(py::handle text, py::handle) {
  queue_repl_output(std::string(to_utf8(text, "_repl_write", "text")));
  return py::none();
}

py::object lock_body() {
  enter_atomic_section();
  return py::none();
}
py::object unlock_body() {
  leave_atomic_section();
  return py::none();
}

py::object get_self_name_body() {
  return py::str(get_self_name());
}
py::object get_repl_id_body() {
  return py::int_(get_repl_id());
}
py::object get_notification_body() {
  return py::int_(get_notification());
}
py::object get_self_id_body() {
  return py::int_(get_self_id());
}
// In a thread mthread started, its mthread id: the value start_new_thread returned, as CPython
// and MicroPython make them equal. Elsewhere (the main thread, threading's threads) CPython's
// own ident, so that it matches threading.main_thread().ident and threading.get_ident() there.
// threading keeps CPython's get_ident for itself: it took it from the real _thread at import.
py::object get_ident_body() {
  const thread_id self = get_self_id();
  if (self != 0 && self != get_repl_id()) return py::int_(self);
  return py::int_(PyThread_get_thread_ident());
}
py::object redisplay_prompt_body() {
  return py::bool_(redisplay_prompt());
}
py::object take_repl_output_body() {
  return py::str(take_repl_output());
}
py::object request_scheduled_run_body(py::handle runner, py::handle) {
  request_scheduled_run(py::reinterpret_borrow<py::object>(runner));
  return py::none();
}
py::object repl_output_pending_body() {
  return py::bool_(repl_output_pending());
}
py::object at_prompt_body() {
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
constexpr signature get_thread_name_sig{"getThreadName", {"th_id", nullptr}, 1};
constexpr signature status_sig{"status", {"th_id", nullptr}, 1};
constexpr signature isnotified_sig{"isnotified", {"th_id", nullptr}, 1};
constexpr signature stop_sig{"stop", {"th_id", nullptr}, 1};
constexpr signature repl_accept_sig{"replAcceptMsg", {"flag", nullptr}, 0};
constexpr signature main_accept_sig{"mainAcceptMsg", {"flag", nullptr}, 0};
constexpr signature list_sig{"list", {"print", nullptr}, 0};
constexpr signature sleep_sig{"sleep", {"seconds", nullptr}, 1};
constexpr signature sleep_ms_sig{"sleep_ms", {"ms", nullptr}, 1};
constexpr signature sleep_us_sig{"sleep_us", {"us", nullptr}, 1};
constexpr signature join_all_sig{"_join_all", {"grace", nullptr}, 1};
constexpr signature set_repl_display_sig{"_set_repl_display", {"display", nullptr}, 1};
constexpr signature sender_name_sig{"_sender_name", {"th_id", nullptr}, 1};
constexpr signature repl_write_sig{"_repl_write", {"text", nullptr}, 1};
constexpr signature scheduled_run_sig{"_request_scheduled_run", {"runner", nullptr}, 1};

PyMethodDef methods[] = {
    {"start_new_thread",
     reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&start_new_thread_call)),
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
    method<sendmsg_sig, sendmsg>(
        "sendmsg(th_id, msg) -> bool\n\nQueue `msg` (an int in the signed 64-bit range, or a "
        "non-empty str of at most 64 KiB\nof UTF-8) in a thread's mailbox. Never blocks: False "
        "when the mailbox is full or the\nthread unknown or ended. th_id 0 sends to every thread "
        "but the caller (True if all\naccepted)."),
    method<getmsg_sig, getmsg>(
        "getmsg([timeout_ms]) -> (type, sender_id, msg)\n\nThe oldest message for the calling "
        "thread: type 1 with an int, type 2 with a str;\n(0, 0, None) when there is none. Without "
        "timeout_ms it never blocks; with it, waits\nup to that many milliseconds."),
    method<notify_sig, notify_thread>(
        "notify(th_id, value) -> bool\n\nSet a thread's notification to `value` (1..2**32-1; the "
        "latest wins). th_id 0 sends\nto every thread but the caller. False for an unknown or "
        "ended thread."),
    method<wait_sig, wait_notification>(
        "wait([timeout_ms]) -> int or None\n\nReturn the pending notification at once (cleared), "
        "else block until one arrives,\nor return None after timeout_ms milliseconds."),
    method<stack_size_sig, stack_size_body>(
        "stack_size([size]) -> int\n\nThe stack size in bytes for threads started from now on. "
        "With `size`, set it first:\nclamped to [min, max] and rounded to pages; 0 restores the "
        "default (8 MiB)."),
    method<allowsuspend_sig, allowsuspend_body>(
        "allowsuspend(allow)\n\nLet (or stop letting) the calling thread be suspended. "
        "New threads start not suspendable."),
    method<suspend_sig, on_thread<suspend_sig, &mthread::suspend>>(
        "suspend(th_id) -> bool\n\nSuspend a thread that allowed it: it stops before its next "
        "line, or at once inside\nmthread's waits and sleeps. False if it is unknown, already "
        "suspended, did not allow it,\nor is the caller."),
    method<resume_sig, on_thread<resume_sig, &mthread::resume>>(
        "resume(th_id) -> bool\n\nResume a suspended thread where it stopped. False if it was "
        "not suspended."),
    method<kill_sig, on_thread<kill_sig, &mthread::kill>>(
        "kill(th_id) -> bool\n\nEnd a thread: it gets ThreadKilled at its next bytecode (again "
        "if it swallows it), so\n`finally` and `with` run; a thread blocked in mthread's waits "
        "or sleeps, or suspended,\nends within milliseconds. False for the main thread or an "
        "unknown id. kill() of the\ncaller's own id raises ThreadKilled in the caller."),
    method<get_thread_name_sig, on_thread<get_thread_name_sig, &get_thread_name>>(
        "getThreadName(th_id) -> str\n\nThe thread's name, or \"unknown\"."),
    method<status_sig, on_thread<status_sig, &status_code>>(
        "status(th_id) -> int\n\nRUNNING, SUSPENDED or WAITING; TERMINATED for a thread that is "
        "gone or never was."),
    method<isnotified_sig, on_thread<isnotified_sig, &is_notified>>(
        "isnotified(th_id) -> bool\n\nWhether the thread has a notification pending."),
    method<stop_sig, on_thread<stop_sig, &send_exit>>(
        "stop(th_id) -> bool\n\nSend the EXIT notification: ask the thread to end itself."),
    method<repl_accept_sig, repl_accept>(
        "replAcceptMsg([flag]) -> bool\n\nWhether the REPL shows incoming messages and "
        "notifications at its prompt. In the main\nthread `flag` sets it, and the previous "
        "setting is returned (as on the device); while\noff, they stay queued for "
        "getmsg()/getnotification(). Default on."),
    method<main_accept_sig, repl_accept>(
        "mainAcceptMsg([flag]) -> bool\n\nThe final firmware's name for replAcceptMsg(): the "
        "same function."),
    method<list_sig, list_threads>(
        "list([print=True])\n\nPrint one line a thread, in the device's format. list(False) "
        "returns a tuple of\n(id, type, name, state, stack_size, max_stack_used) instead."),
    method<sleep_sig, sleep_body>("sleep(seconds)\n\nSleep; suspend and kill take effect at once."),
    method<sleep_ms_sig, sleep_ms_body>(
        "sleep_ms(ms)\n\nSleep `ms` milliseconds; suspend and kill take effect at once."),
    method<sleep_us_sig, sleep_us_body>(
        "sleep_us(us)\n\nSleep `us` microseconds; suspend and kill take effect at once."),
    no_arguments<lock_body>(
        "lock",
        "lock()\n\nEnter an atomic section, as the device's firmware does: until unlock(), every "
        "other thread\nmthread started stops at its next line (or as it leaves one of mthread's "
        "waits). Threads\nmthread did not start (threading's, the main thread for another "
        "caller) go on. Nested\nlock() calls need as many unlock() calls; waits while another "
        "thread holds the section."),
    no_arguments<unlock_body>(
        "unlock",
        "unlock()\n\nLeave the atomic section lock() entered; the stopped threads go on. Does "
        "nothing in a\nthread that holds no section, as on the device."),
    no_arguments<get_self_name_body>("getSelfName",
                                     "getSelfName() -> str\n\nThe calling thread's name."),
    no_arguments<get_repl_id_body>(
        "getReplID",
        "getReplID() -> int\n\nThe main (REPL) thread's id: send it messages and notifications."),
    no_arguments<get_repl_id_body>("getMainID", "getMainID() -> int\n\nThe same as getReplID()."),
    no_arguments<get_notification_body>(
        "getnotification",
        "getnotification() -> int\n\nThe calling thread's pending notification (then cleared), "
        "or 0 when none."),
    no_arguments<get_self_id_body>(
        "getSelfID",
        "getSelfID() -> int\n\nThe calling thread's id (0 in a thread mthread does not know)."),
    no_arguments<get_ident_body>(
        "get_ident",
        "get_ident() -> int\n\nCPython's _thread.get_ident(), but in a thread that mthread "
        "started it is the thread's\nmthread id, the value start_new_thread() returned (as "
        "CPython and MicroPython make\nthem equal). threading keeps CPython's own idents."),
    method<join_all_sig, join_all_body>(
        "Wait for every started thread to end; on Ctrl-C kill them, wait `grace` s; return how "
        "many remain."),
    method<set_repl_display_sig, set_repl_display_body>(
        "Set the callable the REPL input hook runs about ten times a second (None: stop)."),
    method<sender_name_sig, on_thread<sender_name_sig, &binding::sender_name>>(
        "The name of a message's sender, even if it ended since; \"unknown\" otherwise."),
    method<repl_write_sig, repl_write_body>(
        "Queue text (a thread's traceback) for the REPL display to print above the prompt."),
    no_arguments<take_repl_output_body>("_take_repl_output",
                                        "Take the text queued by _repl_write(); \"\" if none."),
    method<scheduled_run_sig, request_scheduled_run_body>(
        "Have `runner` called in the main thread very soon (micropython.schedule)."),
    no_arguments<interrupt_next_join_body>(
        "_interrupt_next_join",
        "Make the next _join_all() start as if Ctrl-C were pressed: kill, then reap."),
    no_arguments<repl_output_pending_body>(
        "_repl_output_pending", "Whether text queued by _repl_write() waits for the display."),
    no_arguments<at_prompt_body>("_at_prompt",
                                 "Whether the interactive prompt is waiting for input now."),
    no_arguments<redisplay_prompt_body>(
        "_redisplay_prompt",
        "Redraw readline's prompt and the text typed so far; False without readline."),
    {nullptr, nullptr, 0, nullptr},
};

}  // namespace

PYBIND11_MODULE(_mthread, m) {
  m.doc() = "The C++ half of mthread; import mthread instead.";
  prepare_interpreter(m);
  py::register_exception_translator(&translate_core_exceptions);
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
