"""mthread.install(): make a program see the device's modules, as ``python -m mthread`` does."""
import sys


def install():
    """Make ``import _thread`` give mthread, ``import utime`` give ``mthread.utime``, ``import
    micropython`` give ``mthread.micropython`` (a module of the program's own by either name,
    already imported, stays), add the device's time functions to ``time`` (``sleep_ms``,
    ``sleep_us``, ``ticks_ms``, ``ticks_us``, ``ticks_cpu``, ``ticks_diff``, ``ticks_add``) and
    its memory functions to ``gc`` (``mem_free``, ``mem_alloc``, ``threshold``), and show what
    arrives for the main thread while the process waits for its threads at exit; ``time.sleep``
    in a thread started by mthread becomes ``mthread.sleep``, which suspend and kill interrupt;
    and the standard library's blocking calls (locks, conditions, events, semaphores,
    barriers, queues, ``Thread.join``, ``select``, blocking ``socket`` calls) become ones that
    suspend and kill reach in those threads (see ``mthread._patch``). Call it before importing
    device code; calling it again does nothing more."""
    # threading must hold CPython's real _thread (and its get_ident) before _thread is replaced.
    import threading  # noqa: F401

    import mthread
    from . import _device_gc, _device_time, _patch, _repl, micropython, utime

    sys.modules["_thread"] = mthread
    sys.modules.setdefault("utime", utime)
    sys.modules.setdefault("micropython", micropython)
    _device_time.patch_time_module()
    _device_gc.patch_gc_module()
    _repl.show_at_exit = True
    _patch.patch_standard_library()
