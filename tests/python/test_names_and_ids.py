"""Names and ids (SPEC §3): the main and REPL ids, getThreadName/getSelfName, how id
arguments are checked, and an unknown id being no error."""
import threading

import pytest

import mthread
from conftest import gone, start, wait_until, run_and_collect


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
