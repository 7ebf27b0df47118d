"""Suspend and kill hold whatever a thread's loop looks like (SPEC §2), on every supported CPython:
a SUSPENDED thread burns no CPU (its CPU clock, read from outside, stands still), goes on after
resume, and a kill runs the `finally` written right around the loop.

Each shape is written out with its own `try/finally` around the loop, because where the loop
starts inside the `try` is what decides whether an exception raised at its backward jump is
caught (CPython 3.11 and 3.12 place one raised there outside the `try`)."""
import threading
import time

import pytest

import mthread
from conftest import LONG, SHORT, gone, start, wait_until

CPU_QUIET = 0.3  # seconds a suspended thread is watched for CPU use


def spin_pass(ready, cleaned):
    ready.set()
    try:
        while True: pass  # noqa: E701 — one line, jumping back to itself
    finally:
        cleaned.append("finally")


def spin_one_line(ready, cleaned):
    x = 0
    ready.set()
    try:
        while True: x += 1  # noqa: E701
    finally:
        cleaned.append("finally")


def spin_for_iter(ready, cleaned):
    ready.set()
    try:
        for _ in iter(int, 1):
            pass
    finally:
        cleaned.append("finally")


def spin_generator_sum(ready, cleaned):
    ready.set()
    try:
        sum(x for x in iter(int, 1))
    finally:
        cleaned.append("finally")


def spin_comprehension(ready, cleaned):
    ready.set()
    try:
        {x for x in iter(int, 1)}  # the set stays at one element
    finally:
        cleaned.append("finally")


def descend(depth):
    if depth:
        descend(depth - 1)


def spin_recursion(ready, cleaned):
    ready.set()
    try:
        while True:
            descend(50)
    finally:
        cleaned.append("finally")


def spin_builtin_calls(ready, cleaned):
    items = (1, 2, 3)
    ready.set()
    try:
        while True:
            len(items)
            max(items)
    finally:
        cleaned.append("finally")


SHAPES = [spin_pass, spin_one_line, spin_for_iter, spin_generator_sum, spin_comprehension,
          spin_recursion, spin_builtin_calls]


def start_shape(shape, suspendable=True):
    ready = threading.Event()
    cleaned = []
    ident = []

    def body():
        ident.append(threading.get_ident())
        mthread.allowsuspend(suspendable)
        shape(ready, cleaned)

    tid = start(body, name=shape.__name__)
    assert ready.wait(SHORT)
    return tid, cleaned, time.pthread_getcpuclockid(ident[0])


def cpu_used(clock, seconds):
    before = time.clock_gettime(clock)
    time.sleep(seconds)
    return time.clock_gettime(clock) - before


def kill_and_check_finally(tid, cleaned):
    assert mthread.kill(tid) is True
    assert wait_until(lambda: gone(tid)), "thread did not end"
    assert cleaned == ["finally"]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda shape: shape.__name__)
def test_suspended_loop_burns_no_cpu_and_resumes(shape):
    tid, cleaned, clock = start_shape(shape)
    assert mthread.suspend(tid) is True
    assert mthread.status(tid) == mthread.SUSPENDED
    # Parked within a moment; from then on its CPU clock stands still.
    assert wait_until(lambda: cpu_used(clock, 0.02) < 0.001), "suspended thread kept running"
    assert cpu_used(clock, CPU_QUIET) < 0.01
    resumed_at = time.clock_gettime(clock)
    assert mthread.resume(tid) is True
    # Runs again: its CPU clock moves on (slowly on a loaded machine, hence the long deadline).
    assert wait_until(lambda: time.clock_gettime(clock) - resumed_at > 0.002, timeout=LONG), \
        "resumed thread did not go on"
    kill_and_check_finally(tid, cleaned)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda shape: shape.__name__)
def test_kill_runs_the_finally_around_the_loop(shape):
    tid, cleaned, _ = start_shape(shape, suspendable=False)
    kill_and_check_finally(tid, cleaned)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda shape: shape.__name__)
def test_kill_of_suspended_loop_runs_finally(shape):
    tid, cleaned, _ = start_shape(shape)
    assert mthread.suspend(tid) is True
    kill_and_check_finally(tid, cleaned)


def test_swallowed_kill_in_a_self_loop_comes_again():
    ready = threading.Event()
    caught = []

    def body():
        ready.set()
        while True:
            try:
                while True: pass  # noqa: E701
            except mthread.ThreadKilled:
                caught.append(len(caught))

    tid = start(body, name="swallower")
    assert ready.wait(SHORT)
    assert mthread.kill(tid) is True
    assert wait_until(lambda: gone(tid)), "thread did not end"
    # Swallowed once, then raised again at the next line, outside the `try`.
    assert caught == [0]


def test_nothing_stays_armed_while_a_thread_is_parked():
    """Once a suspended thread has parked, no monitoring event (3.12+) is left on for the other
    threads, and a plain thread has no tracer (3.11), so they run at full speed."""
    import sys
    tid, cleaned, clock = start_shape(spin_pass)
    assert mthread.suspend(tid) is True
    assert wait_until(lambda: cpu_used(clock, 0.02) < 0.001), "suspended thread kept running"
    monitoring = getattr(sys, "monitoring", None)
    if monitoring is not None:
        assert wait_until(lambda: all(monitoring.get_events(tool) == 0 for tool in range(6)))
    traces = []
    worker = threading.Thread(target=lambda: traces.append(sys.gettrace()))
    worker.start()
    worker.join(SHORT)
    assert traces == [None]
    kill_and_check_finally(tid, cleaned)
