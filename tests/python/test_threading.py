"""Managed threads as `threading` and `logging` see them (python/mthread/_threading.py):
current_thread() and its name, enumerate(), threading.local, settrace()/setprofile()."""
import logging
import threading

import mthread
from conftest import Flag, gone, start, wait_until


def test_threading_current_thread_name():
    seen = {}
    done = Flag()

    def body():
        t = threading.current_thread()
        seen["name"] = t.name
        seen["ident"] = t.ident == threading.get_ident()
        seen["main"] = threading.main_thread() is not t
        done.set()

    mthread.start_new_thread("sensor reader", body, ())
    assert wait_until(lambda: done)
    assert seen == {"name": "sensor reader", "ident": True, "main": True}


def test_threading_knows_a_thread_once_it_asks_and_forgets_it_at_its_end():
    asked, release = Flag(), Flag()

    def body():
        threading.current_thread()
        asked.set()
        while not release:
            mthread.sleep_ms(1)

    quiet = mthread.start_new_thread("quiet", mthread.wait, ())
    tid = mthread.start_new_thread("asker", body, ())
    assert wait_until(lambda: asked)
    names = [t.name for t in threading.enumerate()]
    assert "asker" in names and "quiet" not in names  # like a thread of CPython's _thread
    assert threading.current_thread() is threading.main_thread()
    release.set()
    mthread.kill(quiet)
    assert wait_until(lambda: gone(tid) and gone(quiet))
    assert "asker" not in [t.name for t in threading.enumerate()]


def test_threads_sharing_a_name_each_show_it():
    names = []
    done = Flag()

    def body(last):
        names.append(threading.current_thread().name)
        if last:
            done.set()

    for i in range(3):
        mthread.start_new_thread("pool worker", body, (i == 2,))
    assert wait_until(lambda: done and len(names) == 3)
    assert names == ["pool worker"] * 3


def test_threading_enumerate_forgets_ended_threads():
    tid = mthread.start_new_thread("ephemeral", lambda: None, ())
    assert wait_until(lambda: gone(tid))
    assert "ephemeral" not in [t.name for t in threading.enumerate()]


def test_logging_thread_name():
    records = []

    class Collect(logging.Handler):
        def emit(self, record):
            records.append(self.format(record))

    handler = Collect()
    handler.setFormatter(logging.Formatter("%(threadName)s: %(message)s"))
    logger = logging.getLogger("mthread-test")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        tid = mthread.start_new_thread("logger thread", lambda: logger.info("hello"), ())
        assert wait_until(lambda: gone(tid))
    finally:
        logger.removeHandler(handler)
    assert records == ["logger thread: hello"]


def test_threading_local_per_thread():
    local = threading.local()
    local.value = "main"
    seen = []

    def body(v):
        assert not hasattr(local, "value")
        local.value = v
        mthread.sleep_ms(5)
        seen.append(local.value == v)

    ids = [start(body, i) for i in range(5)]
    assert wait_until(lambda: all(gone(t) for t in ids))
    assert seen == [True] * 5 and local.value == "main"


def test_threading_settrace_and_setprofile_reach_managed_threads():
    """Like a threading.Thread, a managed thread runs the tracer and profiler set with
    threading.settrace()/setprofile(), so coverage and debuggers see its code."""
    traced, profiled = [], []

    def tracer(frame, event, arg):
        if event == "call" and frame.f_code.co_name == "traced_body":
            traced.append(threading.current_thread().name)
        return None

    def profiler(frame, event, arg):
        if event == "call" and frame.f_code.co_name == "traced_body":
            profiled.append(True)

    def traced_body():
        return 1

    threading.settrace(tracer)
    threading.setprofile(profiler)
    try:
        tid = mthread.start_new_thread("covered", traced_body, ())
        assert wait_until(lambda: gone(tid))
    finally:
        threading.settrace(None)
        threading.setprofile(None)
    assert traced == ["covered"] and profiled == [True]
