"""Every call of SPEC §3 but messaging: start_new_thread, stack_size, names, ids, list, status,
constants, the CPython passthrough, docstrings. Messaging is in test_api_messaging.py."""
import _thread
import inspect
import logging
import os
import re
import threading

import pytest

import mthread
from conftest import (SHORT, Flag, gone, others, run_python, start, wait_until,
                      assert_clean_exit)

LIST_LINE = re.compile(
    r"^ID=(\d+), Name: (.*), State: (running|suspended|waiting), Stack=(\d+), "
    r"MaxUsed=(\d+), Type: (MAIN|PYTHON|SERVICE|NATIVE)$")


def park_until_told():
    """A thread body that lives until it gets a notification."""
    mthread.wait()


def run_and_collect(func, *args, **kwargs):
    """Run func in a managed thread, wait for it to end, return (result, exception)."""
    out = {}

    def body():
        try:
            out["result"] = func(*args, **kwargs)
        except BaseException as e:  # noqa: BLE001 - the test inspects it
            out["error"] = e

    tid = mthread.start_new_thread("collect", body, ())
    assert wait_until(lambda: gone(tid))
    return out.get("result"), out.get("error")


# --- constants -----------------------------------------------------------------------------

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


# --- start_new_thread ----------------------------------------------------------------------

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


def stack_of(tid):
    return {row[0]: row for row in mthread.list(False)}[tid][4]


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


# --- threading and logging interplay -------------------------------------------------------

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


# --- stack_size ----------------------------------------------------------------------------

def test_stack_size_default_and_restore():
    assert mthread.stack_size() == mthread.DEFAULT_STACK_SIZE
    assert mthread.stack_size(mthread.MIN_STACK_SIZE * 2) == mthread.MIN_STACK_SIZE * 2
    assert mthread.stack_size() == mthread.MIN_STACK_SIZE * 2
    assert mthread.stack_size(0) == mthread.DEFAULT_STACK_SIZE
    assert mthread.stack_size() == mthread.DEFAULT_STACK_SIZE


@pytest.mark.parametrize("size", [1, 2048, 4096, 16384, 48 * 1024])
def test_stack_size_clamped_up(size):
    assert mthread.stack_size(size) == mthread.MIN_STACK_SIZE


def test_stack_size_clamped_down():
    assert mthread.stack_size(mthread.MAX_STACK_SIZE + 1) == mthread.MAX_STACK_SIZE
    assert mthread.stack_size(2 ** 62) == mthread.MAX_STACK_SIZE


def test_ints_too_long_for_str_keep_their_exception_type():
    huge = 10 ** 5000  # str(huge) raises ValueError: error messages must not need it
    with pytest.raises(OverflowError, match="size"):
        mthread.stack_size(huge)
    with pytest.raises(ValueError, match="size"):
        mthread.stack_size(-huge)
    with pytest.raises(OverflowError, match="th_id"):
        mthread.kill(huge)
    with pytest.raises(ValueError, match="th_id"):
        mthread.status(-huge)
    with pytest.raises(OverflowError, match="value"):
        mthread.notify(0, huge)
    with pytest.raises(OverflowError, match="msg"):
        mthread.sendmsg(0, -huge)
    with pytest.raises(ValueError, match="ms"):
        mthread.sleep_ms(-huge)
    assert mthread.getmsg(huge // 10 ** 4990 * 0) == (0, 0, None)


def test_stack_size_rounds_to_pages():
    page = os.sysconf("SC_PAGE_SIZE")
    got = mthread.stack_size(mthread.MIN_STACK_SIZE + 1)
    assert got == mthread.MIN_STACK_SIZE + page


def test_stack_size_bool_is_an_int():
    assert mthread.stack_size(False) == mthread.DEFAULT_STACK_SIZE
    assert mthread.stack_size(True) == mthread.MIN_STACK_SIZE


def test_stack_size_errors():
    before = mthread.stack_size()
    with pytest.raises(ValueError, match="size"):
        mthread.stack_size(-1)
    with pytest.raises(ValueError, match="size"):
        mthread.stack_size(-(2 ** 70))
    with pytest.raises(TypeError, match="size"):
        mthread.stack_size(1.0)
    with pytest.raises(TypeError, match="size"):
        mthread.stack_size("4096")
    with pytest.raises(OverflowError, match="size"):
        mthread.stack_size(2 ** 64)
    assert mthread.stack_size() == before


def test_stack_size_applies_to_threads_started_after():
    mthread.stack_size(256 * 1024)
    tid = mthread.start_new_thread("a", park_until_told, ())
    assert stack_of(tid) == 256 * 1024
    mthread.stack_size(0)
    tid2 = mthread.start_new_thread("b", park_until_told, ())
    assert stack_of(tid2) == mthread.DEFAULT_STACK_SIZE
    assert stack_of(tid) == 256 * 1024
    mthread.notify(0, 1)


def test_default_stack_holds_the_recursion_limit():
    import sys

    def deep(n):
        return 0 if n == 0 else 1 + deep(n - 1)

    limit = sys.getrecursionlimit()
    result, error = run_and_collect(deep, limit - 50)
    assert error is None and result == limit - 50


def test_recursion_error_not_crash_on_default_stack():
    def forever(n=0):
        return forever(n + 1)

    _, error = run_and_collect(forever)
    assert isinstance(error, RecursionError)


def test_deep_recursion_through_c_on_default_stack():
    import sys

    class Deep:
        def __init__(self, n):
            self.n = n

        def __repr__(self):  # recursion through C: repr() -> __repr__ -> repr()
            return "x" if self.n == 0 else repr(Deep(self.n - 1))

    depth = sys.getrecursionlimit() // 3 - 20
    result, error = run_and_collect(lambda: repr(Deep(depth)))
    assert error is None and result == "x"


def test_default_stack_holds_what_a_threading_stack_holds():
    """Recursion through C up to 8000 deep, the recursion limit raised to allow it: a managed
    thread on its default stack gets at least as deep as a threading.Thread of the same
    interpreter. 3.11 reaches 8000 on both; 3.12 and later stop recursion through C earlier, at
    a limit of their own, with a RecursionError (a threading.Thread's start takes a level of it
    more than a managed thread's)."""
    import sys

    result = run_python("""
        import sys, threading, mthread
        sys.setrecursionlimit(8200)
        def reach(n=0):
            if n == 8000:
                return n
            try:
                return next(map(reach, [n + 1]))
            except RecursionError:
                return n
        out = []
        t = threading.Thread(target=lambda: out.append(reach()))
        t.start(); t.join()
        tid = mthread.start_new_thread("deep", lambda: out.append(reach()), ())
        while mthread.status(tid) != mthread.TERMINATED:
            mthread.sleep_ms(5)
        print(*out)
    """)
    assert_clean_exit(result.returncode, result.stderr, {0})
    threading_depth, managed_depth = map(int, result.stdout.split())
    assert managed_depth >= threading_depth
    if sys.version_info < (3, 12):
        assert threading_depth == 8000


def test_stack_overflow_stops_process_naming_thread():
    result = run_python("""
        import sys, mthread
        sys.setrecursionlimit(10 ** 6)
        def deep(n):
            return 1 + next(map(deep, [n + 1]))
        mthread.start_new_thread("overflower", deep, (0,), stacksize=mthread.MIN_STACK_SIZE)
        mthread.sleep(30)
        print("survived")
    """)
    assert "survived" not in result.stdout
    assert result.returncode != 0
    assert '"overflower"' in result.stderr and str(mthread_min()) in result.stderr, result.stderr


def mthread_min():
    return mthread.MIN_STACK_SIZE


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


def test_max_used_grows_with_recursion():
    def deep(n):
        if n == 0:
            mthread.wait()
            return 0
        # Through C (map), so each level takes C stack: CPython 3.11 runs pure-Python
        # calls without it.
        return 1 + next(map(deep, [n - 1]))

    shallow = mthread.start_new_thread("shallow", deep, (1,))
    deeper = mthread.start_new_thread("deeper", deep, (600,))
    assert wait_until(lambda: mthread.status(shallow) == mthread.WAITING and
                      mthread.status(deeper) == mthread.WAITING)
    rows = {row[0]: row for row in mthread.list(False)}
    assert 0 < rows[shallow][5] < rows[deeper][5] <= rows[deeper][4]
    mthread.notify(0, 1)


# --- names and ids -------------------------------------------------------------------------

def test_main_thread_identity():
    assert mthread.getSelfName() == "MainThread"
    assert mthread.getReplID() == mthread.getMainID()
    assert isinstance(mthread.getReplID(), int) and mthread.getReplID() > 0
    assert mthread.getThreadName(mthread.getReplID()) == "MainThread"


def test_get_thread_name_unknown():
    assert mthread.getThreadName(0) == "unknown"
    assert mthread.getThreadName(10 ** 12) == "unknown"
    assert mthread.getThreadName(2 ** 64 - 1) == "unknown"
    tid = start(lambda: None, name="short-lived")
    assert wait_until(lambda: gone(tid))
    assert mthread.getThreadName(tid) == "unknown"


def test_self_name_and_repl_id_inside_thread():
    result, error = run_and_collect(lambda: (mthread.getSelfName(), mthread.getReplID(),
                                             mthread.getMainID()))
    assert error is None
    assert result == ("collect", mthread.getReplID(), mthread.getReplID())


def test_self_name_in_foreign_thread():
    seen = []
    t = threading.Thread(target=lambda: seen.append(mthread.getSelfName()))
    t.start()
    t.join()
    assert seen == ["unknown"]


@pytest.mark.parametrize("func", ["getThreadName", "suspend", "resume", "kill", "status",
                                  "isnotified", "stop"])
def test_id_argument_errors(func):
    call = getattr(mthread, func)
    with pytest.raises(TypeError, match="th_id"):
        call("1")
    with pytest.raises(TypeError, match="th_id"):
        call(1.0)
    with pytest.raises(TypeError, match="th_id"):
        call(None)
    with pytest.raises(ValueError, match="th_id"):
        call(-1)
    with pytest.raises(OverflowError, match="th_id"):
        call(2 ** 64)
    with pytest.raises(TypeError):
        call()
    with pytest.raises(TypeError):
        call(1, 2)


@pytest.mark.parametrize("func, expected", [("getThreadName", "unknown"), ("suspend", False),
                                            ("resume", False), ("kill", False),
                                            ("status", mthread.TERMINATED),
                                            ("isnotified", False), ("stop", False)])
def test_unknown_id_is_not_an_error(func, expected):
    assert getattr(mthread, func)(999_999_999) == expected
    assert getattr(mthread, func)(2 ** 64 - 1) == expected


@pytest.mark.parametrize("func", ["getSelfName", "getReplID", "getMainID", "getnotification"])
def test_no_argument_functions_reject_arguments(func):
    with pytest.raises(TypeError):
        getattr(mthread, func)(1)


# --- list ----------------------------------------------------------------------------------

def test_list_prints_device_format(capsys):
    waiting = mthread.start_new_thread("waiter", park_until_told, ())

    def spin():
        mthread.allowsuspend(True)
        while True:
            pass

    spinner = mthread.start_new_thread("spinner", spin, ())
    assert wait_until(lambda: mthread.status(waiting) == mthread.WAITING)
    assert wait_until(lambda: mthread.suspend(spinner))
    capsys.readouterr()
    assert mthread.list() is None
    lines = capsys.readouterr().out.splitlines()
    parsed = {}
    for line in lines:
        m = LIST_LINE.match(line)
        assert m, f"bad list line: {line!r}"
        parsed[int(m.group(1))] = m.groups()
    main = parsed[mthread.getReplID()]
    assert main[1] == "MainThread" and main[5] == "MAIN" and main[2] == "running"
    assert parsed[waiting][1:3] == ("waiter", "waiting") and parsed[waiting][5] == "PYTHON"
    assert parsed[spinner][1:3] == ("spinner", "suspended")
    assert int(parsed[waiting][3]) == mthread.DEFAULT_STACK_SIZE
    assert 0 < int(parsed[waiting][4]) <= int(parsed[waiting][3])
    assert list(parsed) == sorted(parsed)
    assert set(parsed) == {mthread.getReplID(), waiting, spinner}
    mthread.list(True)
    assert len(capsys.readouterr().out.splitlines()) == 3
    mthread.kill(spinner)
    mthread.notify(waiting, 1)


def test_list_false_returns_tuples():
    tid = mthread.start_new_thread("listed", park_until_told, ())
    assert wait_until(lambda: mthread.status(tid) == mthread.WAITING)
    rows = mthread.list(False)
    assert isinstance(rows, tuple)
    for row in rows:
        assert isinstance(row, tuple) and len(row) == 6
        tid_, type_, name, state, stack, used = row
        assert all(isinstance(v, int) for v in (tid_, type_, state, stack, used))
        assert isinstance(name, str)
    by_id = {row[0]: row for row in rows}
    assert by_id[mthread.getReplID()][1:4] == (mthread.MAIN, "MainThread", mthread.RUNNING)
    assert by_id[tid][1:4] == (mthread.PYTHON, "listed", mthread.WAITING)
    assert by_id[tid][4] == mthread.DEFAULT_STACK_SIZE
    assert 0 < by_id[tid][5] <= by_id[tid][4]
    assert isinstance(mthread.list(print=False), tuple)
    assert isinstance(mthread.list(0), tuple)
    mthread.notify(tid, 1)


def test_list_forgets_ended_threads():
    tid = start(lambda: None)
    assert wait_until(lambda: gone(tid))
    assert tid not in [row[0] for row in mthread.list(False)]


def test_list_from_inside_a_thread(capfd):
    result, error = run_and_collect(mthread.list, False)
    assert error is None
    assert "collect" in [row[2] for row in result]


# --- status --------------------------------------------------------------------------------

def test_status_through_a_life():
    go = Flag()

    def body():
        mthread.allowsuspend(True)
        while not go:
            pass
        mthread.sleep(30)

    tid = start(body)
    assert mthread.status(tid) in (mthread.RUNNING, mthread.WAITING)
    assert wait_until(lambda: mthread.suspend(tid))
    assert mthread.status(tid) == mthread.SUSPENDED  # at once
    assert mthread.resume(tid)
    assert mthread.status(tid) == mthread.RUNNING
    go.set()
    assert wait_until(lambda: mthread.status(tid) == mthread.WAITING)
    assert mthread.kill(tid)
    assert wait_until(lambda: mthread.status(tid) == mthread.TERMINATED)
    assert mthread.status(mthread.getReplID()) == mthread.RUNNING
    assert mthread.status(0) == mthread.TERMINATED


# --- allowsuspend --------------------------------------------------------------------------

def test_allowsuspend_returns_none_and_takes_any_truthy():
    assert mthread.allowsuspend(True) is None  # main thread: no effect
    assert mthread.suspend(mthread.getReplID()) is False
    assert mthread.allowsuspend(0) is None
    assert mthread.allowsuspend("yes") is None
    with pytest.raises(TypeError):
        mthread.allowsuspend()


def test_allowsuspend_with_failing_bool():
    class Bad:
        def __bool__(self):
            raise ZeroDivisionError("no truth")

    with pytest.raises((TypeError, ValueError, ZeroDivisionError)):
        mthread.allowsuspend(Bad())
    with pytest.raises((TypeError, ValueError, ZeroDivisionError)):
        mthread.replAcceptMsg(Bad())
    with pytest.raises((TypeError, ValueError, ZeroDivisionError)):
        mthread.list(Bad())
    assert mthread.replAcceptMsg() is True


def test_allowsuspend_truthiness_in_thread():
    steps = []

    def body():
        for value in (1, [], "x", None):
            mthread.allowsuspend(value)
            steps.append(value)
            mthread.wait()

    tid = start(body)
    for index, expected in enumerate((True, False, True, False)):
        assert wait_until(lambda: len(steps) == index + 1 and
                          mthread.status(tid) == mthread.WAITING)
        assert mthread.suspend(tid) is expected
        if expected:
            assert mthread.status(tid) == mthread.SUSPENDED
            assert mthread.resume(tid)
        assert mthread.notify(tid, 1)
    assert wait_until(lambda: gone(tid))


# --- device page examples ------------------------------------------------------------------

def test_device_example_blink_threads_with_notifications():
    """The device's usual thread shape: an infinite loop reacting to PAUSE/RESUME/EXIT/STATUS
    notifications, replying to the REPL by message."""
    _thread = mthread
    counts = {}

    def th_func(delay, th_id):
        _thread.allowsuspend(True)
        while True:
            ntf = _thread.getnotification()
            if ntf:
                if ntf == _thread.EXIT:
                    _thread.sendmsg(_thread.getReplID(), "%s exiting" % _thread.getSelfName())
                    return
                elif ntf == _thread.SUSPEND:
                    while _thread.wait() != _thread.RESUME:
                        pass
                elif ntf == _thread.STATUS:
                    _thread.sendmsg(_thread.getReplID(), counts.get(th_id, 0))
            counts[th_id] = counts.get(th_id, 0) + 1
            _thread.sleep_ms(delay)

    ids = [_thread.start_new_thread("THRD#%d" % i, th_func, (1 + i, i)) for i in range(2)]
    assert wait_until(lambda: all(counts.get(i, 0) > 2 for i in range(2)))
    assert _thread.notify(ids[0], _thread.STATUS)
    status_reply = _thread.getmsg(SHORT * 1000)
    assert status_reply[:2] == (1, ids[0]) and status_reply[2] > 2
    assert _thread.notify(ids[1], _thread.SUSPEND)
    assert wait_until(lambda: _thread.status(ids[1]) == _thread.WAITING)
    frozen = counts[1]
    assert _thread.notify(ids[1], _thread.RESUME)
    assert wait_until(lambda: counts[1] > frozen)
    for tid in ids:
        assert _thread.stop(tid)
    got = {_thread.getmsg(SHORT * 1000)[2] for _ in range(2)}
    assert got == {"THRD#0 exiting", "THRD#1 exiting"}
    assert wait_until(lambda: all(gone(t) for t in ids))


def test_device_example_message_loop():
    """A thread that answers REPL messages: int doubled, str upper-cased."""
    def th_func():
        while True:
            typ, sender, msg = mthread.getmsg()
            if typ == 1:
                mthread.sendmsg(sender, msg * 2)
            elif typ == 2:
                if msg == "quit":
                    return
                mthread.sendmsg(sender, msg.upper())
            mthread.sleep_ms(1)

    tid = mthread.start_new_thread("echo", th_func, ())
    assert mthread.sendmsg(tid, 21)
    assert mthread.getmsg(SHORT * 1000) == (1, tid, 42)
    assert mthread.sendmsg(tid, "hello")
    assert mthread.getmsg(SHORT * 1000) == (2, tid, "HELLO")
    assert mthread.sendmsg(tid, "quit")
    assert wait_until(lambda: gone(tid))


def test_device_example_suspend_resume_kill_from_repl():
    ticks = [0]

    def th_func():
        mthread.allowsuspend(True)
        while True:
            ticks[0] += 1
            mthread.sleep_ms(1)

    tid = mthread.start_new_thread("ticker", th_func, ())
    assert wait_until(lambda: ticks[0] > 3)
    assert mthread.suspend(tid)
    frozen = ticks[0]
    assert wait_until(lambda: mthread.status(tid) == mthread.SUSPENDED)
    assert mthread.resume(tid)
    assert wait_until(lambda: ticks[0] > frozen + 3)
    assert mthread.kill(tid)
    assert wait_until(lambda: gone(tid))
    assert tid not in others()


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
