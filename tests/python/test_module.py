"""The module itself (SPEC §3): the constants and ThreadKilled, CPython's `_thread` names
passed through, a docstring for every function, the stubs, and an import that changes nothing
global."""
import _thread
import os
import re
import threading

import pytest

import mthread
from conftest import Flag, gone, run_python, start, wait_until


def test_constants_have_the_spec_values():
    assert (mthread.MAIN, mthread.PYTHON, mthread.SERVICE, mthread.NATIVE) == (1, 2, 3, 4)
    assert (mthread.RUNNING, mthread.SUSPENDED, mthread.WAITING, mthread.TERMINATED) == \
        (0, 1, 2, -1)
    assert mthread.PAUSE == mthread.SUSPEND == 0x01000000
    assert mthread.RESUME == 0x02000000
    assert mthread.EXIT == mthread.STOP == 0x04000000
    assert mthread.STATUS == 0x08000000


def test_stack_limits_are_sane():
    assert mthread.MIN_STACK_SIZE <= mthread.DEFAULT_STACK_SIZE <= mthread.MAX_STACK_SIZE
    assert mthread.MIN_STACK_SIZE >= 48 * 1024  # a device's sizes are clamped up
    assert mthread.MAX_MESSAGE_LENGTH == 64 * 1024
    assert mthread.MAX_THREADS >= 128


def test_thread_killed_is_a_system_exit():
    assert issubclass(mthread.ThreadKilled, SystemExit)
    assert not issubclass(mthread.ThreadKilled, Exception)
    assert mthread.ThreadKilled.__doc__


@pytest.mark.parametrize("name", ["get_native_id", "exit", "interrupt_main", "error",
                                  "TIMEOUT_MAX"])
def test_cpython_names_pass_through(name):
    assert getattr(mthread, name) is getattr(_thread, name)


def test_the_lock_is_mthreads_own():
    # CPython's lock behaviour, but its waits are mthread's (tests/python/test_lock.py).
    assert isinstance(mthread.allocate_lock(), mthread.LockType)
    assert mthread.LockType is not _thread.LockType


def test_rest_of_cpython_thread_reachable():
    assert mthread._local is _thread._local
    with pytest.raises(AttributeError, match="no_such_name"):
        mthread.no_such_name


def test_passthrough_lock_works():
    lock = mthread.allocate_lock()
    assert isinstance(lock, mthread.LockType)
    with lock:
        assert lock.locked()
    assert mthread.get_ident() == threading.get_ident()
    assert mthread.get_native_id() == os.getpid()
    assert issubclass(mthread.error, RuntimeError)


def test_exit_ends_a_thread_silently(capfd):
    reached = Flag()

    def body():
        mthread.exit()
        reached.set()

    tid = start(body)
    assert wait_until(lambda: gone(tid))
    assert not reached
    assert "Traceback" not in capfd.readouterr().err


PUBLIC_FUNCTIONS = ["start_new_thread", "stack_size", "allowsuspend", "suspend", "resume",
                    "kill", "getThreadName", "getSelfName", "getReplID", "getMainID",
                    "getnotification", "getmsg", "notify", "sendmsg", "replAcceptMsg", "list",
                    "status", "isnotified", "stop", "wait", "sleep", "sleep_ms", "sleep_us"]


@pytest.mark.parametrize("name", PUBLIC_FUNCTIONS)
def test_every_function_has_a_docstring(name):
    doc = getattr(mthread, name).__doc__
    assert doc and name in doc and len(doc) > 40


def test_package_ships_stubs():
    package = os.path.dirname(mthread.__file__)
    stub = os.path.join(package, "__init__.pyi")
    assert os.path.exists(stub), "no .pyi stubs in the package"
    with open(stub, encoding="utf-8") as f:
        text = f.read()
    for name in PUBLIC_FUNCTIONS:
        assert re.search(rf"def {name}\b", text), name


def test_import_changes_nothing_global():
    result = run_python("""
        import sys, time
        import _thread as real
        hooks = sys.unraisablehook, sys.excepthook, sys.gettrace(), sys.getprofile()
        import mthread
        assert sys.modules["_thread"] is real
        assert hooks == (sys.unraisablehook, sys.excepthook, sys.gettrace(), sys.getprofile())
        assert not hasattr(time, "sleep_ms") and "utime" not in sys.modules
        print("ok")
    """)
    assert result.stdout.strip() == "ok", result.stderr
