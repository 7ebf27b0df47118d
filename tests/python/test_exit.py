"""Interpreter exit with managed threads, in subprocesses (SPEC §3): the process waits for running
threads like threading's non-daemon ones; Ctrl-C then kills them all and the process exits
cleanly — no crash, no hang, no "Fatal Python error" — whatever state the threads are in.
Also: uncaught exceptions are printed with the thread's name and traceback."""
import signal
import time

import pytest

from conftest import LONG, assert_clean_exit, finish, popen_python, read_until, run_python

# A helper thread in the child that tells the test when the main thread is blocked in the exit
# wait (it is WAITING there, and only there, once the script's last line ran).
ANNOUNCE_EXIT_WAIT = """
def _announce():
    while mthread.status(mthread.getReplID()) != mthread.WAITING:
        mthread.sleep_ms(1)
    print("EXIT-WAIT", flush=True)
    mthread.sleep(1000)
mthread.start_new_thread("announcer", _announce, ())
"""


def interrupt_at_exit_wait(body, grace=LONG):
    """Run ``body`` as a script that ends with threads still running; once the main thread is
    in the exit wait, send SIGINT; return (returncode, stdout, stderr, seconds to exit)."""
    child = popen_python("import mthread, sys, time\n" + body + "\nprint('SCRIPT-END', flush=True)\n"
                         + ANNOUNCE_EXIT_WAIT)
    lines = read_until(child, "EXIT-WAIT")
    assert "SCRIPT-END" in lines
    begin = time.monotonic()
    child.send_signal(signal.SIGINT)
    out, err = finish(child, timeout=grace)
    return child.returncode, "\n".join(lines) + "\n" + out, err, time.monotonic() - begin


def test_script_end_waits_for_threads():
    result = run_python("""
        import mthread
        def worker():
            mthread.sleep_ms(300)
            print("worker done", flush=True)
        mthread.start_new_thread("worker", worker, ())
        print("script done", flush=True)
    """)
    assert_clean_exit(result.returncode, result.stderr, {0})
    assert result.stdout.split() == ["script", "done", "worker", "done"]


def test_script_end_waits_for_threads_started_by_threads():
    result = run_python("""
        import mthread
        def child():
            mthread.sleep_ms(200)
            print("child done", flush=True)
        def parent():
            mthread.sleep_ms(100)
            mthread.start_new_thread("child", child, ())
        mthread.start_new_thread("parent", parent, ())
    """)
    assert_clean_exit(result.returncode, result.stderr, {0})
    assert result.stdout.strip() == "child done"


def test_sys_exit_waits_for_threads():
    result = run_python("""
        import mthread, sys
        def worker():
            mthread.sleep_ms(200)
            print("worker done", flush=True)
        mthread.start_new_thread("worker", worker, ())
        sys.exit(3)
    """)
    assert_clean_exit(result.returncode, result.stderr, {3})
    assert result.stdout.strip() == "worker done"


def test_no_threads_exits_at_once():
    begin = time.monotonic()
    result = run_python("""
        import mthread
        tid = mthread.start_new_thread("quick", lambda: None, ())
    """)
    assert_clean_exit(result.returncode, result.stderr, {0})
    assert time.monotonic() - begin < 10


def test_threading_and_mthread_together_at_exit():
    result = run_python("""
        import mthread, threading, time
        def m():
            mthread.sleep_ms(200)
            print("mthread done", flush=True)
        def t():
            time.sleep(0.1)
            print("threading done", flush=True)
        mthread.start_new_thread("m", m, ())
        threading.Thread(target=t).start()
    """)
    assert_clean_exit(result.returncode, result.stderr, {0})
    assert sorted(result.stdout.split("\n")[:2]) == ["mthread done", "threading done"]


STATES = {
    "running": """
def body():
    while True:
        pass
""",
    "sleeping": """
def body():
    mthread.sleep(1000)
""",
    "suspended": """
def body():
    mthread.allowsuspend(True)
    while True:
        pass
""",
    "getmsg": """
def body():
    mthread.getmsg(10 ** 9)
""",
    "wait": """
def body():
    mthread.wait()
""",
    "suspended-in-sleep": """
def body():
    mthread.allowsuspend(True)
    mthread.sleep(1000)
""",
}


@pytest.mark.parametrize("state", sorted(STATES))
def test_ctrl_c_at_exit_kills_threads_cleanly(state):
    body = STATES[state] + """
started = []
def cleanup(f):
    try:
        started.append(1)
        f()
    finally:
        print("cleanup ran", flush=True)
tids = [mthread.start_new_thread("worker%%d" %% i, cleanup, (body,)) for i in range(3)]
while len(started) < 3:
    mthread.sleep_ms(1)
if %r.startswith("suspended"):
    for tid in tids:
        while not mthread.suspend(tid):
            mthread.sleep_ms(1)
""" % state
    code, out, err, seconds = interrupt_at_exit_wait(body)
    assert_clean_exit(code, err)
    assert out.count("cleanup ran") == 3, (out, err)
    assert "Traceback" not in err, err
    assert seconds < 10


def test_ctrl_c_with_many_threads_in_mixed_states():
    body = "\n".join(STATES[s].replace("def body", "def body_%d" % i)
                     for i, s in enumerate(sorted(STATES))) + """
tids = []
for i in range(%d):
    for k in range(5):
        tids.append((i, mthread.start_new_thread("w%%d-%%d" %% (i, k), globals()["body_%%d" %% i], ())))
for i, tid in tids:
    if %r[i].startswith("suspended"):
        while not mthread.suspend(tid):
            mthread.sleep_ms(1)
""" % (len(STATES), sorted(STATES))
    code, out, err, seconds = interrupt_at_exit_wait(body)
    assert_clean_exit(code, err)
    assert seconds < 10


def test_ctrl_c_with_a_thread_stuck_in_c_exits_anyway():
    """A thread in a C call that no kill can interrupt (time.sleep outside the runner): the
    process still exits, after a grace period, saying so."""
    body = """
def stuck():
    time.sleep(1000)
mthread.start_new_thread("stuck", stuck, ())
"""
    code, out, err, seconds = interrupt_at_exit_wait(body)
    assert_clean_exit(code, err)
    assert seconds < 15
    assert "stuck" in err or "could not be killed" in err, err


def test_second_ctrl_c_after_script_interrupted():
    """Ctrl-C while the script itself runs ends the script (KeyboardInterrupt, as usual); the
    exit wait then still honours a Ctrl-C."""
    child = popen_python("""
import mthread, time
def announce():
    print("READY", flush=True)
    mthread.sleep(1000)
mthread.start_new_thread("sleeper", announce, ())
time.sleep(1000)
""")
    read_until(child, "READY")
    child.send_signal(signal.SIGINT)
    # After the KeyboardInterrupt the script is over; the process waits for its threads.
    deadline = time.monotonic() + LONG
    while child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
        child.send_signal(signal.SIGINT)
    out, err = finish(child, timeout=5)
    assert_clean_exit(child.returncode, err)
    assert "KeyboardInterrupt" in err


def test_uncaught_exception_printed_with_name_and_traceback():
    result = run_python("""
        import mthread
        def inner():
            raise ValueError("sensor went away")
        def worker():
            inner()
        mthread.start_new_thread("sensor poller", worker, ())
        mthread.sleep_ms(50)
        print("main goes on", flush=True)
    """)
    assert_clean_exit(result.returncode, result.stderr, {0})
    err = result.stderr
    assert "sensor poller" in err
    assert "Traceback (most recent call last)" in err
    assert "in inner" in err and "in worker" in err
    assert "ValueError: sensor went away" in err
    assert result.stdout.strip() == "main goes on"


def test_system_exit_and_kill_are_silent():
    result = run_python("""
        import mthread, sys
        def exits():
            sys.exit(5)
        def raises_killed():
            raise mthread.ThreadKilled()
        def returns():
            return 1
        def killed():
            mthread.sleep(100)
        for f in (exits, raises_killed, returns):
            mthread.start_new_thread(f.__name__, f, ())
        tid = mthread.start_new_thread("killed", killed, ())
        while mthread.status(tid) != mthread.WAITING:
            mthread.sleep_ms(1)
        mthread.kill(tid)
    """)
    assert_clean_exit(result.returncode, result.stderr, {0})
    assert result.stderr == ""


def test_faulthandler_dump_names_the_thread():
    result = run_python("""
        import faulthandler, mthread, sys
        def worker():
            mthread.sleep(100)
        tid = mthread.start_new_thread("named worker", worker, ())
        while mthread.status(tid) != mthread.WAITING:
            mthread.sleep_ms(1)
        faulthandler.dump_traceback(file=sys.stdout, all_threads=True)
        mthread.kill(tid)
    """)
    assert_clean_exit(result.returncode, result.stderr, {0})
    assert '"named worker"' in result.stdout, result.stdout


def test_interrupt_main_from_a_thread():
    result = run_python("""
        import mthread, time
        def worker():
            mthread.sleep_ms(50)
            mthread.interrupt_main()
        mthread.start_new_thread("interrupter", worker, ())
        try:
            for _ in range(3000):  # interrupt_main() does not cut a time.sleep short
                time.sleep(0.01)
        except KeyboardInterrupt:
            print("interrupted", flush=True)
    """)
    assert_clean_exit(result.returncode, result.stderr, {0})
    assert result.stdout.strip() == "interrupted"


def test_ctrl_c_in_main_getmsg():
    """The main thread blocked in getmsg() without limit still takes Ctrl-C."""
    child = popen_python("""
import mthread
print("READY", flush=True)
try:
    mthread.getmsg(10 ** 9)
except KeyboardInterrupt:
    print("interrupted", flush=True)
""")
    read_until(child, "READY")
    time.sleep(0.1)  # let it block (a Ctrl-C before the call would interrupt print())
    child.send_signal(signal.SIGINT)
    out, err = finish(child)
    assert_clean_exit(child.returncode, err)
    assert "interrupted" in out or "KeyboardInterrupt" in err


def test_exit_with_thread_ending_while_interpreter_finalizes():
    """Threads still running Python when the process ends by os._exit-free paths: a thread
    that ends during the exit wait, another started during it."""
    result = run_python("""
        import mthread, atexit
        def late():
            mthread.sleep_ms(100)
        @atexit.register
        def start_more():
            mthread.start_new_thread("late", late, ())
        def worker():
            mthread.sleep_ms(100)
        mthread.start_new_thread("worker", worker, ())
    """)
    assert_clean_exit(result.returncode, result.stderr, {0})


def test_messages_left_in_mailboxes_at_exit():
    result = run_python("""
        import mthread
        def worker():
            for i in range(8):
                mthread.sendmsg(mthread.getReplID(), "left %d" % i)
        tid = mthread.start_new_thread("worker", worker, ())
        while mthread.status(tid) != mthread.TERMINATED:
            mthread.sleep_ms(1)
    """)
    assert_clean_exit(result.returncode, result.stderr, {0})


@pytest.mark.parametrize("wait", ["mthread.sleep_ms(500)", "held.acquire(timeout=0.5)",
                                  "mthread.wait(500)"])
def test_daemon_thread_waiting_in_mthread_while_interpreter_finalizes(wait):
    """A thread mthread did not start (a daemon threading thread) whose mthread wait ends while
    the interpreter finalizes: CPython ends it (pthread_exit) as it takes the GIL back, and that
    unwinding must pass through mthread's call unharmed."""
    result = run_python(f"""
        import mthread, os, sys, threading, time, types
        held = mthread.allocate_lock()
        held.acquire()
        waiting = threading.Event()
        def waiter():
            waiting.set()
            {wait}
            os.write(1, b"wait over before the end\\n")
        threading.Thread(target=waiter, daemon=True).start()
        waiting.wait()
        class SlowTeardown:
            def __del__(self, sleep=time.sleep, write=os.write):
                write(1, b"finalizing\\n")
                sleep(1.5)  # GIL released: the wait above ends meanwhile
        # Deleted as the interpreter finalizes (a module the waiter does not hold).
        module = types.ModuleType("slow_teardown")
        module.teardown = SlowTeardown()
        sys.modules["slow_teardown"] = module
        del module
    """)
    assert_clean_exit(result.returncode, result.stderr, {0})
    assert result.stdout == "finalizing\n"
