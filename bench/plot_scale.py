#!/usr/bin/python3
"""The scale figures as a table (Markdown) and a plot (PNG), from the JSON of bench/scale.py
(Python) and bench/cpp/scale_bench (C++).

    python3 bench/plot_scale.py --cpp cpp-scale.json --python python-scale.json \
        --md bench/results/scale.md --png bench/results/scale.png

The plot needs Debian's python3-matplotlib; without it only the table is written.
"""

import argparse
import json
import os
import sys

# (key, label, unit divisor, unit): costs in µs a thread, memory in KiB a thread.
OPERATIONS = [
    ("start", "start", 1e3, "µs"),
    ("send", "send (one each)", 1e3, "µs"),
    ("bcast", "broadcast message", 1e3, "µs"),
    ("notify", "notify (one each)", 1e3, "µs"),
    ("nbcast", "broadcast notification", 1e3, "µs"),
    ("list", "list", 1e3, "µs"),
    ("status", "status", 1e3, "µs"),
    ("suspend", "suspend", 1e3, "µs"),
    ("resume", "resume", 1e3, "µs"),
    ("kill", "kill", 1e3, "µs"),
    ("join", "join, after the kills (until gone)", 1e3, "µs"),
    ("end", "kill + join", 1e3, "µs"),
    ("rss", "RSS of an idle thread", 1024, "KiB"),
]
GROWTH_LIMIT = 1.5  # from 100 to 10000 threads

PEERS = {
    "cpp": ("C++", "mthread", "std", "std::thread + mutex/condvar"),
    "python": ("Python", "mthread", "threading", "threading"),
}

PEER_METHOD = {
    "cpp": "The peer: a std::thread blocked on its own mutex + condition variable mailbox "
           "(send, broadcast as N pushes, kill as a stop request), its own slot (notify), one "
           "shared condition variable's notify_all (broadcast notification), std::thread::join; "
           "std::thread has no list, status, suspend or resume",
    "python": "The peer: a threading.Thread blocked on its own queue.Queue (send, broadcast as N "
              "puts, kill as a stop item), its own threading.Event (notify), one shared Event "
              "(broadcast notification), threading.enumerate() (list), is_alive() (status), "
              "Thread.join(); threading has no suspend or resume",
}


def load(path):
    if not path or not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def value(entry, key, how="median"):
    """A figure from either format: C++ {"op": {"median":..}} or Python {"median": {"op":..}}.
    "end" is kill + join of the same run: the kills' threads end while the kill loop still runs,
    so the join phase alone shows only what was left, and a slow kill leaves a short join.
    Results written before "end" was measured give the sum of the two phases' figures."""
    if entry is None:
        return None
    if "median" in entry and isinstance(entry["median"], dict):
        figure = entry[how].get(key)
    else:
        item = entry.get(key)
        figure = item.get(how) if isinstance(item, dict) else None
    if figure is None and key == "end":
        kill, join = value(entry, "kill", how), value(entry, "join", how)
        return kill + join if kill is not None and join is not None else None
    return figure


def fmt(x, divisor):
    if x is None:
        return "—"
    x = x / divisor
    return f"{x:.2f}" if x < 10 else f"{x:.1f}" if x < 100 else f"{x:.0f}"


def scale_table(face, data):
    title, ours, peer, peer_name = PEERS[face]
    scale = data["scale"]
    ns = sorted({int(n) for n in scale.get(ours, {})})
    lines = [f"#### {title}: cost per thread, mthread / {peer_name}", ""]
    header = "| operation | " + " | ".join(f"N = {n}" for n in ns)
    growth = 100 in ns and 10000 in ns
    if growth:
        header += " | mthread 10000 vs 100 |"
    else:
        header += " |"
    lines.append(header)
    lines.append("|" + " --- |" * (len(ns) + 1 + (1 if growth else 0)))
    for key, label, divisor, unit in OPERATIONS:
        cells = []
        for n in ns:
            a = value(scale[ours].get(str(n)), key)
            b = value(scale.get(peer, {}).get(str(n)), key)
            cell = fmt(a, divisor)
            if b is not None:
                cell += f" / {fmt(b, divisor)}"
            cells.append(cell)
        row = f"| {label} ({unit}) | " + " | ".join(cells)
        if growth and key == "join":
            row += " | — (see kill + join) |"
        elif growth:
            a100 = value(scale[ours].get("100"), key)
            a10k = value(scale[ours].get("10000"), key)
            if a100 and a10k:
                ratio = a10k / a100
                verdict = "met" if ratio <= GROWTH_LIMIT else "missed"
                row += f" | {ratio:.2f}× ({verdict}) |"
            else:
                row += " | — |"
        else:
            row += " |"
        lines.append(row)
    lines.append("")
    lines.append(f"Method: {data.get('method', '')}. {PEER_METHOD[face]}. Target: each mthread "
                 f"cost at 10000 threads ≤ {GROWTH_LIMIT}× its cost at 100.")
    lines.append("")
    return lines


def broadcast_table(data):
    if not data or not data.get("broadcast"):
        return []
    lines = ["#### Python: a broadcast to N fresh threads, each taking one message and ending",
             "",
             "| N | broadcast call (µs a target) | broadcast, all done (µs a target) | "
             "N single sends, all done | threading: N Queue.put, all done | "
             "vs single sends | vs threading | notify(0): call / all done | "
             "N single notify, all done |",
             "|" + " --- |" * 9]
    for n, entry in sorted(data["broadcast"].items(), key=lambda item: int(item[0])):
        b, s, t = entry["broadcast"], entry["single"], entry["threading_put"]
        nb, ns_ = entry.get("notify_broadcast"), entry.get("notify_single")
        r_single = b["done_median"] / s["done_median"]
        r_thread = b["done_median"] / t["done_median"]
        call_ok = b["call_median"] <= 2000
        lines.append(
            f"| {n} | {b['call_median'] / 1e3:.2f} ({'met' if call_ok else 'missed'}: ≤ 2) | "
            f"{b['done_median'] / 1e3:.1f} (mean {b['done_mean'] / 1e3:.1f}) | "
            f"{s['done_median'] / 1e3:.1f} (mean {s['done_mean'] / 1e3:.1f}) | "
            f"{t['done_median'] / 1e3:.1f} (mean {t['done_mean'] / 1e3:.1f}) | "
            f"{r_single:.2f}× ({'met' if r_single <= 1.0 else 'missed'}: ≤ 1.0) | "
            f"{r_thread:.2f}× ({'met' if r_thread <= 1.0 else 'missed'}: ≤ 1.0) | "
            + (f"{nb['call_median'] / 1e3:.2f} / {nb['done_median'] / 1e3:.1f} | "
               f"{ns_['done_median'] / 1e3:.1f} |" if nb and ns_ else "— | — |"))
    lines.append("")
    lines.append(f"Method: from the first call to the last thread's report that it received its "
                 f"message and is ending (\"all done\"), divided by N; median of "
                 f"{data.get('reps', '?')} runs (the mean beside it), in-process, each kind in a "
                 f"fresh process of its own, the threads started and settled (every one waiting) "
                 f"before the clock starts.")
    lines.append("")
    return lines


def plot(faces, png):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("plot_scale.py: no matplotlib (Debian's python3-matplotlib): no plot",
              file=sys.stderr)
        return False
    ops = OPERATIONS
    cols = 5
    rows = (len(ops) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.2 * rows))
    styles = {
        ("cpp", "ours"): dict(color="tab:blue", marker="o", label="C++ mthread"),
        ("cpp", "peer"): dict(color="tab:blue", marker="x", linestyle="--",
                              label="C++ std::thread + condvar"),
        ("python", "ours"): dict(color="tab:orange", marker="o", label="Python mthread"),
        ("python", "peer"): dict(color="tab:orange", marker="x", linestyle="--",
                                 label="Python threading"),
    }
    for index, (key, label, divisor, unit) in enumerate(ops):
        ax = axes[index // cols][index % cols]
        for face, data in faces.items():
            _, ours, peer, _ = PEERS[face]
            for side, name in (("ours", ours), ("peer", peer)):
                series = data["scale"].get(name, {})
                points = sorted((int(n), value(entry, key)) for n, entry in series.items())
                points = [(n, v / divisor) for n, v in points if v is not None]
                if points:
                    ax.plot([p[0] for p in points], [p[1] for p in points],
                            **styles[(face, side)])
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(label)
        ax.set_xlabel("threads")
        ax.set_ylabel(f"{unit} a thread")
        ax.grid(True, which="both", alpha=0.3)
    for index in range(len(ops), rows * cols):
        axes[index // cols][index % cols].axis("off")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4)
    fig.suptitle("mthread at scale: cost per thread (flat = scales; lower is better)")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    fig.savefig(png, dpi=90)
    return True


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cpp")
    parser.add_argument("--python")
    parser.add_argument("--md")
    parser.add_argument("--png")
    parser.add_argument("--note", action="append", default=[])
    args = parser.parse_args()
    faces = {}
    for face, path in (("cpp", args.cpp), ("python", args.python)):
        data = load(path)
        if data and data.get("scale"):
            faces[face] = data
    lines = ["### Scale: the cost of each operation per thread, N = 10 … 10000", ""]
    lines += [f"{note}" for note in args.note] + ([""] if args.note else [])
    for face in ("cpp", "python"):
        if face in faces:
            lines += scale_table(face, faces[face])
    lines += broadcast_table(load(args.python))
    if args.png and faces and plot(faces, args.png):
        lines.append(f"Plot: {os.path.basename(args.png)}")
        lines.append("")
    text = "\n".join(lines)
    if args.md:
        with open(args.md, "w") as f:
            f.write(text)
    print(text)


if __name__ == "__main__":
    main()
