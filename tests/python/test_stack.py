"""Stacks (SPEC §3): stack_size() and its clamping, what the default stack holds (the
recursion limit, threading's), an overflow stopping the process with a message, and the
high-water mark list() reports."""
import os

import pytest

import mthread
from conftest import (run_python, wait_until, park_until_told, run_and_collect, stack_of,
                      assert_clean_exit)


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
