#!/usr/bin/python3
"""How mthread's per-thread costs grow with the number of threads, beside threading's.

    PYTHONPATH=build-bench/python /usr/bin/python3 bench/scale.py --json out.json

For each N (default 10, 100, 1000, 10000) N threads are started that block in the library's
waits, and every operation is applied to all N of them, one phase after another:

    start    start N threads, until every one of them runs (the last one to run says so)
    send     one message to each (mthread.sendmsg / its own queue.Queue.put), until every one
             received it
    bcast    one broadcast (mthread.sendmsg(0, ...) / N queue.Queue.put: threading has none),
             until every one received it
    notify   one notification to each (mthread.notify / its own threading.Event.set), until
             every one received it
    nbcast   one notify(0, ...) / one shared threading.Event.set(), until every one received it
    list     mthread.list(False) / threading.enumerate(), the whole list
    status   mthread.status(id) / Thread.is_alive(), for each
    suspend  mthread.suspend(id) for each (state SUSPENDED on return); threading has none
    resume   mthread.resume(id) for each; threading has none
    kill     mthread.kill(id) for each / a stop item put on each thread's queue
    join     until each is TERMINATED (stack and mailbox freed: status() polled) / Thread.join()
    end      kill + join of the same run (the killed threads end while the kill loop still runs:
             a slow kill leaves a short join, so the medians of the two do not add up)
    rss      resident memory after the start, less before, per thread (idle threads)

A figure is the phase's wall time divided by N (a mean over the N threads: periodic costs, a
garbage collection or a slow wake-up, are in it), in-process (each side, and each kind of
broadcast below, in a fresh process of its own), and of R such runs the median.
Below 1000 threads there are three times as many runs (a phase over 100 threads lasts a few
milliseconds, and the CPUs' state when it begins moves it by a third or more).
The phases of mthread's cheapest calls (status, suspend, resume) are taken CHEAP_ROUNDS (5)
times in a run, and the median round counts (threading's status, is_alive(), the same).
Between phases the threads are let settle (every mthread thread WAITING; the same time given to
threading's), outside the timed part.

The broadcast figures (--broadcast-ns, default 1000 and 4000) use fresh threads that each take
one message and end: N single sends, one broadcast, and threading's N Queue.put to N waiters,
each timed from the first call to the last thread's report that it received its message and is
ending ("done"); the broadcast call's own time is reported too.
"""

import argparse
import gc
import itertools
import json
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time

# Before the module reads it: the default limit (1024) is below the largest N.
os.environ.setdefault("MTHREAD_MAX_THREADS", "20000")

import mthread  # noqa: E402

PATIENCE_MS = 600_000
CHEAP_ROUNDS = 5
# Runs below SMALL_N are this many times --reps: a phase over 10 or 100 threads lasts a few
# milliseconds, and whether the CPUs were asleep or awake when it began moves it by a third or
# more; the runs are cheap there, and the growth to 10000 divides by them.
SMALL_N = 1000
SMALL_N_RUNS_FACTOR = 3
PHASES = ["start", "send", "bcast", "notify", "nbcast", "list", "status", "suspend", "resume",
          "kill", "join", "end", "rss"]
now = time.perf_counter_ns


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class Arrivals:
    """Counts threads reaching a point; the last one tells the main thread (one wake-up, not N)."""

    def __init__(self, n, tell):
        self.n = n
        self.counter = itertools.count(1)  # next() is atomic under the GIL
        self.tell = tell

    def arrive(self):
        if next(self.counter) == self.n:
            self.tell()


class MthreadSide:
    name = "mthread"

    def __init__(self, n):
        self.n = n
        self.main = mthread.getReplID()
        self.ids = []

    def arrivals(self):
        return Arrivals(self.n, lambda: mthread.notify(self.main, 1))

    def wait_arrivals(self):
        if mthread.wait(PATIENCE_MS) is None:
            raise RuntimeError("threads did not arrive")

    def settle(self, pause):
        # Every thread back in one of mthread's waits: the next phase measures wake-ups.
        deadline = time.monotonic() + 60
        for tid in self.ids:
            while mthread.status(tid) != mthread.WAITING:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"thread {tid} did not settle")
                mthread.sleep_us(100)
        time.sleep(pause)

    def worker(self, points):
        mthread.allowsuspend(True)
        getmsg, wait = mthread.getmsg, mthread.wait
        points[0].arrive()
        getmsg(PATIENCE_MS)
        points[1].arrive()
        getmsg(PATIENCE_MS)
        points[2].arrive()
        wait(PATIENCE_MS)
        points[3].arrive()
        wait(PATIENCE_MS)
        points[4].arrive()
        while True:  # idle until killed
            getmsg(PATIENCE_MS)

    def run(self, points, pause):
        n, figures = self.n, {}
        start_new_thread, sendmsg, notify = mthread.start_new_thread, mthread.sendmsg, mthread.notify
        status, suspend, resume, kill = mthread.status, mthread.suspend, mthread.resume, mthread.kill
        gc.collect()
        rss_before = rss_bytes()
        t0 = now()
        self.ids = [start_new_thread("w%d" % i, self.worker, (points,)) for i in range(n)]
        self.wait_arrivals()
        figures["start"] = now() - t0
        figures["rss"] = rss_bytes() - rss_before
        self.settle(pause)

        t0 = now()
        for tid in self.ids:
            if not sendmsg(tid, 1):
                raise RuntimeError("send refused")
        self.wait_arrivals()
        figures["send"] = now() - t0
        self.settle(pause)

        t0 = now()
        if not sendmsg(0, 2):
            raise RuntimeError("broadcast refused")
        self.wait_arrivals()
        figures["bcast"] = now() - t0
        self.settle(pause)

        t0 = now()
        for tid in self.ids:
            notify(tid, 7)
        self.wait_arrivals()
        figures["notify"] = now() - t0
        self.settle(pause)

        t0 = now()
        notify(0, 8)
        self.wait_arrivals()
        figures["nbcast"] = now() - t0
        self.settle(pause)

        t0 = now()
        listed = mthread.list(False)
        figures["list"] = now() - t0
        if len(listed) < n + 1:
            raise RuntimeError(f"list() shows {len(listed)} threads, expected {n + 1}")

        # These calls cost a few hundred nanoseconds: one pass over 100 threads is tens of
        # microseconds, as much the CPU's state after the phase before as the calls. So these
        # three phases are taken CHEAP_ROUNDS times, and the round with the median time counts.
        rounds = {"status": [], "suspend": [], "resume": []}
        for _ in range(CHEAP_ROUNDS):
            t0 = now()
            for tid in self.ids:
                if status(tid) != mthread.WAITING:
                    raise RuntimeError("a thread is not waiting")
            rounds["status"].append(now() - t0)

            t0 = now()
            for tid in self.ids:
                if not suspend(tid):
                    raise RuntimeError("suspend refused")
            rounds["suspend"].append(now() - t0)
            # As in the C++ bench: whatever a suspend set going ends before the resumes are timed.
            time.sleep(pause)
            t0 = now()
            for tid in self.ids:
                if not resume(tid):
                    raise RuntimeError("resume refused")
            rounds["resume"].append(now() - t0)
            self.settle(pause)
        for phase, times in rounds.items():
            figures[phase] = statistics.median(times)

        t0 = now()
        for tid in self.ids:
            if not kill(tid):
                raise RuntimeError("kill refused")
        figures["kill"] = now() - t0
        t0 = now()
        for tid in self.ids:
            while status(tid) != mthread.TERMINATED:
                mthread.sleep_us(50)
        figures["join"] = now() - t0
        figures["end"] = figures["kill"] + figures["join"]
        return figures


class ThreadingSide:
    name = "threading"

    def __init__(self, n):
        self.n = n
        self.threads = []
        self.queues = []
        self.events = []
        self.shared = threading.Event()
        self.told = threading.Semaphore(0)

    def arrivals(self):
        return Arrivals(self.n, self.told.release)

    def wait_arrivals(self):
        if not self.told.acquire(timeout=PATIENCE_MS / 1000):
            raise RuntimeError("threads did not arrive")

    def settle(self, pause):
        time.sleep(pause)

    def worker(self, points, inbox, event):
        points[0].arrive()
        inbox.get()
        points[1].arrive()
        inbox.get()
        points[2].arrive()
        event.wait()
        points[3].arrive()
        self.shared.wait()
        points[4].arrive()
        inbox.get()  # the stop item

    def run(self, points, pause):
        n, figures = self.n, {}
        self.queues = [queue.Queue() for _ in range(n)]
        self.events = [threading.Event() for _ in range(n)]
        gc.collect()
        rss_before = rss_bytes()
        t0 = now()
        for i in range(n):
            t = threading.Thread(target=self.worker, args=(points, self.queues[i], self.events[i]))
            t.start()
            self.threads.append(t)
        self.wait_arrivals()
        figures["start"] = now() - t0
        figures["rss"] = rss_bytes() - rss_before
        self.settle(pause)

        t0 = now()
        for q in self.queues:
            q.put(1)
        self.wait_arrivals()
        figures["send"] = now() - t0
        self.settle(pause)

        t0 = now()
        for q in self.queues:
            q.put(2)
        self.wait_arrivals()
        figures["bcast"] = now() - t0
        self.settle(pause)

        t0 = now()
        for e in self.events:
            e.set()
        self.wait_arrivals()
        figures["notify"] = now() - t0
        self.settle(pause)

        t0 = now()
        self.shared.set()
        self.wait_arrivals()
        figures["nbcast"] = now() - t0
        self.settle(pause)

        t0 = now()
        listed = threading.enumerate()
        figures["list"] = now() - t0
        if len(listed) < n + 1:
            raise RuntimeError("enumerate() misses threads")

        rounds = []
        for _ in range(CHEAP_ROUNDS):
            t0 = now()
            for t in self.threads:
                if not t.is_alive():
                    raise RuntimeError("a thread ended")
            rounds.append(now() - t0)
        figures["status"] = statistics.median(rounds)

        t0 = now()
        for q in self.queues:
            q.put(None)
        figures["kill"] = now() - t0
        t0 = now()
        for t in self.threads:
            t.join()
        figures["join"] = now() - t0
        figures["end"] = figures["kill"] + figures["join"]
        return figures


def scale_run(side_class, n):
    side = side_class(n)
    points = [side.arrivals() for _ in range(5)]
    # Long enough for every woken thread to be back in its wait; the same for both sides.
    pause = 0.02 + n * 2e-6
    figures = side.run(points, pause)
    return {phase: value / n for phase, value in figures.items()}


# ---- broadcast to N fresh threads --------------------------------------------------------------

def broadcast_run(kind, n):
    """(call ns, done ns) per target: from the first call to the last thread's report."""
    main = mthread.getReplID()
    done_counter = itertools.count(1)
    if kind == "threading_put":
        told = threading.Semaphore(0)
        ready = threading.Semaphore(0)
        ready_counter = itertools.count(1)
        queues = [queue.Queue() for _ in range(n)]

        def t_worker(inbox):
            if next(ready_counter) == n:
                ready.release()
            inbox.get()
            if next(done_counter) == n:
                told.release()

        threads = [threading.Thread(target=t_worker, args=(q,)) for q in queues]
        for t in threads:
            t.start()
        ready.acquire()
        time.sleep(0.05 + n * 5e-6)
        gc.collect()
        t0 = now()
        for q in queues:
            q.put(5)
        t_call = now()
        told.acquire()
        t_done = now()
        for t in threads:
            t.join()
        return (t_call - t0) / n, (t_done - t0) / n

    def m_worker():
        if kind.startswith("notify"):
            mthread.wait(PATIENCE_MS)
        else:
            mthread.getmsg(PATIENCE_MS)
        if next(done_counter) == n:
            mthread.sendmsg(main, 1)

    ids = [mthread.start_new_thread("b%d" % i, m_worker, ()) for i in range(n)]
    deadline = time.monotonic() + 60
    for tid in ids:
        while mthread.status(tid) != mthread.WAITING:
            if time.monotonic() > deadline:
                raise RuntimeError("broadcast targets did not start")
            mthread.sleep_us(100)
    time.sleep(0.05 + n * 5e-6)
    gc.collect()
    t0 = now()
    if kind == "single":
        for tid in ids:
            mthread.sendmsg(tid, 5)
    elif kind == "broadcast":
        mthread.sendmsg(0, 5)
    elif kind == "notify_single":
        for tid in ids:
            mthread.notify(tid, 5)
    elif kind == "notify_broadcast":
        mthread.notify(0, 5)
    t_call = now()
    if mthread.getmsg(PATIENCE_MS)[0] == 0:
        raise RuntimeError("broadcast targets did not all receive")
    t_done = now()
    for tid in ids:
        while mthread.status(tid) != mthread.TERMINATED:
            mthread.sleep_us(100)
    return (t_call - t0) / n, (t_done - t0) / n


BROADCAST_KINDS = ["single", "broadcast", "threading_put", "notify_single", "notify_broadcast"]


def runs_for(n, reps):
    return reps * SMALL_N_RUNS_FACTOR if n < SMALL_N else reps


def measure_side(side, ns, reps):
    result = {}
    for n in ns:
        runs = [scale_run(side, n) for _ in range(runs_for(n, reps))]
        row = {phase: statistics.median(r[phase] for r in runs) for phase in runs[0]}
        row_mean = {phase: statistics.mean(r[phase] for r in runs) for phase in runs[0]}
        result[str(n)] = {"median": row, "mean": row_mean}
        print(f"{side.name:9} N={n:5}: " +
              " ".join(f"{p}={row[p] / 1000:.1f}" for p in PHASES if p in row) +
              " (µs a thread; rss bytes)", flush=True)
    return result


def measure_broadcast(kind, bns, reps):
    result = {}
    for n in bns:
        runs = [broadcast_run(kind, n) for _ in range(reps)]
        result[str(n)] = {
            "call_median": statistics.median(r[0] for r in runs),
            "call_mean": statistics.mean(r[0] for r in runs),
            "done_median": statistics.median(r[1] for r in runs),
            "done_mean": statistics.mean(r[1] for r in runs),
        }
        print(f"broadcast N={n:5} {kind:17}: call {result[str(n)]['call_median'] / 1000:.2f}"
              f" µs, done {result[str(n)]['done_median'] / 1000:.2f} µs a target", flush=True)
    return result


def in_fresh_process(args, what):
    """Runs this script for one side or one kind of broadcast in a process of its own: what one
    leaves behind (the allocator's arenas, the kernel's futex table, which mthread grows with its
    thread count) must not help or hinder the other."""
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run([sys.executable, os.path.abspath(__file__), *what, "--ns", args.ns,
                        "--broadcast-ns", args.broadcast_ns, "--reps", str(args.reps),
                        "--json", out.name], check=True)
        with open(out.name) as f:
            return json.load(f)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--ns", default="10,100,1000,10000", help="thread counts")
    parser.add_argument("--broadcast-ns", default="1000,4000")
    parser.add_argument("--reps", type=int, default=3, help="runs of each N (median reported)")
    parser.add_argument("--smoke", action="store_true", help="tiny N, one run")
    parser.add_argument("--only", choices=["scale", "broadcast"])
    sides = {side.name: side for side in (MthreadSide, ThreadingSide)}
    parser.add_argument("--side", choices=sorted(sides), help=argparse.SUPPRESS)
    parser.add_argument("--kind", choices=BROADCAST_KINDS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.smoke:
        args.ns, args.broadcast_ns, args.reps = "5,20", "20", 1
    ns = [int(x) for x in args.ns.split(",") if x]
    bns = [int(x) for x in args.broadcast_ns.split(",") if x]
    if args.side or args.kind:  # one part, in this process
        part = (measure_side(sides[args.side], ns, args.reps) if args.side
                else measure_broadcast(args.kind, bns, args.reps))
        with open(args.json, "w") as f:
            json.dump(part, f)
        return
    result = {"python": sys.version.split()[0], "ns": ns, "broadcast_ns": bns, "reps": args.reps,
              "method": "per thread: a phase's wall time / N (mean over the N threads), "
                        "in-process, each side in a fresh process of its own; median of the runs "
                        f"({SMALL_N_RUNS_FACTOR}x as many below {SMALL_N} threads); "
                        f"status, suspend and resume: the median of {CHEAP_ROUNDS} rounds a run",
              "scale": {}, "broadcast": {}}
    if args.only != "broadcast":
        for name in sides:
            result["scale"][name] = in_fresh_process(args, ["--side", name])
    if args.only != "scale":
        for kind in BROADCAST_KINDS:
            for n, figures in in_fresh_process(args, ["--kind", kind]).items():
                result["broadcast"].setdefault(n, {})[kind] = figures
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
