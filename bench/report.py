#!/usr/bin/python3
"""Turns the raw results of one bench/run.sh run into the table: figure | mthread | peer | ratio |
target | met?  Prints it, and writes it as JSON and Markdown.

Inputs (in the results directory given on the command line):
  cpp-messaging.json, cpp-lifecycle.json   Google Benchmark JSON (repetitions, aggregates)
  cpp-rss-*.json                           one Google Benchmark JSON per RSS process
  python.json, python-*.json               bench/python_bench.py --json output, one file per
                                           CPython (optional); each gets its own rows
"""

import argparse
import datetime
import glob
import json
import os
import platform
import statistics
import subprocess
import sys


def load_gbench(paths):
    """{benchmark name: {field: [values...]}} over every repetition in every file.

    When a file holds a 'median' aggregate for a benchmark, that median is the one value taken from
    that file; otherwise every iteration entry counts (a run with one repetition)."""
    per_file = []
    for path in paths:
        with open(path) as f:
            data = json.load(f)
        medians, runs = {}, {}
        for entry in data.get("benchmarks", []):
            name = entry["run_name"].split("/")[0]
            if entry.get("error_occurred"):
                raise SystemExit(f"benchmark {name} failed: {entry.get('error_message')}")
            if entry.get("run_type") == "aggregate":
                if entry.get("aggregate_name") == "median":
                    medians[name] = entry
            else:
                runs.setdefault(name, []).append(entry)
        per_file.append((medians, runs))
    values = {}
    for medians, runs in per_file:
        for name in set(medians) | set(runs):
            entries = [medians[name]] if name in medians else runs[name]
            for entry in entries:
                for key, value in entry.items():
                    if isinstance(value, (int, float)) and not isinstance(value, bool):
                        values.setdefault(name, {}).setdefault(key, []).append(float(value))
    return values


def gb_value(values, name, field):
    """Median of `field` of benchmark `name` (times in ns, Google Benchmark's default unit)."""
    if name not in values or field not in values[name]:
        return None
    return statistics.median(values[name][field])


# Each figure: key, label, unit, how to get mthread's and the peer's value, the target.
# ratio = mthread / peer. kind "max": met when ratio <= target; "min": met when ratio >= target;
# "abs": no peer, met when the mthread value <= target (same unit as the value).
# "info": a ratio shown for reference, no target.
def cpp_figures(gb):
    def t(name):
        """Time of one operation: the median batch of each repetition (bench::batch_clock),
        then the median over repetitions; Google Benchmark's mean if there is no batch figure."""
        value = gb_value(gb, name, "median_ns")
        return value if value else gb_value(gb, name, "real_time")

    def c(name, counter):
        return gb_value(gb, name, counter)

    def rate(name):
        batch, per_batch = gb_value(gb, name, "batch"), gb_value(gb, name, "median_ns")
        if batch and per_batch:
            return batch * 1e9 / per_batch
        return gb_value(gb, name, "items_per_second")

    return [
        ("cpp.msg_rtt_vs_cv", "C++ message round trip vs mutex+condvar+deque mailbox", "ns",
         t("msg_round_trip_mthread"), t("msg_round_trip_cv"), "max", 0.5),
        ("cpp.msg_rtt_vs_spin", "C++ message round trip vs two threads spinning on an atomic", "ns",
         t("msg_round_trip_mthread"), t("msg_round_trip_atomic_spin"), "max", 3.0),
        ("cpp.notify_rtt_vs_cv", "C++ notification round trip vs mutex+condvar slot", "ns",
         t("notify_round_trip_mthread"), t("notify_round_trip_cv"), "max", 0.5),
        ("cpp.msg_rate_vs_cv", "C++ one-way int messages/s, depth 1024, vs condvar mailbox",
         "msg/s", rate("msg_throughput_mthread"), rate("msg_throughput_cv"), "min", 3.0),
        ("cpp.start_join_vs_std", "C++ start + join vs std::thread", "ns",
         t("start_join_mthread"), t("start_join_std"), "max", 1.1),
        ("cpp.rss_idle_vs_std", "C++ RSS per idle thread (1000 threads) vs std::thread", "bytes",
         c("rss_idle_mthread", "rss_per_thread_bytes"), c("rss_idle_std", "rss_per_thread_bytes"),
         "max", 1.0),
        ("cpp.suspend_p50", "C++ suspend latency p50 (compute loop → stopped)", "us",
         c("suspend_latency", "p50_us"), None, "info", None),
        ("cpp.suspend_p99", "C++ suspend latency p99", "us",
         c("suspend_latency", "p99_us"), None, "abs", 1000.0),
        ("cpp.kill_p50", "C++ kill latency p50 (blocked thread → gone)", "us",
         c("kill_latency", "p50_us"), None, "info", None),
        ("cpp.kill_p99", "C++ kill latency p99", "us",
         c("kill_latency", "p99_us"), None, "abs", 10000.0),
    ]


PYTHON_FIGURES = [
    # key, label, unit, mthread figure, peer figure, kind, target
    ("py.msg_rtt_vs_queue", "Python message round trip vs queue.Queue", "ns",
     "msg_rtt_mthread", "msg_rtt_queue", "max", 0.85),
    ("py.msg_rtt_vs_lock", "Python message round trip vs raw _thread lock hand-off", "ns",
     "msg_rtt_mthread", "rtt_lock_handoff", "max", 1.1),
    ("py.notify_rtt_vs_lock", "Python notification round trip vs raw _thread lock hand-off", "ns",
     "notify_rtt_mthread", "rtt_lock_handoff", "max", 1.1),
    ("py.msg_rate_vs_queue", "Python one-way int messages/s, depth 1024, vs queue.Queue(1024)",
     "msg/s", "msg_rate_mthread", "msg_rate_queue", "min", 3.0),
    ("py.msg_rate8_vs_queue", "Python one-way int messages/s, depth 8, vs queue.Queue(8)",
     "msg/s", "msg_rate8_mthread", "msg_rate8_queue", "info", None),
    # Starts, each timed until the starter knows the thread finished: "end seen" (its last act
    # tells the starter: notify() -> wait() / a lock released -> acquire()) or "gone" (status()
    # TERMINATED, stack and mailbox freed / Thread.join() returned); see python_bench.py.
    ("py.start_seen_median", "Python start + end seen vs threading.Thread start + end seen "
     "(median of 300 starts, in-process)", "ns",
     "start_finish_mthread", "start_finish_threading", "max", 0.8),
    ("py.start_seen_mean", "Python start + end seen vs threading.Thread start + end seen "
     "(mean of 300 starts, in-process)", "ns",
     "start_finish_mthread_mean", "start_finish_threading_mean", "max", 0.8),
    ("py.start_gone_median", "Python start + gone (status TERMINATED) vs threading.Thread "
     "start + join (median of 300 starts, in-process)", "ns",
     "start_gone_mthread", "start_join_threading", "max", 0.8),
    ("py.start_gone_mean", "Python start + gone (status TERMINATED) vs threading.Thread "
     "start + join (mean of 300 starts, in-process)", "ns",
     "start_gone_mthread_mean", "start_join_threading_mean", "max", 0.8),
    ("py.start_gone_fresh", "Python start + gone vs threading.Thread start + join (mean of 300 "
     "starts in a fresh process, the first included)", "ns",
     "start_fresh_mthread", "start_fresh_threading", "max", 0.8),
    ("py.start_computing", "Python start of a thread that computes, after others that do, vs "
     "threading.Thread.start() (mean of 6 starts in a row, in-process)", "ns",
     "start_computing_mthread_mean", "start_computing_threading_mean", "max", 1.0),
    ("py.suspendable_loop", "Python loop in a thread with allowsuspend(True) vs without", "ns",
     "loop_suspendable", "loop_plain", "max", 1.05),
    ("py.others_one_suspended", "Python others' speed (threading.Thread loop, per CPU s, mean) "
     "with a thread suspended vs none", "loops/s",
     "others_one_suspended", "others_none_suspended", "min", 0.95),
    ("py.others_during_churn", "Python others' speed while a loop is resumed and at once "
     "suspended again, over and over, vs none suspended", "loops/s",
     "others_during_churn", "others_none_suspended", "info", None),
    ("py.suspend_p50", "Python suspend latency p50 (pure-Python loop: suspend() → parked, by its "
     "CPU clock) vs a loop that checks a flag and blocks on a lock", "ns",
     "suspend_latency_p50", "flag_suspend_latency_p50", "info", None),
    ("py.suspend_p99", "Python suspend latency p99 (peer as above)", "ns",
     "suspend_latency_p99", "flag_suspend_latency_p99", "abs", 1e6),
    ("py.kill_p50", "Python kill latency p50 (pure-Python loop: kill() → status TERMINATED)", "ns",
     "kill_latency_p50", None, "info", None),
    ("py.kill_p99", "Python kill latency p99", "ns", "kill_latency_p99", None, "info", None),
    ("py.rss_idle_vs_threading", "Python RSS per idle thread (200 threads) vs threading.Thread "
     "(a fresh process each)", "bytes", "rss_idle_mthread", "rss_idle_threading", "max", 1.0),
    ("py.rss_idle_inprocess_vs_threading", "Python RSS per idle thread (200 threads) vs "
     "threading.Thread (in-process, after the other figures)", "bytes",
     "rss_idle_inprocess_mthread", "rss_idle_inprocess_threading", "max", 1.0),
    ("py.lock_uncontended_vs_cpython", "Python lock acquire()+release(), uncontended: "
     "mthread.allocate_lock() vs _thread.allocate_lock()", "ns",
     "lock_uncontended_mthread", "lock_uncontended_cpython", "max", 1.1),
    ("py.lock_handoff_vs_cpython", "Python lock hand-off round trip between two threads: "
     "mthread's locks vs _thread's", "ns", "lock_handoff_mthread", "rtt_lock_handoff", "max", 1.1),
] + [
    # Kill latency in a managed thread blocked in each call of "What kill reaches"
    # (docs/runner.md), after mthread.install(): kill() -> the thread's finally, median of the
    # runs (a fresh process each).
    (f"py.kill_in_{row}", f"Python kill latency, blocked in {call} (kill() → finally)", "ns",
     f"reach_kill_{row}", None, "abs", 10e6)
    for row, call in (
        ("lock", "Lock.acquire()"), ("lock_timeout", "Lock.acquire(timeout=60)"),
        ("rlock", "RLock.acquire()"), ("condition", "Condition.wait()"),
        ("event", "Event.wait()"), ("semaphore", "Semaphore.acquire()"),
        ("bounded_semaphore", "BoundedSemaphore.acquire()"), ("barrier", "Barrier.wait()"),
        ("queue_get", "Queue.get()"), ("queue_put_full", "Queue.put() on a full queue"),
        ("lifo_queue_get", "LifoQueue.get()"), ("simple_queue_get", "SimpleQueue.get()"),
        ("thread_join", "Thread.join()"), ("time_sleep", "time.sleep()"),
        ("select", "select.select()"), ("poll", "select.poll().poll()"),
        ("socket_accept", "socket.accept()"), ("socket_recv", "socket.recv()"),
        ("socket_recv_into", "socket.recv_into()"), ("socket_recvfrom", "socket.recvfrom()"),
        ("socket_sendall", "socket.sendall() on a full buffer"),
        ("socket_connect", "socket.connect() to a full backlog"))
]


def python_figures(py):
    """The Python rows of one interpreter's results, labelled "Python 3.12: ..." when `py` says
    which CPython ran them."""
    figures = py.get("figures", {}) if py else {}
    version = ".".join(py["python"].split(".")[:2]) if py and py.get("python") else None

    def v(name):
        entry = figures.get(name)
        return None if entry is None else entry["median"]

    def named(key, label):
        if version is None:
            return key, label
        return (key.replace("py.", f"py{version}.", 1),
                label.replace("Python ", f"Python {version}: ", 1))

    return [named(key, label) + (unit, v(m), v(p), kind, target)
            for key, label, unit, m, p, kind, target in PYTHON_FIGURES]


def load_python_results(results):
    """python.json (the default interpreter's) first, then python-*.json in version order."""
    paths = [os.path.join(results, "python.json")]
    paths += sorted(glob.glob(os.path.join(results, "python-*.json")))
    loaded = []
    for path in paths:
        if os.path.exists(path):
            with open(path) as f:
                loaded.append(json.load(f))
    return loaded


def fmt(value, unit):
    if value is None:
        return "—"
    if unit == "ns":
        if value >= 1e6:
            return f"{value / 1e6:.2f} ms"
        if value >= 1e3:
            return f"{value / 1e3:.2f} µs"
        return f"{value:.0f} ns"
    if unit == "us":
        return f"{value / 1e3:.2f} ms" if value >= 1e3 else f"{value:.1f} µs"
    if unit in ("msg/s", "loops/s"):
        return f"{value / 1e6:.2f} M/s" if value >= 1e6 else f"{value / 1e3:.0f} k/s"
    if unit == "bytes":
        return f"{value / 1024:.2f} KiB"
    return f"{value:.3g}"


# Two threads spinning on one cache line take about 100-300 ns a round trip when each has a core;
# far slower, they shared one (the machine was busy) and measured the scheduler, not a floor.
SPIN_FLOOR_VALID_NS = 2000


def evaluate(figure):
    key, label, unit, mine, peer, kind, target = figure
    row = {"key": key, "figure": label, "unit": unit, "mthread": mine, "peer": peer,
           "ratio": None, "kind": kind, "target": target, "met": None}
    if key == "cpp.msg_rtt_vs_spin" and peer is not None and peer > SPIN_FLOOR_VALID_NS:
        row["target_text"] = f"≤ {target:g}"
        row["invalid"] = "the spinning peer threads shared a core: no floor measured"
        return row
    if kind in ("max", "min", "info"):
        if mine is not None and peer:
            row["ratio"] = mine / peer
            if kind != "info":
                row["met"] = row["ratio"] <= target if kind == "max" else row["ratio"] >= target
        if kind != "info":
            row["target_text"] = f"≤ {target:g}" if kind == "max" else f"≥ {target:g}×"
        else:
            row["target_text"] = ""
    elif kind == "abs":
        if mine is not None:
            row["met"] = mine <= target
            if peer:
                row["ratio"] = mine / peer  # for reference: the target is on the value
        row["target_text"] = f"≤ {fmt(target, unit)}"
    else:
        row["target_text"] = ""
    return row


def machine():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, cwd=os.path.dirname(os.path.abspath(__file__)))
        commit = commit.stdout.strip() or None
    except OSError:
        commit = None
    try:
        with open("/proc/loadavg") as f:
            load = " ".join(f.read().split()[:3])
    except OSError:
        load = "?"
    return {"cpu": cpu, "cores": os.cpu_count(), "load": load, "kernel": platform.release(),
            "os": platform.platform(), "python": "/usr/bin/python3 " + platform.python_version(),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "commit": commit}


def table_rows(rows):
    out = []
    for r in rows:
        ratio = "—" if r["ratio"] is None else f"{r['ratio']:.3g}"
        met = "" if r["met"] is None else ("yes" if r["met"] else "NO")
        if r["kind"] in ("max", "min", "abs") and r["met"] is None:
            met = "n/a (busy)" if r.get("invalid") else "n/a"
        out.append([r["figure"], fmt(r["mthread"], r["unit"]), fmt(r["peer"], r["unit"]), ratio,
                    r["target_text"], met])
    return out


HEADER = ["figure", "mthread", "peer", "ratio", "target", "met?"]


def plain_table(rows):
    cells = [HEADER] + table_rows(rows)
    widths = [max(len(row[i]) for row in cells) for i in range(len(HEADER))]
    lines = []
    for n, row in enumerate(cells):
        lines.append(" | ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
        if n == 0:
            lines.append("-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(rows, info, notes):
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for row in table_rows(rows):
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    lines.append(f"Machine: {info['cpu']}, {info['cores']} cores, Linux {info['kernel']}, "
                 f"{info['python']}, load average {info['load']} at the end; {info['date']}"
                 + (f", commit {info['commit']}" if info.get("commit") else "") + ".")
    lines.extend(notes)
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("results", help="directory with the raw results of one run")
    parser.add_argument("--out", help="write <out>.json and <out>.md")
    parser.add_argument("--note", action="append", default=[])
    parser.add_argument("--smoke", action="store_true",
                        help="a smoke run: check that every figure is there, judge no target")
    args = parser.parse_args()

    gb_files = [os.path.join(args.results, n) for n in ("cpp-messaging.json", "cpp-lifecycle.json")]
    gb_files = [p for p in gb_files if os.path.exists(p)]
    gb_files += sorted(glob.glob(os.path.join(args.results, "cpp-rss-*.json")))
    gb = load_gbench(gb_files)
    pys = load_python_results(args.results)
    py = pys[0] if pys else None

    rows = [evaluate(f) for f in cpp_figures(gb) + [f for p in pys or [None]
                                                    for f in python_figures(p)]]
    notes = [f"Note: {n}" for n in args.note]
    missing = [r["figure"] for r in rows
               if r["mthread"] is None or (r["kind"] in ("max", "min") and r["peer"] is None)]
    notes.extend(f"Note: {r['figure']}: {r['invalid']}." for r in rows if r.get("invalid"))
    if py is None:
        missing = [m for m in missing if not m.startswith("Python")]
    if args.smoke:
        for r in rows:
            r["met"] = None
            r["kind"] = "info"
    info = machine()
    if py is None:
        notes.append("Note: the Python module was not built, so the Python figures are missing.")
    print(plain_table(rows))
    print()
    print(f"Machine: {info['cpu']}, {info['cores']} cores, Linux {info['kernel']}, load average "
          f"{info['load']} at the end; {info['date']}")
    for n in notes:
        print(n)
    if args.out:
        with open(args.out + ".json", "w") as f:
            json.dump({"machine": info, "figures": rows, "notes": notes,
                       "python_raw": pys, "cpp_raw": gb}, f, indent=1, ensure_ascii=False)
        with open(args.out + ".md", "w") as f:
            f.write(markdown_table(rows, info, notes))
    if missing:
        print("missing figures: " + "; ".join(missing), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
