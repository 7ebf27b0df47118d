"""lock()/unlock(), the final firmware's atomic section (SPEC §3): between them no other thread
that mthread started runs Python code; they go on after unlock()."""
import threading
import time

import mthread
from conftest import SHORT, gone, run_python, start, wait_until


def busy(counter):
    while True:
        counter[0] += 1


def sleepy(counter):
    while True:
        mthread.sleep_ms(1)
        counter[0] += 1


def frozen_for(counter, seconds=0.1):
    """Whether ``counter`` stays put for ``seconds`` (the GIL free meanwhile)."""
    before = counter[0]
    time.sleep(seconds)
    return counter[0] == before


def test_other_threads_stop_until_unlock():
    busy_count, sleepy_count = [0], [0]
    busy_id = start(busy, busy_count, name="busy")
    sleepy_id = start(sleepy, sleepy_count, name="sleepy")
    assert wait_until(lambda: busy_count[0] > 1000 and sleepy_count[0] > 3)
    assert mthread.lock() is None
    try:
        assert frozen_for(busy_count) and frozen_for(sleepy_count)
    finally:
        assert mthread.unlock() is None
    seen = busy_count[0], sleepy_count[0]
    assert wait_until(lambda: busy_count[0] > seen[0] and sleepy_count[0] > seen[1])
    for tid in (busy_id, sleepy_id):
        assert mthread.kill(tid)


def test_threads_that_ended_in_any_order_leave_the_others_stopped_by_the_section():
    counters = [[0] for _ in range(12)]
    ids = [start(busy, counter, name="busy%d" % i) for i, counter in enumerate(counters)]
    assert wait_until(lambda: all(counter[0] > 100 for counter in counters))
    # Ends from the middle, the last and the first place of the section's list of threads.
    ended = {5, 11, 0, 7, 2}
    for i in (5, 11, 0, 7, 2):
        assert mthread.kill(ids[i])
    assert wait_until(lambda: all(gone(ids[i]) for i in ended))
    survivors = [counters[i] for i in range(len(ids)) if i not in ended]
    mthread.lock()
    try:
        assert all(frozen_for(counter, 0.02) for counter in survivors)
    finally:
        mthread.unlock()
    seen = [counter[0] for counter in survivors]
    assert wait_until(lambda: all(c[0] > before for c, before in zip(survivors, seen)))
    for i, tid in enumerate(ids):
        if i not in ended:
            assert mthread.kill(tid)
    assert wait_until(lambda: all(gone(tid) for tid in ids))


def test_nested_lock_needs_as_many_unlocks():
    counter = [0]
    tid = start(busy, counter, name="busy")
    assert wait_until(lambda: counter[0] > 1000)
    mthread.lock()
    mthread.lock()
    mthread.unlock()
    assert frozen_for(counter)
    mthread.unlock()
    seen = counter[0]
    assert wait_until(lambda: counter[0] > seen)
    assert mthread.kill(tid)


def test_unlock_without_lock_does_nothing():
    counter = [0]
    tid = start(busy, counter, name="busy")
    assert mthread.unlock() is None
    assert wait_until(lambda: counter[0] > 1000)
    seen = counter[0]
    assert wait_until(lambda: counter[0] > seen)
    assert mthread.kill(tid)


def test_threads_started_inside_the_section_wait_for_unlock():
    counter = [0]
    mthread.lock()
    try:
        tid = start(busy, counter, name="late")
        assert frozen_for(counter, 0.2) and counter[0] == 0
    finally:
        mthread.unlock()
    assert wait_until(lambda: counter[0] > 1000)
    assert mthread.kill(tid)


def test_kill_reaches_a_thread_stopped_by_the_section():
    counter, cleaned = [0], []

    def body():
        try:
            busy(counter)
        finally:
            cleaned.append("finally")

    tid = start(body, name="busy")
    assert wait_until(lambda: counter[0] > 1000)
    mthread.lock()
    try:
        assert mthread.kill(tid) is True
        assert wait_until(lambda: gone(tid)), "thread did not end"
    finally:
        mthread.unlock()
    assert cleaned == ["finally"]


def test_section_held_by_a_managed_thread_stops_the_others():
    counter, inside, release = [0], threading.Event(), threading.Event()

    def holder():
        mthread.lock()
        inside.set()
        while not release.is_set():  # the main thread, not mthread's, still runs
            mthread.sleep_ms(1)
        mthread.unlock()

    busy_id = start(busy, counter, name="busy")
    assert wait_until(lambda: counter[0] > 1000)
    holder_id = start(holder, name="holder")
    assert inside.wait(SHORT)
    assert frozen_for(counter)
    release.set()
    assert wait_until(lambda: gone(holder_id))
    seen = counter[0]
    assert wait_until(lambda: counter[0] > seen)
    assert mthread.kill(busy_id)


def test_a_thread_that_ends_inside_the_section_leaves_it():
    counter = [0]
    busy_id = start(busy, counter, name="busy")
    assert wait_until(lambda: counter[0] > 1000)
    holder_id = start(mthread.lock, name="forgetful")
    assert wait_until(lambda: gone(holder_id))
    seen = counter[0]
    assert wait_until(lambda: counter[0] > seen), "section outlived its thread"
    assert mthread.kill(busy_id)


def test_section_of_a_threading_thread_ends_with_it():
    counter = [0]
    holder = threading.Thread(target=mthread.lock)
    holder.start()
    holder.join(SHORT)
    tid = start(busy, counter, name="busy")
    assert wait_until(lambda: counter[0] > 1000), "section outlived the thread that held it"
    assert mthread.kill(tid)


def test_script_that_ends_holding_the_section_exits():
    result = run_python("""
import mthread
done = []
mthread.start_new_thread("w", lambda: done.append(sum(range(1000))), ())
mthread.lock()
print("ending inside lock()")
""", timeout=60)
    assert result.returncode == 0, result.stderr
    assert "ending inside lock()" in result.stdout
