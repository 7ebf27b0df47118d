#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_ops (tests/fuzz/corpus): small programs that reach every
operation, in the input layout fuzz_ops.cpp describes. Run it after changing the opcodes."""
import os

OPS = dict(send=0, text=1, bcast=2, notify=3, get=4, get_wait=5, wait=6, getnote=7,
           suspend=8, resume=9, kill=10, list=11, status=12, sleep=13, checkpoint=14,
           compute=15, toggle=16, killself=17, ret=18, child=19, stack=20, join=21,
           repl=22, errors=23, sendself=24, notifyall=25)
MAIN = 4  # the slot of the main thread


def program(workers, main_ops):
    out = bytearray([len(workers)])
    for config, ops in workers:
        out += bytes([config, len(ops)])
        for name, arg in ops:
            out += bytes([OPS[name], arg])
    for name, arg in main_ops:
        out += bytes([OPS[name], arg])
    return bytes(out)


SEEDS = {
    "ping_pong": program(
        [(0, [("send", 1), ("get_wait", 2), ("send", MAIN)]),
         (0, [("get_wait", 2), ("send", 0), ("text", 0)])],
        [("send", 0), ("send", 1), ("get_wait", 2), ("get", 0), ("list", 0)]),
    "suspend_storm": program(
        [(1, [("compute", 200), ("checkpoint", 0), ("compute", 200), ("toggle", 0)]),
         (0, [("suspend", 0), ("resume", 0), ("suspend", 0), ("status", 0), ("resume", 0)]),
         (0, [("suspend", 0), ("kill", 0), ("resume", 0)])],
        [("suspend", 0), ("status", 0), ("resume", 0), ("kill", 4), ("join", 0)]),
    "notify_wait": program(
        [(0, [("wait", 2), ("getnote", 0), ("notify", MAIN), ("notifyall", 5)]),
         (1, [("wait", 2), ("sleep", 50), ("notify", 0)])],
        [("notify", 0), ("notify", 1), ("wait", 2), ("getnote", 0), ("notifyall", 9)]),
    "children_and_limits": program(
        [(0x10, [("child", 1), ("child", 2), ("stack", 0), ("repl", 0), ("errors", 0)]),
         (0x06, [("child", 3), ("ret", 0), ("list", 0)])],
        [("stack", 1), ("child", 0), ("stack", 0), ("errors", 1), ("list", 0), ("join", 1)]),
    "text_and_full_mailboxes": program(
        [(0x00, [("text", 255), ("text", 245), ("text", 40), ("sendself", 0), ("bcast", 0)]),
         (0x00, [("sleep", 200), ("get", 0), ("get", 0)])],
        [("text", 0), ("text", 1), ("send", 1), ("send", 1), ("send", 1), ("send", 1),
         ("send", 1), ("send", 1), ("send", 1), ("send", 1), ("send", 1), ("bcast", 0)]),
    "kills": program(
        [(1, [("sleep", 100), ("killself", 0)]),
         (0, [("get_wait", 2), ("killself", 8)]),
         (1, [("compute", 255), ("kill", 0), ("kill", 1)])],
        [("kill", 0), ("kill", 1), ("kill", 2), ("kill", 3), ("kill", 4), ("status", 0)]),
}

if __name__ == "__main__":
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
    os.makedirs(here, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(here, name), "wb") as f:
            f.write(data)
    print(f"{len(SEEDS)} seeds in {here}")
