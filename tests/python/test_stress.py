"""Many threads at once, concurrent gc.collect(), and random calls of every kind from many
threads on each other — bounded in time, so a deadlock between the GIL and the core's locks
fails the test instead of hanging it. The random storms run in subprocesses: a hang or a crash
there is reported with every thread's traceback."""
import gc
import time

import mthread
from conftest import LONG, assert_clean_exit, gone, others, run_python, start, wait_until


def test_150_threads_at_once():
    count = 150
    replies = []

    def worker(i):
        typ, sender, msg = mthread.getmsg(LONG * 1000)
        if typ == 1:
            while not mthread.sendmsg(sender, msg * 2):  # the main mailbox holds 8
                mthread.sleep_us(200)

    begin = time.monotonic()
    ids = [mthread.start_new_thread("w%03d" % i, worker, (i,)) for i in range(count)]
    spawn = time.monotonic() - begin
    assert len(set(ids)) == count
    rows = mthread.list(False)
    assert len(rows) == count + 1
    assert {row[2] for row in rows} >= {"w%03d" % i for i in range(count)}
    assert wait_until(lambda: all(mthread.status(t) == mthread.WAITING for t in ids),
                      timeout=LONG)
    for i, tid in enumerate(ids):
        assert mthread.sendmsg(tid, i)
        # The main mailbox holds 8: read as we go.
        while True:
            m = mthread.getmsg()
            if m[0] == 0:
                break
            replies.append(m)
    deadline = time.monotonic() + LONG
    while len(replies) < count and time.monotonic() < deadline:
        m = mthread.getmsg(100)
        if m[0]:
            replies.append(m)
    assert sorted(r[2] for r in replies) == [2 * i for i in range(count)]
    assert {r[1] for r in replies} == set(ids)
    assert wait_until(lambda: not others(), timeout=LONG)
    assert spawn < 15, f"starting {count} threads took {spawn:.1f} s"


def test_start_and_end_churn():
    seen = set()
    for _ in range(300):
        tid = start(lambda: None)
        assert tid not in seen
        seen.add(tid)
    assert wait_until(lambda: not others(), timeout=LONG)


def test_threads_starting_threads_concurrently():
    started = []

    def spawner(k):
        for i in range(30):
            started.append(mthread.start_new_thread("c%d-%d" % (k, i), mthread.sleep_ms, (1,)))

    ids = [start(spawner, k, name="spawner%d" % k) for k in range(5)]
    assert wait_until(lambda: all(gone(t) for t in ids), timeout=LONG)
    assert len(started) == 150 and len(set(started)) == 150
    assert wait_until(lambda: not others(), timeout=LONG)


def test_concurrent_gc_collect():
    """gc.collect() in many threads at once, with cycles whose finalizers call mthread — it
    crashed the device."""
    finalized = [0]

    class Node:
        def __init__(self):
            self.other = None

        def __del__(self):
            mthread.getSelfName()
            mthread.status(mthread.getReplID())
            finalized[0] += 1

    def worker():
        for _ in range(15):
            for _ in range(200):
                a, b = Node(), Node()
                a.other, b.other = b, a
            gc.collect()
            mthread.sleep_us(100)

    ids = [start(worker, name="gc%d" % i) for i in range(20)]
    for _ in range(10):
        gc.collect()
    assert wait_until(lambda: all(gone(t) for t in ids), timeout=LONG * 2)
    gc.collect()
    assert finalized[0] == 20 * 15 * 200 * 2


def test_gc_while_threads_are_suspended_and_killed():
    def worker():
        mthread.allowsuspend(True)
        junk = []
        while True:
            junk.append([junk])
            if len(junk) > 100:
                junk = []
                gc.collect()

    ids = [start(worker) for _ in range(8)]
    for round_ in range(20):
        for tid in ids:
            mthread.suspend(tid)
        gc.collect()
        for tid in ids:
            mthread.resume(tid)
    for tid in ids:
        mthread.kill(tid)
    assert wait_until(lambda: all(gone(t) for t in ids), timeout=LONG)


def test_killers_and_victims_kill_each_other():
    def worker():
        mthread.allowsuspend(True)
        while True:
            victims = [row[0] for row in mthread.list(False) if row[1] != mthread.MAIN]
            for v in victims[:2]:
                if v != mthread.getSelfID():
                    mthread.suspend(v)
                    mthread.resume(v)
            mthread.sleep_us(50)

    ids = [start(worker, name="k%d" % i) for i in range(12)]
    time.sleep(0.3)
    for tid in ids:
        mthread.kill(tid)
    assert wait_until(lambda: all(gone(t) for t in ids), timeout=LONG)


RANDOM_STORM = r"""
import faulthandler, random, sys, time, gc
import mthread

faulthandler.dump_traceback_later(50, exit=True)  # a hang ends with every thread's traceback
stop_at = time.monotonic() + %(seconds)f
N = %(threads)d
errors = []

def random_id():
    rows = mthread.list(False)
    choice = random.random()
    if choice < 0.8 and rows:
        return random.choice(rows)[0]
    return random.choice([0, 10 ** 9, mthread.getReplID()])

def storm(seed):
    rng = random.Random(seed)
    mthread.allowsuspend(True)
    while time.monotonic() < stop_at:
        op = rng.randrange(17)
        try:
            if op == 0:
                mthread.suspend(random_id())
            elif op == 1:
                mthread.resume(random_id())
            elif op == 2:
                mthread.notify(random_id(), rng.randrange(1, 2 ** 32))
            elif op == 3:
                mthread.sendmsg(random_id(), rng.randrange(-2 ** 63, 2 ** 63))
            elif op == 4:
                mthread.sendmsg(random_id(), "x" * rng.randrange(1, 2000))
            elif op == 5:
                mthread.getmsg()
            elif op == 6:
                mthread.getmsg(rng.random() * 2)
            elif op == 7:
                mthread.wait(rng.random() * 2)
            elif op == 8:
                mthread.list(False)
            elif op == 9:
                mthread.status(random_id())
                mthread.getThreadName(random_id())
                mthread.isnotified(random_id())
            elif op == 10:
                mthread.sleep_us(rng.randrange(0, 500))
            elif op == 11:
                mthread.getnotification()
            elif op == 12 and len(mthread.list(False)) < N + 20:
                mthread.start_new_thread("child", mthread.sleep_ms, (rng.randrange(0, 5),))
            elif op == 13:
                gc.collect(0)
            elif op == 14 and rng.random() < 0.02:
                victim = random_id()
                if victim != mthread.getSelfID():
                    mthread.kill(victim)
            elif op == 15:
                mthread.allowsuspend(rng.random() < 0.8)
            elif op == 16:
                mthread.stop(random_id())
        except Exception as e:  # no exception is expected here
            errors.append(repr(e))

ids = [mthread.start_new_thread("storm%%d" %% i, storm, (i,)) for i in range(N)]
# The main thread takes part too (it cannot be suspended or killed).
while time.monotonic() < stop_at:
    mthread.suspend(random_id()); mthread.resume(random_id())
    mthread.notify(random_id(), 1); mthread.sendmsg(random_id(), "m")
    mthread.getmsg(); mthread.getnotification(); mthread.list(False)
    time.sleep(0.001)
# End: resume everything, kill everything, all must be gone within a bound.
deadline = time.monotonic() + 20
while time.monotonic() < deadline:
    rest = [row[0] for row in mthread.list(False) if row[1] != mthread.MAIN]
    if not rest:
        break
    for tid in rest:
        mthread.resume(tid)
        mthread.kill(tid)
    time.sleep(0.01)
rest = [row for row in mthread.list(False) if row[1] != mthread.MAIN]
print("REST", rest)
print("ERRORS", errors[:5])
faulthandler.cancel_dump_traceback_later()
"""


def run_storm(threads, seconds):
    result = run_python(RANDOM_STORM % {"threads": threads, "seconds": seconds}, timeout=90)
    assert_clean_exit(result.returncode, result.stderr, {0})
    assert "REST []" in result.stdout, result.stdout + result.stderr
    assert "ERRORS []" in result.stdout, result.stdout
    assert "Traceback" not in result.stderr, result.stderr


def test_random_api_storm_many_threads():
    run_storm(threads=24, seconds=4.0)


def test_random_api_storm_few_threads_high_contention():
    run_storm(threads=4, seconds=3.0)


def test_suspend_resume_storm_while_targets_call_into_core():
    """Controllers suspend and resume targets that spend their time inside mthread calls."""
    result = run_python(r"""
        import faulthandler, time, mthread
        faulthandler.dump_traceback_later(50, exit=True)
        stop_at = time.monotonic() + 3
        def target():
            mthread.allowsuspend(True)
            me = mthread.getSelfID()
            while time.monotonic() < stop_at:
                mthread.sendmsg(me, 1)
                mthread.getmsg()
                mthread.notify(me, 1)
                mthread.getnotification()
                mthread.list(False)
        def controller(ids):
            while time.monotonic() < stop_at:
                for t in ids:
                    mthread.suspend(t)
                for t in ids:
                    mthread.resume(t)
        targets = [mthread.start_new_thread("target%d" % i, target, ()) for i in range(6)]
        controllers = [mthread.start_new_thread("ctl%d" % i, controller, (targets,))
                       for i in range(3)]
        while any(mthread.status(t) != mthread.TERMINATED for t in controllers):
            time.sleep(0.01)
        for t in targets:
            mthread.resume(t)
        deadline = time.monotonic() + 20
        while any(mthread.status(t) != mthread.TERMINATED for t in targets):
            assert time.monotonic() < deadline, "targets did not finish"
            time.sleep(0.01)
        faulthandler.cancel_dump_traceback_later()
        print("OK")
    """, timeout=90)
    assert_clean_exit(result.returncode, result.stderr, {0})
    assert result.stdout.strip() == "OK", result.stderr


def test_message_ping_pong_throughput():
    rounds = 2000

    def pong():
        while True:
            typ, sender, msg = mthread.getmsg(LONG * 1000)
            if typ != 1 or msg < 0:
                return
            mthread.sendmsg(sender, msg + 1)

    tid = start(pong, name="pong")

    results = []

    def ping():
        for i in range(rounds):
            mthread.sendmsg(tid, i)
            typ, _, msg = mthread.getmsg(LONG * 1000)
            results.append(msg == i + 1)
        mthread.sendmsg(tid, -1)

    begin = time.monotonic()
    pinger = start(ping, name="ping")
    assert wait_until(lambda: gone(pinger) and gone(tid), timeout=LONG)
    elapsed = time.monotonic() - begin
    assert elapsed < LONG
    assert results == [True] * rounds
