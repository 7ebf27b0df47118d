#include "waits.hpp"

#include <mthread/binding.hpp>
#include <mthread/mthread.hpp>
#include <vector>

#include "convert.hpp"
#include "interpreter.hpp"

namespace mthread::python {
namespace {

// _poll(fds, timeout) -> [(fd, revents), ...]: `fds` a sequence of (fd, events) pairs, as for
// select.poll; `timeout` in seconds, None for no limit. The ready ones, [] on timeout.
py::list poll_descriptors(py::sequence fds, py::object timeout) {
  std::vector<pollfd> entries;
  entries.reserve(fds.size());
  for (py::handle item : fds) {
    const auto pair = py::reinterpret_borrow<py::tuple>(item);
    if (!PyTuple_Check(item.ptr()) || pair.size() != 2) {
      raise(PyExc_TypeError, "_poll(): fds must hold (fd, events) pairs");
    }
    const auto fd = static_cast<int>(to_integer(pair[0], "_poll", "fd", -1, INT_MAX));
    const auto events = static_cast<short>(to_integer(pair[1], "_poll", "events", 0, 0x7FFF));
    entries.push_back(pollfd{fd, events, 0});
  }
  const deadline until = timeout.is_none()
                             ? deadline::never()
                             : to_deadline<std::chrono::seconds>(timeout, "_poll", "timeout");
  const auto ready =
      wait_without_gil<int>(until, [&](const deadline& slice_end) -> std::optional<int> {
        const int count = binding::poll(entries.data(), entries.size(), slice_end);
        if (count > 0) return count;
        return std::nullopt;
      });
  py::list result;
  if (ready) {
    for (const pollfd& entry : entries) {
      if (entry.revents != 0) result.append(py::make_tuple(entry.fd, entry.revents));
    }
  }
  return result;
}

}  // namespace

void add_descriptor_waits(py::module_& module) {
  module.def("_poll", &poll_descriptors, py::arg("fds"), py::arg("timeout") = py::none(),
             "_poll(fds, timeout=None) -> [(fd, revents), ...]\n\nWait until one of `fds` "
             "((fd, events) pairs, as for select.poll) is ready, at most\n`timeout` seconds; "
             "suspend and kill reach the wait. The ready ones; [] on timeout.");
  module.def(
      "_blocked_in",
      [](py::object id) { return binding::blocked_in(to_thread_id(id, "_blocked_in")); },
      py::arg("th_id"),
      "What a thread is blocked in, from /proc (the system call and the kernel's wait channel);\n"
      "\"\" for a thread that is gone.");
}

}  // namespace mthread::python
