// mthread._mthread: the device's `_thread` functions, one table, each a thin call into the core
// (like MicroPython's py/modthread.c). Argument checks and conversions are here; threading
// logic is in the core; interpreter glue is in interpreter.cpp.
#include <pybind11/pybind11.h>

#include <array>
#include <atomic>
#include <mthread/mthread.hpp>
#include <sstream>
#include <thread>

#include "convert.hpp"
#include "interpreter.hpp"
#include "repl_hook.hpp"

namespace py = pybind11;
using namespace mthread;
using namespace mthread::python;

namespace {

std::atomic<unsigned long long> unnamed_threads{0};

bool is_callable(py::handle value) {
  return PyCallable_Check(value.ptr()) != 0;
}

// Both forms: the device's start_new_thread(name, func, args[, kwargs]) and CPython's
// start_new_thread(func, args[, kwargs]).
thread_id start_thread(py::args positional, py::object stacksize, py::object mailbox_depth) {
  const char* function = "start_new_thread";
  std::size_t first = 0;
  std::string name;
  if (positional.size() > 0 && PyUnicode_Check(positional[0].ptr())) {
    name = std::string(to_utf8(positional[0], function, "name"));
    first = 1;
  } else {
    name = "Thread-" + std::to_string(++unnamed_threads);
  }
  const std::size_t count = positional.size() - first;
  if (count < 2 || count > 3) {
    raise(PyExc_TypeError,
          "start_new_thread() takes (name, func, args[, kwargs]) or "
          "(func, args[, kwargs]); got " +
              std::to_string(positional.size()) + " arguments");
  }
  py::object func = positional[first];
  if (!is_callable(func)) {
    raise(PyExc_TypeError, "start_new_thread(): func must be callable, not " + type_name(func));
  }
  py::object args = positional[first + 1];
  if (!PyTuple_Check(args.ptr())) {
    raise(PyExc_TypeError, "start_new_thread(): args must be a tuple, not " + type_name(args));
  }
  py::dict kwargs;
  if (count == 3) {
    py::object given = positional[first + 2];
    if (!PyDict_Check(given.ptr())) {
      raise(PyExc_TypeError, "start_new_thread(): kwargs must be a dict, not " + type_name(given));
    }
    kwargs = given;
  }
  const long long stack_bytes = to_integer(stacksize, function, "stacksize", 0, LLONG_MAX);
  // 0 is the default depth, as stacksize=0 is the default stack.
  const long long depth =
      to_integer(mailbox_depth, function, "mailbox_depth", 0, max_mailbox_depth);
  return start_python_thread(name, func, args, kwargs, static_cast<std::size_t>(stack_bytes),
                             depth == 0 ? default_mailbox_depth : static_cast<std::size_t>(depth));
}

std::size_t set_stack_size(py::object size) {
  if (size.is_none()) return stack_size();
  const long long bytes = to_integer(size, "stack_size", "size", 0, LLONG_MAX);
  return stack_size(static_cast<std::size_t>(bytes));
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
  const auto value = wait_without_gil<std::uint32_t>(timeout, [](std::chrono::nanoseconds slice) {
    return mthread::wait(std::chrono::ceil<std::chrono::milliseconds>(slice));
  });
  return value ? py::object(py::int_(*value)) : py::object(py::none());
}

py::object notify_thread(py::handle id, py::handle value) {
  const auto target = to_thread_id(id, "notify");
  return py::bool_(notify(
      target, static_cast<std::uint32_t>(to_integer(value, "notify", "value", 1, 0xFFFFFFFFLL))));
}

py::object sendmsg(py::handle id, py::handle msg) {
  const auto target = to_thread_id(id, "sendmsg");
  if (PyLong_Check(msg.ptr())) {
    return py::bool_(send_msg(target, static_cast<std::int64_t>(to_integer(msg, "sendmsg", "msg",
                                                                           LLONG_MIN, LLONG_MAX))));
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
  return py::bool_(send_msg(target, text));
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

py::object repl_accept(py::object flag) {
  // As on the device, the flag is honoured in the main thread only.
  if (!flag.is_none() && get_self_id() == get_repl_id()) {
    return py::bool_(repl_accept_msg(to_bool(flag)));
  }
  return py::bool_(repl_accept_msg());
}

py::object list_threads(py::object print) {
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
    // Whatever was posted to this thread asynchronously is delivered now, not twice.
    discard_pending_kill();
    PyErr_SetNone(thread_killed_type());
  } catch (const mthread::error& e) {
    PyErr_SetString(error_type(), e.what());
  }
}

// --- the calls a loop makes once a message or notification ---------------------------------
// pybind11's dispatcher costs about 100 ns a call (an argument tuple, vectors, thread-local
// bookkeeping): as much as the messaging itself. These few are plain METH_FASTCALL functions.

struct signature {
  const char* name;
  std::array<const char*, 2> parameters;  // nullptr past the last
  Py_ssize_t required;
};

// Binds positional and keyword arguments to `out` by parameter name, as CPython's own
// functions do; an argument not given stays nullptr. False with a TypeError set.
bool bind_arguments(const signature& sig, PyObject* const* args, Py_ssize_t count,
                    PyObject* keywords, PyObject** out) {
  Py_ssize_t most = 0;
  while (most < static_cast<Py_ssize_t>(sig.parameters.size()) && sig.parameters[most]) ++most;
  if (count > most) {
    PyErr_Format(PyExc_TypeError, "%s() takes at most %zd argument%s (%zd given)", sig.name, most,
                 most == 1 ? "" : "s", count);
    return false;
  }
  for (Py_ssize_t i = 0; i < count; ++i) out[i] = args[i];
  const Py_ssize_t named = keywords != nullptr ? PyTuple_GET_SIZE(keywords) : 0;
  for (Py_ssize_t k = 0; k < named; ++k) {
    PyObject* keyword = PyTuple_GET_ITEM(keywords, k);
    Py_ssize_t slot = 0;
    while (slot < most && PyUnicode_CompareWithASCIIString(keyword, sig.parameters[slot]) != 0) {
      ++slot;
    }
    if (slot == most) {
      PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%U'", sig.name,
                   keyword);
      return false;
    }
    if (out[slot] != nullptr) {
      PyErr_Format(PyExc_TypeError, "%s() got multiple values for argument '%s'", sig.name,
                   sig.parameters[slot]);
      return false;
    }
    out[slot] = args[count + k];
  }
  for (Py_ssize_t i = 0; i < sig.required; ++i) {
    if (out[i] == nullptr) {
      PyErr_Format(PyExc_TypeError, "%s() missing required argument '%s'", sig.name,
                   sig.parameters[i]);
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

template <const signature& Sig, py::object (*Body)(py::handle, py::handle)>
PyObject* fast_call(PyObject*, PyObject* const* args, Py_ssize_t count, PyObject* keywords) {
  PyObject* bound[2] = {nullptr, nullptr};
  if (!bind_arguments(Sig, args, count, keywords, bound)) return nullptr;
  try {
    // An optional argument not given is None, as in the pybind11 functions.
    return Body(bound[0] != nullptr ? bound[0] : Py_None, bound[1] != nullptr ? bound[1] : Py_None)
        .release()
        .ptr();
  } catch (...) {
    set_python_error(std::current_exception());
    return nullptr;
  }
}

constexpr signature sendmsg_sig{"sendmsg", {"th_id", "msg"}, 2};
constexpr signature getmsg_sig{"getmsg", {"timeout_ms", nullptr}, 0};
constexpr signature notify_sig{"notify", {"th_id", "value"}, 2};
constexpr signature wait_sig{"wait", {"timeout_ms", nullptr}, 0};

template <const signature& Sig, py::object (*Body)(py::handle, py::handle)>
constexpr PyMethodDef fast_method(const char* doc) {
  return {Sig.name,
          reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(&fast_call<Sig, Body>)),
          METH_FASTCALL | METH_KEYWORDS, doc};
}

PyMethodDef fast_methods[] = {
    fast_method<sendmsg_sig, sendmsg>(
        "sendmsg(th_id, msg) -> bool\n\nQueue `msg` (an int in the signed 64-bit range, or a "
        "non-empty str of at most 64 KiB\nof UTF-8) in a thread's mailbox. Never blocks: False "
        "when the mailbox is full or the\nthread unknown or ended. th_id 0 sends to every thread "
        "but the caller (True if all\naccepted)."),
    fast_method<getmsg_sig, getmsg>(
        "getmsg([timeout_ms]) -> (type, sender_id, msg)\n\nThe oldest message for the calling "
        "thread: type 1 with an int, type 2 with a str;\n(0, 0, None) when there is none. Without "
        "timeout_ms it never blocks; with it, waits\nup to that many milliseconds."),
    fast_method<notify_sig, notify_thread>(
        "notify(th_id, value) -> bool\n\nSet a thread's notification to `value` (1..2**32-1; the "
        "latest wins). th_id 0 sends\nto every thread but the caller. False for an unknown or "
        "ended thread."),
    fast_method<wait_sig, wait_notification>(
        "wait([timeout_ms]) -> int or None\n\nReturn the pending notification at once (cleared), "
        "else block until one arrives,\nor return None after timeout_ms milliseconds."),
    {nullptr, nullptr, 0, nullptr},
};

}  // namespace

PYBIND11_MODULE(_mthread, m) {
  m.doc() = "The C++ half of mthread; import mthread instead.";
  create_exception_types(m);
  py::register_exception_translator(&translate_core_exceptions);
  install_repl_hook();
  if (PyModule_AddFunctions(m.ptr(), fast_methods) != 0) throw py::error_already_set();

  m.def("start_new_thread", &start_thread, py::arg("stacksize") = 0, py::arg("mailbox_depth") = 0,
        "start_new_thread(name, func, args[, kwargs], *, stacksize=0, mailbox_depth=0) -> id\n"
        "start_new_thread(func, args[, kwargs], *, stacksize=0, mailbox_depth=0) -> id\n\n"
        "Start func(*args, **kwargs) in a new thread named `name` (CPython's form: \"Thread-N\")\n"
        "and return its id. `args` must be a tuple, `kwargs` a dict. stacksize=0 uses\n"
        "stack_size(); other sizes are clamped to the allowed range, as on the device.\n"
        "mailbox_depth: how many messages its mailbox holds, 1..65536; 0 is the default, 8.");
  m.def("stack_size", &set_stack_size, py::arg("size") = py::none(),
        "stack_size([size]) -> int\n\nThe stack size in bytes for threads started from now on. "
        "With `size`, set it first:\nclamped to [min, max] and rounded to pages; 0 restores the "
        "default (8 MiB).");
  m.def(
      "allowsuspend", [](py::object allow) { allow_suspend(to_bool(allow)); }, py::arg("allow"),
      "allowsuspend(allow)\n\nLet (or stop letting) the calling thread be suspended. "
      "New threads start not suspendable.");
  m.def(
      "suspend", [](py::object id) { return suspend(to_thread_id(id, "suspend")); },
      py::arg("th_id"),
      "suspend(th_id) -> bool\n\nSuspend a thread that allowed it: it stops before its next "
      "line, or at once inside\nmthread's waits and sleeps. False if it is unknown, already "
      "suspended, did not allow it,\nor is the caller.");
  m.def(
      "resume", [](py::object id) { return resume(to_thread_id(id, "resume")); }, py::arg("th_id"),
      "resume(th_id) -> bool\n\nResume a suspended thread where it stopped. False if it was not "
      "suspended.");
  m.def(
      "kill", [](py::object id) { return kill(to_thread_id(id, "kill")); }, py::arg("th_id"),
      "kill(th_id) -> bool\n\nEnd a thread: it gets ThreadKilled at its next bytecode (again if "
      "it swallows it), so\n`finally` and `with` run; a thread blocked in mthread's waits or "
      "sleeps, or suspended,\nends within milliseconds. False for the main thread or an unknown "
      "id. kill() of the\ncaller's own id raises ThreadKilled in the caller.");
  m.def(
      "getThreadName",
      [](py::object id) { return get_thread_name(to_thread_id(id, "getThreadName")); },
      py::arg("th_id"), "getThreadName(th_id) -> str\n\nThe thread's name, or \"unknown\".");
  m.def("getSelfName", &get_self_name, "getSelfName() -> str\n\nThe calling thread's name.");
  m.def("getReplID", &get_repl_id,
        "getReplID() -> int\n\nThe main (REPL) thread's id: send it messages and notifications.");
  m.def("getMainID", &get_repl_id, "getMainID() -> int\n\nThe same as getReplID().");
  m.def("getnotification", &get_notification,
        "getnotification() -> int\n\nThe calling thread's pending notification (then cleared), or "
        "0 when none.");
  m.def("replAcceptMsg", &repl_accept, py::arg("flag") = py::none(),
        "replAcceptMsg([flag]) -> bool\n\nWhether the REPL shows incoming messages and "
        "notifications at its prompt. In the main\nthread `flag` sets it; while off, they stay "
        "queued for getmsg()/getnotification().");
  m.def("list", &list_threads, py::arg("print") = true,
        "list([print=True])\n\nPrint one line a thread, in the device's format. list(False) "
        "returns a tuple of\n(id, type, name, state, stack_size, max_stack_used) instead.");
  m.def(
      "status", [](py::object id) { return static_cast<int>(status(to_thread_id(id, "status"))); },
      py::arg("th_id"),
      "status(th_id) -> int\n\nRUNNING, SUSPENDED or WAITING; TERMINATED for a thread that is "
      "gone or never was.");
  m.def(
      "isnotified", [](py::object id) { return is_notified(to_thread_id(id, "isnotified")); },
      py::arg("th_id"),
      "isnotified(th_id) -> bool\n\nWhether the thread has a notification pending.");
  m.def(
      "stop", [](py::object id) { return notify(to_thread_id(id, "stop"), notify_exit); },
      py::arg("th_id"),
      "stop(th_id) -> bool\n\nSend the EXIT notification: ask the thread to end itself.");
  m.def(
      "sleep",
      [](py::object s) {
        sleep_for_python(to_duration<std::chrono::seconds>(s, "sleep", "seconds"));
      },
      py::arg("seconds"), "sleep(seconds)\n\nSleep; suspend and kill take effect at once.");
  m.def(
      "sleep_ms",
      [](py::object ms) {
        sleep_for_python(to_duration<std::chrono::milliseconds>(ms, "sleep_ms", "ms"));
      },
      py::arg("ms"),
      "sleep_ms(ms)\n\nSleep `ms` milliseconds; suspend and kill take effect at once.");
  m.def(
      "sleep_us",
      [](py::object us) {
        sleep_for_python(to_duration<std::chrono::microseconds>(us, "sleep_us", "us"));
      },
      py::arg("us"),
      "sleep_us(us)\n\nSleep `us` microseconds; suspend and kill take effect at once.");
  m.def("getSelfID", &get_self_id,
        "getSelfID() -> int\n\nThe calling thread's id (0 in a thread mthread does not know).");
  m.def(
      "_join_all",
      [](double grace_s) {
        return join_all(std::chrono::milliseconds(static_cast<long long>(grace_s * 1000)));
      },
      py::arg("grace"),
      "Wait for every started thread to end; on Ctrl-C kill them, wait `grace` s; return how many "
      "remain.");
  m.def("_set_repl_display", &set_repl_display, py::arg("display"),
        "Set the callable the REPL input hook runs about ten times a second (None: stop).");
  m.def(
      "_sender_name",
      [](py::object id) { return binding::sender_name(to_thread_id(id, "_sender_name")); },
      py::arg("th_id"),
      "The name of a message's sender, even if it ended since; \"unknown\" otherwise.");
  m.def("_redisplay_prompt", &redisplay_prompt,
        "Redraw readline's prompt and the text typed so far; False without readline.");

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
