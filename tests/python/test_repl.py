"""The REPL of ``python3 -m mthread`` (and of plain ``python3`` after ``import mthread``), driven
in a real terminal (a pty) with pexpect. Every wait has a deadline."""
import os
import re

import pexpect
import pytest

PYTHON = os.environ.get("MTHREAD_TEST_PYTHON", "/usr/bin/python3")
PROMPT = ">>> "
TIMEOUT = 15


@pytest.fixture
def env(tmp_path):
    """The tests' environment: a terminal type readline knows, a HOME of its own (history)."""
    environ = dict(os.environ, TERM="xterm", HOME=str(tmp_path), PYTHONIOENCODING="utf-8",
                   PYTHON_COLORS="0")  # 3.13 colours tracebacks on a terminal
    environ.pop("PYTHONSTARTUP", None)
    environ.pop("PYTHONINSPECT", None)
    return environ


def spawn(env, *args):
    """Start ``python3 ARGS`` in a terminal wide enough that no test line wraps."""
    child = pexpect.spawn(PYTHON, list(args), env=env, encoding="utf-8", timeout=TIMEOUT,
                          dimensions=(50, 250))
    return child


def repl(env, *args):
    """A ``python3 -m mthread`` REPL at its first prompt."""
    child = spawn(env, "-m", "mthread", *args)
    child.expect_exact(PROMPT)
    return child


def run(child, line):
    """Enter one line and wait for the next primary prompt; return what was printed between."""
    child.sendline(line)
    child.expect_exact(PROMPT)
    return child.before


def finish(child):
    """Leave the REPL with Ctrl-D and check a clean end."""
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    assert "Fatal Python error" not in child.before
    assert child.exitstatus == 0, (child.exitstatus, child.signalstatus, child.before)


# A thread that, once notified, sends a message and a notification to the REPL thread.
NOTIFIED_SENDER = (
    "def sender():\n"
    "    _thread.wait()\n"
    "    _thread.sendmsg(_thread.getReplID(), 'hello from the thread')\n"
    "    _thread.notify(_thread.getReplID(), 42)\n"
)


def expect_lines(child, lines):
    """Expect each of ``lines`` as a whole line of the display, in any order."""
    patterns = [r"(?:^|[\r\n]|\x1b\[K)" + re.escape(line) + r"\r\n" for line in lines]
    seen = set()
    while len(seen) < len(lines):
        seen.add(child.expect(patterns))


def define(child, source):
    """Define a function in the REPL from its source (one statement)."""
    for line in source.splitlines():
        child.sendline(line)
        child.expect_exact("... ")
    child.sendline("")
    child.expect_exact(PROMPT)


def test_banner_prompt_and_underscore_thread_is_mthread(env):
    child = spawn(env, "-m", "mthread")
    child.expect_exact("Type \"help\"")
    child.expect_exact(PROMPT)
    out = run(child, "import _thread, mthread; print(_thread is mthread, _thread.getReplID())")
    assert "True 1" in out
    out = run(child, "import utime, time; print(utime.ticks_diff(5, 3), time.ticks_add(1, 2))")
    assert "2 3" in out
    # The REPL is python's own, entered through PYTHONINSPECT: child processes must not see it.
    assert "None ''" in run(child, "import os, sys; print(os.environ.get('PYTHONINSPECT'), "
                                   "repr(sys.argv[0]))")
    finish(child)


def test_traceback_and_multiline_input_as_python(env):
    child = repl(env)
    out = run(child, "1/0")
    assert 'File "<stdin>", line 1, in <module>' in out
    assert "ZeroDivisionError: division by zero" in out
    define(child, "def twice(x):\n    return 2 * x\n")
    assert "14" in run(child, "twice(7)")
    finish(child)


def test_message_and_notification_shown_while_prompt_is_idle(env):
    child = repl(env)
    run(child, "import _thread")
    define(child, NOTIFIED_SENDER)
    run(child, "tid = _thread.start_new_thread('worker', sender, ())")
    child.sendline("_thread.notify(tid, 1)")
    child.expect_exact("True")
    child.expect_exact(PROMPT)
    # The display comes while the prompt waits, on lines of their own, then the prompt again.
    expect_lines(child, ['[Message from thread "worker"] hello from the thread',
                         "[Notification] 42"])
    child.expect_exact(PROMPT)
    assert "(0, 0, None)" in run(child, "_thread.getmsg()")
    assert "\r\n0\r\n" in run(child, "_thread.getnotification()")
    finish(child)


def test_text_typed_before_a_message_survives(env, tmp_path):
    fifo = tmp_path / "go"
    os.mkfifo(fifo)
    child = repl(env)
    run(child, "import _thread")
    define(child, "def sender():\n"
                  f"    open({str(fifo)!r}).read()\n"
                  "    _thread.sendmsg(_thread.getReplID(), 'ping')\n")
    run(child, "tid = _thread.start_new_thread('pinger', sender, ())")
    child.send("x = 12")
    child.expect_exact("x = 12")
    with open(fifo, "w") as go:  # the thread is blocked opening it: this does not block
        go.write("go")
    child.expect_exact('[Message from thread "pinger"] ping')
    child.expect_exact(PROMPT + "x = 12")  # prompt and typed text redrawn
    child.send("34\r")
    child.expect_exact(PROMPT)
    assert "1234" in run(child, "x")
    finish(child)


def test_repl_accept_msg_false_keeps_messages_queued(env):
    child = repl(env)
    run(child, "import _thread")
    assert "True" in run(child, "_thread.replAcceptMsg(False)")  # the previous setting
    assert "False" in run(child, "_thread.replAcceptMsg()")
    define(child, NOTIFIED_SENDER)
    run(child, "tid = _thread.start_new_thread('quiet', sender, ())")
    run(child, "_thread.notify(tid, 1)")
    # Idle at the prompt for a while (the display runs ten times a second): nothing shows.
    index = child.expect([r"\[Message from thread", r"\[Notification\]", pexpect.TIMEOUT],
                         timeout=0.8)
    assert index == 2, child.before
    out = run(child, "_thread.getmsg(5000)")
    assert re.search(r"\(2, \d+, 'hello from the thread'\)", out), out
    assert "42" in run(child, "_thread.wait(5000)")
    # Back on: the next message shows.
    run(child, "_thread.replAcceptMsg(True)")
    run(child, "tid = _thread.start_new_thread('loud', sender, ())")
    run(child, "_thread.notify(tid, 1)")
    child.expect_exact('[Message from thread "loud"] hello from the thread')
    child.expect_exact(PROMPT)
    finish(child)


def test_ctrl_c_at_the_prompt_with_threads_running(env):
    child = repl(env)
    run(child, "import _thread, time")
    define(child, "def spin():\n    while True:\n        time.sleep(0.05)\n")
    run(child, "ids = [_thread.start_new_thread('spin%d' % i, spin, ()) for i in range(3)]")
    for attempt in range(3):
        child.send(f"abandoned_{attempt}")
        child.expect_exact(f"abandoned_{attempt}")
        child.sendintr()
        child.expect_exact("KeyboardInterrupt")
        child.expect_exact(PROMPT)
    out = run(child, "print(sum(1 for row in _thread.list(False)))")
    assert "\r\n4\r\n" in out  # the line was dropped, the REPL and the threads go on
    assert "NameError" not in out
    finish(child)


def test_ctrl_c_interrupts_a_statement_in_the_repl(env):
    child = repl(env)
    run(child, "import _thread, time")
    run(child, "tid = _thread.start_new_thread('spin', lambda: time.sleep(60), ())")
    child.sendline("time.sleep(60)")
    child.expect_exact("time.sleep(60)")
    child.sendintr()
    child.expect_exact("KeyboardInterrupt")
    child.expect_exact(PROMPT)
    out = run(child, "_thread.getmsg(10)")  # a wait of mthread's, in the main thread
    assert "(0, 0, None)" in out
    child.sendline("_thread.wait()")
    child.expect_exact("_thread.wait()")
    child.sendintr()
    child.expect_exact("KeyboardInterrupt")
    child.expect_exact(PROMPT)
    # As python does, a REPL whose last statement was interrupted exits by SIGINT; run one more.
    run(child, "0")
    finish(child)


@pytest.mark.parametrize("how", ["exit()", "ctrl-d", "exit(3)"])
def test_leaving_the_repl_with_threads_running_is_clean(env, how):
    child = repl(env)
    run(child, "import _thread, time")
    define(child, "def spin():\n    while True:\n        time.sleep(0.01)\n")
    define(child, "def busy():\n    while True:\n        pass\n")
    run(child, "ids = [_thread.start_new_thread('spin', spin, ()) for i in range(3)]")
    run(child, "ids.append(_thread.start_new_thread('busy', busy, ()))")
    run(child, "ids.append(_thread.start_new_thread('waiter', _thread.wait, ()))")
    if how == "ctrl-d":
        child.sendeof()
    else:
        child.sendline(how)
    child.expect(pexpect.EOF)
    child.close()
    assert "Fatal Python error" not in child.before
    assert "Traceback" not in child.before
    assert child.signalstatus is None
    assert child.exitstatus == (3 if how == "exit(3)" else 0)


def test_dash_i_enters_the_repl_with_the_script_threads_running(env, tmp_path):
    script = tmp_path / "device.py"
    script.write_text(
        "import _thread, utime\n"
        "def blink():\n"
        "    _thread.wait()\n"
        "    _thread.sendmsg(_thread.getReplID(), 'from the script thread')\n"
        "    _thread.wait()\n"
        "LED = _thread.start_new_thread('LED', blink, ())\n"
        "started = utime.ticks_ms()\n"
        "print('script done')\n")
    child = spawn(env, "-m", "mthread", "-i", str(script), "arg1")
    child.expect_exact("script done")
    child.expect_exact(PROMPT)
    assert "'LED'" in run(child, "_thread.getThreadName(LED)")
    assert "arg1" in run(child, "import sys; sys.argv")
    assert "__main__" in run(child, "__name__")
    child.sendline("_thread.notify(LED, 5)")
    child.expect_exact('[Message from thread "LED"] from the script thread')
    child.expect_exact(PROMPT)
    assert "Name: LED, State: waiting" in run(child, "_thread.list()")
    finish(child)


def test_dash_i_after_an_exception_and_dash_c(env):
    child = spawn(env, "-m", "mthread", "-i", "-c", "x = 41\n1/0")
    child.expect_exact("ZeroDivisionError")
    child.expect_exact(PROMPT)
    assert "42" in run(child, "x + 1")
    assert "['-c']" in run(child, "import sys; sys.argv")
    finish(child)


def test_plain_python_repl_after_import_mthread(env):
    # CPython 3.13's new REPL draws its own line: the display needs the readline one there (the
    # runner chooses it by itself; see docs/runner.md).
    env["PYTHON_BASIC_REPL"] = "1"
    child = spawn(env)
    child.expect_exact(PROMPT)
    out = run(child, "import mthread, sys, time; print(sys.modules['_thread'] is mthread, "
                     "hasattr(time, 'sleep_ms'))")
    assert "False False" in out  # a plain import changes nothing
    define(child, "def sender():\n"
                  "    mthread.wait()\n"
                  "    mthread.sendmsg(mthread.getReplID(), 'plain repl')\n"
                  "    mthread.notify(mthread.getReplID(), 7)\n")
    run(child, "tid = mthread.start_new_thread('plain', sender, ())")
    child.send("y = 'half")
    child.expect_exact("y = 'half")
    child.sendline("'; mthread.notify(tid, 1)")
    child.expect_exact(PROMPT)
    child.expect_exact('[Message from thread "plain"] plain repl')
    child.expect_exact(PROMPT)
    assert "'half'" in run(child, "y")
    # Ctrl-C at the prompt still works with the display in place.
    child.send("junk")
    child.expect_exact("junk")
    child.sendintr()
    child.expect_exact("KeyboardInterrupt")
    child.expect_exact(PROMPT)
    finish(child)


def test_thread_traceback_at_the_prompt_lands_above_it_and_redraws_the_line(env, tmp_path):
    fifo = tmp_path / "go"
    os.mkfifo(fifo)
    child = repl(env)
    run(child, "import _thread")
    define(child, "def crasher():\n"
                  f"    open({str(fifo)!r}).read()\n"
                  "    raise ValueError('thread broke')\n")
    out = run(child, "tid = _thread.start_new_thread('crasher', crasher, ()); print(tid)")
    tid = re.search(r"\r\n(\d+)\r\n", out).group(1)
    child.send("y = 5")
    child.expect_exact("y = 5")
    with open(fifo, "w") as go:  # the thread is blocked opening it: this does not block
        go.write("go")
    # The report starts on a line of its own (the prompt line was cleared first) ...
    child.expect(r"(?:^|[\r\n]|\x1b\[K)" + re.escape(
        f'Unhandled exception in thread "crasher" (id {tid}):') + r"\r\n")
    child.expect_exact("ValueError: thread broke\r\n")
    # ... then the prompt and the text typed so far come back, and typing goes on.
    child.expect_exact(PROMPT + "y = 5")
    child.send("6\r")
    child.expect_exact(PROMPT)
    assert "56" in run(child, "y")
    finish(child)


def test_replaced_excepthook_at_the_prompt(env):
    child = repl(env)
    run(child, "import _thread, threading")
    run(child, "seen = []; threading.excepthook = seen.append")
    run(child, "tid = _thread.start_new_thread('quietly', lambda: 1/0, ())")
    out = run(child, "import time; time.sleep(0.5); print([(a.exc_type.__name__, a.thread.name) "
                     "for a in seen])")
    assert "[('ZeroDivisionError', 'quietly')]" in out
    assert "Unhandled exception" not in out
    finish(child)


def test_script_end_on_a_terminal_says_what_it_waits_for_and_shows_messages(env, tmp_path):
    fifo = tmp_path / "go"
    os.mkfifo(fifo)
    script = tmp_path / "ends.py"
    script.write_text(
        "import _thread\n"
        "def late():\n"
        f"    open({str(fifo)!r}).read()\n"
        "    _thread.sendmsg(_thread.getReplID(), 'after the script')\n"
        "    _thread.notify(_thread.getReplID(), 7)\n"
        "    _thread.wait()\n"
        "tid = _thread.start_new_thread('late', late, ())\n"
        "print('script over', tid)\n")
    child = spawn(env, "-m", "mthread", str(script))
    child.expect(r"script over (\d+)")
    tid = child.match.group(1)
    child.expect_exact(f'mthread: waiting for 1 thread(s) to end: "late" (id {tid}); '
                       "Ctrl-C kills them")
    with open(fifo, "w") as go:  # the thread is blocked opening it: this does not block
        go.write("go")
    expect_lines(child, ['[Message from thread "late"] after the script', "[Notification] 7"])
    child.sendintr()  # the thread waits for ever: Ctrl-C kills it and the process ends
    child.expect(pexpect.EOF)
    child.close()
    assert "Fatal Python error" not in child.before
    assert "Traceback" not in child.before


def test_script_end_without_a_terminal_shows_messages_silently(tmp_path):
    import subprocess

    script = tmp_path / "ends.py"
    script.write_text(
        "import _thread, time\n"
        "def late():\n"
        "    _thread.getmsg(20000)\n"
        "    _thread.sendmsg(_thread.getReplID(), 'after the script')\n"
        "    _thread.notify(_thread.getReplID(), 7)\n"
        "tid = _thread.start_new_thread('late', late, ())\n"
        "print('script over', flush=True)\n"
        "_thread.sendmsg(tid, 'go')\n")
    result = subprocess.run([PYTHON, "-m", "mthread", str(script)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "script over"
    assert sorted(lines[1:]) == ['[Message from thread "late"] after the script',
                                 "[Notification] 7"]
    assert result.stderr == ""  # no terminal: nothing said about waiting
