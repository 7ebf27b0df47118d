"""Where ``mthread.install()`` (and so ``python -m mthread``) makes the standard library's
blocking calls ones that suspend and kill reach in a thread mthread started.

Everything changed is listed here and in docs/runner.md ("What kill reaches"):

- ``threading.Lock`` (and ``threading._allocate_lock``, which ``Condition`` uses for its
  waiters) make mthread's lock; ``threading.RLock`` makes threading's pure-Python ``_RLock``
  over it. So ``Condition``, ``Event``, ``Semaphore``, ``BoundedSemaphore``, ``Barrier`` and
  ``queue.Queue`` (with its subclasses) created from now on wait in mthread's lock.
- ``queue.SimpleQueue`` is queue's pure-Python ``_PySimpleQueue`` (the C one blocks in a lock
  of its own).
- ``threading.Thread.join`` in a managed thread joins in slices of ``JOIN_SLICE`` seconds.
- ``select.select`` and ``select.poll`` in a managed thread wait in mthread's descriptor wait,
  then ask the real ``select`` (timeout 0) which descriptors are ready.
- ``socket.socket``'s blocking calls (``accept``, ``recv*``, ``send*``, ``connect``,
  ``connect_ex``) in a managed thread first wait, in mthread's descriptor wait, until the
  socket is ready (within the socket's timeout, if it has one), then make the call;
  ``send``/``sendall``/``recv``/``recv_into``/``recvfrom``/``recvfrom_into`` make it with
  ``MSG_DONTWAIT``, so that readiness another thread took first means waiting again, not
  blocking where no kill reaches.
- ``time.sleep`` is ``mthread.sleep`` in a managed thread (done by ``_device_time``).

In every other thread (the main thread, ``threading`` threads) each call does what it did
before: the wrappers hand the call to the original at once, and mthread's lock behaves as
CPython's. Objects made before ``install()`` keep CPython's locks.
"""
import errno
import os
import queue
import select
import socket
import threading
import time

from . import _mthread

#: How long a managed thread's ``Thread.join`` blocks in CPython's join at a time: a kill or
#: suspend lands between two slices.
JOIN_SLICE = 0.002

_main_id = _mthread.getReplID()
_self_id = _mthread.getSelfID
_poll = _mthread._poll
_monotonic = time.monotonic


def _managed():
    """True in a thread mthread started (not the main thread, not a ``threading`` thread)."""
    me = _self_id()
    return me != 0 and me != _main_id


def _left(deadline):
    """Seconds until ``deadline`` (None: no limit), never negative."""
    return None if deadline is None else max(deadline - _monotonic(), 0.0)


def _fileno(obj):
    """What select and poll accept: an int, or an object with a fileno() method."""
    if isinstance(obj, int):
        return obj
    return obj.fileno()


# --- threading and queue ---------------------------------------------------------------------

def _patch_locks():
    # threading.Lock is a function up to 3.12 and the lock type from 3.13: keep its kind.
    threading.Lock = (_mthread.LockType if isinstance(threading.Lock, type)
                      else _mthread.allocate_lock)
    threading._allocate_lock = _mthread.allocate_lock
    threading._CRLock = None  # RLock() makes threading._RLock, over _allocate_lock
    queue.SimpleQueue = queue._PySimpleQueue


_original_join = threading.Thread.join


def _join(self, timeout=None):
    """``Thread.join``; in a managed thread, in slices that a kill or suspend lands between."""
    if not _managed():
        return _original_join(self, timeout)
    deadline = None if timeout is None else _monotonic() + max(timeout, 0)
    while True:
        left = _left(deadline)
        _original_join(self, JOIN_SLICE if left is None else min(JOIN_SLICE, left))
        if not self.is_alive() or (deadline is not None and _monotonic() >= deadline):
            return


_join.__doc__ = _original_join.__doc__


# --- select ----------------------------------------------------------------------------------

_original_select = select.select
_original_poll = select.poll


def _select(rlist, wlist, xlist, timeout=None):
    if not _managed():
        return _original_select(rlist, wlist, xlist, timeout)
    if timeout is not None and (not isinstance(timeout, (int, float)) or timeout < 0):
        return _original_select(rlist, wlist, xlist, timeout)  # raises select's own error
    # Checks the arguments as select does, and answers at once when something is ready.
    ready = _original_select(rlist, wlist, xlist, 0)
    if ready[0] or ready[1] or ready[2] or timeout == 0:
        return ready
    fds = ([(_fileno(f), select.POLLIN) for f in rlist] +
           [(_fileno(f), select.POLLOUT) for f in wlist] +
           [(_fileno(f), select.POLLPRI) for f in xlist])
    deadline = None if timeout is None else _monotonic() + timeout
    while True:
        if not _poll(fds, _left(deadline)):
            return [], [], []
        ready = _original_select(rlist, wlist, xlist, 0)
        if ready[0] or ready[1] or ready[2]:
            return ready


_select.__doc__ = _original_select.__doc__


class _KillablePoll:
    """``select.poll()``, whose ``poll()`` suspend and kill reach in a managed thread."""

    __slots__ = ("_poll", "_events")

    def __init__(self):
        self._poll = _original_poll()
        self._events = {}

    def register(self, fd, eventmask=select.POLLIN | select.POLLPRI | select.POLLOUT):
        self._poll.register(fd, eventmask)
        self._events[_fileno(fd)] = eventmask

    def modify(self, fd, eventmask):
        self._poll.modify(fd, eventmask)
        self._events[_fileno(fd)] = eventmask

    def unregister(self, fd):
        self._poll.unregister(fd)
        del self._events[_fileno(fd)]

    def poll(self, timeout=None):
        if (not _managed() or
                (timeout is not None and (not isinstance(timeout, (int, float)) or timeout == 0))):
            return self._poll.poll(timeout)  # (a timeout of the wrong type raises poll's error)
        ready = self._poll.poll(0)
        if ready:
            return ready
        # poll's timeout is in milliseconds; None or negative: no limit.
        deadline = None if timeout is None or timeout < 0 else _monotonic() + timeout / 1000
        while True:
            if not _poll(list(self._events.items()), _left(deadline)):
                return []
            ready = self._poll.poll(0)
            if ready:
                return ready


def _make_poll():
    return _KillablePoll()


_make_poll.__doc__ = _original_poll.__doc__


# --- socket ----------------------------------------------------------------------------------

_socket_class = socket.socket
_DONTWAIT = getattr(socket, "MSG_DONTWAIT", 0)


def _wait_ready(sock, events, deadline):
    """Wait, in mthread's descriptor wait, until ``sock`` is ready; TimeoutError (the socket's
    timeout message) when ``deadline`` passes first."""
    if not _poll([(sock.fileno(), events)], _left(deadline)):
        raise socket.timeout("timed out")


def _deadline(sock):
    timeout = sock.gettimeout()
    return None if timeout is None else _monotonic() + timeout


def _waits(sock):
    """Whether a call on ``sock`` from this thread should wait in mthread first: a managed
    thread, and a socket that blocks (no timeout, or a timeout)."""
    return _managed() and sock.gettimeout() != 0.0


def _ready_then(name, events):
    """A method that waits for readiness, then makes the original call."""
    original = getattr(_socket_class, name)

    def method(self, *args, **kwargs):
        if _waits(self):
            _wait_ready(self, events, _deadline(self))
        return original(self, *args, **kwargs)

    method.__name__ = method.__qualname__ = name
    method.__doc__ = original.__doc__
    method._mthread_original = original
    return method


def _dontwait(name, events, flags_at):
    """A method whose call is made with MSG_DONTWAIT after a readiness wait, and waits again if
    another thread took the readiness first. ``flags_at``: the position of ``flags``."""
    original = getattr(_socket_class, name)

    def method(self, *args, **kwargs):
        if not _waits(self) or not _DONTWAIT:
            return original(self, *args, **kwargs)
        args = list(args)
        if len(args) > flags_at:
            args[flags_at] |= _DONTWAIT
        elif "flags" in kwargs:
            kwargs["flags"] |= _DONTWAIT
        else:
            args.extend([0] * (flags_at - len(args)))  # the defaults before flags are 0
            args.append(_DONTWAIT)
        deadline = _deadline(self)
        while True:
            _wait_ready(self, events, deadline)
            try:
                return original(self, *args, **kwargs)
            except BlockingIOError:
                continue

    method.__name__ = method.__qualname__ = name
    method.__doc__ = original.__doc__
    method._mthread_original = original
    return method


def _sendall_method():
    original = _socket_class.sendall
    send = _socket_class.send  # the C send, not the wrapper

    def sendall(self, data, flags=0):
        if not _waits(self) or not _DONTWAIT:
            return original(self, data, flags)
        deadline = _deadline(self)
        with memoryview(data) as view, view.cast("B") as octets:
            sent = 0
            while sent < len(octets):
                _wait_ready(self, select.POLLOUT, deadline)
                try:
                    sent += send(self, octets[sent:], flags | _DONTWAIT)
                except BlockingIOError:
                    continue

    sendall.__doc__ = original.__doc__
    sendall._mthread_original = original
    return sendall


def _connect_methods():
    original_connect = _socket_class.connect
    original_connect_ex = _socket_class.connect_ex
    in_progress = {errno.EINPROGRESS, errno.EALREADY, errno.EWOULDBLOCK, errno.EAGAIN}

    def connect_waiting(self, address):
        """Connect without blocking, then wait in mthread's descriptor wait: the error number,
        0 when connected."""
        timeout = self.gettimeout()
        deadline = _deadline(self)
        self.setblocking(False)
        try:
            error = original_connect_ex(self, address)
            if error in in_progress:
                _wait_ready(self, select.POLLOUT, deadline)
                error = self.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            return error
        finally:
            self.settimeout(timeout)

    def connect(self, address):
        if not _waits(self):
            return original_connect(self, address)
        error = connect_waiting(self, address)
        if error:
            raise OSError(error, os.strerror(error))

    def connect_ex(self, address):
        if not _waits(self):
            return original_connect_ex(self, address)
        try:
            return connect_waiting(self, address)
        except socket.timeout:
            return errno.EAGAIN  # what connect_ex of a socket with a timeout returns

    for method, original in ((connect, original_connect), (connect_ex, original_connect_ex)):
        method.__doc__ = original.__doc__
        method._mthread_original = original
    return connect, connect_ex


def _patch_socket():
    methods = {
        "accept": _ready_then("accept", select.POLLIN),
        "recvmsg": _ready_then("recvmsg", select.POLLIN),
        "recvmsg_into": _ready_then("recvmsg_into", select.POLLIN),
        "sendto": _ready_then("sendto", select.POLLOUT),
        "sendmsg": _ready_then("sendmsg", select.POLLOUT),
        "recv": _dontwait("recv", select.POLLIN, 1),
        "recvfrom": _dontwait("recvfrom", select.POLLIN, 1),
        "recv_into": _dontwait("recv_into", select.POLLIN, 2),
        "recvfrom_into": _dontwait("recvfrom_into", select.POLLIN, 2),
        "send": _dontwait("send", select.POLLOUT, 1),
        "sendall": _sendall_method(),
    }
    methods["connect"], methods["connect_ex"] = _connect_methods()
    for name, method in methods.items():
        if hasattr(_socket_class, name):
            setattr(_socket_class, name, method)


# --- all of it -------------------------------------------------------------------------------

_patched = False


def patch_standard_library():
    """Make the standard library's blocking calls ones that suspend and kill reach in managed
    threads (see the module's docstring). Idempotent."""
    global _patched
    if _patched:
        return
    _patched = True
    _patch_locks()
    threading.Thread.join = _join
    select.select = _select
    if hasattr(select, "poll"):
        select.poll = _make_poll
    _patch_socket()
