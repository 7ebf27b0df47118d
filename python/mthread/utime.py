"""The device's ``utime`` module: ``import utime`` under ``python3 -m mthread`` or after
``mthread.install()`` (``import mthread.utime`` works anywhere).

Sleeps and ticks are those of ``mthread._device_time`` (ticks wrap at 2**30, as on the device).
Times are MicroPython's: ``time()`` is whole seconds, ``localtime()``/``gmtime()`` are 8-tuples
``(year, month, mday, hour, minute, second, weekday, yearday)``. The epoch is 1970-01-01, as on
MicroPython's Unix port (the ESP32 counts from 2000-01-01).
"""
import time as _time

from ._device_time import (
    TICKS_PERIOD,
    sleep,
    sleep_ms,
    sleep_us,
    ticks_add,
    ticks_cpu,
    ticks_diff,
    ticks_ms,
    ticks_us,
)

__all__ = ["TICKS_PERIOD", "gmtime", "localtime", "mktime", "sleep", "sleep_ms", "sleep_us",
           "ticks_add", "ticks_cpu", "ticks_diff", "ticks_ms", "ticks_us", "time", "time_ns"]


def time():
    """Whole seconds since the epoch."""
    return int(_time.time())


def time_ns():
    """Nanoseconds since the epoch."""
    return _time.time_ns()


def localtime(secs=None):
    """``(year, month, mday, hour, minute, second, weekday, yearday)`` in local time, of
    ``secs`` since the epoch or of now; weekday 0 is Monday, yearday runs from 1."""
    return tuple(_time.localtime(secs))[:8]


def gmtime(secs=None):
    """As ``localtime`` but in UTC."""
    return tuple(_time.gmtime(secs))[:8]


def mktime(t):
    """The inverse of ``localtime``: whole seconds since the epoch of an 8-tuple (or 9-tuple)
    in local time."""
    fields = tuple(t)
    if len(fields) not in (8, 9):
        raise TypeError(f"mktime(): t must be an 8-tuple, got {len(fields)} items")
    return int(_time.mktime(fields[:8] + (-1,)))
