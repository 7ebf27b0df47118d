"""Suspend and resume of PYTHON threads (SPEC §2): a busy pure-Python loop stops before its next
line and goes on where it stopped; a thread in mthread's waits and sleeps stops at once; a
suspended thread holds no GIL."""
import sys
import time

import mthread
from conftest import SHORT, Flag, gone, start, wait_stable, wait_until


def busy_counter(counter, allow=True):
    """A tight pure-Python loop; returns a thread body."""
    def body():
        mthread.allowsuspend(allow)
        while True:
            counter[0] += 1
    return body


def test_busy_loop_stops_and_resumes():
    counter = [0]
    tid = start(busy_counter(counter), name="busy")
    assert wait_until(lambda: counter[0] > 1000)
    assert mthread.suspend(tid) is True
    assert mthread.status(tid) == mthread.SUSPENDED
    frozen, _ = wait_stable(lambda: counter[0])
    # Stays stopped while main (with the GIL free) waits.
    time.sleep(0.2)
    assert counter[0] == frozen
    assert mthread.status(tid) == mthread.SUSPENDED
    assert mthread.resume(tid) is True
    assert mthread.status(tid) == mthread.RUNNING
    assert wait_until(lambda: counter[0] > frozen + 1000)


def test_suspend_latency_is_small():
    counter = [0]
    tid = start(busy_counter(counter), name="busy")
    assert wait_until(lambda: counter[0] > 1000)
    latencies = []
    for _ in range(5):
        before = time.monotonic()
        assert mthread.suspend(tid)
        _, stopped_at = wait_stable(lambda: counter[0], quiet=0.03)
        latencies.append(stopped_at - before)
        value = counter[0]
        assert mthread.resume(tid)
        assert wait_until(lambda: counter[0] > value)
    assert min(latencies) < 0.5, latencies


def test_repeated_suspend_resume_keeps_state():
    counter = [0]
    tid = start(busy_counter(counter), name="busy")
    for _ in range(50):
        assert wait_until(lambda: mthread.suspend(tid))
        assert mthread.resume(tid)
    seen = counter[0]
    assert wait_until(lambda: counter[0] > seen)
    assert mthread.status(tid) == mthread.RUNNING


def test_suspend_requires_allowsuspend():
    counter = [0]
    tid = start(busy_counter(counter, allow=False), name="stubborn")
    assert wait_until(lambda: counter[0] > 100)
    assert mthread.suspend(tid) is False
    assert mthread.status(tid) == mthread.RUNNING
    assert mthread.resume(tid) is False
    seen = counter[0]
    assert wait_until(lambda: counter[0] > seen)


def test_new_thread_not_suspendable_until_it_allows():
    allow = Flag()
    allowed = Flag()

    def body():
        while not allow:
            mthread.sleep_ms(1)
        mthread.allowsuspend(True)
        allowed.set()
        mthread.sleep(30)

    tid = start(body)
    assert mthread.suspend(tid) is False
    allow.set()
    assert wait_until(lambda: allowed)
    assert mthread.suspend(tid) is True


def test_allowsuspend_false_again():
    phase = [0]

    def body():
        mthread.allowsuspend(True)
        phase[0] = 1
        mthread.wait()
        mthread.allowsuspend(False)
        phase[0] = 2
        mthread.wait()

    tid = start(body)
    assert wait_until(lambda: phase[0] == 1)
    assert mthread.suspend(tid) and mthread.resume(tid)
    mthread.notify(tid, 1)
    assert wait_until(lambda: phase[0] == 2)
    assert mthread.suspend(tid) is False
    mthread.notify(tid, 1)
    assert wait_until(lambda: gone(tid))


def test_suspend_twice_and_resume_twice():
    counter = [0]
    tid = start(busy_counter(counter))
    assert wait_until(lambda: counter[0] > 10)
    assert mthread.suspend(tid) is True
    assert mthread.suspend(tid) is False
    assert mthread.resume(tid) is True
    assert mthread.resume(tid) is False


def test_suspend_self_is_false():
    out = []

    def body():
        mthread.allowsuspend(True)
        out.append(mthread.suspend(mthread.getSelfID()))
        out.append(mthread.status(mthread.getSelfID()))

    tid = start(body)
    assert wait_until(lambda: gone(tid))
    assert out == [False, mthread.RUNNING]


def test_suspend_main_is_false():
    assert mthread.suspend(mthread.getReplID()) is False
    assert mthread.resume(mthread.getReplID()) is False
    out = []
    tid = start(lambda: out.append(mthread.suspend(mthread.getReplID())))
    assert wait_until(lambda: gone(tid))
    assert out == [False]


def test_suspend_unknown_or_ended():
    tid = start(lambda: None)
    assert wait_until(lambda: gone(tid))
    assert mthread.suspend(tid) is False
    assert mthread.resume(tid) is False
    assert mthread.suspend(0) is False


def test_suspend_inside_mthread_sleep():
    after = Flag()

    def body():
        mthread.allowsuspend(True)
        mthread.sleep_ms(100)
        after.set()

    tid = start(body)
    assert wait_until(lambda: mthread.status(tid) == mthread.WAITING)
    assert mthread.suspend(tid)
    assert mthread.status(tid) == mthread.SUSPENDED
    time.sleep(0.4)  # well past the end of its sleep
    assert not after
    assert mthread.resume(tid)
    assert wait_until(lambda: after)


def test_suspend_inside_getmsg_keeps_message_queued():
    got = []

    def body():
        mthread.allowsuspend(True)
        got.append(mthread.getmsg(30_000))

    tid = start(body)
    assert wait_until(lambda: mthread.status(tid) == mthread.WAITING)
    assert mthread.suspend(tid)
    assert mthread.sendmsg(tid, "while suspended")
    time.sleep(0.2)
    assert got == []
    assert mthread.status(tid) == mthread.SUSPENDED
    assert mthread.resume(tid)
    assert wait_until(lambda: got)
    assert got == [(2, mthread.getReplID(), "while suspended")]


def test_suspend_inside_wait_keeps_notification():
    got = []

    def body():
        mthread.allowsuspend(True)
        got.append(mthread.wait())

    tid = start(body)
    assert wait_until(lambda: mthread.status(tid) == mthread.WAITING)
    assert mthread.suspend(tid)
    assert mthread.notify(tid, 5)
    time.sleep(0.2)
    assert got == []
    assert mthread.isnotified(tid)
    assert mthread.resume(tid)
    assert wait_until(lambda: got == [5])


def test_suspended_thread_holds_no_gil():
    frozen_counter = [0]
    other_counter = [0]
    frozen = start(busy_counter(frozen_counter), name="frozen")
    assert wait_until(lambda: frozen_counter[0] > 100)
    assert mthread.suspend(frozen)
    wait_stable(lambda: frozen_counter[0])

    def other():
        while True:
            other_counter[0] += 1
            if other_counter[0] >= 200_000:
                return

    tid = start(other, name="other")
    assert wait_until(lambda: gone(tid))
    # The main thread runs Python too.
    total = sum(range(200_000))
    assert total == 199_999 * 200_000 // 2
    assert mthread.status(frozen) == mthread.SUSPENDED


def test_many_suspended_threads_main_unaffected():
    counters = [[0] for _ in range(10)]
    ids = [start(busy_counter(c), name="b%d" % i) for i, c in enumerate(counters)]
    assert wait_until(lambda: all(c[0] > 0 for c in counters))
    for tid in ids:
        assert mthread.suspend(tid)
    wait_stable(lambda: [c[0] for c in counters])
    begin = time.monotonic()
    for _ in range(200):
        mthread.list(False)
    assert time.monotonic() - begin < SHORT
    for tid in ids:
        assert mthread.resume(tid)
    snapshot = [c[0] for c in counters]
    assert wait_until(lambda: all(c[0] > s for c, s in zip(counters, snapshot)))


def test_suspend_while_thread_runs_c_code():
    """A thread inside a long C call (no line events) stops at its next line."""
    done = []

    def body():
        mthread.allowsuspend(True)
        while True:
            done.append(sum(range(300_000)))
            done.append("line")

    tid = start(body)
    assert wait_until(lambda: len(done) > 2)
    assert mthread.suspend(tid)
    frozen, _ = wait_stable(lambda: len(done), quiet=0.1)
    assert mthread.resume(tid)
    assert wait_until(lambda: len(done) > frozen)


def test_existing_tracer_keeps_working_after_suspend():
    """The suspend tracer chains to a tracer already there (debuggers, coverage)."""
    lines = []
    marker = Flag()

    def tracer(frame, event, arg):
        if event == "line" and frame.f_code.co_name == "loop":
            lines.append(frame.f_lineno)
        return tracer

    def loop():
        while True:
            if marker:
                mthread.sleep_ms(1)
            else:
                mthread.sleep_ms(1)

    def body():
        sys.settrace(tracer)  # traces the frames called from here on
        mthread.allowsuspend(True)
        loop()

    tid = start(body)
    assert wait_until(lambda: len(lines) > 5)
    assert mthread.suspend(tid)
    assert wait_until(lambda: mthread.status(tid) == mthread.SUSPENDED)
    time.sleep(0.05)
    assert mthread.resume(tid)
    seen = len(lines)
    assert wait_until(lambda: len(lines) > seen + 5), "the thread's own tracer was lost"
    assert mthread.kill(tid)
    assert wait_until(lambda: gone(tid))


def test_suspend_then_resume_immediately_races():
    counter = [0]
    tid = start(busy_counter(counter))
    assert wait_until(lambda: counter[0] > 0)
    for _ in range(500):
        if mthread.suspend(tid):
            assert mthread.resume(tid)
    seen = counter[0]
    assert wait_until(lambda: counter[0] > seen)


def test_suspend_from_another_thread():
    counter = [0]
    target = start(busy_counter(counter), name="target")
    assert wait_until(lambda: counter[0] > 0)
    results = []

    def controller():
        results.append(mthread.suspend(target))
        mthread.sleep_ms(50)
        results.append(mthread.status(target))
        results.append(mthread.resume(target))

    tid = start(controller, name="controller")
    assert wait_until(lambda: gone(tid))
    assert results == [True, mthread.SUSPENDED, True]
    seen = counter[0]
    assert wait_until(lambda: counter[0] > seen)


def test_suspend_of_thread_that_ends_right_away():
    for _ in range(50):
        def body():
            mthread.allowsuspend(True)

        tid = start(body)
        mthread.suspend(tid)
        mthread.resume(tid)
        assert wait_until(lambda: gone(tid))
