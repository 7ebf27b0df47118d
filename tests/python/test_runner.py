"""``python3 -m mthread`` running scripts, ``-c`` and ``-m``; ``mthread.install()``; the device
time shims. Every child process has a deadline."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pexpect
import pytest

PYTHON = os.environ.get("MTHREAD_TEST_PYTHON", "/usr/bin/python3")
REPO = Path(__file__).resolve().parents[2]
DEADLINE = 60


def python(*args, cwd=None, stdin=None):
    """Run ``python3 ARGS`` to its end; return the CompletedProcess (text)."""
    return subprocess.run([PYTHON, *args], capture_output=True, text=True, cwd=cwd,
                          input=stdin, timeout=DEADLINE)


def runner(*args, **kwargs):
    """Run ``python3 -m mthread ARGS``."""
    return python("-m", "mthread", *args, **kwargs)


def write(path, source):
    path.write_text(textwrap.dedent(source))
    return path


def check(result, code=0):
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Fatal Python error" not in result.stderr
    return result


# --- the command line ------------------------------------------------------------------------


def test_help_explains_the_modes():
    out = check(runner("--help")).stdout
    for word in ("-i", "-c", "-m", "SCRIPT", "_thread", "utime", "ticks_ms", "replAcceptMsg"):
        assert word in out
    assert len(out.splitlines()) < 30


def test_unknown_option_is_a_usage_error():
    result = check(runner("-Z"), 2)
    assert "Unknown option: -Z" in result.stderr


def test_missing_script_as_python():
    result = check(runner("/nonexistent/script.py"), 2)
    assert "can't open file '/nonexistent/script.py'" in result.stderr


def test_script_sees_what_python_would_give_it(tmp_path):
    script = write(tmp_path / "show.py", """\
        import sys
        print(sys.argv, sys.path[0], __file__, __name__, __package__, __spec__, __cached__)
        """)
    for cwd in (tmp_path, REPO):
        args = [str(script) if cwd == REPO else "show.py", "a", "--b", "-c"]
        expected = check(python(*args, cwd=cwd)).stdout
        assert check(runner(*args, cwd=cwd)).stdout == expected


@pytest.mark.parametrize("source, code", [
    ("def f():\n    raise ValueError('boom')\nf()\n", 1),
    ("import sys\nsys.exit(3)\n", 3),
    ("import sys\nsys.exit('bye')\n", 1),
    ("x = (\n", 1),
    ("raise SystemExit\n", 0),
])
def test_exit_codes_and_tracebacks_as_python(tmp_path, source, code):
    script = tmp_path / "fails.py"
    script.write_text(source)
    expected = python(str(script))
    result = check(runner(str(script)), code)
    assert result.returncode == expected.returncode
    assert result.stderr == expected.stderr
    assert "mthread" not in result.stderr


def test_dash_c_as_python():
    code = "import sys; print(sys.argv, repr(sys.path[0]), __name__); 1/0"
    expected = python("-c", code, "x", "-y")
    result = check(runner("-c", code, "x", "-y"), 1)
    assert result.stdout == expected.stdout
    assert result.stderr == expected.stderr


def test_dash_m_runs_a_module(tmp_path):
    write(tmp_path / "devmod.py", """\
        import sys, _thread, mthread
        print(__name__, sys.argv[1:], _thread is mthread, sys.argv[0].endswith('devmod.py'))
        """)
    out = check(runner("-m", "devmod", "p", "q", cwd=tmp_path)).stdout
    assert out == "__main__ ['p', 'q'] True True\n"
    assert "No module named" in check(runner("-m", "no_such_module_here"), 1).stderr


def test_script_from_standard_input():
    out = check(runner("-", stdin="import _thread, mthread\nprint(_thread is mthread)\n")).stdout
    assert out == "True\n"
    out = check(runner(stdin="import utime\nprint(utime.ticks_diff(3, 5))\n")).stdout
    assert out == "-2\n"


# --- the device's modules --------------------------------------------------------------------


def test_underscore_thread_is_mthread_and_threading_keeps_cpython(tmp_path):
    script = write(tmp_path / "dev.py", """\
        import _thread, mthread, threading, sys
        assert _thread is mthread and sys.modules['_thread'] is mthread
        assert threading.get_ident.__self__ is not mthread  # threading kept CPython's _thread
        out = []
        t = threading.Thread(target=out.append, args=(1,)); t.start(); t.join()
        done = _thread.allocate_lock(); done.acquire()
        def worker(a, b=0):
            out.append(_thread.getSelfName() + str(a + b)); done.release()
        _thread.start_new_thread('worker', worker, (2,), {'b': 3})
        assert done.acquire(timeout=10)
        print(out)
        """)
    assert check(runner(str(script))).stdout == "[1, 'worker5']\n"


SHIMS = textwrap.dedent("""\
    import time, utime
    P = 1 << 30
    names = ['sleep_ms', 'sleep_us', 'ticks_ms', 'ticks_us', 'ticks_cpu', 'ticks_diff',
             'ticks_add']
    for name in names + ['sleep']:
        assert getattr(time, name) is getattr(utime, name), name
    for ticks in (time.ticks_ms, time.ticks_us, time.ticks_cpu):
        assert 0 <= ticks() < P
    t0 = time.ticks_ms(); u0 = time.ticks_us()
    time.sleep_ms(30)
    assert 30 <= time.ticks_diff(time.ticks_ms(), t0) < 5000
    time.sleep_us(20000)
    assert 50000 <= time.ticks_diff(time.ticks_us(), u0) < 5000000
    utime.sleep(0.01)
    # The wrap: ticks_add and ticks_diff work across it, in both directions.
    for start in (0, 1, P // 2, P - 1, P - 1000):
        for delta in (0, 1, -1, 999, -999, P // 2 - 1, -(P // 2 - 1)):
            later = time.ticks_add(start, delta)
            assert 0 <= later < P
            assert time.ticks_diff(later, start) == delta, (start, delta)
            assert time.ticks_diff(start, later) == -delta
    assert time.ticks_add(P - 1, 1) == 0 and time.ticks_diff(0, P - 1) == 1
    assert time.ticks_diff(0, P // 2) == -(P // 2)
    for bad in (P // 2, -(P // 2), P):
        try:
            time.ticks_add(0, bad)
        except OverflowError:
            pass
        else:
            raise AssertionError(bad)
    for bad_call in (lambda: time.ticks_diff(1.5, 0), lambda: time.ticks_add('1', 0)):
        try:
            bad_call()
        except TypeError:
            pass
        else:
            raise AssertionError
    assert isinstance(utime.time(), int) and abs(utime.time() - time.time()) < 5
    lt = utime.localtime(0)
    assert len(lt) == 8 and utime.mktime(lt) == 0 and utime.gmtime(0)[:6] == (1970, 1, 1, 0, 0, 0)
    assert utime.time_ns() > 0
    print('shims ok')
    """)


def test_every_time_shim_under_the_runner(tmp_path):
    script = write(tmp_path / "shims.py", SHIMS)
    assert check(runner(str(script))).stdout == "shims ok\n"


def test_time_sleep_in_managed_threads_obeys_kill_and_suspend(tmp_path):
    script = write(tmp_path / "sleepers.py", """\
        import _thread, time
        main_sleep = time.sleep
        count = [0]
        def sleeper():
            try:
                time.sleep(600)
            finally:
                count.append('finally')
        def ticker():
            _thread.allowsuspend(True)
            while True:
                count[0] += 1
                time.sleep(0.005)
        s = _thread.start_new_thread('sleeper', sleeper, ())
        while _thread.status(s) != _thread.WAITING:
            time.sleep_ms(1)
        t0 = time.ticks_ms()
        assert _thread.kill(s)
        while _thread.status(s) != _thread.TERMINATED:
            time.sleep_ms(1)
        assert time.ticks_diff(time.ticks_ms(), t0) < 1000, 'kill took too long'
        assert count[1:] == ['finally']
        t = _thread.start_new_thread('ticker', ticker, ())
        while count[0] < 3:
            time.sleep_ms(1)
        assert _thread.suspend(t)
        frozen = count[0]
        time.sleep(0.1)  # the main thread's time.sleep is CPython's own
        assert count[0] <= frozen + 1, (frozen, count[0])
        assert _thread.resume(t)
        while count[0] < frozen + 3:
            time.sleep_ms(1)
        _thread.kill(t)
        print('sleep ok')
        """)
    assert check(runner(str(script))).stdout == "sleep ok\n"


def test_script_end_waits_for_its_threads(tmp_path):
    script = write(tmp_path / "waits.py", """\
        import _thread, time
        def late():
            time.sleep(0.3)
            print('thread done', flush=True)
        _thread.start_new_thread('late', late, ())
        print('script done', flush=True)
        """)
    assert check(runner(str(script))).stdout == "script done\nthread done\n"


# --- mthread.install() and a plain import ----------------------------------------------------

PLAIN_IMPORT = textwrap.dedent("""\
    import sys, time
    before_modules = set(sys.modules)
    before_time = dict(vars(time))
    thread_module = sys.modules['_thread']
    import mthread
    new = {name for name in set(sys.modules) - before_modules
           if name != 'mthread' and not name.startswith('mthread.')}
    assert dict(vars(time)) == before_time, 'time changed'
    assert sys.modules['_thread'] is thread_module, '_thread replaced'
    assert 'utime' not in sys.modules
    print(sorted(name for name in new if name in ('_thread', 'utime', 'time')))
    mthread.install()
    import _thread, utime, threading
    assert _thread is mthread and utime is mthread.utime
    assert threading.get_ident.__self__ is thread_module  # threading kept CPython's _thread
    assert time.sleep_ms is utime.sleep_ms and time.ticks_add is utime.ticks_add
    sleep = time.sleep
    mthread.install()
    assert time.sleep is sleep, 'install() twice wraps twice'
    print('install ok')
    """)


def test_plain_import_changes_nothing_and_install_does_what_the_runner_does(tmp_path):
    script = write(tmp_path / "plain.py", PLAIN_IMPORT)
    assert check(python(str(script))).stdout == "[]\ninstall ok\n"


def test_shims_after_install_in_a_plain_program(tmp_path):
    script = write(tmp_path / "shims.py", "import mthread\nmthread.install()\n" + SHIMS)
    assert check(python(str(script))).stdout == "shims ok\n"


# --- Ctrl-C, in a real terminal ---------------------------------------------------------------

THREADED_SCRIPT = textwrap.dedent("""\
    import _thread, time
    def spin(n):
        _thread.allowsuspend(True)
        while True:
            time.sleep(0.01)
    def busy():
        while True:
            pass
    for i in range(3):
        _thread.start_new_thread('spin%d' % i, spin, (i,))
    _thread.start_new_thread('busy', busy, ())
    print('threads started', flush=True)
    """)


def spawn_runner(*args):
    env = dict(os.environ, TERM="xterm")
    return pexpect.spawn(PYTHON, ["-m", "mthread", *args], env=env, encoding="utf-8",
                         timeout=20)


def test_ctrl_c_during_a_script_with_threads_running(tmp_path):
    script = write(tmp_path / "forever.py", THREADED_SCRIPT + "while True:\n    time.sleep(1)\n")
    child = spawn_runner(str(script))
    child.expect_exact("threads started")
    child.sendintr()
    child.expect_exact("KeyboardInterrupt")
    child.expect(pexpect.EOF)
    child.close()
    assert "Fatal Python error" not in child.before
    assert child.signalstatus == 2 or child.exitstatus == 130, (child.exitstatus,
                                                                child.signalstatus)
    assert "mthread/__main__.py" not in child.before


def test_ctrl_c_while_the_ended_script_waits_for_its_threads(tmp_path):
    script = write(tmp_path / "ends.py", THREADED_SCRIPT + "print('script over', flush=True)\n")
    child = spawn_runner(str(script))
    child.expect_exact("script over")
    index = child.expect([pexpect.EOF, pexpect.TIMEOUT], timeout=0.5)
    assert index == 1, "the process did not wait for its threads"
    child.sendintr()
    child.expect(pexpect.EOF)
    child.close()
    assert "Fatal Python error" not in child.before
    assert "Traceback" not in child.before


# --- the example ------------------------------------------------------------------------------


def test_device_demo_runs_by_itself():
    result = check(runner(str(REPO / "examples" / "device_demo.py")))
    out = result.stdout
    for expected in ('[Message from thread "Sensor"] temperature', "suspend LED: True",
                     "LED state: suspended", "resume LED: True", "waiter: notification 3",
                     '[Message from thread "Waiter"] 6', "stop Waiter (EXIT notification): True",
                     "kill Sensor: True", "sensor: killed, cleaning up", "Type: PYTHON",
                     "LED: EXIT notification", "done; threads left: MainThread"):
        assert expected in out, expected
    assert result.stderr == ""


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
