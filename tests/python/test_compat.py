"""Compatibility with the device's final firmware and with CPython's ``_thread``: samecore=,
mainAcceptMsg, get_ident() equal to start_new_thread's result, _count(), uncaught exceptions
through threading.excepthook, wrong calls named in CPython's own words, and what a plain
``import mthread`` leaves alone."""
import subprocess
import textwrap
import threading

import pytest

import mthread
from conftest import PYTHON, Flag, gone, run_python, start, wait_until


def in_thread(func, *args, **kwargs):
    """``func(*args)`` run in a managed thread; its result."""
    result = []
    tid = mthread.start_new_thread("probe", lambda: result.append(func(*args)), (), kwargs)
    assert wait_until(lambda: gone(tid))
    return result[0]


# --- the final firmware's start_new_thread ---------------------------------------------------

@pytest.mark.parametrize("samecore", [True, False, 0, 1])
def test_samecore_is_accepted(samecore):
    done = Flag()
    tid = mthread.start_new_thread("pinned", done.set, (), samecore=samecore)
    assert tid > 0 and wait_until(lambda: done)


def test_the_final_firmwares_full_call():
    seen = []
    tid = mthread.start_new_thread("full", lambda a, b=0: seen.append((a, b)), (1,), {"b": 2},
                                   samecore=False, stacksize=-1)
    assert wait_until(lambda: gone(tid))
    assert seen == [(1, 2)]


def test_samecore_truthiness_errors_propagate():
    class Bad:
        def __bool__(self):
            raise ZeroDivisionError("no truth")

    with pytest.raises(ZeroDivisionError):
        mthread.start_new_thread("x", print, (), samecore=Bad())
    assert not [row for row in mthread.list(False) if row[2] == "x"]


def test_start_new_thread_keyword_errors_name_the_keyword():
    with pytest.raises(TypeError, match="unexpected keyword argument 'core'"):
        mthread.start_new_thread("x", print, (), core=1)
    with pytest.raises(TypeError, match="stacksize must be an int, not str"):
        mthread.start_new_thread("x", print, (), stacksize="big")


# --- mainAcceptMsg ------------------------------------------------------------------------------

def test_main_accept_msg_is_repl_accept_msg():
    assert mthread.mainAcceptMsg() is True
    assert mthread.mainAcceptMsg(False) is True  # the previous setting
    assert mthread.replAcceptMsg() is False
    assert mthread.replAcceptMsg(True) is False
    assert mthread.mainAcceptMsg() is True
    assert "replAcceptMsg" in mthread.mainAcceptMsg.__doc__


# --- get_ident and _count -------------------------------------------------------------------

def test_get_ident_in_a_thread_is_what_start_new_thread_returned():
    seen = {}

    def body():
        seen["ident"] = mthread.get_ident()
        seen["self"] = mthread.getSelfID()
        seen["threading_ident"] = threading.get_ident()
        seen["current"] = threading.current_thread()

    tid = mthread.start_new_thread("ident", body, ())
    assert wait_until(lambda: gone(tid))
    assert seen["ident"] == tid == seen["self"]
    # threading keeps CPython's idents: its thread object for the caller is found by them.
    assert seen["threading_ident"] != tid
    assert seen["current"].name == "ident"
    assert seen["current"].ident == seen["threading_ident"]


def test_get_ident_elsewhere_is_cpythons():
    assert mthread.get_ident() == threading.get_ident() == threading.main_thread().ident
    seen = []
    other = threading.Thread(target=lambda: seen.append(mthread.get_ident() ==
                                                        threading.get_ident()))
    other.start()
    other.join(timeout=30)
    assert seen == [True]


def test_get_ident_is_unique_among_live_threads():
    release = Flag()
    idents = []

    def body():
        idents.append(mthread.get_ident())
        wait_until(lambda: release, timeout=30)

    tids = [start(body) for _ in range(5)]
    assert wait_until(lambda: len(idents) == 5)
    release.set()
    assert sorted(idents) == sorted(tids)
    assert threading.get_ident() not in idents


def test_count_counts_mthreads_threads():
    import _thread

    release = Flag()
    before = mthread._count()
    assert before == _thread._count()
    tids = [start(lambda: wait_until(lambda: release, timeout=30)) for _ in range(3)]
    assert mthread._count() == before + 3
    release.set()
    assert all(wait_until(lambda t=t: gone(t)) for t in tids)
    assert wait_until(lambda: mthread._count() == before)


# --- wrong calls: CPython's wording, naming the argument -------------------------------------

WRONG_CALLS = [
    (lambda: mthread.getThreadName(), "getThreadName() missing required argument 'th_id'"),
    (lambda: mthread.suspend(1, 2), "suspend() takes at most 1 argument (2 given)"),
    (lambda: mthread.kill(id=3), "kill() got an unexpected keyword argument 'id'"),
    (lambda: mthread.resume("x"), "resume(): th_id must be an int, not str"),
    (lambda: mthread.status(None), "status(): th_id must be an int, not NoneType"),
    (lambda: mthread.stack_size("big"), "stack_size(): size must be an int, not str"),
    (lambda: mthread.allowsuspend(), "allowsuspend() missing required argument 'allow'"),
    (lambda: mthread.sleep_ms("1"), "sleep_ms(): ms must be an int or a float, not str"),
    (lambda: mthread.sleep(), "sleep() missing required argument 'seconds'"),
    (lambda: mthread.list(True, 1), "list() takes at most 1 argument (2 given)"),
    (lambda: mthread.replAcceptMsg(flag=True, other=1), "unexpected keyword argument 'other'"),
    (lambda: mthread.getSelfName(1), "takes no arguments"),
    (lambda: mthread.getReplID(x=1), "takes no keyword arguments"),
    (lambda: mthread.isnotified(), "isnotified() missing required argument 'th_id'"),
    (lambda: mthread.stop(-1), "stop(): th_id must be >= 0, got -1"),
    (lambda: mthread.sleep(-1e-9), "sleep(): seconds must be a number >= 0, got -1e-09"),
    (lambda: mthread.getmsg(-0.5), "getmsg(): timeout_ms must be a number >= 0, got -0.5"),
    (lambda: mthread.start_new_thread(), "start_new_thread() takes (name, func, args"),
    (lambda: mthread.start_new_thread("x", print), "start_new_thread() takes (name, func, args"),
]


@pytest.mark.parametrize("call, text", WRONG_CALLS)
def test_wrong_calls_name_the_argument_in_cpythons_words(call, text):
    with pytest.raises((TypeError, ValueError)) as caught:
        call()
    message = str(caught.value)
    assert "incompatible function arguments" not in message
    assert text in message


def test_keywords_by_name():
    me = mthread.getReplID()
    assert mthread.getThreadName(th_id=me) == "MainThread"
    assert mthread.status(th_id=me) == mthread.RUNNING
    assert mthread.stack_size(size=0) == mthread.DEFAULT_STACK_SIZE
    assert mthread.list(print=False)[0][0] == me
    assert mthread.replAcceptMsg(flag=True) is True


# --- uncaught exceptions go through threading.excepthook -------------------------------------

def test_a_replaced_excepthook_sees_the_exception_and_the_threads_name(monkeypatch):
    seen = []
    monkeypatch.setattr(threading, "excepthook", seen.append)

    def body():
        raise KeyError("lost")

    tid = mthread.start_new_thread("reporter", body, ())
    assert wait_until(lambda: gone(tid))
    assert len(seen) == 1
    args = seen[0]
    assert args.exc_type is KeyError and args.exc_value.args == ("lost",)
    assert args.thread.name == "reporter"
    # The traceback starts at the user's function: mthread's own frame is left out.
    assert args.exc_traceback.tb_frame.f_code is body.__code__


def test_system_exit_and_kill_do_not_reach_the_hook(monkeypatch):
    seen = []
    monkeypatch.setattr(threading, "excepthook", seen.append)

    def ends():
        raise SystemExit(2)

    tid = start(ends)
    assert wait_until(lambda: gone(tid))
    started = Flag()

    def sleeper():
        started.set()
        mthread.sleep(30)

    tid = start(sleeper)
    assert wait_until(lambda: started)
    assert mthread.kill(tid)
    assert wait_until(lambda: gone(tid))
    assert seen == []


DEFAULT_REPORT = textwrap.dedent("""
    import mthread, sys, time
    def inner():
        raise ValueError("boom")
    def body():
        inner()
    tid = mthread.start_new_thread("worker", body, ())
    while mthread.status(tid) != mthread.TERMINATED:
        time.sleep(0.01)
    print("id", tid)
""")


def test_default_report_has_the_device_header_and_no_frame_of_mthreads_own():
    result = run_python(DEFAULT_REPORT)
    assert result.returncode == 0, result.stderr
    tid = result.stdout.split()[-1]
    lines = result.stderr.splitlines()
    assert lines[0] == f'Unhandled exception in thread "worker" (id {tid}):'
    assert lines[1] == "Traceback (most recent call last):"
    assert "in body" in lines[2] and "in inner" in result.stderr
    assert lines[-1] == "ValueError: boom"
    assert "_threading.py" not in result.stderr


def test_a_replaced_sys_excepthook_is_honoured_by_the_default_report():
    result = run_python(textwrap.dedent("""
        import sys
        sys.excepthook = lambda t, v, tb: print("sys hook:", t.__name__, v, file=sys.stderr)
    """) + DEFAULT_REPORT)
    assert result.returncode == 0, result.stderr
    assert 'Unhandled exception in thread "worker"' in result.stderr
    assert "sys hook: ValueError boom" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_failing_excepthook_is_reported_as_threading_reports_it():
    result = run_python(textwrap.dedent("""
        import threading
        def hook(args):
            raise RuntimeError("hook broke")
        threading.excepthook = hook
    """) + DEFAULT_REPORT)
    assert result.returncode == 0, result.stderr
    assert "Exception in threading.excepthook:" in result.stderr
    assert "RuntimeError: hook broke" in result.stderr


def test_a_thread_killed_inside_its_excepthook_ends_silently():
    result = run_python("""
        import mthread, sys, threading, time
        printed = []
        def hook(args):
            mthread.sendmsg(mthread.getReplID(), "in hook")
            mthread.sleep(30)           # killed here
            print("hook went on", file=sys.stderr)
        threading.excepthook = hook
        def body():
            raise ValueError("boom")
        tid = mthread.start_new_thread("doomed", body, ())
        assert mthread.getmsg(20000)[2] == "in hook"
        assert mthread.kill(tid)
        deadline = time.monotonic() + 20
        while mthread.status(tid) != mthread.TERMINATED and time.monotonic() < deadline:
            time.sleep(0.01)
        print("gone", mthread.status(tid) == mthread.TERMINATED)
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "gone True\n"
    assert result.stderr == ""


def test_a_thread_killed_while_the_default_report_runs_ends_silently():
    # A kill that lands in the except path, before the report is written: nothing printed.
    result = run_python("""
        import mthread, sys, threading, time
        class Slow(Exception):
            def __str__(self):
                mthread.sendmsg(mthread.getReplID(), "formatting")
                mthread.sleep(30)        # killed here, while the report formats the exception
                return "never"
        def body():
            raise Slow()
        tid = mthread.start_new_thread("doomed", body, ())
        assert mthread.getmsg(20000)[2] == "formatting"
        assert mthread.kill(tid)
        deadline = time.monotonic() + 20
        while mthread.status(tid) != mthread.TERMINATED and time.monotonic() < deadline:
            time.sleep(0.01)
        print("gone", mthread.status(tid) == mthread.TERMINATED)
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "gone True\n"
    assert "never" not in result.stderr and "Traceback" not in result.stderr


# --- a plain import changes nothing ------------------------------------------------------------

def test_plain_import_leaves_gc_time_and_modules_alone():
    result = run_python("""
        import gc, sys, time
        before_modules, before_gc, before_time = set(sys.modules), dict(vars(gc)), dict(vars(time))
        import mthread
        added = {name for name in set(sys.modules) - before_modules
                 if name != "mthread" and not name.startswith("mthread.")}
        assert "micropython" not in sys.modules and "utime" not in sys.modules
        assert dict(vars(gc)) == before_gc and dict(vars(time)) == before_time
        assert not hasattr(gc, "mem_free")
        print(sorted(added & {"_thread", "micropython", "utime", "gc", "time"}))
        mthread.install()
        import micropython
        assert micropython is mthread.micropython
        assert gc.mem_free() > 0 and gc.mem_alloc() > 0
        print("installed")
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "[]\ninstalled\n"


def test_under_the_runner_threading_keeps_cpythons_get_ident():
    code = textwrap.dedent("""
        import _thread, sys, threading
        real = threading.get_ident.__self__  # the module threading took get_ident from
        assert _thread.__name__ == 'mthread' and real.__name__ == '_thread'
        assert real is not _thread and _thread.get_ident is not real.get_ident
        seen = {}
        def body():
            seen['same'] = _thread.get_ident() == _thread.getSelfID()
            seen['name'] = threading.current_thread().name
            seen['lookup'] = threading.current_thread() is threading._active[threading.get_ident()]
        tid = _thread.start_new_thread('managed', body, ())
        while _thread.status(tid) != _thread.TERMINATED:
            _thread.sleep_ms(5)
        print(seen, _thread.get_ident() == threading.get_ident())
    """)
    result = subprocess.run([PYTHON, "-m", "mthread", "-c", code], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "{'same': True, 'name': 'managed', 'lookup': True} True\n"
