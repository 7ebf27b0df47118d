"""mthread.install(): make a program see the device's modules, as ``python -m mthread`` does."""
import sys


def install():
    """Make ``import _thread`` give mthread, ``import utime`` give ``mthread.utime``, and add the
    device's time functions to ``time`` (``sleep_ms``, ``sleep_us``, ``ticks_ms``, ``ticks_us``,
    ``ticks_cpu``, ``ticks_diff``, ``ticks_add``); ``time.sleep`` in a thread started by mthread
    becomes ``mthread.sleep``, which suspend and kill interrupt. Call it before importing device
    code; calling it again does nothing more."""
    # threading must hold CPython's real _thread before _thread is replaced.
    import threading  # noqa: F401

    import mthread
    from . import _device_time, utime

    sys.modules["_thread"] = mthread
    sys.modules["utime"] = utime
    _device_time.patch_time_module()
