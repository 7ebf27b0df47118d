"""Property tests: random programs of lock, condition and queue operations in managed and
``threading`` threads, with random kills of the managed ones. Whatever the program and
wherever the kills land:

- the queue loses and duplicates nothing: every item ever added was taken exactly once or is
  still in it (the ledger is written in the same line as the deque operation, and a kill lands
  only between lines);
- the lock excludes: a read-modify-write under ``with lock`` is never lost;
- no lock is left held by a dead thread's ``with`` block, and no wake is lost (but the one a
  killed waiter had already been handed: ``Condition`` gives each notify to one waiter): once
  the producers are done, every surviving consumer drains the queue and ends.

The locks are mthread's (``threading.Lock`` and the waiters of ``threading.Condition`` made
mthread's for the test, as ``install()`` does)."""
import collections
import queue
import threading
import time

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import mthread
from conftest import gone, wait_until

WAIT = 10.0  # seconds: far more than any example needs; a hang fails sooner than pytest's

SETTINGS = settings(max_examples=40, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.function_scoped_fixture])
STOP = "stop"


@pytest.fixture
def mthread_locks(monkeypatch):
    monkeypatch.setattr(threading, "Lock", mthread.allocate_lock)
    monkeypatch.setattr(threading, "_allocate_lock", mthread.allocate_lock)


class LedgerQueue(queue.Queue):
    """A queue that records every item added and taken, in the same line as the deque
    operation (one line: a kill cannot land between the two)."""

    def _init(self, maxsize):
        super()._init(maxsize)
        self.added = collections.deque()
        self.taken = collections.deque()

    def _put(self, item):
        self.added.append(item), self.queue.append(item)

    def _get(self):
        return self.taken.append(self.queue[0]) or self.queue.popleft()


worker = st.fixed_dictionaries({
    "role": st.sampled_from(["producer", "consumer", "incrementer"]),
    "managed": st.booleans(),
    "count": st.integers(0, 25),
})
program = st.fixed_dictionaries({
    "workers": st.lists(worker, min_size=1, max_size=6),
    "maxsize": st.integers(0, 3),
    "kills": st.lists(st.tuples(st.integers(0, 5), st.integers(0, 3)), max_size=4),
})


@SETTINGS
@given(program)
def test_random_programs_with_random_kills_lose_nothing(mthread_locks, prog):
    q = LedgerQueue(prog["maxsize"])
    lock = threading.Lock()
    counter = [0]
    done = []
    got = collections.Counter()

    def produce(index, count):
        for n in range(count):
            q.put((index, n))

    def consume():
        while True:
            item = q.get()
            if item == STOP:
                return
            got[item] += 1

    def increment(count):
        for _ in range(count):
            with lock:
                value = counter[0]
                mthread.sleep(0)  # let another thread try for the lock meanwhile
                counter[0] = value + 1; done.append(1)  # noqa: E702  (one line: see docstring)

    managed, plain, roles = [], [], {}
    for index, spec in enumerate(prog["workers"]):
        if spec["role"] == "producer":
            target, args = produce, (index, spec["count"])
        elif spec["role"] == "consumer":
            target, args = consume, ()
        else:
            target, args = increment, (spec["count"],)
        if spec["managed"]:
            tid = mthread.start_new_thread(f"{spec['role']}{index}", target, args)
            managed.append(tid)
            roles[tid] = spec["role"]
        else:
            thread = threading.Thread(target=target, args=args, daemon=True)
            thread.start()
            plain.append((thread, spec["role"]))

    killed = set()
    for target, delay_ms in prog["kills"]:
        if managed:
            mthread.sleep_ms(delay_ms)
            tid = managed[target % len(managed)]
            mthread.kill(tid)
            killed.add(tid)
    assert wait_until(lambda: all(gone(tid) for tid in killed), timeout=WAIT)

    # Producers and incrementers end by themselves; the main thread consumes too meanwhile
    # (the consumers may all be dead, and a bounded queue would hold the producers). It also
    # wakes the producers when the queue is empty: threading.Condition hands each notify() to
    # one waiter, and a waiter killed after it was notified takes that wake with it (as a
    # KeyboardInterrupt does in CPython), leaving the others asleep beside an empty queue.
    def others_done():
        return (all(gone(tid) for tid in managed if roles[tid] != "consumer") and
                not any(thread.is_alive() for thread, role in plain if role != "consumer"))

    deadline = time.monotonic() + WAIT
    while not others_done():
        assert time.monotonic() < deadline, "producers or incrementers hang"
        try:
            item = q.get(timeout=0.005)
        except queue.Empty:
            with q.not_full:
                q.not_full.notify_all()
            continue
        got[item] += 1

    # A consumer may have lost its wake the same way (a consumer killed after a put notified
    # it), and sleep beside items left in the queue: the kills are over, so one notify_all()
    # wakes every such consumer for good.
    with q.not_empty:
        q.not_empty.notify_all()

    # One STOP for each consumer still alive: each drains what is left, then ends.
    alive_consumers = ([tid for tid in managed if roles[tid] == "consumer" and not gone(tid)] +
                       [thread for thread, role in plain if role == "consumer"])
    stopper = threading.Thread(target=lambda: [q.put(STOP) for _ in alive_consumers])
    stopper.start()
    stopper.join(WAIT)
    assert not stopper.is_alive(), "a STOP could not be put: a consumer lost a wake"
    assert wait_until(lambda: all(gone(tid) for tid in managed), timeout=WAIT)
    for thread, role in plain:
        thread.join(WAIT)
        assert not thread.is_alive(), "a consumer lost a wake"

    added = collections.Counter(item for item in q.added if item != STOP)
    taken = collections.Counter(item for item in q.taken if item != STOP)
    left = collections.Counter(item for item in q.queue if item != STOP)
    assert all(n == 1 for n in added.values())
    assert taken + left == added, "lost or duplicated"
    assert all(n == 1 for n in taken.values()), "taken twice"
    assert not got - taken
    assert counter[0] == len(done), "an update under the lock was lost"
    assert not lock.locked(), "a dead thread's with block left the lock held"
    assert not q.mutex.locked()
