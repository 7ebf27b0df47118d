"""mthread.install(): make a program see the device's modules, as ``python -m mthread`` does."""


def install():
    """Make ``import _thread`` give mthread and add the device's time functions (``time.sleep_ms``,
    ``ticks_ms``, … and the module ``utime``). Call it before importing device code."""
    import sys
    import threading  # noqa: F401  (keeps CPython's real _thread for threading itself)

    import mthread

    sys.modules["_thread"] = mthread
