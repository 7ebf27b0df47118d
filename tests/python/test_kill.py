"""Kill of PYTHON threads (SPEC §2): busy, swallowing, blocked and suspended threads end, their
`finally` and `with` cleanup runs completely, the end is silent."""
import statistics
import sys
import threading
import time

import pytest

import mthread
from conftest import (SHORT, Flag, assert_clean_exit, gone, run_python, start, wait_stable,
                      wait_until)

KILL_BOUND = 2.0  # generous; SPEC says 10 ms for blocked and suspended threads


def kill_and_time(tid):
    begin = time.monotonic()
    assert mthread.kill(tid) is True
    assert wait_until(lambda: gone(tid), timeout=KILL_BOUND), "thread did not end"
    return time.monotonic() - begin


def test_kill_busy_loop_runs_finally(capfd):
    counter = [0]
    cleaned = []

    def body():
        try:
            while True:
                counter[0] += 1
        finally:
            cleaned.append("finally")

    tid = start(body, name="busy")
    assert wait_until(lambda: counter[0] > 1000)
    kill_and_time(tid)
    assert cleaned == ["finally"]
    assert mthread.status(tid) == mthread.TERMINATED
    assert tid not in [row[0] for row in mthread.list(False)]
    err = capfd.readouterr().err
    assert "Traceback" not in err and "ThreadKilled" not in err


def test_killed_thread_sees_thread_killed():
    seen = []

    def body():
        try:
            mthread.sleep(30)
        except BaseException as e:
            seen.append((type(e), isinstance(e, SystemExit)))
            raise

    tid = start(body)
    assert wait_until(lambda: mthread.status(tid) == mthread.WAITING)
    kill_and_time(tid)
    assert seen == [(mthread.ThreadKilled, True)]


def test_except_exception_does_not_catch_kill():
    caught = []

    inside = threading.Event()

    def body():
        try:
            inside.set()
            while True:
                pass
        except Exception:  # noqa: BLE001 - what the test checks
            caught.append("Exception")

    tid = start(body)
    assert inside.wait(SHORT)
    kill_and_time(tid)
    assert caught == []


def test_swallowing_thread_is_killed_again():
    swallowed = []
    after = []

    inside = threading.Event()

    def body():
        try:
            inside.set()
            while True:
                pass
        except BaseException:  # swallows the first kill ...
            swallowed.append(1)
        after.append("went on")
        while True:  # ... and goes on: killed again here
            pass

    tid = start(body, name="swallower")
    assert inside.wait(SHORT)
    kill_and_time(tid)
    # Raised again at the next line once the handler is over.
    assert swallowed == [1] and after in ([], ["went on"])


def test_repeated_swallowing_loop_is_killed_eventually():
    swallowed = [0]

    inside = threading.Event()

    def body():
        for _ in range(3):
            try:
                inside.set()
                while True:
                    pass
            except BaseException:
                swallowed[0] += 1
        while True:
            pass

    tid = start(body)
    assert inside.wait(SHORT)
    kill_and_time(tid)
    assert 1 <= swallowed[0] <= 3


def test_with_and_finally_cleanup_run_completely():
    steps = []

    class Resource:
        def __enter__(self):
            steps.append("enter")
            return self

        def __exit__(self, *exc):
            steps.append("exit start")
            total = 0
            for i in range(200_000):  # many bytecodes: a re-raised kill would cut this short
                total += i
            mthread.sleep_ms(30)  # a cleanup sleep is not cut short
            steps.append(("exit end", total))
            return False

    def body():
        try:
            with Resource():
                try:
                    mthread.sleep(30)
                finally:
                    steps.append("inner finally")
                    mthread.sleep_ms(10)
                    steps.append("inner finally end")
        finally:
            steps.append("outer finally")
            m = mthread.getmsg(50)
            steps.append(("outer finally end", m[0]))

    tid = start(body)
    assert wait_until(lambda: mthread.status(tid) == mthread.WAITING)
    kill_and_time(tid)
    assert steps == ["enter", "inner finally", "inner finally end", "exit start",
                     ("exit end", sum(range(200_000))), "outer finally",
                     ("outer finally end", 0)]


def test_cleanup_that_catches_its_own_exceptions_runs_completely():
    steps = []

    entered = threading.Event()

    class Resource:
        def __enter__(self):
            entered.set()
            return self

        def __exit__(self, *exc):
            for key in ("a", "b", "c"):
                try:
                    {}[key]
                except KeyError:
                    steps.append(key)  # a nested handler: still cleanup, not to be cut
            for _ in iter([1, 2, 3]):  # StopIteration inside
                pass
            steps.append("exit end")
            return False

    def body():
        with Resource():
            while True:
                pass

    tid = start(body)
    assert entered.wait(SHORT)
    kill_and_time(tid)
    assert steps == ["a", "b", "c", "exit end"]


def test_lock_released_by_with_on_kill():
    lock = threading.Lock()
    inside = Flag()

    def body():
        with lock:
            inside.set()
            while True:
                pass

    tid = start(body)
    assert wait_until(lambda: inside)
    assert lock.locked()
    kill_and_time(tid)
    assert not lock.locked()


@pytest.mark.parametrize("block", [
    lambda: mthread.getmsg(10 ** 9),
    lambda: mthread.getmsg(float("inf")),
    lambda: mthread.wait(),
    lambda: mthread.wait(10 ** 9),
    lambda: mthread.sleep(1000),
    lambda: mthread.sleep_ms(10 ** 7),
    lambda: mthread.sleep_us(10 ** 10),
], ids=["getmsg", "getmsg-inf", "wait", "wait-timeout", "sleep", "sleep_ms", "sleep_us"])
def test_kill_blocked_thread_quickly(block):
    latencies = []
    for _ in range(5):
        tid = start(block, name="blocked")
        assert wait_until(lambda: mthread.status(tid) == mthread.WAITING)
        latencies.append(kill_and_time(tid))
    assert statistics.median(latencies) < 0.25, latencies


def test_kill_suspended_busy_thread():
    counter = [0]
    cleaned = []

    def body():
        mthread.allowsuspend(True)
        try:
            while True:
                counter[0] += 1
        finally:
            cleaned.append(True)

    tid = start(body)
    assert wait_until(lambda: counter[0] > 100)
    assert mthread.suspend(tid)
    wait_stable(lambda: counter[0])
    assert kill_and_time(tid) < KILL_BOUND
    assert cleaned == [True]


def test_kill_thread_suspended_in_sleep():
    cleaned = []

    def body():
        mthread.allowsuspend(True)
        try:
            mthread.sleep(1000)
        finally:
            cleaned.append(True)

    tid = start(body)
    assert wait_until(lambda: mthread.status(tid) == mthread.WAITING)
    assert mthread.suspend(tid)
    kill_and_time(tid)
    assert cleaned == [True]


def test_kill_self():
    after = []
    cleaned = []

    def body():
        try:
            mthread.kill(mthread.getSelfID())
            after.append("after kill")
        finally:
            cleaned.append(True)

    tid = start(body)
    assert wait_until(lambda: gone(tid))
    assert after == [] and cleaned == [True]


def test_kill_self_raises_thread_killed():
    seen = []

    def body():
        try:
            mthread.kill(mthread.getSelfID())
        except BaseException as e:
            seen.append(type(e))

    tid = start(body)
    assert wait_until(lambda: gone(tid))
    assert seen == [mthread.ThreadKilled]


def test_kill_main_is_false():
    assert mthread.kill(mthread.getReplID()) is False
    out = []
    tid = start(lambda: out.append(mthread.kill(mthread.getReplID())))
    assert wait_until(lambda: gone(tid))
    assert out == [False]


def test_kill_unknown_or_ended():
    assert mthread.kill(0) is False
    assert mthread.kill(10 ** 15) is False
    tid = start(lambda: None)
    assert wait_until(lambda: gone(tid))
    assert mthread.kill(tid) is False


def test_kill_right_after_start_is_silent(capfd):
    ran = []
    for _ in range(100):
        tid = start(lambda: ran.append(1) or mthread.sleep(100))
        assert mthread.kill(tid)
        assert wait_until(lambda: gone(tid), timeout=KILL_BOUND)
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Unhandled" not in err, err


def test_kill_from_another_thread():
    victim = start(mthread.sleep, 1000, name="victim")
    out = []
    killer = start(lambda: out.append(mthread.kill(victim)), name="killer")
    assert wait_until(lambda: gone(killer) and gone(victim))
    assert out == [True]


def test_kill_thread_in_cpython_sleep_ends_after_it():
    def body():
        while True:
            time.sleep(0.05)

    tid = start(body)
    time.sleep(0.01)
    assert kill_and_time(tid) < KILL_BOUND


def test_kill_frees_mailbox_and_name():
    tid = start(mthread.sleep, 1000, name="mailbox owner")
    for i in range(8):
        assert mthread.sendmsg(tid, "pending %d" % i)
    kill_and_time(tid)
    assert mthread.sendmsg(tid, 1) is False
    assert mthread.getThreadName(tid) == "unknown"


def test_kill_thread_that_catches_and_returns():
    def body():
        try:
            mthread.wait()
        except mthread.ThreadKilled:
            return "swallowed and returned"

    tid = start(body)
    assert wait_until(lambda: mthread.status(tid) == mthread.WAITING)
    kill_and_time(tid)


def test_kill_many_busy_threads_at_once():
    counters = [[0] for _ in range(20)]

    def body(c):
        while True:
            c[0] += 1

    ids = [start(body, c) for c in counters]
    assert wait_until(lambda: all(c[0] for c in counters), timeout=SHORT * 2)
    for tid in ids:
        assert mthread.kill(tid)
    assert wait_until(lambda: all(gone(t) for t in ids), timeout=SHORT * 2)


def test_kill_thread_with_its_own_tracer():
    """A thread traced by sys.settrace (a debugger, coverage) is killed and ends."""
    lines = []

    def tracer(frame, event, arg):
        lines.append(event)
        return tracer

    def loop():
        while True:
            mthread.sleep_ms(1)

    def body():
        sys.settrace(tracer)
        loop()

    tid = start(body)
    assert wait_until(lambda: len(lines) > 10)
    kill_and_time(tid)


def test_traced_code_still_runs_after_kills():
    """Regression: clearing a kill with PyThreadState_SetAsyncExc(id, NULL) left the eval
    breaker set for good, and CPython 3.11 then spun forever entering any traced function."""
    result = run_python("""
        import sys, mthread, time
        tid = mthread.start_new_thread("t", mthread.sleep, (100,))
        while mthread.status(tid) != mthread.WAITING:
            time.sleep(0.001)
        mthread.kill(tid)
        while mthread.status(tid) != mthread.TERMINATED:
            time.sleep(0.001)
        def traced():
            return 1
        def tracer(frame, event, arg):
            return tracer
        # a thread that ends with a tracer set
        def body():
            sys.settrace(tracer)
        tid = mthread.start_new_thread("traced", body, ())
        while mthread.status(tid) != mthread.TERMINATED:
            time.sleep(0.001)
        sys.settrace(tracer)
        traced()
        sys.settrace(None)
        print("ok")
    """, timeout=30)
    assert_clean_exit(result.returncode, result.stderr, {0})
    assert result.stdout.strip() == "ok"


def test_kill_landing_in_finalizers_is_silent():
    """A ThreadKilled delivered inside __del__ or a weakref callback cannot be raised there;
    the kill must stay silent (no "Exception ignored in ...") and still end the thread."""
    result = run_python("""
        import mthread, time, weakref
        class Node:
            def __del__(self):
                x = 0
                for i in range(50):
                    x += i
        class Target:
            pass
        def body():
            while True:
                n = Node()
                del n
                t = Target()
                r = weakref.ref(t, lambda ref: sum(range(30)))
                del t
        for i in range(100):
            tid = mthread.start_new_thread("churner", body, ())
            time.sleep(0.001 * (i % 4))
            mthread.kill(tid)
            while mthread.status(tid) != mthread.TERMINATED:
                time.sleep(0.001)
        print("done")
    """, timeout=120)
    assert_clean_exit(result.returncode, result.stderr, {0})
    assert result.stdout.strip() == "done"
    assert "Exception ignored" not in result.stderr, result.stderr[:3000]
    assert "ThreadKilled" not in result.stderr, result.stderr[:3000]


def test_other_unraisable_exceptions_still_reported_after_kills():
    result = run_python("""
        import sys, mthread, time
        seen = []
        sys.unraisablehook = lambda u: seen.append(type(u.exc_value).__name__)
        tid = mthread.start_new_thread("t", mthread.sleep, (100,))
        while mthread.status(tid) != mthread.WAITING:
            time.sleep(0.001)
        mthread.kill(tid)
        while mthread.status(tid) != mthread.TERMINATED:
            time.sleep(0.001)
        class Bad:
            def __del__(self):
                raise ValueError("from __del__")
        Bad()
        print(seen)
    """)
    assert_clean_exit(result.returncode, result.stderr, {0})
    assert result.stdout.strip() == "['ValueError']"


def test_with_exit_and_functions_a_finally_calls_run_on_the_normal_path():
    """A kill that comes while a `with` block or a `try` is leaving normally (the GIL is often
    handed over just as __exit__ or release() starts) lets them run to their end."""
    counts = {"enter": 0, "exit": 0, "acquired": 0, "released": 0}

    class Resource:
        def __enter__(self):
            counts["enter"] += 1

        def __exit__(self, *exc):
            counts["exit"] += 1

    def acquire():
        counts["acquired"] += 1

    def release():
        counts["released"] += 1

    def body():
        while True:
            with Resource():
                x = 1  # noqa: F841
            acquire()
            try:
                x = 2  # noqa: F841
            finally:
                release()

    for _ in range(30):
        for key in counts:
            counts[key] = 0
        tid = start(body, name="cleaner")
        assert wait_until(lambda: counts["enter"] > 20)
        kill_and_time(tid)
        assert counts["enter"] == counts["exit"], counts
        assert counts["released"] >= counts["acquired"] - 1, counts  # acquire() itself may be cut


def test_generator_closed_by_a_kill_runs_its_finally():
    closed = []
    progress = [0]

    def numbers():
        try:
            while True:
                yield 1
        finally:
            closed.append(True)

    def body():
        for _ in numbers():
            progress[0] += 1

    for _ in range(10):
        progress[0] = 0
        closed.clear()
        tid = start(body, name="consumer")
        assert wait_until(lambda: progress[0] > 100)
        kill_and_time(tid)
        assert closed == [True]
