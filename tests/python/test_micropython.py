"""The device's ``micropython`` module and ``gc`` additions (``mthread.micropython``,
``mthread._device_gc``): what a device script calls, with the documented PC behaviour."""
import os
import subprocess
import textwrap

import pytest

import mthread
from conftest import PYTHON, gone, run_python, start, wait_until
from mthread import _device_gc, micropython


def test_const_and_emitters_are_identity():
    assert micropython.const(42) == 42

    def f(x):
        return x + 1

    for decorator in (micropython.native, micropython.viper, micropython.bytecode):
        assert decorator(f) is f


def test_alloc_emergency_exception_buf_checks_its_argument():
    assert micropython.alloc_emergency_exception_buf(100) is None
    with pytest.raises(TypeError, match="size must be an int"):
        micropython.alloc_emergency_exception_buf("100")
    with pytest.raises(ValueError, match="size must be >= 0"):
        micropython.alloc_emergency_exception_buf(-1)


def test_heap_lock_nests_and_reports_the_depth():
    assert micropython.heap_locked() == 0
    assert micropython.heap_lock() == 1
    assert micropython.heap_lock() == 2
    assert micropython.heap_locked() == 2
    assert micropython.heap_unlock() == 1
    assert micropython.heap_unlock() == 0
    assert micropython.heap_unlock() == 0  # never below zero


def test_opt_level_remembers_a_valid_level():
    start_level = micropython.opt_level()
    try:
        assert micropython.opt_level(2) is None
        assert micropython.opt_level() == 2
        with pytest.raises(ValueError, match="level must be in 0..3"):
            micropython.opt_level(4)
        with pytest.raises(TypeError, match="level must be an int"):
            micropython.opt_level("1")
    finally:
        micropython.opt_level(start_level)


def test_kbd_intr_checks_its_argument():
    with pytest.raises(ValueError, match="chr must be -1 or a character code"):
        micropython.kbd_intr(-2)
    with pytest.raises(TypeError, match="chr must be an int"):
        micropython.kbd_intr("c")


def test_mem_info_prints_the_callers_stack_and_the_heap(capsys):
    micropython.mem_info()
    out = capsys.readouterr().out.splitlines()
    words = out[0].split()
    assert words[0] == "stack:" and words[2:4] == ["out", "of"]
    used, size = int(words[1]), int(words[4])
    assert used > 0 and (used <= size or size == 0)  # size 0: no stack limit
    assert out[1].startswith("GC: total: ")


def test_stack_use_in_a_thread_is_its_measure():
    seen = []

    def body():
        seen.append(micropython.stack_use())
        seen.append([row[5] for row in mthread.list(False) if row[0] == mthread.getSelfID()][0])

    tid = start(body)
    assert wait_until(lambda: gone(tid))
    assert 0 < seen[0] <= seen[1]


def test_gc_figures_are_the_processs():
    allocated = _device_gc.mem_alloc()
    assert allocated > 0
    before = _device_gc.mem_alloc()
    block = bytearray(64 * 1024 * 1024)
    block[::4096] = b"x" * len(block[::4096])  # touch every page
    assert _device_gc.mem_alloc() >= before + 32 * 1024 * 1024
    del block
    free = _device_gc.mem_free()
    assert free > 0


def test_gc_threshold_remembers_and_checks():
    assert _device_gc.threshold() == -1
    try:
        assert _device_gc.threshold(4096) is None
        assert _device_gc.threshold() == 4096
        with pytest.raises(ValueError, match="amount must be >= -1"):
            _device_gc.threshold(-2)
        with pytest.raises(TypeError, match="amount must be an int"):
            _device_gc.threshold(1.5)
    finally:
        _device_gc.threshold(-1)


@pytest.mark.skipif(bool(os.environ.get("MTHREAD_SANITIZER")),
                    reason="AddressSanitizer cannot run under an address-space limit")
def test_mem_free_honours_the_address_space_limit():
    result = run_python("""
        import resource
        from mthread import _device_gc
        resource.setrlimit(resource.RLIMIT_AS, (2 * 1024 ** 3, resource.RLIM_INFINITY))
        print(_device_gc.mem_free() <= 2 * 1024 ** 3)
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "True\n"


SCHEDULE = """
    import _thread, micropython, time
    ran = []
    def callback(arg):
        ran.append((arg, _thread.get_ident() == main))
    main = _thread.get_ident()
    # From a thread, while the main thread is blocked in a C call: they wait for it, queued.
    def scheduler():
        for i in range(micropython.SCHEDULE_DEPTH):
            micropython.schedule(callback, i)
        try:
            micropython.schedule(callback, 'one too many')
        except RuntimeError as error:
            ran.append(str(error))
        _thread.sendmsg(_thread.getReplID(), 1)
    _thread.start_new_thread('scheduler', scheduler, ())
    _thread.getmsg(20000)   # returns once the thread sent: the callbacks ran after it
    for i in range(100):    # between bytecodes
        pass
    print(ran)
    def failing(arg):
        raise ValueError(arg)
    micropython.schedule(failing, 'reported')
    for i in range(100):
        pass
    print('went on')
"""


def test_schedule_runs_in_the_main_thread_and_has_a_bounded_queue():
    result = subprocess.run([PYTHON, "-m", "mthread", "-c", textwrap.dedent(SCHEDULE)],
                            capture_output=True, text=True, timeout=60,
                            env=dict(os.environ, PYTHONFAULTHANDLER="1"))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    expected = ["schedule queue full"] + [(i, True) for i in range(8)]
    assert lines[0] == repr(expected)
    assert lines[1] == "went on"
    assert "ValueError: reported" in result.stderr


def test_schedule_checks_func():
    with pytest.raises(TypeError, match="func must be callable"):
        micropython.schedule(42, None)


def test_device_script_under_the_runner():
    script = textwrap.dedent("""
        import gc, micropython, utime, _thread
        from micropython import const
        LED = const(2)
        micropython.alloc_emergency_exception_buf(100)
        gc.collect()
        print(LED, gc.mem_free() > 0, gc.mem_alloc() > 0, gc.threshold())
        micropython.mem_info()
    """)
    result = subprocess.run([PYTHON, "-m", "mthread", "-c", script], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "2 True True -1"
    assert lines[1].startswith("stack: ") and "out of" in lines[1]
    assert lines[2].startswith("GC: total: ")
