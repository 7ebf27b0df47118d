"""mthread.LockType / allocate_lock(): behaves as CPython's _thread.LockType (the same results
and the same errors for the same calls, compared side by side), and its blocking acquire in a
managed thread is one of mthread's waits: WAITING, suspended at once, killed with its finally
run. No install() needed for that: it is mthread's own lock."""
import _thread
import threading
import weakref

import pytest

import mthread
from conftest import SHORT, assert_clean_exit, gone, run_python, start, wait_until

KINDS = {"cpython": _thread.allocate_lock, "mthread": mthread.allocate_lock}


def outcome(call):
    """What a call gives: ("ok", result) or (exception type name, message)."""
    try:
        return ("ok", call())
    except Exception as error:  # compared, not hidden
        return (type(error).__name__, str(error))


CALLS = [
    ((False,), {}), ((True, 0), {}), ((True, 0.001), {}),
    ((), {"timeout": 0.001}), ((), {"blocking": False}), ((False, 1), {}), ((True, -2), {}),
    ((True, 1e300), {}), ((True, float("nan")), {}), ((True, "x"), {}), ((), {"timeout": None}),
    ((1, 2, 3), {}), ((False, -1), {}), ((0,), {}), ((True, -1), {"blocking": True}),
]


@pytest.mark.parametrize("args,kwargs", CALLS)
def test_acquire_on_a_held_lock_matches_cpython(args, kwargs):
    results = {}
    for kind, make in KINDS.items():
        lock = make()
        lock.acquire()
        results[kind] = outcome(lambda: lock.acquire(*args, **kwargs))
    # The same result, or the same kind of error (CPython's own wording changes between
    # versions; mthread's is the newest).
    assert results["mthread"][0] == results["cpython"][0], results
    if results["cpython"][0] == "ok":
        assert results["mthread"] == results["cpython"], results


def test_basic_behaviour_matches_cpython():
    for make in KINDS.values():
        lock = make()
        assert lock.locked() is False
        assert lock.acquire() is True
        assert lock.locked() is True
        assert lock.acquire(False) is False
        assert lock.release() is None
        with pytest.raises(RuntimeError, match="release unlocked lock"):
            lock.release()
        with lock as entered:
            assert entered is True and lock.locked()
        assert not lock.locked()
        assert lock.acquire_lock() and lock.locked_lock()
        lock.release_lock()
        weakref.ref(lock)
        lock.acquire()
        lock._at_fork_reinit()
        assert not lock.locked()


def test_repr_type_and_names():
    lock = mthread.allocate_lock()
    assert isinstance(lock, mthread.LockType)
    assert repr(lock).startswith("<unlocked mthread.lock object at 0x")
    lock.acquire()
    assert repr(lock).startswith("<locked mthread.lock object at 0x")
    assert mthread.LockType.__name__ == "lock"
    assert isinstance(mthread.LockType(), mthread.LockType)
    with pytest.raises(TypeError):
        mthread.LockType(1)
    assert mthread.allocate_lock.__doc__ and mthread.LockType.acquire.__doc__


def test_any_thread_may_release_it():
    lock = mthread.allocate_lock()
    lock.acquire()
    releaser = threading.Thread(target=lock.release)
    releaser.start()
    releaser.join(SHORT)
    assert not lock.locked()


def test_timeout_passes_in_a_threading_thread():
    lock = mthread.allocate_lock()
    lock.acquire()
    result = []
    waiter = threading.Thread(target=lambda: result.append(lock.acquire(timeout=0.02)))
    waiter.start()
    waiter.join(SHORT)
    assert result == [False]


def test_hand_off_between_managed_and_threading_threads_loses_nothing():
    lock = mthread.allocate_lock()
    counter = [0]

    def work():
        for _ in range(2000):
            with lock:
                counter[0] += 1

    managed = [start(work, name=f"w{i}") for i in range(2)]
    plain = [threading.Thread(target=work) for _ in range(2)]
    for thread in plain:
        thread.start()
    for thread in plain:
        thread.join(SHORT * 6)
    assert wait_until(lambda: all(gone(tid) for tid in managed), timeout=SHORT * 6)
    assert counter[0] == 8000
    assert not lock.locked()


def test_blocked_acquire_is_waiting_and_killed_with_finally_run():
    lock = mthread.allocate_lock()
    lock.acquire()
    log = []

    def body():
        try:
            lock.acquire()
            log.append("acquired")
        finally:
            log.append("finally")

    tid = start(body)
    assert wait_until(lambda: mthread.status(tid) == mthread.WAITING)
    assert mthread.kill(tid)
    assert wait_until(lambda: gone(tid))
    assert log == ["finally"]
    assert lock.locked()  # still the main thread's
    lock.release()
    assert lock.acquire(timeout=SHORT)


def test_with_block_of_a_killed_thread_releases_the_lock():
    lock = mthread.allocate_lock()
    inside = threading.Event()

    def body():
        with lock:
            inside.set()
            mthread.sleep(1000)

    tid = start(body)
    assert inside.wait(SHORT)
    assert lock.locked()
    assert mthread.kill(tid)
    assert wait_until(lambda: gone(tid))
    assert not lock.locked()


def test_suspended_in_acquire_stops_and_takes_the_lock_after_resume():
    lock = mthread.allocate_lock()
    lock.acquire()
    log = []

    def body():
        mthread.allowsuspend(True)
        lock.acquire(timeout=30)
        log.append("acquired")

    tid = start(body)
    assert wait_until(lambda: mthread.status(tid) == mthread.WAITING)
    assert mthread.suspend(tid)
    assert mthread.status(tid) == mthread.SUSPENDED
    lock.release()
    # Released while it is suspended: a threading thread can take it meanwhile.
    other = []
    taker = threading.Thread(target=lambda: other.append(lock.acquire(timeout=SHORT)))
    taker.start()
    taker.join(SHORT)
    assert other == [True] and log == []
    assert mthread.status(tid) == mthread.SUSPENDED
    assert mthread.resume(tid)
    lock.release()
    assert wait_until(lambda: log == ["acquired"])
    assert wait_until(lambda: gone(tid))


def test_child_of_fork_waits_while_a_thread_took_the_gil_back_at_the_fork():
    """A thread whose wait ended waits for the GIL (the forking thread holds it) as the process
    forks: the child, where only the forking thread lives, still waits in mthread's lock and
    sleeps (threading's locks are mthread's after install(), and multiprocessing forks)."""
    result = run_python("""
        import mthread, os, signal, sys, threading, time
        sys.setswitchinterval(30)  # the main thread keeps the GIL until it forks
        held = mthread.allocate_lock()
        held.acquire()
        waiting = threading.Event()
        def waiter():
            waiting.set()
            held.acquire(timeout=0.05)  # times out while the main thread holds the GIL
        threading.Thread(target=waiter, daemon=True).start()
        waiting.wait()
        busy_until = time.monotonic() + 0.5
        while time.monotonic() < busy_until:
            pass
        child = os.fork()
        if child == 0:
            mthread.sleep_ms(1)
            os._exit(0)
        give_up = time.monotonic() + 10
        while not os.waitpid(child, os.WNOHANG)[0]:
            if time.monotonic() > give_up:
                os.kill(child, signal.SIGKILL)
                os.waitpid(child, 0)
                sys.exit("the child hung in its first mthread wait")
            time.sleep(0.01)
        print("child done")
    """)
    assert_clean_exit(result.returncode, result.stderr, {0})
    assert "child done" in result.stdout
