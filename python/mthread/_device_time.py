"""The device's time functions (MicroPython ``utime``) on CPython.

Ticks count from the system's boot (Linux ``CLOCK_MONOTONIC``), as the device's count from its
own, and wrap at ``TICKS_PERIOD`` = 2**30, the device's period: ``ticks_ms`` wraps every 12.4
days, ``ticks_us`` every 17.9 minutes, ``ticks_cpu`` (nanoseconds here) every 1.07 seconds.
Compare and offset ticks only with ``ticks_diff`` and ``ticks_add``, which handle the wrap.
"""
import time as _time

from . import _mthread

TICKS_PERIOD = 1 << 30
TICKS_MAX = TICKS_PERIOD - 1
_TICKS_HALF = TICKS_PERIOD // 2

_real_sleep = getattr(_time.sleep, "_mthread_original", _time.sleep)
_main_id = _mthread.getReplID()


def ticks_ms():
    """Milliseconds from an arbitrary point (boot), wrapping at ``TICKS_PERIOD``."""
    return (_time.monotonic_ns() // 1_000_000) & TICKS_MAX


def ticks_us():
    """Microseconds from an arbitrary point (boot), wrapping at ``TICKS_PERIOD``."""
    return (_time.monotonic_ns() // 1_000) & TICKS_MAX


def ticks_cpu():
    """The highest-resolution counter (nanoseconds here; CPU cycles on the device), wrapping at
    ``TICKS_PERIOD``."""
    return _time.perf_counter_ns() & TICKS_MAX


def _ticks(value, function, name):
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{function}(): {name} must be an int, not {type(value).__name__}")
    return value


def ticks_diff(ticks1, ticks2):
    """The signed distance ``ticks1 - ticks2`` of two values from the same ``ticks_*`` function,
    correct across the wrap, in [-2**29, 2**29)."""
    end = _ticks(ticks1, "ticks_diff", "ticks1")
    start = _ticks(ticks2, "ticks_diff", "ticks2")
    return ((end - start + _TICKS_HALF) & TICKS_MAX) - _TICKS_HALF


def ticks_add(ticks, delta):
    """``ticks`` moved by ``delta`` (either sign), wrapped as the ``ticks_*`` functions wrap.
    ``|delta|`` must be below 2**29 so that ``ticks_diff`` can measure it back."""
    start = _ticks(ticks, "ticks_add", "ticks")
    step = _ticks(delta, "ticks_add", "delta")
    if not -_TICKS_HALF < step < _TICKS_HALF:
        raise OverflowError(f"ticks_add(): delta must be within ±{_TICKS_HALF - 1}, got {step}")
    return (start + step) & TICKS_MAX


def sleep(seconds):
    """Sleep ``seconds`` (int or float). In a thread started by mthread this is
    ``mthread.sleep``, so suspend and kill take effect at once; elsewhere (the main thread,
    ``threading`` threads) it is CPython's ``time.sleep``, which Ctrl-C interrupts at once."""
    caller = _mthread.getSelfID()
    if caller and caller != _main_id:
        return _mthread.sleep(seconds)
    return _real_sleep(seconds)


sleep._mthread_original = _real_sleep
sleep_ms = _mthread.sleep_ms
sleep_us = _mthread.sleep_us

#: What ``install()`` adds to (or, for ``sleep``, replaces in) the ``time`` module.
TIME_NAMES = ("sleep", "sleep_ms", "sleep_us", "ticks_ms", "ticks_us", "ticks_cpu", "ticks_diff",
              "ticks_add")


def patch_time_module():
    """Give the ``time`` module the device's names (see ``TIME_NAMES``). Idempotent."""
    for name in TIME_NAMES:
        setattr(_time, name, globals()[name])
