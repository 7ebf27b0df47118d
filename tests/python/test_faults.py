"""Faults and bad input, in Python: each ends in a clear error or a defined behaviour,
never a crash, a hang or something lost. Whatever can break the interpreter runs in a child."""
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

import mthread
from conftest import (LONG, PYTHON, assert_clean_exit, gone, others, popen_python, read_until,
                      run_python, script, start, wait_until)

SANITIZED = bool(os.environ.get("MTHREAD_SANITIZER"))


# --- limits --------------------------------------------------------------------------------

def test_thread_limit_is_a_clear_error_and_recovers():
    result = run_python("""
        import mthread
        ids = [mthread.start_new_thread("held", mthread.wait, ()) for _ in range(3)]
        try:
            mthread.start_new_thread("one-too-many", print, ())
        except mthread.error as e:
            print("error:", e)
        mthread.kill(ids[0])
        while mthread.status(ids[0]) != mthread.TERMINATED:
            mthread.sleep_ms(1)
        mthread.start_new_thread("again", print, ("again ran",))
        for t in ids[1:]:
            mthread.kill(t)
    """, env={"MTHREAD_MAX_THREADS": "3"})
    assert_clean_exit(result.returncode, result.stderr, allow_codes={0})
    assert "error: " in result.stdout and "limit of 3 threads" in result.stdout
    assert "MTHREAD_MAX_THREADS" in result.stdout
    assert "again ran" in result.stdout


@pytest.mark.skipif(SANITIZED, reason="ASan reserves terabytes of address space")
def test_mmap_failing_is_a_clear_error_and_leaks_nothing():
    result = run_python("""
        import resource, mthread
        def maps():
            with open("/proc/self/maps") as f:
                return sum(1 for _ in f)
        t = mthread.start_new_thread("first", lambda: None, ())
        while mthread.status(t) != mthread.TERMINATED:
            mthread.sleep_ms(1)
        with open("/proc/self/status") as f:
            vm = next(int(l.split()[1]) for l in f if l.startswith("VmSize:"))
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        resource.setrlimit(resource.RLIMIT_AS, ((vm + 128 * 1024) * 1024, hard))
        before = maps()
        errors = set()
        for _ in range(50):
            try:
                mthread.start_new_thread("too-big", print, (), stacksize=512 << 20)
                print("started under the limit")
            except (mthread.error, MemoryError) as e:
                errors.add(f"{type(e).__name__}: {e}")
        print("errors:", sorted(errors))
        print("leaked maps:", maps() - before, "threads:", len(mthread.list(False)))
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        mthread.start_new_thread("after", print, ("after ran",))
    """)
    assert_clean_exit(result.returncode, result.stderr, allow_codes={0})
    assert "started under the limit" not in result.stdout
    assert "cannot map a thread stack of 536870912 bytes" in result.stdout
    assert "leaked maps: 0 threads: 1" in result.stdout
    assert "after ran" in result.stdout


def test_a_receiver_that_never_reads_frees_what_it_held():
    result = run_python("""
        import ctypes, gc, time, mthread
        libc = ctypes.CDLL(None)
        def rss():
            gc.collect(); libc.malloc_trim(0)
            with open("/proc/self/status") as f:
                return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
        big = "x" * 60000
        def deaf():
            while True:
                mthread.sleep_ms(100)
        warm = [mthread.start_new_thread("deaf", deaf, ()) for _ in range(8)]
        for t in warm: mthread.kill(t)
        while len(mthread.list(False)) > 1: mthread.sleep_ms(1)
        before = rss()
        for round in range(5):
            ids = [mthread.start_new_thread("deaf", deaf, ()) for _ in range(40)]
            for t in ids:
                assert all(mthread.sendmsg(t, big) for _ in range(8))
            begin = time.monotonic()
            refused = sum(not mthread.sendmsg(t, 1) for t in ids for _ in range(50))
            elapsed = time.monotonic() - begin
            assert refused == 2000, refused
            assert elapsed < 2, elapsed
            for t in ids: mthread.kill(t)
            while len(mthread.list(False)) > 1: mthread.sleep_ms(1)
        print("held per round MiB:", 40 * 8 * 60000 >> 20, "grew KiB:", rss() - before)
    """)
    assert_clean_exit(result.returncode, result.stderr, allow_codes={0})
    grew = int(result.stdout.split("grew KiB:")[1])
    if not SANITIZED:
        assert grew < 8 * 1024, result.stdout  # 18 MiB a round was held, 5 rounds


# --- kill and suspend ----------------------------------------------------------------------

def test_a_killer_that_kills_itself():
    steps = []

    def victim():
        try:
            mthread.wait()
        finally:
            steps.append("victim finally")

    victims = [start(victim) for _ in range(3)]
    assert wait_until(lambda: all(mthread.status(v) == mthread.WAITING for v in victims))

    def killer():
        try:
            for v in victims:
                assert mthread.kill(v)
            mthread.kill(mthread.getSelfID())
            steps.append("after self-kill")  # never
        finally:
            steps.append("killer finally")

    k = start(killer)
    assert wait_until(lambda: gone(k) and all(gone(v) for v in victims), timeout=LONG)
    assert steps.count("victim finally") == 3
    assert "killer finally" in steps and "after self-kill" not in steps


def test_kill_and_suspend_racing_on_one_thread_from_several_threads():
    for round_ in range(15):
        ended, inside = [], []

        def target():
            mthread.allowsuspend(True)
            try:
                inside.append(True)
                while True:
                    pass
            finally:
                ended.append(True)

        t = start(target)
        assert wait_until(lambda: inside)  # a kill before the try would skip the finally

        def racer(r):
            for i in range(150):
                op = (i + r + round_) % 5
                if op in (0, 1):
                    mthread.suspend(t)
                elif op in (2, 3):
                    mthread.resume(t)
                elif i > 75:
                    mthread.kill(t)
                if i % 10 == 0:
                    mthread.sleep_us(50)

        racers = [start(racer, r) for r in range(4)]
        assert wait_until(lambda: all(gone(r) for r in racers), timeout=LONG), "a racer hung"
        mthread.resume(t)
        mthread.kill(t)
        assert wait_until(lambda: gone(t), timeout=LONG), f"round {round_}: target lived"
        assert ended == [True]


def test_suspended_thread_holds_no_lock_while_gc_runs_everywhere():
    """gc.collect() beside suspended threads halted the device; here it must just work."""
    def churn():
        mthread.allowsuspend(True)
        junk = []
        while True:
            junk.append([object() for _ in range(50)])
            if len(junk) > 100:
                junk.clear()

    ids = [start(churn) for _ in range(4)]
    for _ in range(30):
        for t in ids:
            mthread.suspend(t)
        import gc
        gc.collect()
        mthread.list(False)
        for t in ids:
            mthread.resume(t)
    for t in ids:
        mthread.kill(t)
    assert wait_until(lambda: not others(), timeout=LONG)


# --- stack overflow ------------------------------------------------------------------------

def test_stack_overflow_in_a_python_thread_is_reported_by_name():
    result = run_python("""
        import sys, mthread
        sys.setrecursionlimit(10 ** 7)
        nested = []
        for _ in range(10 ** 6):
            nested = [nested]
        # Recursion through C (3.11 runs Python-to-Python calls without C recursion).
        mthread.start_new_thread("deep-py", repr, (nested,), stacksize=mthread.MIN_STACK_SIZE)
        mthread.sleep(30)
        print("not reached")
    """)
    assert "not reached" not in result.stdout
    assert result.returncode != 0
    assert 'thread "deep-py"' in result.stderr and "overflowed its stack of 131072 bytes" \
        in result.stderr, result.stderr[-3000:]
    if not SANITIZED:
        assert result.returncode == -signal.SIGSEGV, result.returncode


def test_recursion_within_the_limit_fits_the_default_stack():
    """Python and C recursion up to the interpreter's limit raises RecursionError, no crash."""
    result = run_python("""
        import json, mthread
        out = []
        def body():
            def down(n):
                return down(n + 1)
            try:
                down(0)
            except RecursionError:
                out.append("python ok")
            nested = []
            for _ in range(100000):
                nested = [nested]
            for name, f in (("repr", repr), ("json", json.dumps)):
                try:
                    f(nested)
                except RecursionError:
                    out.append(name + " ok")
        t = mthread.start_new_thread("recursive", body, ())
        while mthread.status(t) != mthread.TERMINATED:
            mthread.sleep_ms(5)
        print(out)
    """)
    assert_clean_exit(result.returncode, result.stderr, allow_codes={0})
    assert "['python ok', 'repr ok', 'json ok']" in result.stdout


# --- signals at every blocking call --------------------------------------------------------

def test_signals_at_every_blocking_call_of_the_main_thread():
    result = run_python("""
        import signal, time, mthread
        hits = [0]
        signal.signal(signal.SIGALRM, lambda *a: hits.__setitem__(0, hits[0] + 1))
        signal.setitimer(signal.ITIMER_REAL, 0.002, 0.002)
        me = mthread.getReplID()
        def later(kind):
            mthread.sleep_ms(300)
            if kind == "notify":
                mthread.notify(me, 99)
            else:
                mthread.sendmsg(me, 1234)
        mthread.start_new_thread("n", later, ("notify",))
        print("wait:", mthread.wait())
        mthread.start_new_thread("m", later, ("msg",))
        print("getmsg:", mthread.getmsg(10000))
        for name, call in (("sleep", lambda: mthread.sleep(0.3)),
                           ("sleep_ms", lambda: mthread.sleep_ms(300)),
                           ("sleep_us", lambda: mthread.sleep_us(300000))):
            begin = time.monotonic()
            call()
            print(name, time.monotonic() - begin >= 0.299)
        print("timeout:", mthread.wait(200), mthread.getmsg(200))
        signal.setitimer(signal.ITIMER_REAL, 0)
        print("signals:", hits[0] > 50)
    """)
    assert_clean_exit(result.returncode, result.stderr, allow_codes={0})
    words = result.stdout.split()
    del words[4]  # the sender's id
    assert words == ["wait:", "99", "getmsg:", "(1,", "1234)", "sleep", "True", "sleep_ms",
                     "True", "sleep_us", "True", "timeout:", "None", "(0,", "0,", "None)",
                     "signals:", "True"], result.stdout


def test_signals_at_every_blocking_call_of_managed_threads():
    signal.signal(signal.SIGUSR1, lambda *a: None)
    try:
        idents, results = {}, {}

        def record(name, call):
            idents[name] = threading.get_ident()  # pthread_kill takes CPython idents
            results[name] = call()

        def timed_sleep():
            begin = time.monotonic()
            mthread.sleep(0.3)
            return time.monotonic() - begin >= 0.299

        ids = {
            "wait": start(record, "wait", lambda: mthread.wait()),
            "getmsg": start(record, "getmsg", lambda: mthread.getmsg(20000)),
            "sleep": start(record, "sleep", timed_sleep),
        }
        assert wait_until(lambda: len(idents) == 3)
        assert wait_until(lambda: all(mthread.status(t) == mthread.WAITING for t in ids.values()))
        sent = 0
        end = time.monotonic() + 0.2
        while time.monotonic() < end:
            for name, ident in list(idents.items()):
                if name not in results:
                    try:
                        signal.pthread_kill(ident, signal.SIGUSR1)
                        sent += 1
                    except ProcessLookupError:
                        pass
        assert sent > 10
        assert mthread.notify(ids["wait"], 5)
        assert mthread.sendmsg(ids["getmsg"], "after the storm")
        assert wait_until(lambda: len(results) == 3, timeout=LONG)
        assert results["wait"] == 5
        assert results["getmsg"] == (2, mthread.getReplID(), "after the storm")
        assert results["sleep"] is True
    finally:
        signal.signal(signal.SIGUSR1, signal.SIG_DFL)


# --- interpreter exit while threads run in every state -------------------------------------

EVERY_STATE = """
    import sys, time, mthread
    def busy():
        mthread.allowsuspend(True)
        while True:
            pass
    def swallower():
        while True:
            try:
                while True:
                    mthread.sleep_ms(1)
            except mthread.ThreadKilled:
                pass  # swallowed: raised again
    def slow_cleanup():
        try:
            mthread.wait()
        finally:
            mthread.sleep_ms(200)
    threads = {
        "busy": mthread.start_new_thread("busy", busy, ()),
        "suspended": mthread.start_new_thread("suspended", busy, ()),
        "waiting": mthread.start_new_thread("waiting", mthread.wait, ()),
        "getmsg": mthread.start_new_thread("getmsg", mthread.getmsg, (10 ** 9,)),
        "sleeping": mthread.start_new_thread("sleeping", mthread.sleep, (10 ** 6,)),
        "swallower": mthread.start_new_thread("swallower", swallower, ()),
        "cleanup": mthread.start_new_thread("cleanup", slow_cleanup, ()),
    }
    while mthread.status(threads["suspended"]) != mthread.RUNNING or \\
            not mthread.suspend(threads["suspended"]):
        time.sleep(0.001)
    while mthread.status(threads["cleanup"]) != mthread.WAITING:
        time.sleep(0.001)
    mthread.kill(threads["cleanup"])  # its finally is still sleeping when main ends
"""


def test_exit_with_threads_in_every_state_waits_and_a_killer_ends_them():
    result = run_python(EVERY_STATE + """
    def killer(ids):
        mthread.sleep_ms(300)
        for t in ids:
            mthread.kill(t)
    mthread.start_new_thread("killer", killer, (list(threads.values()),))
    print("main ends", flush=True)
    """, timeout=60)
    assert_clean_exit(result.returncode, result.stderr, allow_codes={0})
    assert "main ends" in result.stdout


def test_sys_exit_with_threads_in_every_state_keeps_its_code():
    result = run_python(EVERY_STATE + """
    def killer(ids):
        mthread.sleep_ms(300)
        for t in ids:
            mthread.kill(t)
    mthread.start_new_thread("killer", killer, (list(threads.values()),))
    sys.exit(3)
    """, timeout=60)
    assert_clean_exit(result.returncode, result.stderr, allow_codes={3})


def test_ctrl_c_at_exit_with_threads_in_every_state_exits_cleanly():
    process = popen_python(EVERY_STATE + """
    print("ready", flush=True)
    """)
    read_until(process, "ready")
    time.sleep(0.5)  # main has ended and waits for the threads
    assert process.poll() is None, "the process did not wait for its threads"
    process.send_signal(signal.SIGINT)
    try:
        out, err = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        raise AssertionError(f"no exit after Ctrl-C:\n{err[-3000:]!r}")
    if isinstance(err, bytes):
        err = err.decode("utf-8", "replace")
    assert_clean_exit(process.returncode, err)
    assert "Traceback" not in err or "KeyboardInterrupt" in err, err


# --- nothing left behind -------------------------------------------------------------------

def test_python_threads_leave_no_python_object_behind():
    """Every Python thread left an empty dict behind (found by the soak's block count)."""
    import gc

    def run(count):
        # In batches well below the thread limit: a slow machine ends threads later than they
        # start.
        for started in range(count):
            mthread.start_new_thread("brief", int, ())
            if started % 500 == 499:
                assert wait_until(lambda: not others(), timeout=LONG)
        assert wait_until(lambda: not others(), timeout=LONG)

    run(100)
    gc.collect()
    before = sys.getallocatedblocks()
    run(3000)
    gc.collect()
    assert sys.getallocatedblocks() - before < 1000
