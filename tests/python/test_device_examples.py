"""The examples of the device's documentation page, run as written there: threads blinking
on notifications, a message loop, suspend/resume/kill from the REPL."""

import mthread
from conftest import SHORT, gone, others, wait_until


def test_device_example_blink_threads_with_notifications():
    """The device's usual thread shape: an infinite loop reacting to PAUSE/RESUME/EXIT/STATUS
    notifications, replying to the REPL by message."""
    _thread = mthread
    counts = {}

    def th_func(delay, th_id):
        _thread.allowsuspend(True)
        while True:
            ntf = _thread.getnotification()
            if ntf:
                if ntf == _thread.EXIT:
                    _thread.sendmsg(_thread.getReplID(), "%s exiting" % _thread.getSelfName())
                    return
                elif ntf == _thread.SUSPEND:
                    while _thread.wait() != _thread.RESUME:
                        pass
                elif ntf == _thread.STATUS:
                    _thread.sendmsg(_thread.getReplID(), counts.get(th_id, 0))
            counts[th_id] = counts.get(th_id, 0) + 1
            _thread.sleep_ms(delay)

    ids = [_thread.start_new_thread("THRD#%d" % i, th_func, (1 + i, i)) for i in range(2)]
    assert wait_until(lambda: all(counts.get(i, 0) > 2 for i in range(2)))
    assert _thread.notify(ids[0], _thread.STATUS)
    status_reply = _thread.getmsg(SHORT * 1000)
    assert status_reply[:2] == (1, ids[0]) and status_reply[2] > 2
    assert _thread.notify(ids[1], _thread.SUSPEND)
    assert wait_until(lambda: _thread.status(ids[1]) == _thread.WAITING)
    frozen = counts[1]
    assert _thread.notify(ids[1], _thread.RESUME)
    assert wait_until(lambda: counts[1] > frozen)
    for tid in ids:
        assert _thread.stop(tid)
    got = {_thread.getmsg(SHORT * 1000)[2] for _ in range(2)}
    assert got == {"THRD#0 exiting", "THRD#1 exiting"}
    assert wait_until(lambda: all(gone(t) for t in ids))


def test_device_example_message_loop():
    """A thread that answers REPL messages: int doubled, str upper-cased."""
    def th_func():
        while True:
            typ, sender, msg = mthread.getmsg()
            if typ == 1:
                mthread.sendmsg(sender, msg * 2)
            elif typ == 2:
                if msg == "quit":
                    return
                mthread.sendmsg(sender, msg.upper())
            mthread.sleep_ms(1)

    tid = mthread.start_new_thread("echo", th_func, ())
    assert mthread.sendmsg(tid, 21)
    assert mthread.getmsg(SHORT * 1000) == (1, tid, 42)
    assert mthread.sendmsg(tid, "hello")
    assert mthread.getmsg(SHORT * 1000) == (2, tid, "HELLO")
    assert mthread.sendmsg(tid, "quit")
    assert wait_until(lambda: gone(tid))


def test_device_example_suspend_resume_kill_from_repl():
    ticks = [0]

    def th_func():
        mthread.allowsuspend(True)
        while True:
            ticks[0] += 1
            mthread.sleep_ms(1)

    tid = mthread.start_new_thread("ticker", th_func, ())
    assert wait_until(lambda: ticks[0] > 3)
    assert mthread.suspend(tid)
    frozen = ticks[0]
    assert wait_until(lambda: mthread.status(tid) == mthread.SUSPENDED)
    assert mthread.resume(tid)
    assert wait_until(lambda: ticks[0] > frozen + 3)
    assert mthread.kill(tid)
    assert wait_until(lambda: gone(tid))
    assert tid not in others()
