"""allowsuspend() (SPEC §3): what it takes and returns (any truth value; the main thread is
never suspended), and that a thread's suspend() follows its latest call."""

import pytest

import mthread
from conftest import gone, start, wait_until


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
