"""mthread — the ESP32 MicroPython (LoBo) ``_thread`` module on CPython.

Named threads that can be suspended, resumed and killed, that exchange notifications and
messages with each other and with the REPL, and that report their stack size and the stack
they really used. The functions are named and behave as on the device; CPython's own
``_thread`` names are passed through, so ``mthread`` can stand in for ``_thread``.

``import mthread`` changes nothing global (but for showing thread messages at an interactive
prompt); ``mthread.install()`` does what ``python -m mthread`` does for device scripts.
"""
import _thread as _cpython_thread
import atexit as _atexit
import os as _os
import sys as _sys

from . import _mthread
from ._mthread import (
    EXIT,
    MAIN,
    NATIVE,
    PAUSE,
    PYTHON,
    RESUME,
    RUNNING,
    SERVICE,
    STATUS,
    STOP,
    SUSPEND,
    SUSPENDED,
    TERMINATED,
    WAITING,
    DEFAULT_STACK_SIZE,
    LockType,
    MAX_MESSAGE_LENGTH,
    MAX_STACK_SIZE,
    MAX_THREADS,
    MIN_STACK_SIZE,
    ThreadKilled,
    allocate_lock,
    allowsuspend,
    getMainID,
    getReplID,
    getSelfID,
    getSelfName,
    getThreadName,
    getmsg,
    getnotification,
    isnotified,
    kill,
    get_ident,
    list,
    lock,
    mainAcceptMsg,
    notify,
    replAcceptMsg,
    resume,
    sendmsg,
    sleep,
    sleep_ms,
    sleep_us,
    stack_size,
    start_new_thread,
    status,
    stop,
    suspend,
    unlock,
    wait,
)
from _thread import (
    TIMEOUT_MAX,
    error,
    exit,
    get_native_id,
    interrupt_main,
)
from ._install import install
from ._version import __version__

# Message types: the first item of getmsg().
MSG_NONE, MSG_INT, MSG_STR = 0, 1, 2


def _count():
    """CPython's ``_thread._count()``: the number of Python threads alive that were started
    through ``_thread`` (``threading``'s included), plus those mthread started."""
    return _cpython_thread._count() + sum(1 for row in _mthread.list(False) if row[1] == PYTHON)


def __getattr__(name):
    """The rest of CPython's ``_thread`` (``_local``, ``_count``, …), for code importing it."""
    try:
        return getattr(_cpython_thread, name)
    except AttributeError:
        raise AttributeError(f"module 'mthread' has no attribute {name!r}") from None


def _unreachable_report(count):
    """Which threads a kill could not reach at exit, and what each is blocked in (a C call that
    mthread cannot interrupt: the kill lands when it returns)."""
    lines = [f"mthread: {count} thread(s) blocked outside Python, where a kill cannot reach; "
             "exiting without waiting for them:"]
    main = _mthread.getReplID()
    for row in _mthread.list(False):
        if row[0] != main:
            where = _mthread._blocked_in(row[0]) or "(ended meanwhile)"
            lines.append(f'  thread "{row[2]}" (id {row[0]}): {where}')
    return "\n".join(lines) + "\n"


def _wait_for_threads():
    """At exit, wait for started threads like threading's non-daemon ones; Ctrl-C kills them."""
    remaining = _mthread._join_all(2.0)
    if remaining:
        _sys.stderr.write(_unreachable_report(remaining))
        for stream in (_sys.stdout, _sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        _os._exit(130)


_atexit.register(_wait_for_threads)

from . import _repl  # noqa: E402  (needs the names above)

_mthread._set_repl_display(_repl.show_pending)
