"""The device's ``micropython`` module, as far as a PC can honour it: ``import micropython`` under
``python3 -m mthread`` or after ``mthread.install()`` (``import mthread.micropython`` works
anywhere).

What each function does here, where CPython cannot do what the device does:

- ``const``, ``native``, ``viper``, ``bytecode``: the value / the function itself (CPython has no
  code emitters; the code runs as ordinary Python).
- ``alloc_emergency_exception_buf``: accepted; CPython needs no buffer to raise in a handler.
- ``heap_lock``/``heap_unlock``/``heap_locked``: keep the device's lock depth (nestable, returned
  as on the device) but do not stop allocation: CPython allocates for nearly every operation.
- ``schedule(func, arg)``: runs ``func(arg)`` in the main thread "very soon", between two of its
  bytecodes (CPython's pending calls), never preempting another scheduled function; at most
  ``SCHEDULE_DEPTH`` wait, as on the device (``RuntimeError`` when full). While the main thread
  is blocked in a C call (``time.sleep``, a ``join``), they run once it returns; at the REPL
  prompt they run while it waits. An exception is printed and the next one runs.
- ``mem_info``, ``stack_use``, ``qstr_info``: figures of this process (see each).
- ``opt_level``: remembered and returned; CPython's own level is fixed at its start (``-O``).
- ``kbd_intr(chr)``: on a terminal, makes ``chr`` the interrupt character (``-1``: none, so
  Ctrl-C reaches standard input as a character, as on the device); elsewhere remembered only.
"""
import atexit as _atexit
import collections as _collections
import sys as _sys
import threading as _threading

from . import _mthread

__all__ = ["alloc_emergency_exception_buf", "bytecode", "const", "heap_lock", "heap_locked",
           "heap_unlock", "kbd_intr", "mem_info", "native", "opt_level", "qstr_info", "schedule",
           "stack_use", "viper"]

#: How many scheduled functions may wait at once (the ESP32 port's MICROPY_SCHEDULER_DEPTH).
SCHEDULE_DEPTH = 8


def const(expr):
    """The value itself: on the device a compile-time constant, here an ordinary one."""
    return expr


def native(func):
    """The device's native-code emitter: here the function runs as ordinary Python."""
    return func


def viper(func):
    """The device's viper emitter: here the function runs as ordinary Python."""
    return func


def bytecode(func):
    """The device's bytecode emitter (the default): the function itself."""
    return func


def alloc_emergency_exception_buf(size):
    """Accepted and checked; CPython needs no buffer to create an exception in a handler."""
    if not isinstance(size, int) or isinstance(size, bool):
        raise TypeError(f"alloc_emergency_exception_buf(): size must be an int, not "
                        f"{type(size).__name__}")
    if size < 0:
        raise ValueError(f"alloc_emergency_exception_buf(): size must be >= 0, got {size}")


_heap_lock_depth = 0
_heap_guard = _threading.Lock()


def heap_lock():
    """Lock the heap one level deeper; returns the new depth. On the device allocation then
    raises MemoryError; CPython cannot run without allocating, so here only the depth is kept."""
    global _heap_lock_depth
    with _heap_guard:
        _heap_lock_depth += 1
        return _heap_lock_depth


def heap_unlock():
    """Unlock the heap one level; returns the depth left (0: unlocked), as on the device."""
    global _heap_lock_depth
    with _heap_guard:
        if _heap_lock_depth > 0:
            _heap_lock_depth -= 1
        return _heap_lock_depth


def heap_locked():
    """The heap's lock depth (0: unlocked)."""
    return _heap_lock_depth


_scheduled = _collections.deque()
_schedule_guard = _threading.Lock()
_running_scheduled = False


def schedule(func, arg):
    """Run ``func(arg)`` in the main thread very soon (see the module's text). ``RuntimeError``
    when ``SCHEDULE_DEPTH`` functions already wait, as on the device."""
    if not callable(func):
        raise TypeError(f"schedule(): func must be callable, not {type(func).__name__}")
    with _schedule_guard:
        if len(_scheduled) >= SCHEDULE_DEPTH:
            raise RuntimeError("schedule queue full")
        _scheduled.append((func, arg))
    _mthread._request_scheduled_run(_run_scheduled)


def _run_scheduled():
    """Run what waits, in the main thread; a scheduled function never preempts another."""
    global _running_scheduled
    if _running_scheduled:
        return
    _running_scheduled = True
    try:
        while True:
            with _schedule_guard:
                if not _scheduled:
                    return
                func, arg = _scheduled.popleft()
            try:
                func(arg)
            except Exception:  # noqa: B902  (printed, as the device prints it)
                import traceback

                _sys.stderr.write("Uncaught exception in scheduled function:\n")
                traceback.print_exc()
    finally:
        _running_scheduled = False


def _stack_figures():
    """(stack size, max used) of the calling thread from mthread's list(); (0, 0) if unknown."""
    me = _mthread.getSelfID()
    for row in _mthread.list(False):
        if row[0] == me:
            return row[4], row[5]
    return 0, 0


def stack_use():
    """Bytes of stack the calling thread used at most (mthread's measure, within a page)."""
    return _stack_figures()[1]


def mem_info(verbose=None):
    """Print the device's memory summary with this process's figures: the calling thread's
    stack (max used out of its size) and the heap as ``gc.mem_alloc()``/``gc.mem_free()`` see
    it. With ``verbose``, CPython's own allocator statistics follow."""
    from . import _device_gc

    size, used = _stack_figures()
    allocated, free = _device_gc.mem_alloc(), _device_gc.mem_free()
    print(f"stack: {used} out of {size}")
    print(f"GC: total: {allocated + free}, used: {allocated}, free: {free}")
    if verbose:
        _sys._debugmallocstats()


def qstr_info(verbose=None):
    """The device lists its interned strings; CPython keeps no such pool to count."""
    print("qstr pool: not kept by CPython")


_opt_level = _sys.flags.optimize


def opt_level(level=None):
    """Without ``level``, the optimisation level (CPython's ``-O`` count at first); with it,
    remember ``level`` (0..3). CPython compiles with its start-up level whatever is set."""
    global _opt_level
    if level is None:
        return _opt_level
    if not isinstance(level, int) or isinstance(level, bool):
        raise TypeError(f"opt_level(): level must be an int, not {type(level).__name__}")
    if not 0 <= level <= 3:
        raise ValueError(f"opt_level(): level must be in 0..3, got {level}")
    _opt_level = level
    return None


_kbd_intr = 3
_saved_terminal = None


def kbd_intr(chr):  # noqa: A002  (the device's parameter name)
    """Make ``chr`` (a character code, 3 = Ctrl-C) the character that raises KeyboardInterrupt;
    ``-1`` disables it. On a terminal this sets its interrupt character (restored at exit);
    without one the setting is only remembered."""
    global _kbd_intr, _saved_terminal
    if not isinstance(chr, int) or isinstance(chr, bool):
        raise TypeError(f"kbd_intr(): chr must be an int, not {type(chr).__name__}")
    if not -1 <= chr <= 255:
        raise ValueError(f"kbd_intr(): chr must be -1 or a character code 0..255, got {chr}")
    _kbd_intr = chr
    try:
        import termios
    except ImportError:
        return
    try:
        fd = _sys.stdin.fileno()
        attributes = termios.tcgetattr(fd)
    except (AttributeError, ValueError, OSError, termios.error):
        return  # no terminal
    if _saved_terminal is None:
        _saved_terminal = (fd, [list(a) if isinstance(a, list) else a for a in attributes])
        _atexit.register(_restore_terminal)
    # -1: no interrupt character (_POSIX_VDISABLE is 0 on Linux).
    attributes[6][termios.VINTR] = bytes([0 if chr < 0 else chr])
    termios.tcsetattr(fd, termios.TCSANOW, attributes)


def _restore_terminal():
    if _saved_terminal is not None:
        import termios

        fd, attributes = _saved_terminal
        try:
            termios.tcsetattr(fd, termios.TCSANOW, attributes)
        except (OSError, termios.error):
            pass
