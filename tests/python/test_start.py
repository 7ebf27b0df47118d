"""start_new_thread (SPEC §3): both call forms, names, ids, stack sizes asked for, argument
errors, the thread limit, how a thread ends (uncaught exception, SystemExit, its result), and a
start from a thread mthread does not know."""
import os
import re
import sys
import threading

import pytest

import mthread
from conftest import (SHORT, Flag, gone, others, run_python, start, wait_until, park_until_told,
                      stack_of, assert_clean_exit)


def test_device_form_runs_with_args_and_kwargs():
    got = []
    done = Flag()

    def body(a, b, c=None, d=None):
        got.append((a, b, c, d, mthread.getSelfName()))
        done.set()

    tid = mthread.start_new_thread("worker", body, (1, 2), {"d": 4})
    assert isinstance(tid, int) and tid > 0
    assert wait_until(lambda: done)
    assert got == [(1, 2, None, 4, "worker")]


def test_starter_goes_on_before_the_new_thread_runs_python():
    # As with CPython's _thread and the device: start_new_thread keeps the GIL, so what the
    # starter does next (here: keeping the id where the thread looks for it) comes before the
    # thread's first line. (No forced GIL switch meanwhile: the switch interval is made long.)
    ids, seen = {}, {}

    def body(i):
        seen[i] = ids.get(i) == mthread.getSelfID()

    interval = sys.getswitchinterval()
    sys.setswitchinterval(60)
    try:
        for i in range(50):
            ids[i] = mthread.start_new_thread("ordered", body, (i,))
    finally:
        sys.setswitchinterval(interval)
    assert wait_until(lambda: len(seen) == 50)
    assert all(seen.values()), [i for i, ok in seen.items() if not ok]


def test_cpython_form_gets_thread_n_name():
    names = []
    done = Flag()

    def body(x, y=0):
        names.append((mthread.getSelfName(), x, y))
        done.set()

    tid = mthread.start_new_thread(body, (7,), {"y": 8})
    assert wait_until(lambda: done)
    name, x, y = names[0]
    assert (x, y) == (7, 8)
    assert re.fullmatch(r"Thread-\d+", name), name


def test_cpython_form_names_are_distinct():
    ids = [mthread.start_new_thread(park_until_told, ()) for _ in range(3)]
    names = {mthread.getThreadName(t) for t in ids}
    assert len(names) == 3
    for t in ids:
        mthread.notify(t, 1)


def test_callables_of_every_kind_run():
    results = []

    class Callable:
        def __call__(self, v):
            results.append(("obj", v))

        def method(self, v):
            results.append(("method", v))

    import functools
    c = Callable()
    ids = [start(c, 1), start(c.method, 2), start(functools.partial(results.append, ("p", 3))),
           start(lambda v: results.append(("lambda", v)), 4)]
    assert wait_until(lambda: all(gone(t) for t in ids))
    assert sorted(results) == sorted([("obj", 1), ("method", 2), ("p", 3), ("lambda", 4)])


def test_empty_args_and_empty_kwargs():
    done = Flag()
    tid = mthread.start_new_thread("x", done.set, (), {})
    assert wait_until(lambda: done)
    assert wait_until(lambda: gone(tid))


def test_ids_unique_increasing_never_reused():
    seen = []
    for _ in range(20):
        tid = start(lambda: None)
        seen.append(tid)
        assert wait_until(lambda: gone(tid))
    assert seen == sorted(seen) and len(set(seen)) == len(seen)
    assert mthread.getReplID() not in seen


def test_name_kept_whole_in_utf8():
    name = "Ünïcødé thread 🙂 with a name far longer than fifteen bytes"
    tid = mthread.start_new_thread(name, park_until_told, ())
    assert mthread.getThreadName(tid) == name
    rows = {row[0]: row for row in mthread.list(False)}
    assert rows[tid][2] == name
    mthread.notify(tid, 1)


def test_os_level_name_is_set():
    seen = {}
    done = Flag()

    def body():
        with open(f"/proc/self/task/{mthread.get_native_id()}/comm", encoding="utf-8",
                  errors="replace") as f:
            seen["comm"] = f.read().strip()
        done.set()

    mthread.start_new_thread("blinker-thread-with-long-name", body, ())
    assert wait_until(lambda: done)
    assert seen["comm"] == "blinker-thread-"  # the kernel keeps 15 bytes


def test_empty_name_allowed():
    tid = mthread.start_new_thread("", park_until_told, ())
    assert mthread.getThreadName(tid) == ""
    mthread.notify(tid, 1)


@pytest.mark.parametrize("call, argument", [
    (lambda f: mthread.start_new_thread("x", f, [1]), "args"),
    (lambda f: mthread.start_new_thread("x", f, None), "args"),
    (lambda f: mthread.start_new_thread(f, [1]), "args"),
    (lambda f: mthread.start_new_thread("x", f, (), []), "kwargs"),
    (lambda f: mthread.start_new_thread(f, (), 5), "kwargs"),
    (lambda f: mthread.start_new_thread("x", 5, ()), "func"),
    (lambda f: mthread.start_new_thread(5, ()), "func"),
    (lambda f: mthread.start_new_thread(None, f, ()), "func"),
    (lambda f: mthread.start_new_thread("x", f, (), stacksize="big"), "stacksize"),
    (lambda f: mthread.start_new_thread("x", f, (), stacksize=1.5), "stacksize"),
    (lambda f: mthread.start_new_thread("x", f, (), stacksize=None), "stacksize"),
])
def test_start_type_errors_name_the_argument(call, argument):
    before = others()
    with pytest.raises(TypeError, match=argument):
        call(lambda *a, **k: None)
    assert others() == before


@pytest.mark.parametrize("args", [(), ("x",), ("x", print), ("x", print, (), {}, 5)])
def test_start_wrong_argument_count(args):
    with pytest.raises(TypeError):
        mthread.start_new_thread(*args)


def test_start_unknown_keyword():
    with pytest.raises(TypeError):
        mthread.start_new_thread("x", print, (), stack=5)


def test_start_negative_stacksize_is_value_error():
    # -1 is the final firmware's default (the default stack); below it is an error.
    with pytest.raises(ValueError, match="stacksize"):
        mthread.start_new_thread("x", print, (), stacksize=-2)


def test_start_huge_stacksize_is_overflow_error():
    with pytest.raises(OverflowError, match="stacksize"):
        mthread.start_new_thread("x", print, (), stacksize=2 ** 64)


def test_start_name_not_encodable():
    with pytest.raises(ValueError, match="name"):
        mthread.start_new_thread("bad \ud800 name", print, ())


@pytest.mark.parametrize("requested", [2048, 4096, 16 * 1024, 48 * 1024])
def test_device_stacksizes_clamped_up(requested):
    tid = mthread.start_new_thread("small", park_until_told, (), stacksize=requested)
    assert stack_of(tid) == mthread.MIN_STACK_SIZE
    mthread.notify(tid, 1)


def test_stacksize_keyword_used_and_rounded_to_pages():
    size = mthread.MIN_STACK_SIZE * 2 + 1
    tid = mthread.start_new_thread("big", park_until_told, (), stacksize=size)
    got = stack_of(tid)
    assert size <= got < size + os.sysconf("SC_PAGE_SIZE")
    assert got % os.sysconf("SC_PAGE_SIZE") == 0
    mthread.notify(tid, 1)


def test_stacksize_above_max_clamped_down():
    tid = mthread.start_new_thread("huge", park_until_told, (),
                                   stacksize=mthread.MAX_STACK_SIZE * 4)
    assert stack_of(tid) == mthread.MAX_STACK_SIZE
    mthread.notify(tid, 1)


def test_stacksize_zero_means_current_default():
    mthread.stack_size(mthread.MIN_STACK_SIZE * 3)
    tid = mthread.start_new_thread("d", park_until_told, (), stacksize=0)
    assert stack_of(tid) == mthread.MIN_STACK_SIZE * 3
    tid2 = mthread.start_new_thread("e", park_until_told, ())
    assert stack_of(tid2) == mthread.MIN_STACK_SIZE * 3
    mthread.notify(0, 1)


def test_thread_limit_is_a_clear_error():
    result = run_python("""
        import mthread
        ids = [mthread.start_new_thread("t%d" % i, mthread.wait, ()) for i in range(3)]
        try:
            mthread.start_new_thread("one too many", mthread.wait, ())
        except mthread.error as e:
            print("error:", e)
        else:
            print("no error")
        assert mthread.MAX_THREADS == 3
        mthread.notify(0, 1)
    """, env={"MTHREAD_MAX_THREADS": "3"})
    assert_clean_exit(result.returncode, result.stderr, {0})
    line = result.stdout.strip()
    assert line.startswith("error:"), result.stdout + result.stderr
    assert "3" in line and "MTHREAD_MAX_THREADS" in line


def test_uncaught_exception_does_not_stop_others(monkeypatch):
    def bad():
        raise ZeroDivisionError("boom in thread")

    seen = []
    monkeypatch.setattr(threading, "excepthook", seen.append)
    tid = mthread.start_new_thread("bad one", bad, ())
    assert wait_until(lambda: gone(tid))
    assert [(args.exc_type, str(args.exc_value), args.thread.name) for args in seen] == [
        (ZeroDivisionError, "boom in thread", "bad one")]
    # Still works afterwards.
    done = Flag()
    start(done.set)
    assert wait_until(lambda: done)


def test_system_exit_ends_silently(capfd):
    def body():
        raise SystemExit(3)

    tid = start(body)
    assert wait_until(lambda: gone(tid))
    assert capfd.readouterr().err == ""


def test_thread_result_is_ignored():
    tid = start(lambda: 42)
    assert wait_until(lambda: gone(tid))


def test_start_from_foreign_thread_and_control_from_it():
    out = {}
    counter = [0]

    def spin():
        mthread.allowsuspend(True)
        while True:
            counter[0] += 1

    def foreign():
        tid = mthread.start_new_thread("from foreign", spin, ())
        out["tid"] = tid
        while counter[0] == 0:
            mthread.sleep_ms(1)
        out["suspend"] = mthread.suspend(tid)
        out["resume"] = mthread.resume(tid)
        out["kill"] = mthread.kill(tid)

    t = threading.Thread(target=foreign)
    t.start()
    t.join(SHORT)
    assert out.get("suspend") and out.get("resume") and out.get("kill"), out
    assert wait_until(lambda: gone(out["tid"]))


def test_a_forked_child_reaps_the_threads_nobody_joins():
    """A child forked once the parent's threads are gone (a multiprocessing pool after threads
    were used) has none of the parent's threads, its reaper included: it starts its own, and the
    threads that end there with nobody to join them leave list()."""
    result = run_python("""
        import mthread, os, signal, sys, time
        def gone_but_main(seconds):
            give_up = time.monotonic() + seconds
            while len(mthread.list(False)) > 1 and time.monotonic() < give_up:
                time.sleep(0.001)
            return len(mthread.list(False)) == 1
        for i in range(5):
            mthread.start_new_thread("parent's", lambda: None, ())
        assert gone_but_main(10), "the parent's threads were not reaped"
        child = os.fork()
        if child == 0:
            for i in range(30):
                mthread.start_new_thread("child's", lambda: None, ())
            os._exit(0 if gone_but_main(10) else 3)
        give_up = time.monotonic() + 20
        while True:
            pid, status = os.waitpid(child, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > give_up:
                os.kill(child, signal.SIGKILL)
                os.waitpid(child, 0)
                sys.exit("the child hung")
            time.sleep(0.01)
        print("child exit", os.waitstatus_to_exitcode(status))
    """)
    assert_clean_exit(result.returncode, result.stderr, {0})
    assert "child exit 0" in result.stdout, result.stdout + result.stderr
