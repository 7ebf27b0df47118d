#!/usr/bin/python3
"""mthread's Python figures beside what a Python programmer would use instead, in one run.

Run with Debian's python3 and the build tree's package:
    PYTHONPATH=build-bench/python /usr/bin/python3 bench/python_bench.py --json out.json

Every figure is measured `--reps` times; the runs of all figures are interleaved in a shuffled
order each repetition (so a burst of noise hits both sides of a ratio alike), and the median is
reported. Times are nanoseconds per operation, rates messages per second, memory bytes per thread.
A figure's name says its method where it has more than one: starts are reported as the median
and as the mean (`_mean`) of each repetition's starts, and in fresh processes (`start_fresh_`);
RSS in fresh processes (`rss_idle_`) and in-process (`rss_idle_inprocess_`).
"""

import _thread
import argparse
import gc
import json
import os
import queue
import random
import statistics
import subprocess
import sys
import threading
import time

import mthread

PATIENCE_MS = 5000
STOP = -1
BATCH = 50  # round trips timed together; a figure is the median batch (noise spoils a few)
LOOP_BATCH = 10000
now = time.perf_counter_ns


def spawn(name, func, *args):
    return mthread.start_new_thread(name, func, args)


def wait_gone(tid, pause_us=1000):
    """Until status() says TERMINATED (stack and mailbox freed), looking every `pause_us` (no
    busy wait: the GIL and the CPU are left to the ending thread and the reaper between looks)."""
    status, terminated = mthread.status, mthread.TERMINATED
    deadline = time.monotonic() + PATIENCE_MS / 1000
    while status(tid) != terminated:
        if time.monotonic() > deadline:
            raise RuntimeError(f"thread {tid} did not end")
        mthread.sleep_us(pause_us)


# ---- message round trip ----------------------------------------------------------------------

def _echo():
    while True:
        kind, sender, msg = mthread.getmsg(PATIENCE_MS)
        if kind == 0:
            continue
        if msg == STOP:
            return
        while not mthread.sendmsg(sender, msg):
            mthread.sleep_ms(0)


def msg_rtt_mthread(n):
    echo = spawn("echo", _echo)
    sendmsg, getmsg = mthread.sendmsg, mthread.getmsg
    samples = []
    for _ in range(n // BATCH):
        start = now()
        for i in range(BATCH):
            sendmsg(echo, i)
            if getmsg(PATIENCE_MS)[2] != i:
                raise RuntimeError("lost or wrong reply")
        samples.append((now() - start) / BATCH)
    sendmsg(echo, STOP)
    wait_gone(echo)
    return statistics.median(samples)


def msg_rtt_queue(n):
    to_echo, to_main = queue.Queue(maxsize=8), queue.Queue(maxsize=8)

    def echo():
        while True:
            msg = to_echo.get()
            if msg == STOP:
                return
            to_main.put(msg)

    t = threading.Thread(target=echo)
    t.start()
    put, get = to_echo.put, to_main.get
    samples = []
    for _ in range(n // BATCH):
        start = now()
        for i in range(BATCH):
            put(i)
            if get() != i:
                raise RuntimeError("lost or wrong reply")
        samples.append((now() - start) / BATCH)
    put(STOP)
    t.join()
    return statistics.median(samples)


def _lock_handoff(allocate, n):
    """Two locks made by `allocate` passed back and forth between the caller and a thread of
    CPython's _thread: two GIL hand-offs a round trip."""
    ping, pong = allocate(), allocate()
    ping.acquire()
    pong.acquire()
    stop = []
    done = _thread.allocate_lock()
    done.acquire()

    def echo():
        while True:
            ping.acquire()
            if stop:
                done.release()
                return
            pong.release()

    _thread.start_new_thread(echo, ())
    release, acquire = ping.release, pong.acquire
    samples = []
    for _ in range(n // BATCH):
        start = now()
        for _ in range(BATCH):
            release()
            acquire()
        samples.append((now() - start) / BATCH)
    stop.append(True)
    ping.release()
    done.acquire()
    return statistics.median(samples)


def rtt_lock_handoff(n):
    """Two raw locks passed back and forth: two GIL hand-offs a round trip, the floor for any
    Python-level ping-pong."""
    return _lock_handoff(_thread.allocate_lock, n)


# ---- mthread's lock beside CPython's ---------------------------------------------------------

LOCK_BATCH = 1000


def _lock_uncontended(allocate, n):
    """acquire() + release() of a free lock, n times in batches (the loop's own cost is in both
    sides of the ratio): ns a pair, median batch."""
    lock = allocate()
    acquire, release = lock.acquire, lock.release
    samples = []
    for _ in range(max(n // LOCK_BATCH, 1)):
        start = now()
        for _ in range(LOCK_BATCH):
            acquire()
            release()
        samples.append((now() - start) / LOCK_BATCH)
    return statistics.median(samples)


def lock_uncontended_mthread(n):
    return _lock_uncontended(mthread.allocate_lock, n)


def lock_uncontended_cpython(n):
    return _lock_uncontended(_thread.allocate_lock, n)


def lock_handoff_mthread(n):
    """rtt_lock_handoff with mthread's locks."""
    return _lock_handoff(mthread.allocate_lock, n)


# ---- kill latency where threads block (the rows of "What kill reaches") ----------------------

REACH_ROWS_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "tests",
                                 "python", "reach_rows.py")


def reach_kill_latencies():
    """One run of tests/python/reach_rows.py after mthread.install(), in a fresh process: for
    each row, ns from kill() to the blocked thread's finally."""
    done = subprocess.run([sys.executable, REACH_ROWS_SCRIPT, "install"], capture_output=True,
                          text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"reach_rows.py failed: {done.stderr[-2000:]}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    return {row: found["latency_ms"] * 1e6 for row, found in report["kill"].items()
            if found["latency_ms"] is not None}


# ---- notification round trip -----------------------------------------------------------------

NOTIFY_STOP = 0xFFFFFFFF


def _notify_echo(main):
    while True:
        value = mthread.wait(PATIENCE_MS)
        if value is None:
            continue
        if value == NOTIFY_STOP:
            return
        mthread.notify(main, value)


def notify_rtt_mthread(n):
    echo = spawn("echo", _notify_echo, mthread.getReplID())
    notify, wait = mthread.notify, mthread.wait
    samples = []
    for _ in range(n // BATCH):
        start = now()
        for i in range(1, BATCH + 1):
            notify(echo, i)
            if wait(PATIENCE_MS) != i:
                raise RuntimeError("lost or wrong notification")
        samples.append((now() - start) / BATCH)
    notify(echo, NOTIFY_STOP)
    wait_gone(echo)
    return statistics.median(samples)


# ---- one-way throughput ----------------------------------------------------------------------
# Both sides at the same depth: 1024, a deep mailbox as in the C++ figure (and 8, the default,
# reported beside it). A full mailbox refuses at once, so the mthread sender yields with
# mthread.sleep_ms(0) (lets go of the GIL and the processor) and retries; queue.Queue.put blocks
# until there is room.
DEEP = 1024


def _sink(main, n):
    expected = 0
    getmsg = mthread.getmsg
    while expected < n:
        kind, _, msg = getmsg(PATIENCE_MS)
        if kind == 0:
            continue
        if msg != expected:
            mthread.notify(main, 2)
            return
        expected += 1
    mthread.notify(main, 1)


def msg_rate_mthread(n, depth=DEEP):
    sink = mthread.start_new_thread("sink", _sink, (mthread.getReplID(), n), mailbox_depth=depth)
    sendmsg, yield_ = mthread.sendmsg, mthread.sleep_ms
    start = now()
    for i in range(n):
        while not sendmsg(sink, i):
            yield_(0)
    if mthread.wait(PATIENCE_MS) != 1:
        raise RuntimeError("messages lost, duplicated or reordered")
    elapsed = now() - start
    wait_gone(sink)
    return n * 1e9 / elapsed


def msg_rate_queue(n, depth=DEEP):
    q = queue.Queue(maxsize=depth)
    done = _thread.allocate_lock()
    done.acquire()
    ok = []

    def sink():
        get = q.get
        for expected in range(n):
            if get() != expected:
                break
        else:
            ok.append(True)
        done.release()

    t = threading.Thread(target=sink)
    t.start()
    put = q.put
    start = now()
    for i in range(n):
        put(i)
    done.acquire()
    elapsed = now() - start
    t.join()
    if not ok:
        raise RuntimeError("messages lost, duplicated or reordered")
    return n * 1e9 / elapsed


def msg_rate8_mthread(n):
    return msg_rate_mthread(n, 8)


def msg_rate8_queue(n):
    return msg_rate_queue(n, 8)


# ---- start and finish ------------------------------------------------------------------------
# One start after another, each timed from the start call until the starter knows the thread
# finished, by two definitions, each the same on both sides:
#   end seen  the thread's last act tells the starter (mthread: notify() -> wait(); threading: a
#             _thread lock released -> acquire()); the thread may still be ending (its thread
#             state, its OS thread) while the next one starts.
#   gone      nothing of the thread is left that the starter could wait for: mthread: status()
#             is TERMINATED (the OS thread joined, its stack and mailbox freed), looked at after
#             the end was seen as above; threading: Thread.join() returned (its thread state
#             deleted; CPython's join does not wait for the OS thread).
# Each repetition gives the median and the mean of its starts: a periodic cost (a garbage
# collection, the reaper, a page fault on a fresh stack) shows in the mean only.

def _finish(main):
    mthread.notify(main, 1)


def _start_mthread(n, gone):
    main = mthread.getReplID()
    start_new_thread, wait = mthread.start_new_thread, mthread.wait
    samples = []
    for _ in range(n):
        start = now()
        tid = start_new_thread("t", _finish, (main,))
        if wait(PATIENCE_MS) != 1:
            raise RuntimeError("thread did not finish")
        if gone:
            wait_gone(tid, 20)
        samples.append(now() - start)
    return samples


def _noop():
    pass


def _start_threading(n, gone):
    samples = []
    for _ in range(n):
        start = now()
        if gone:
            t = threading.Thread(target=_noop)
            t.start()
            t.join()
        else:
            done = _thread.allocate_lock()
            done.acquire()
            t = threading.Thread(target=done.release)
            t.start()
            done.acquire()
        samples.append(now() - start)
    return samples


def start_finish_mthread(n):
    return _start_mthread(n, gone=False)


def start_finish_threading(n):
    return _start_threading(n, gone=False)


def start_gone_mthread(n):
    return _start_mthread(n, gone=True)


def start_join_threading(n):
    return _start_threading(n, gone=True)


# Starts of threads that compute without ever blocking, one after the other, each timed until the
# start call returns. mthread's start keeps the GIL, as _thread's does: the starter goes on at
# once. threading's start() waits until the new thread has started, which then holds the GIL: the
# starter gets it back at the interpreter's switch interval (sys.getswitchinterval(), 5 ms by
# default), later the more threads compute.

def _start_computing(n, start):
    computing = [True]

    def compute():
        while computing[0]:
            pass

    samples, wait_for_ends = [], []
    try:
        for _ in range(n):
            begin = now()
            wait_for_ends.append(start(compute))
            samples.append(now() - begin)
    finally:
        computing[0] = False
        for wait_for_end in wait_for_ends:
            wait_for_end()
    return samples


def start_computing_mthread(n):
    def start(body):
        tid = mthread.start_new_thread("compute", body, ())
        return lambda: wait_gone(tid)
    return _start_computing(n, start)


def start_computing_threading(n):
    def start(body):
        t = threading.Thread(target=body)
        t.start()
        return t.join
    return _start_computing(n, start)


START_CHILD = {"mthread": start_gone_mthread, "threading": start_join_threading}


def start_child(kind, count):
    """In a fresh process, `count` starts until gone: the mean, the first start (one-time costs:
    mthread's reaper and signal handlers, threading's first Thread) included."""
    return statistics.mean(START_CHILD[kind](count))


def start_in_fresh_process(kind, count):
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--start-child", kind,
                          "--threads", str(count)], check=True, capture_output=True, text=True,
                         timeout=120)
    return float(out.stdout.strip())


# ---- the cost of being suspendable -----------------------------------------------------------

def _loop_batches(n):
    """Runs a pure-Python loop of about n iterations in batches of LOOP_BATCH: the nanoseconds of
    each batch."""
    samples = []
    total = 0
    for _ in range(max(1, n // LOOP_BATCH)):
        start = now()
        for i in range(LOOP_BATCH):
            if i % 3:
                total += i
            else:
                total -= 1
        samples.append(now() - start)
    return samples


def _loop(main, n, suspendable):
    if suspendable:
        mthread.allowsuspend(True)
    samples = _loop_batches(n)
    # Picoseconds an iteration, as an int message.
    mthread.sendmsg(main, int(statistics.median(samples) * 1000 / LOOP_BATCH))


def _loop_in_thread(n, suspendable):
    spawn("loop", _loop, mthread.getReplID(), n, suspendable)
    kind, _, picoseconds = mthread.getmsg(60_000)
    if kind != 1:
        raise RuntimeError("loop thread did not report")
    return picoseconds / 1000


def loop_suspendable(n):
    return _loop_in_thread(n, True)


def loop_plain(n):
    return _loop_in_thread(n, False)


# ---- what a suspended thread costs the others; how soon suspend and kill act ----------------------
# "Others" is a threading.Thread running the pure-Python loop above while the main thread waits
# for it. Its speed is iterations per second of its own CPU time (time.thread_time_ns) over the
# whole run, a mean: a cost paid now and then (arming, disarming) counts in full, while the time
# it waits for the GIL or for a core (other processes) does not. The peer has an idle managed
# thread (in mthread.wait) where the figure has a suspended one.

def _others_rate(n, while_running=None):
    """Iterations per CPU second of the pure-Python loop in a threading.Thread. `while_running` is
    called repeatedly by the caller until the loop is done."""
    result = []

    def other():
        cpu = time.thread_time_ns()
        _loop_batches(n)
        result.append(time.thread_time_ns() - cpu)

    thread = threading.Thread(target=other)
    thread.start()
    if while_running is not None:
        while thread.is_alive():
            while_running()
    thread.join()
    return (n // LOOP_BATCH) * LOOP_BATCH * 1e9 / result[0]


def _stamping_loop(slot):
    """A suspendable pure-Python loop that writes the time of each iteration to slot[0];
    slot[1] is its (CPython thread id, kernel thread id), for its CPU clock and /proc."""
    mthread.allowsuspend(True)
    slot[1] = (threading.get_ident(), threading.get_native_id())
    clock = now
    while True:
        slot[0] = clock()


def _start_stamping_loop():
    slot = [0, None]
    tid = spawn("loop", _stamping_loop, slot)
    _wait_stamping(slot)
    return tid, slot


def _wait_stamping(slot):
    """Until the loop writes a new stamp (the caller sleeps meanwhile: the GIL is free)."""
    seen = slot[0]
    deadline = time.monotonic() + PATIENCE_MS / 1000
    while slot[0] == seen or slot[1] is None:
        if time.monotonic() > deadline:
            raise RuntimeError("the loop thread does not run")
        time.sleep(0.0002)


PARKED_WINDOW_S = 0.002


def _asleep(native_id):
    """Whether the kernel has the thread asleep (not running, not waiting for a core)."""
    with open(f"/proc/self/task/{native_id}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] == "S"


def _wait_parked(slot):
    """Until the loop is parked: for PARKED_WINDOW_S with the GIL free (the caller sleeps), its
    stamp stands still and its CPU clock advances by less than a tenth of the window, and the
    kernel has it asleep (on a busy machine a thread that waits for a core would pass the first
    two). Returns its last stamp: the time of the last iteration it ran."""
    cpu_clock = time.pthread_getcpuclockid(slot[1][0])
    deadline = time.monotonic() + PATIENCE_MS / 1000
    stamp, cpu = slot[0], time.clock_gettime_ns(cpu_clock)
    while True:
        time.sleep(PARKED_WINDOW_S)
        new_stamp, new_cpu = slot[0], time.clock_gettime_ns(cpu_clock)
        if (new_stamp == stamp and new_cpu - cpu < PARKED_WINDOW_S * 1e9 / 10
                and _asleep(slot[1][1])):
            return stamp
        if time.monotonic() > deadline:
            raise RuntimeError("the suspended loop does not stop")
        stamp, cpu = new_stamp, new_cpu


def others_none_suspended(n):
    idle = spawn("idle", mthread.wait, 600_000)
    deadline = time.monotonic() + PATIENCE_MS / 1000
    while mthread.status(idle) != mthread.WAITING:
        if time.monotonic() > deadline:
            raise RuntimeError("the idle thread does not wait")
        mthread.sleep_ms(1)
    rate = _others_rate(n)
    mthread.notify(idle, 1)
    wait_gone(idle)
    return rate


def others_one_suspended(n):
    tid, slot = _start_stamping_loop()
    if not mthread.suspend(tid):
        raise RuntimeError("suspend() refused")
    _wait_parked(slot)
    rate = _others_rate(n)
    mthread.kill(tid)
    wait_gone(tid)
    return rate


def others_during_churn(n):
    """The main thread resumes and at once suspends again a parked loop, then sleeps 1 ms, over
    and over: each round arms the loop's checkpoints until it parks again. The rounds are paced
    by the GIL (the main thread waits for the busy other thread to hand it over: CPython's
    switch interval, 5 ms), about 150 a second."""
    tid, slot = _start_stamping_loop()
    mthread.suspend(tid)
    _wait_parked(slot)

    def churn():
        mthread.resume(tid)
        mthread.suspend(tid)
        time.sleep(0.001)

    rate = _others_rate(n, churn)
    mthread.kill(tid)
    wait_gone(tid)
    return rate


POLL_S = 0.00002  # asked of time.sleep between polls; the kernel's timer slack adds ~50 us


def _time_to_stop(slot, stop):
    """Calls stop() (holding the GIL), then polls every POLL_S, sleeping between polls (the GIL
    free), the CPU clock of the thread slot describes; once _wait_parked confirms it stopped: the
    time from the call to the first poll at which the clock had reached the value it keeps. An
    upper bound, by at most one poll interval."""
    cpu_clock = time.pthread_getcpuclockid(slot[1][0])
    read_cpu = time.clock_gettime_ns
    polls = []
    start = now()
    stop()
    settle = now() + 2 * PARKED_WINDOW_S * 1e9
    while now() < settle:
        time.sleep(POLL_S)
        polls.append((now(), read_cpu(cpu_clock)))
    _wait_parked(slot)
    final = read_cpu(cpu_clock)
    parked_at = next((at for at, cpu in polls if cpu == final), None)
    if parked_at is None:  # stopped after the polls: over 2 * PARKED_WINDOW_S
        parked_at = now()
    return parked_at - start


def suspend_latency(n):
    """n suspends of a running pure-Python loop, each from the suspend() call (the caller holds
    the GIL) until the loop is parked (_time_to_stop). Resumed between samples, and left running
    a random 0-0.5 ms first."""
    tid, slot = _start_stamping_loop()
    samples = []
    for _ in range(n):
        time.sleep(random.uniform(0, 0.0005))
        samples.append(_time_to_stop(slot, lambda: mthread.suspend(tid)))
        mthread.resume(tid)
        _wait_stamping(slot)
    mthread.kill(tid)
    wait_gone(tid)
    return samples


def _flag_checking_loop(slot, gate):
    """What a Python programmer writes instead of suspend(): a busy loop that looks at a flag
    (slot[2]) each iteration and, when it is set, blocks on a lock (gate) until resumed; it ends
    when resumed with slot[3] set."""
    slot[1] = (threading.get_ident(), threading.get_native_id())
    clock = now
    while True:
        slot[0] = clock()
        if slot[2]:
            gate.acquire()
            if slot[3]:
                return


def flag_suspend_latency(n):
    """The peer of suspend_latency, measured the same way (_time_to_stop) from the same state (a
    busy loop waiting for the GIL the caller holds) through the same steps (wake, take the GIL,
    see the request, block), none of them mthread's: a threading.Thread running
    _flag_checking_loop, from setting its flag until it blocks on its lock."""
    gate = _thread.allocate_lock()
    gate.acquire()  # held whenever the loop runs: its acquire() blocks until the caller resumes it
    slot = [0, None, False, False]
    looper = threading.Thread(target=_flag_checking_loop, args=(slot, gate))
    looper.start()
    _wait_stamping(slot)
    samples = []
    for _ in range(n):
        time.sleep(random.uniform(0, 0.0005))
        samples.append(_time_to_stop(slot, lambda: slot.__setitem__(2, True)))
        slot[2] = False
        gate.release()
        _wait_stamping(slot)
    slot[3] = slot[2] = True
    _wait_parked(slot)
    gate.release()
    looper.join()
    return samples


def kill_latency(n):
    """n kills, each of a fresh thread running a pure-Python loop: from the kill() call to
    status() saying TERMINATED, polled every 50 us (the caller sleeps between polls)."""
    samples = []
    for _ in range(n):
        tid, _ = _start_stamping_loop()
        start = now()
        mthread.kill(tid)
        deadline = time.monotonic() + PATIENCE_MS / 1000
        while mthread.status(tid) != mthread.TERMINATED:
            if time.monotonic() > deadline:
                raise RuntimeError("the killed loop does not end")
            time.sleep(0.00005)
        samples.append(now() - start)
    return samples


# ---- RSS per idle thread ---------------------------------------------------------------------
# The growth of the process's VmRSS over `count` idle threads, measured two ways: in a fresh
# process of its own for each measurement, and in-process (in this driver, after the figures
# above ran: stacks, arenas and caches that earlier threads left behind are there to be reused,
# as in a program that has been running a while).

def rss_bytes():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def rss_child(kind, count):
    gc.collect()
    if kind == "mthread":
        main = mthread.getReplID()
        spawn("warm", _finish, main)  # one-time costs are not per thread
        mthread.wait(PATIENCE_MS)
        time.sleep(0.05)
        before = rss_bytes()
        ids = [spawn("idle", mthread.wait, 3_600_000) for _ in range(count)]
        for tid in ids:
            while mthread.status(tid) != mthread.WAITING:
                mthread.sleep_ms(1)
        after = rss_bytes()
        for tid in ids:
            mthread.notify(tid, 1)
        for tid in ids:
            wait_gone(tid)
    else:
        t = threading.Thread(target=_noop)
        t.start()
        t.join()
        time.sleep(0.05)
        before = rss_bytes()
        release = threading.Event()
        waiting = threading.Semaphore(0)

        def idle():
            waiting.release()
            release.wait()

        threads = [threading.Thread(target=idle) for _ in range(count)]
        for t in threads:
            t.start()
        for _ in range(count):
            waiting.acquire()
        time.sleep(0.01)  # let the last ones reach release.wait()
        after = rss_bytes()
        release.set()
        for t in threads:
            t.join()
    return (after - before) / count


def rss_in_fresh_process(kind, count):
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--rss-child", kind,
                          "--threads", str(count)], check=True, capture_output=True, text=True,
                         timeout=120)
    return float(out.stdout.strip())


# ---- driver ----------------------------------------------------------------------------------

FIGURES = {
    # name: (function, workload in full mode, in smoke mode, unit)
    "msg_rtt_mthread": (msg_rtt_mthread, 4000, 100, "ns"),
    "msg_rtt_queue": (msg_rtt_queue, 4000, 100, "ns"),
    "rtt_lock_handoff": (rtt_lock_handoff, 4000, 100, "ns"),
    "lock_handoff_mthread": (lock_handoff_mthread, 4000, 100, "ns"),
    "lock_uncontended_mthread": (lock_uncontended_mthread, 200000, 2000, "ns"),
    "lock_uncontended_cpython": (lock_uncontended_cpython, 200000, 2000, "ns"),
    "notify_rtt_mthread": (notify_rtt_mthread, 4000, 100, "ns"),
    "msg_rate_mthread": (msg_rate_mthread, 40000, 200, "msg/s"),
    "msg_rate_queue": (msg_rate_queue, 40000, 200, "msg/s"),
    "msg_rate8_mthread": (msg_rate8_mthread, 20000, 200, "msg/s"),
    "msg_rate8_queue": (msg_rate8_queue, 20000, 200, "msg/s"),
    "loop_suspendable": (loop_suspendable, 300000, 20000, "ns"),
    "loop_plain": (loop_plain, 300000, 20000, "ns"),
    "others_none_suspended": (others_none_suspended, 2000000, 20000, "loops/s"),
    "others_one_suspended": (others_one_suspended, 2000000, 20000, "loops/s"),
    "others_during_churn": (others_during_churn, 4000000, 20000, "loops/s"),
}

# Starts: each repetition gives the median of its samples (under the name) and their mean (under
# name_mean), in ns.
SAMPLED = {
    # name: (function returning samples, samples a repetition in full mode, in smoke mode)
    "start_finish_mthread": (start_finish_mthread, 300, 5),
    "start_finish_threading": (start_finish_threading, 300, 5),
    "start_gone_mthread": (start_gone_mthread, 300, 5),
    "start_join_threading": (start_join_threading, 300, 5),
    "start_computing_mthread": (start_computing_mthread, 6, 2),
    "start_computing_threading": (start_computing_threading, 6, 2),
}

# Latencies: every sample of every repetition pooled, reported as percentiles (ns).
LATENCIES = {
    # name: (function returning samples, samples a repetition in full mode, in smoke mode)
    "suspend_latency": (suspend_latency, 150, 5),
    "flag_suspend_latency": (flag_suspend_latency, 150, 5),
    "kill_latency": (kill_latency, 100, 5),
}
PERCENTILES = (50, 99)
START_FRESH_COUNT = 300  # starts in each fresh process (start_fresh_*)


def percentile(values, p):
    """Nearest rank."""
    ordered = sorted(values)
    return ordered[max(0, -(-len(ordered) * p // 100) - 1)]


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--rss-runs", type=int, default=3)
    parser.add_argument("--reach-runs", type=int, default=3,
                        help="fresh processes measuring the kill latency of each blocking call")
    parser.add_argument("--smoke", action="store_true", help="tiny workloads, one repetition")
    parser.add_argument("--only", help="comma-separated figure names; 'per_process' for the RSS "
                        "figures and the starts in fresh processes")
    parser.add_argument("--rss-child", choices=["mthread", "threading"], help=argparse.SUPPRESS)
    parser.add_argument("--start-child", choices=sorted(START_CHILD), help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=200)
    args = parser.parse_args()

    if args.rss_child:
        print(rss_child(args.rss_child, args.threads))
        return 0
    if args.start_child:
        print(start_child(args.start_child, args.threads))
        return 0

    reps = 1 if args.smoke else args.reps
    rss_runs = 1 if args.smoke else args.rss_runs
    rss_threads = 20 if args.smoke else args.threads
    names = (list(FIGURES) + list(SAMPLED) + list(LATENCIES) if not args.only
             else args.only.split(","))
    per_process = not args.only or "per_process" in names
    names = [name for name in names if name != "per_process"]
    samples = {name: [] for name in names}
    samples.update({f"{name}_mean": [] for name in names if name in SAMPLED})
    for rep in range(reps):
        order = names[:]
        random.shuffle(order)
        for name in order:
            if name in LATENCIES:
                func, full, small = LATENCIES[name]
                samples[name].extend(func(small if args.smoke else full))
                continue
            if name in SAMPLED:
                func, full, small = SAMPLED[name]
                taken = func(small if args.smoke else full)
                samples[name].append(statistics.median(taken))
                samples[f"{name}_mean"].append(statistics.mean(taken))
                continue
            func, full, small, _ = FIGURES[name]
            samples[name].append(func(small if args.smoke else full))
        print(f"python: repetition {rep + 1}/{reps} done", file=sys.stderr, flush=True)
    pooled_counts = {}
    for name in [name for name in names if name in LATENCIES]:
        pooled = samples.pop(name)
        for p in PERCENTILES:
            samples[f"{name}_p{p}"] = [percentile(pooled, p)]
            pooled_counts[f"{name}_p{p}"] = len(pooled)
    units = {name: FIGURES[name][3] if name in FIGURES else "ns" for name in samples}
    if per_process:
        for name in ("rss_idle_mthread", "rss_idle_threading", "rss_idle_inprocess_mthread",
                     "rss_idle_inprocess_threading"):
            samples[name] = []
            units[name] = "bytes"
        for name in ("start_fresh_mthread", "start_fresh_threading"):
            samples[name] = []
            units[name] = "ns"
        for run in range(rss_runs):
            kinds = ["mthread", "threading"] if run % 2 == 0 else ["threading", "mthread"]
            for kind in kinds:
                samples[f"rss_idle_{kind}"].append(rss_in_fresh_process(kind, rss_threads))
                samples[f"rss_idle_inprocess_{kind}"].append(rss_child(kind, rss_threads))
                samples[f"start_fresh_{kind}"].append(
                    start_in_fresh_process(kind, START_FRESH_COUNT if not args.smoke else 5))
    if not args.only:
        for _ in range(1 if args.smoke else args.reach_runs):
            for row, latency in reach_kill_latencies().items():
                samples.setdefault(f"reach_kill_{row}", []).append(latency)
                units[f"reach_kill_{row}"] = "ns"

    result = {"python": sys.version.split()[0], "executable": sys.executable,
              "figures": {name: {"median": statistics.median(values), "samples": values,
                                 "unit": units[name]}
                          for name, values in samples.items()}}
    for name, count in pooled_counts.items():
        result["figures"][name]["pooled_samples"] = count
    for name, entry in result["figures"].items():
        print(f"  {name:24} {entry['median']:14.1f} {entry['unit']}", file=sys.stderr)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
