"""Shared helpers for the mthread Python tests.

Concurrency tests wait on state with deadlines (``wait_until``), never with bare sleeps that
hope; every test leaves no thread of mthread's behind (the ``clean_threads`` fixture kills and
reaps what a test left, and fails the test if something will not die).
"""
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import mthread

# The interpreter the extension was built for (ctest sets it); subprocess tests use it.
PYTHON = os.environ.get("MTHREAD_TEST_PYTHON") or sys.executable

# Generous bounds: the suite runs on two noisy cores, often beside other test files.
SHORT = 5.0
LONG = 30.0

# Signals that mean the process crashed rather than exited.
CRASH_SIGNALS = {signal.SIGSEGV, signal.SIGABRT, signal.SIGBUS, signal.SIGILL, signal.SIGFPE}


def wait_until(predicate, timeout=SHORT, interval=0.001):
    """Poll ``predicate`` until it returns something true or ``timeout`` seconds pass.
    Returns the last value, so ``assert wait_until(...)`` fails with a clear message."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def wait_stable(read, quiet=0.05, timeout=SHORT):
    """Wait until ``read()`` stops changing for ``quiet`` seconds; return (value, when it
    stopped changing, as time.monotonic()). Raises AssertionError on timeout."""
    deadline = time.monotonic() + timeout
    last = read()
    changed_at = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.002)
        now_value = read()
        now = time.monotonic()
        if now_value != last:
            last, changed_at = now_value, now
        elif now - changed_at >= quiet:
            return last, changed_at
    raise AssertionError(f"value kept changing for {timeout} s (last {last!r})")


def gone(tid):
    return mthread.status(tid) == mthread.TERMINATED


def others():
    """Ids of every live thread of mthread's but the main one."""
    return [row[0] for row in mthread.list(False) if row[1] != mthread.MAIN]


def start(func, *args, name="t", **kwargs):
    """Start ``func(*args, **kwargs)`` on a managed thread; return its id."""
    return mthread.start_new_thread(name, func, args, kwargs)


def park_until_told():
    """A thread body that lives until it gets a notification."""
    mthread.wait()


def run_and_collect(func, *args, **kwargs):
    """Run func in a managed thread, wait for it to end, return (result, exception)."""
    out = {}

    def body():
        try:
            out["result"] = func(*args, **kwargs)
        except BaseException as e:  # noqa: BLE001 - the test inspects it
            out["error"] = e

    tid = mthread.start_new_thread("collect", body, ())
    assert wait_until(lambda: gone(tid))
    return out.get("result"), out.get("error")


def stack_of(tid):
    """The stack size list() reports for thread `tid`."""
    return {row[0]: row for row in mthread.list(False)}[tid][4]


def drain_main():
    mthread.getnotification()
    while mthread.getmsg()[0] != 0:
        pass


@pytest.fixture(autouse=True)
def clean_threads():
    """Each test starts with no managed thread, an empty main mailbox and default settings,
    and leaves none behind."""
    drain_main()
    yield
    leftover = others()
    for tid in leftover:
        mthread.resume(tid)
        mthread.kill(tid)
    stuck = [tid for tid in leftover if not wait_until(lambda t=tid: gone(t), timeout=LONG)]
    mthread.stack_size(0)
    mthread.replAcceptMsg(True)
    drain_main()
    assert not stuck, f"threads that would not die: {stuck}"


class Flag:
    """A cross-thread boolean to wait on."""

    def __init__(self):
        self.value = False

    def set(self):
        self.value = True

    def __bool__(self):
        return self.value


def script(code):
    return textwrap.dedent(code).lstrip("\n")


def run_python(code, timeout=60, env=None, args=(), input=None):
    """Run ``code`` in a fresh interpreter; return the CompletedProcess (text)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    full_env.setdefault("PYTHONFAULTHANDLER", "1")
    return subprocess.run([PYTHON, "-c", script(code), *args], capture_output=True, text=True,
                          timeout=timeout, env=full_env, input=input)


def popen_python(code, env=None):
    """Start ``code`` in a fresh interpreter with unbuffered binary pipes; use read_until() and
    finish() on it."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    full_env.setdefault("PYTHONFAULTHANDLER", "1")
    full_env["PYTHONUNBUFFERED"] = "1"
    process = subprocess.Popen([PYTHON, "-c", script(code)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, bufsize=0,
                               env=full_env)
    process.pending = b""  # read from stdout but not yet handed out
    return process


def read_until(process, marker, timeout=LONG):
    """Read the child's stdout until a line equals ``marker``; return the lines read. Reads the
    raw pipe (a buffered reader would hide lines from select())."""
    import selectors

    lines = []
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while True:
            while b"\n" in process.pending:
                line, process.pending = process.pending.split(b"\n", 1)
                lines.append(line.decode(errors="replace"))
                if lines[-1] == marker:
                    return lines
            left = deadline - time.monotonic()
            if left <= 0 or not selector.select(timeout=left):
                break
            chunk = os.read(process.stdout.fileno(), 65536)
            if not chunk:
                break
            process.pending += chunk
    out, err = stop_for_diagnosis(process)
    raise AssertionError(f"child never printed {marker!r}; stdout {lines!r} + {out!r}, "
                         f"stderr {err!r}")


def finish(process, timeout=LONG):
    """Wait for the child to end; return (stdout not yet read, stderr) as text. A child that
    does not end in time is stopped (with tracebacks) and the test fails."""
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        out, err = stop_for_diagnosis(process)
        raise AssertionError(f"child hung; stdout {out!r} stderr {err!r}") from None
    out = (process.pending + out).decode(errors="replace")
    process.pending = b""
    return out, err.decode(errors="replace")


def stop_for_diagnosis(process):
    """End a child that hangs, after asking faulthandler (PYTHONFAULTHANDLER=1) for every
    thread's traceback; return its remaining (stdout, stderr) as text."""
    process.send_signal(signal.SIGABRT)
    try:
        out, err = process.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
    pending = getattr(process, "pending", b"")
    decode = (lambda b: b.decode(errors="replace") if isinstance(b, bytes) else b)
    return decode(pending + (out or b"")), decode(err or b"")


def assert_clean_exit(returncode, stderr, allow_codes=None):
    """No crash: not killed by a crash signal, no fatal error or sanitizer report in stderr."""
    assert returncode is not None
    if returncode < 0:
        assert -returncode not in CRASH_SIGNALS, f"crashed by signal {-returncode}:\n{stderr}"
    for bad in ("Fatal Python error", "Segmentation fault", "terminate called",
                "Aborted", "core dumped", "AddressSanitizer", "SystemError"):
        assert bad not in stderr, f"{bad!r} in stderr:\n{stderr}"
    if allow_codes is not None:
        assert returncode in allow_codes, f"exit code {returncode}; stderr:\n{stderr}"
