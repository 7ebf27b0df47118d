"""list() in its device format and as tuples, and status() through a thread's life (SPEC §3)."""
import re

import mthread
from conftest import Flag, gone, start, wait_until, park_until_told, run_and_collect


LIST_LINE = re.compile(
    r"^ID=(\d+), Name: (.*), State: (running|suspended|waiting), Stack=(\d+), "
    r"MaxUsed=(\d+), Type: (MAIN|PYTHON|SERVICE|NATIVE)$")


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
