#!/usr/bin/python3
"""mthread's Python figures beside what a Python programmer would use instead, in one run.

Run with Debian's python3 and the build tree's package:
    PYTHONPATH=build-bench/python /usr/bin/python3 bench/python_bench.py --json out.json

Every figure is measured `--reps` times; the runs of all figures are interleaved in a shuffled
order each repetition (so a burst of noise hits both sides of a ratio alike), and the median is
reported. Times are nanoseconds per operation, rates messages per second, memory bytes per thread.
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


def wait_gone(tid):
    """Until status() says TERMINATED (stack and mailbox freed)."""
    deadline = time.monotonic() + PATIENCE_MS / 1000
    while mthread.status(tid) != mthread.TERMINATED:
        if time.monotonic() > deadline:
            raise RuntimeError(f"thread {tid} did not end")
        mthread.sleep_ms(1)


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


def rtt_lock_handoff(n):
    """Two raw locks passed back and forth: two GIL hand-offs a round trip, the floor for any
    Python-level ping-pong."""
    ping, pong = _thread.allocate_lock(), _thread.allocate_lock()
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

def _finish(main):
    mthread.notify(main, 1)


def start_finish_mthread(n):
    """Start a thread and learn that it finished: its last act notifies the main thread."""
    main = mthread.getReplID()
    samples = []
    for _ in range(n):
        start = now()
        mthread.start_new_thread("t", _finish, (main,))
        if mthread.wait(PATIENCE_MS) != 1:
            raise RuntimeError("thread did not finish")
        samples.append(now() - start)
    return statistics.median(samples)


def _noop():
    pass


def start_join_threading(n):
    samples = []
    for _ in range(n):
        start = now()
        t = threading.Thread(target=_noop)
        t.start()
        t.join()
        samples.append(now() - start)
    return statistics.median(samples)


# ---- the cost of being suspendable -----------------------------------------------------------

def _loop(main, n, suspendable):
    if suspendable:
        mthread.allowsuspend(True)
    samples = []
    total = 0
    for _ in range(n // LOOP_BATCH):
        start = now()
        for i in range(LOOP_BATCH):
            if i % 3:
                total += i
            else:
                total -= 1
        samples.append(now() - start)
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


# ---- RSS per idle thread (each in a fresh process) -------------------------------------------

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
    "notify_rtt_mthread": (notify_rtt_mthread, 4000, 100, "ns"),
    "msg_rate_mthread": (msg_rate_mthread, 40000, 200, "msg/s"),
    "msg_rate_queue": (msg_rate_queue, 40000, 200, "msg/s"),
    "msg_rate8_mthread": (msg_rate8_mthread, 20000, 200, "msg/s"),
    "msg_rate8_queue": (msg_rate8_queue, 20000, 200, "msg/s"),
    "start_finish_mthread": (start_finish_mthread, 300, 5, "ns"),
    "start_join_threading": (start_join_threading, 300, 5, "ns"),
    "loop_suspendable": (loop_suspendable, 300000, 20000, "ns"),
    "loop_plain": (loop_plain, 300000, 20000, "ns"),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--rss-runs", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="tiny workloads, one repetition")
    parser.add_argument("--only", help="comma-separated figure names")
    parser.add_argument("--rss-child", choices=["mthread", "threading"], help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=200)
    args = parser.parse_args()

    if args.rss_child:
        print(rss_child(args.rss_child, args.threads))
        return 0

    reps = 1 if args.smoke else args.reps
    rss_runs = 1 if args.smoke else args.rss_runs
    rss_threads = 20 if args.smoke else args.threads
    names = list(FIGURES) if not args.only else args.only.split(",")
    samples = {name: [] for name in names}
    for rep in range(reps):
        order = names[:]
        random.shuffle(order)
        for name in order:
            func, full, small, _ = FIGURES[name]
            samples[name].append(func(small if args.smoke else full))
        print(f"python: repetition {rep + 1}/{reps} done", file=sys.stderr, flush=True)
    units = {name: FIGURES[name][3] for name in names}
    if not args.only:
        for name in ("rss_idle_mthread", "rss_idle_threading"):
            samples[name] = []
            units[name] = "bytes"
        for _ in range(rss_runs):
            samples["rss_idle_mthread"].append(rss_in_fresh_process("mthread", rss_threads))
            samples["rss_idle_threading"].append(rss_in_fresh_process("threading", rss_threads))

    result = {"python": sys.version.split()[0], "executable": sys.executable,
              "figures": {name: {"median": statistics.median(values), "samples": values,
                                 "unit": units[name]}
                          for name, values in samples.items()}}
    for name, entry in result["figures"].items():
        print(f"  {name:24} {entry['median']:14.1f} {entry['unit']}", file=sys.stderr)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
