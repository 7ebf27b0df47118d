"""Model-based test: a hypothesis state machine drives the Python API from the main
thread and from worker threads it commands, and checks every answer against a small model of
the threads, their states, notification slots and mailboxes.

Each worker runs a command loop (an idle worker sleeps in mthread.sleep_ms(1) between looks at
its queue, so it can be suspended and killed at once). The test waits for every command's
answer before the next step, so the model always knows where each worker is: idle, or blocked
in mthread.wait() / mthread.getmsg(timeout) because the test told it to block there. A blocked
worker is woken by the notification or message the model says it takes.
"""
import collections
import os

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (RuleBasedStateMachine, invariant, precondition, rule,
                                 run_state_machine_as_test)

import mthread
from conftest import LONG, gone, wait_until

DEPTH = 8  # the default mailbox depth, as on the device
MAX_WORKERS = 4
BLOCK_MS = 120_000  # "forever" for a blocked getmsg: the test always wakes or kills it first
PAGE = 4096

values = st.integers(min_value=1, max_value=2**32 - 1)
messages = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40))
stack_sizes = st.sampled_from([0, 1, 4096, 100_000, mthread.MIN_STACK_SIZE, 1 << 20, 3 << 20])


def msg_tuple(msg, sender):
    return (1, sender, msg) if isinstance(msg, int) else (2, sender, msg)


class Worker:
    """A thread that runs the commands the test gives it and reports each answer."""

    def __init__(self, name, stacksize):
        self.name = name
        self.commands = collections.deque()
        self.answers = collections.deque()
        self.tid = mthread.start_new_thread(name, self._loop, (), stacksize=stacksize)

    def _loop(self):
        while True:
            while not self.commands:
                mthread.sleep_ms(1)
            command, args = self.commands.popleft()
            if command == "exit":
                return
            self.answers.append(getattr(mthread, command)(*args))

    def order(self, command, *args):
        self.commands.append((command, args))

    def answer(self):
        assert wait_until(lambda: self.answers, timeout=LONG), \
            f"worker {self.name} gave no answer"
        return self.answers.popleft()

    def ask(self, command, *args):
        self.order(command, *args)
        return self.answer()


class Model:
    """What the test believes about one worker."""

    def __init__(self, worker, stack):
        self.worker = worker
        self.slot = 0                  # pending notification, 0: none
        self.box = collections.deque()  # (type, sender, msg)
        self.allow = False
        self.suspended = False
        self.blocked = None            # None, "wait" or "getmsg"
        self.stack = stack


def effective_stack(requested, default):
    if requested == 0:
        return default
    size = min(max(requested, mthread.MIN_STACK_SIZE), mthread.MAX_STACK_SIZE)
    return (size + PAGE - 1) // PAGE * PAGE


class ThreadModel(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.main = mthread.getReplID()
        self.workers = {}  # tid -> Model
        self.dead = []
        self.main_box = collections.deque()
        self.main_slot = 0
        self.count = 0

    # --- helpers -----------------------------------------------------------------------------
    def idle(self):
        return [m for m in self.workers.values() if not m.suspended and m.blocked is None]

    def deliver_notification(self, m, value):
        m.slot = value
        self.settle(m)

    def deliver_message(self, m, message):
        """True if the mailbox accepted it."""
        if len(m.box) >= DEPTH:
            return False
        m.box.append(message)
        self.settle(m)
        return True

    def settle(self, m):
        """A blocked worker that can go on does: check what it returns."""
        if m.suspended or m.blocked is None:
            return
        if m.blocked == "wait" and m.slot:
            assert m.worker.answer() == m.slot
            m.slot, m.blocked = 0, None
        elif m.blocked == "getmsg" and m.box:
            assert m.worker.answer() == m.box.popleft()
            m.blocked = None

    def forget(self, tid):
        assert wait_until(lambda: gone(tid), timeout=LONG), f"thread {tid} did not end"
        self.dead.append(tid)
        del self.workers[tid]

    def any_target(self, data_index, include_dead=True):
        targets = sorted(self.workers)
        if include_dead:
            targets += self.dead[-3:]
        return targets[data_index % len(targets)] if targets else None

    # --- rules -------------------------------------------------------------------------------
    @precondition(lambda self: len(self.workers) < MAX_WORKERS)
    @rule(stacksize=stack_sizes)
    def start_worker(self, stacksize):
        self.count += 1
        name = f"model-{self.count}"
        default = mthread.stack_size()
        worker = Worker(name, stacksize)
        assert worker.tid > max([self.main, *self.workers, *self.dead])  # never reused
        self.workers[worker.tid] = Model(worker, effective_stack(stacksize, default))
        assert mthread.getThreadName(worker.tid) == name
        row = [r for r in mthread.list(False) if r[0] == worker.tid]
        assert row and row[0][1] == mthread.PYTHON and row[0][4] == self.workers[worker.tid].stack

    @precondition(lambda self: self.workers)
    @rule(i=st.integers(0, 99), value=values)
    def main_notifies(self, i, value):
        tid = self.any_target(i)
        alive = tid in self.workers
        assert mthread.notify(tid, value) == alive
        if alive:
            self.deliver_notification(self.workers[tid], value)

    @rule(value=values)
    def main_notifies_everyone(self, value):
        assert mthread.notify(0, value) == bool(self.workers)
        for m in self.workers.values():
            self.deliver_notification(m, value)

    @precondition(lambda self: self.workers)
    @rule(i=st.integers(0, 99), msg=messages)
    def main_sends(self, i, msg):
        tid = self.any_target(i)
        expected = tid in self.workers and len(self.workers[tid].box) < DEPTH
        assert mthread.sendmsg(tid, msg) == expected
        if expected:
            assert self.deliver_message(self.workers[tid], msg_tuple(msg, self.main))

    @rule(msg=messages)
    def main_broadcasts(self, msg):
        full = {tid for tid, m in self.workers.items() if len(m.box) >= DEPTH}
        result = mthread.sendmsg(0, msg)
        assert result == (bool(self.workers) and not full)
        for tid, m in self.workers.items():
            if tid not in full:
                assert self.deliver_message(m, msg_tuple(msg, self.main))

    @rule()
    def main_reads_a_message(self):
        expected = self.main_box.popleft() if self.main_box else (0, 0, None)
        assert mthread.getmsg() == expected

    @rule()
    def main_reads_its_notification(self):
        assert mthread.getnotification() == self.main_slot
        self.main_slot = 0

    @precondition(lambda self: self.idle())
    @rule(data=st.data())
    def worker_reads_its_notification(self, data):
        m = data.draw(st.sampled_from(self.idle()))
        assert m.worker.ask("getnotification") == m.slot
        m.slot = 0

    @precondition(lambda self: self.idle())
    @rule(data=st.data())
    def worker_reads_a_message(self, data):
        m = data.draw(st.sampled_from(self.idle()))
        expected = m.box.popleft() if m.box else (0, 0, None)
        assert m.worker.ask("getmsg") == expected

    @precondition(lambda self: self.idle())
    @rule(data=st.data())
    def worker_waits_for_a_notification(self, data):
        m = data.draw(st.sampled_from(self.idle()))
        m.worker.order("wait")
        m.blocked = "wait"
        self.settle(m)
        if m.blocked:
            assert wait_until(lambda: mthread.status(m.worker.tid) == mthread.WAITING)

    @precondition(lambda self: self.idle())
    @rule(data=st.data())
    def worker_waits_for_a_message(self, data):
        m = data.draw(st.sampled_from(self.idle()))
        m.worker.order("getmsg", BLOCK_MS)
        m.blocked = "getmsg"
        self.settle(m)

    @precondition(lambda self: self.idle())
    @rule(data=st.data(), allow=st.booleans())
    def worker_allows_suspension(self, data, allow):
        m = data.draw(st.sampled_from(self.idle()))
        assert m.worker.ask("allowsuspend", allow) is None
        m.allow = allow

    @precondition(lambda self: self.idle())
    @rule(data=st.data(), i=st.integers(0, 99), msg=messages)
    def worker_sends(self, data, i, msg):
        sender = data.draw(st.sampled_from(self.idle()))
        targets = [self.main, *sorted(self.workers), *self.dead[-2:]]
        tid = targets[i % len(targets)]
        message = msg_tuple(msg, sender.worker.tid)
        if tid == self.main:
            expected = len(self.main_box) < DEPTH
            assert sender.worker.ask("sendmsg", tid, msg) == expected
            if expected:
                self.main_box.append(message)
        elif tid in self.workers:
            receiver = self.workers[tid]
            expected = len(receiver.box) < DEPTH
            assert sender.worker.ask("sendmsg", tid, msg) == expected
            if expected:
                assert self.deliver_message(receiver, message)
        else:
            assert sender.worker.ask("sendmsg", tid, msg) is False

    @precondition(lambda self: self.idle())
    @rule(data=st.data(), i=st.integers(0, 99), value=values)
    def worker_notifies(self, data, i, value):
        sender = data.draw(st.sampled_from(self.idle()))
        targets = [self.main, *sorted(self.workers), *self.dead[-2:]]
        tid = targets[i % len(targets)]
        alive = tid == self.main or tid in self.workers
        assert sender.worker.ask("notify", tid, value) == alive
        if tid == self.main:
            self.main_slot = value
        elif alive:
            self.deliver_notification(self.workers[tid], value)

    @precondition(lambda self: self.workers)
    @rule(i=st.integers(0, 99))
    def suspend(self, i):
        tid = self.any_target(i)
        m = self.workers.get(tid)
        expected = m is not None and m.allow and not m.suspended
        assert mthread.suspend(tid) == expected
        if expected:
            m.suspended = True
            assert mthread.status(tid) == mthread.SUSPENDED

    @precondition(lambda self: self.workers)
    @rule(i=st.integers(0, 99))
    def resume(self, i):
        tid = self.any_target(i)
        m = self.workers.get(tid)
        expected = m is not None and m.suspended
        assert mthread.resume(tid) == expected
        if expected:
            m.suspended = False
            self.settle(m)

    @precondition(lambda self: self.workers)
    @rule(i=st.integers(0, 99))
    def kill(self, i):
        tid = self.any_target(i)
        alive = tid in self.workers
        assert mthread.kill(tid) == alive
        if alive:
            self.forget(tid)

    @precondition(lambda self: self.idle())
    @rule(data=st.data())
    def worker_kills_itself(self, data):
        m = data.draw(st.sampled_from(self.idle()))
        m.worker.order("kill", m.worker.tid)
        self.forget(m.worker.tid)
        assert not m.worker.answers  # kill(self) never returns

    @precondition(lambda self: self.idle())
    @rule(data=st.data())
    def worker_ends(self, data):
        m = data.draw(st.sampled_from(self.idle()))
        m.worker.order("exit")
        self.forget(m.worker.tid)

    @precondition(lambda self: self.workers)
    @rule(i=st.integers(0, 99))
    def stop(self, i):
        tid = self.any_target(i)
        alive = tid in self.workers
        assert mthread.stop(tid) == alive
        if alive:
            self.deliver_notification(self.workers[tid], mthread.EXIT)

    @rule(size=st.sampled_from([0, 1, 65536, 300_000, 1 << 20]))
    def set_stack_size(self, size):
        default = mthread.DEFAULT_STACK_SIZE
        assert mthread.stack_size(size) == effective_stack(size, default)
        assert mthread.stack_size() == effective_stack(size, default)

    # --- invariants --------------------------------------------------------------------------
    @invariant()
    def notification_slots(self):
        for tid, m in self.workers.items():
            assert mthread.isnotified(tid) == bool(m.slot), f"worker {tid}: slot {m.slot}"
        assert mthread.isnotified(self.main) == bool(self.main_slot)

    @invariant()
    def states(self):
        for tid, m in self.workers.items():
            if m.suspended:
                assert mthread.status(tid) == mthread.SUSPENDED
            elif m.blocked:
                assert wait_until(lambda: mthread.status(tid) == mthread.WAITING)
            else:
                assert mthread.status(tid) in (mthread.RUNNING, mthread.WAITING)
        for tid in self.dead[-3:]:
            assert mthread.status(tid) == mthread.TERMINATED
            assert mthread.getThreadName(tid) == "unknown"
            assert not mthread.suspend(tid) and not mthread.resume(tid)

    @invariant()
    def listing(self):
        rows = {row[0]: row for row in mthread.list(False)}
        assert set(rows) == {self.main, *self.workers}
        assert rows[self.main][1:3] == (mthread.MAIN, "MainThread")
        for tid, m in self.workers.items():
            assert rows[tid][1:3] == (mthread.PYTHON, m.worker.name)
            assert rows[tid][4] == m.stack
            assert 0 < rows[tid][5] <= m.stack

    def teardown(self):
        for tid, m in list(self.workers.items()):
            mthread.resume(tid)
            mthread.kill(tid)
        for tid in list(self.workers):
            assert wait_until(lambda: gone(tid), timeout=LONG)
        mthread.stack_size(0)
        while mthread.getmsg()[0]:
            pass
        mthread.getnotification()


def test_thread_model():
    run_state_machine_as_test(
        ThreadModel,
        settings=settings(max_examples=int(os.environ.get("MTHREAD_MODEL_EXAMPLES", "100")),
                          stateful_step_count=40, deadline=None, database=None,
                          suppress_health_check=list(HealthCheck)))
