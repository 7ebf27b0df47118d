"""Notifications, messages, waits and sleeps (SPEC §1 Notification/Mailbox, §3)."""
import threading
import time

import pytest

import mthread
from conftest import SHORT, Flag, gone, start, wait_stable, wait_until

MS = SHORT * 1000


def echo_server():
    """Replies to every message with (its type, its payload) in kind; 'quit' ends it."""
    while True:
        typ, sender, msg = mthread.getmsg(10_000)
        if typ == 2 and msg == "quit":
            return
        if typ:
            mthread.sendmsg(sender, msg)


def in_thread(func, *args):
    """Run func in a managed thread; return what it returned (or raise what it raised)."""
    out = {}

    def body():
        try:
            out["r"] = func(*args)
        except BaseException as e:  # noqa: BLE001
            out["e"] = e

    tid = mthread.start_new_thread("helper", body, ())
    assert wait_until(lambda: gone(tid))
    if "e" in out:
        raise out["e"]
    return out["r"]


# --- notifications -------------------------------------------------------------------------

def test_getnotification_empty_is_zero():
    assert mthread.getnotification() == 0


def test_notify_self_then_read_clears():
    me = mthread.getReplID()
    assert mthread.isnotified(me) is False
    assert mthread.notify(me, 5) is True
    assert mthread.isnotified(me) is True
    assert mthread.getnotification() == 5
    assert mthread.getnotification() == 0
    assert mthread.isnotified(me) is False


def test_notify_overwrites_latest_wins():
    me = mthread.getReplID()
    for value in (1, 2, 0xFFFFFFFF, 7):
        assert mthread.notify(me, value)
    assert mthread.getnotification() == 7
    assert mthread.getnotification() == 0


def test_notify_extremes():
    me = mthread.getReplID()
    assert mthread.notify(me, 1)
    assert mthread.getnotification() == 1
    assert mthread.notify(me, 2 ** 32 - 1)
    assert mthread.getnotification() == 2 ** 32 - 1


def test_notify_value_errors():
    me = mthread.getReplID()
    with pytest.raises(ValueError, match="value"):
        mthread.notify(me, 0)
    with pytest.raises(ValueError, match="value"):
        mthread.notify(me, -1)
    with pytest.raises(OverflowError, match="value"):
        mthread.notify(me, 2 ** 32)
    with pytest.raises(OverflowError, match="value"):
        mthread.notify(me, 2 ** 100)
    with pytest.raises(TypeError, match="value"):
        mthread.notify(me, 1.0)
    with pytest.raises(TypeError, match="value"):
        mthread.notify(me, "1")
    with pytest.raises(TypeError, match="value"):
        mthread.notify(me, None)
    with pytest.raises(TypeError):
        mthread.notify(me)
    assert mthread.getnotification() == 0


def test_notify_unknown_or_ended_is_false():
    assert mthread.notify(123_456_789, 1) is False
    tid = start(lambda: None)
    assert wait_until(lambda: gone(tid))
    assert mthread.notify(tid, 1) is False
    assert mthread.isnotified(tid) is False


def test_notify_a_thread_reads_it():
    got = []

    def body():
        got.append(mthread.wait())
        got.append(mthread.getnotification())

    tid = start(body)
    assert mthread.notify(tid, 42)
    assert wait_until(lambda: gone(tid))
    assert got == [42, 0]


def test_notify_broadcast_reaches_all_but_caller():
    seen = {}

    def body(i):
        seen[i] = mthread.wait(MS)

    ids = [start(body, i) for i in range(5)]
    assert wait_until(lambda: all(mthread.status(t) == mthread.WAITING for t in ids))
    assert mthread.notify(0, 99) is True
    assert wait_until(lambda: all(gone(t) for t in ids))
    assert seen == {i: 99 for i in range(5)}
    assert mthread.getnotification() == 0  # not the caller


def test_notify_broadcast_from_thread_reaches_main():
    assert in_thread(mthread.notify, 0, 77) is True
    assert mthread.getnotification() == 77


def test_notify_broadcast_with_no_one_else():
    assert mthread.notify(0, 1) is False
    assert mthread.getnotification() == 0


def test_isnotified_does_not_clear():
    tid = start(lambda: mthread.sleep(30))
    assert mthread.notify(tid, 3)
    assert mthread.isnotified(tid) and mthread.isnotified(tid)
    mthread.kill(tid)


def test_stop_sends_exit():
    got = []

    def body():
        got.append(mthread.wait())

    tid = start(body)
    assert mthread.stop(tid) is True
    assert wait_until(lambda: gone(tid))
    assert got == [mthread.EXIT]
    assert mthread.stop(tid) is False


def test_stop_broadcast():
    got = []
    ids = [start(lambda: got.append(mthread.wait())) for _ in range(3)]
    assert mthread.stop(0)
    assert wait_until(lambda: all(gone(t) for t in ids))
    assert got == [mthread.EXIT] * 3


# --- wait ----------------------------------------------------------------------------------

def test_wait_returns_pending_at_once():
    me = mthread.getReplID()
    mthread.notify(me, 11)
    begin = time.monotonic()
    assert mthread.wait(10_000) == 11
    assert time.monotonic() - begin < 1.0
    assert mthread.getnotification() == 0


def test_wait_timeout_returns_none():
    begin = time.monotonic()
    assert mthread.wait(50) is None
    elapsed = time.monotonic() - begin
    assert 0.045 <= elapsed < SHORT


def test_wait_zero_and_float():
    assert mthread.wait(0) is None
    assert mthread.wait(1.5) is None
    mthread.notify(mthread.getReplID(), 2)
    assert mthread.wait(0) == 2


def test_wait_blocks_until_notified():
    got = []
    tid = start(lambda: got.append(mthread.wait()))
    assert wait_until(lambda: mthread.status(tid) == mthread.WAITING)
    assert got == []
    mthread.notify(tid, 8)
    assert wait_until(lambda: got == [8])


def test_wait_argument_errors():
    with pytest.raises(ValueError, match="timeout_ms"):
        mthread.wait(-1)
    with pytest.raises(ValueError, match="timeout_ms"):
        mthread.wait(float("nan"))
    with pytest.raises(TypeError, match="timeout_ms"):
        mthread.wait("10")


def test_wait_in_foreign_thread_is_an_error():
    errors = []

    def body():
        try:
            mthread.wait(10)
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    t = threading.Thread(target=body)
    t.start()
    t.join(SHORT)
    assert len(errors) == 1 and isinstance(errors[0], mthread.error)
    assert str(errors[0]).startswith("wait(): the calling thread is not one mthread knows")


def hold_a_lock():
    lock = mthread.allocate_lock()
    lock.acquire()
    return lock


HELD = hold_a_lock()


# Each waits on something that never comes, with a timeout too long to mean anything.
HUGE_WAITS = {
    "getmsg": lambda: mthread.getmsg(10 ** 30),
    "getmsg-inf": lambda: mthread.getmsg(float("inf")),
    "wait": lambda: mthread.wait(2 ** 70),
    "sleep_ms": lambda: mthread.sleep_ms(10 ** 5000),
    "sleep": lambda: mthread.sleep(1e300),
    "acquire": lambda: HELD.acquire(timeout=threading.TIMEOUT_MAX),
}


@pytest.mark.parametrize("name", sorted(HUGE_WAITS))
def test_huge_timeouts_wait_without_limit(name):
    """A huge timeout neither overflows into a wait that ends at once nor breaks the wait:
    the thread waits on, and a kill still ends it."""
    tid = start(HUGE_WAITS[name])
    assert wait_until(lambda: mthread.status(tid) == mthread.WAITING)
    state, _ = wait_stable(lambda: mthread.status(tid), quiet=0.1)
    assert state == mthread.WAITING
    assert mthread.kill(tid)
    assert wait_until(lambda: gone(tid))


# --- getmsg --------------------------------------------------------------------------------

def test_getmsg_empty():
    assert mthread.getmsg() == (0, 0, None)
    assert mthread.getmsg(0) == (0, 0, None)


def test_getmsg_timeout():
    begin = time.monotonic()
    assert mthread.getmsg(50) == (0, 0, None)
    elapsed = time.monotonic() - begin
    assert 0.045 <= elapsed < SHORT
    assert mthread.getmsg(0.5) == (0, 0, None)


def test_getmsg_no_argument_never_blocks():
    begin = time.monotonic()
    for _ in range(100):
        mthread.getmsg()
    assert time.monotonic() - begin < 1.0


def test_getmsg_argument_errors():
    for bad, kind in [(-1, ValueError), (float("nan"), ValueError), (-0.5, ValueError),
                      ("1", TypeError), ([1], TypeError), (b"1", TypeError)]:
        with pytest.raises(kind, match="timeout_ms"):
            mthread.getmsg(bad)


def test_sendmsg_self_int_and_str():
    me = mthread.getReplID()
    assert mthread.sendmsg(me, 42) is True
    assert mthread.sendmsg(me, "hello") is True
    assert mthread.getmsg() == (1, me, 42)
    assert mthread.getmsg() == (2, me, "hello")
    assert mthread.getmsg() == (0, 0, None)


@pytest.mark.parametrize("value", [0, -1, 1, 2 ** 63 - 1, -(2 ** 63), 2 ** 32, True])
def test_sendmsg_int_range(value):
    me = mthread.getReplID()
    assert mthread.sendmsg(me, value)
    typ, sender, msg = mthread.getmsg()
    assert (typ, sender, msg) == (1, me, int(value)) and type(msg) is int


@pytest.mark.parametrize("text", ["x", "ünïcødé 🙂", "a\0b", "line\nbreak",
                                  "x" * mthread.MAX_MESSAGE_LENGTH,
                                  "é" * (mthread.MAX_MESSAGE_LENGTH // 2)])
def test_sendmsg_str_kept_whole(text):
    me = mthread.getReplID()
    assert mthread.sendmsg(me, text)
    assert mthread.getmsg() == (2, me, text)


def test_sendmsg_str_subclass_and_int_subclass():
    class S(str):
        pass

    class I(int):
        def __str__(self):
            raise AssertionError("not called")

    me = mthread.getReplID()
    assert mthread.sendmsg(me, S("sub"))
    assert mthread.sendmsg(me, I(5))
    assert mthread.getmsg() == (2, me, "sub")
    assert mthread.getmsg() == (1, me, 5)


def test_sendmsg_errors():
    me = mthread.getReplID()
    with pytest.raises(ValueError, match="msg"):
        mthread.sendmsg(me, "")
    with pytest.raises(ValueError, match="msg"):
        mthread.sendmsg(me, "x" * (mthread.MAX_MESSAGE_LENGTH + 1))
    with pytest.raises(ValueError, match="msg"):  # counted in bytes of UTF-8
        mthread.sendmsg(me, "é" * (mthread.MAX_MESSAGE_LENGTH // 2 + 1))
    with pytest.raises(ValueError, match="msg"):
        mthread.sendmsg(me, "lone \ud800 surrogate")
    with pytest.raises(OverflowError, match="msg"):
        mthread.sendmsg(me, 2 ** 63)
    with pytest.raises(OverflowError, match="msg"):
        mthread.sendmsg(me, -(2 ** 63) - 1)
    for bad in (1.5, b"bytes", None, [1], ("a",)):
        with pytest.raises(TypeError, match="msg"):
            mthread.sendmsg(me, bad)
    with pytest.raises(TypeError):
        mthread.sendmsg(me)
    with pytest.raises(TypeError, match="th_id"):
        mthread.sendmsg("1", 1)
    with pytest.raises(ValueError, match="th_id"):
        mthread.sendmsg(-1, 1)
    assert mthread.getmsg() == (0, 0, None)


def test_values_the_core_refuses_name_the_python_function_and_argument():
    """The core checks these values; its error reaches Python in Python's names."""
    me = mthread.getReplID()
    cases = [(lambda: mthread.sendmsg(me, ""), ValueError, "sendmsg(): msg must not be empty"),
             (lambda: mthread.sendmsg(0, "x" * (mthread.MAX_MESSAGE_LENGTH + 1)), ValueError,
              "sendmsg(): msg is 65537 bytes of UTF-8, longer than the maximum of 65536"),
             (lambda: mthread.notify(0, 0), ValueError,
              "notify(): value must be in 1..4294967295, got 0"),
             (lambda: mthread.start_new_thread("x", print, (), mailbox_depth=65537),
              OverflowError, "start_new_thread(): mailbox_depth must be in 1..65536, got 65537")]
    for call, kind, text in cases:
        with pytest.raises(kind) as caught:
            call()
        assert str(caught.value) == text
    assert mthread.getmsg() == (0, 0, None) and mthread.getnotification() == 0


def test_sendmsg_unknown_or_ended_is_false():
    assert mthread.sendmsg(987_654_321, 1) is False
    assert mthread.sendmsg(987_654_321, "x") is False
    tid = start(lambda: None)
    assert wait_until(lambda: gone(tid))
    assert mthread.sendmsg(tid, 1) is False


def test_mailbox_depth_8_full_fails_at_once_fifo():
    me = mthread.getReplID()
    for i in range(8):
        assert mthread.sendmsg(me, i) is True
    begin = time.monotonic()
    assert mthread.sendmsg(me, 100) is False
    assert mthread.sendmsg(me, "more") is False
    assert time.monotonic() - begin < 0.5
    assert [mthread.getmsg()[2] for _ in range(8)] == list(range(8))
    assert mthread.getmsg() == (0, 0, None)
    assert mthread.sendmsg(me, 9)
    assert mthread.getmsg()[2] == 9


def test_full_mailbox_of_thread():
    go = Flag()
    received = []

    def body():
        while not go:
            mthread.sleep_ms(1)
        while True:
            m = mthread.getmsg()
            if m[0] == 0:
                return
            received.append(m)

    tid = start(body)
    results = [mthread.sendmsg(tid, i) for i in range(10)]
    assert results == [True] * 8 + [False] * 2
    go.set()
    assert wait_until(lambda: gone(tid))
    me = mthread.getReplID()
    assert received == [(1, me, i) for i in range(8)]


def test_mailbox_depth_option():
    go = Flag()
    received = []

    def body():
        while not go:
            mthread.sleep_ms(1)
        while (m := mthread.getmsg())[0]:
            received.append(m[2])

    tid = mthread.start_new_thread("deep", body, (), mailbox_depth=20)
    assert [mthread.sendmsg(tid, i) for i in range(21)] == [True] * 20 + [False]
    go.set()
    assert wait_until(lambda: gone(tid))
    assert received == list(range(20))
    tid = mthread.start_new_thread("one", mthread.wait, (), mailbox_depth=1)
    assert [mthread.sendmsg(tid, i) for i in range(2)] == [True, False]
    mthread.kill(tid)
    tid = mthread.start_new_thread("default", mthread.wait, (), mailbox_depth=0)
    assert [mthread.sendmsg(tid, i) for i in range(9)] == [True] * 8 + [False]
    mthread.kill(tid)


@pytest.mark.parametrize("depth, error", [(-1, ValueError), (65537, OverflowError),
                                          (1.5, TypeError), ("8", TypeError)])
def test_mailbox_depth_errors(depth, error):
    with pytest.raises(error, match="mailbox_depth"):
        mthread.start_new_thread("x", lambda: None, (), mailbox_depth=depth)


def test_messaging_calls_take_keywords_and_check_arity():
    me = mthread.getReplID()
    assert mthread.sendmsg(th_id=me, msg=3) is True
    assert mthread.getmsg(timeout_ms=0) == (1, me, 3)
    assert mthread.notify(me, value=4) is True
    assert mthread.wait(timeout_ms=0) == 4
    for call, text in [(lambda: mthread.sendmsg(me), "missing required argument 'msg'"),
                       (lambda: mthread.sendmsg(me, 1, 2), "at most 2 arguments"),
                       (lambda: mthread.sendmsg(me, th_id=me), "multiple values"),
                       (lambda: mthread.getmsg(timeout=1), "unexpected keyword argument"),
                       (lambda: mthread.notify(), "missing required argument 'th_id'"),
                       (lambda: mthread.wait(1, 2), "at most 1 argument")]:
        with pytest.raises(TypeError, match=text):
            call()


def test_thread_sender_id_and_reply():
    tid = start(echo_server)
    assert mthread.sendmsg(tid, "ping")
    assert mthread.getmsg(MS) == (2, tid, "ping")
    assert mthread.sendmsg(tid, -5)
    assert mthread.getmsg(MS) == (1, tid, -5)
    assert mthread.sendmsg(tid, "quit")
    assert wait_until(lambda: gone(tid))


def test_getmsg_timeout_in_thread_wakes_on_message():
    got = []
    tid = start(lambda: got.append(mthread.getmsg(MS)))
    assert wait_until(lambda: mthread.status(tid) == mthread.WAITING)
    begin = time.monotonic()
    assert mthread.sendmsg(tid, 5)
    assert wait_until(lambda: got)
    assert time.monotonic() - begin < 1.0
    assert got == [(1, mthread.getReplID(), 5)]


def test_sendmsg_broadcast():
    got = {}

    def body(i):
        got[i] = mthread.getmsg(MS)

    ids = [start(body, i) for i in range(4)]
    assert wait_until(lambda: all(mthread.status(t) == mthread.WAITING for t in ids))
    assert mthread.sendmsg(0, "all") is True
    assert wait_until(lambda: all(gone(t) for t in ids))
    me = mthread.getReplID()
    assert got == {i: (2, me, "all") for i in range(4)}
    assert mthread.getmsg() == (0, 0, None)  # not to the caller


def test_sendmsg_broadcast_false_when_one_is_full():
    def body():
        mthread.wait()

    full = start(body)
    empty = start(body)
    for i in range(8):
        assert mthread.sendmsg(full, i)
    assert mthread.sendmsg(0, 99) is False
    assert mthread.sendmsg(0, 99) is False
    mthread.notify(0, 1)
    assert wait_until(lambda: gone(full) and gone(empty))
    del empty


def test_sendmsg_broadcast_with_no_one_else():
    assert mthread.sendmsg(0, 1) is False
    assert mthread.getmsg() == (0, 0, None)


def test_messages_from_thread_to_main():
    def body():
        for i in range(3):
            mthread.sendmsg(mthread.getReplID(), "msg %d" % i)

    tid = start(body, name="talker")
    assert wait_until(lambda: gone(tid))
    assert [mthread.getmsg() for _ in range(3)] == [(2, tid, "msg %d" % i) for i in range(3)]


def test_foreign_thread_sender_is_zero():
    t = threading.Thread(target=lambda: mthread.sendmsg(mthread.getReplID(), 7))
    t.start()
    t.join()
    assert mthread.getmsg() == (1, 0, 7)


def test_foreign_thread_getmsg_without_timeout():
    out = []
    t = threading.Thread(target=lambda: out.append((mthread.getmsg(), mthread.getnotification())))
    t.start()
    t.join()
    assert out == [((0, 0, None), 0)]


def test_foreign_thread_getmsg_with_timeout_is_an_error():
    """No message can ever reach a thread mthread does not know: waiting for one is an error,
    even with a timeout of 0 (as it is whatever the timeout)."""
    errors = []

    def body():
        for timeout in (0, 10):
            try:
                mthread.getmsg(timeout)
            except mthread.error as e:
                errors.append(str(e))

    t = threading.Thread(target=body)
    t.start()
    t.join(SHORT)
    assert len(errors) == 2
    assert all(e.startswith("getmsg(): the calling thread is not one mthread knows") for e in errors)


def test_message_exactly_once_under_contention():
    """Many senders into one receiver: every accepted message arrives once, none invented."""
    count = 200
    accepted = []
    lock = threading.Lock()

    def sender(k, receiver):
        for i in range(count):
            while not mthread.sendmsg(receiver, k * 10_000 + i):
                mthread.sleep_us(100)
            with lock:
                accepted.append(k * 10_000 + i)

    received = []

    def receiver():
        while len(received) < 4 * count:
            m = mthread.getmsg(MS)
            if m[0] == 0:
                return
            received.append(m[2])

    rid = start(receiver, name="receiver")
    ids = [start(sender, k, rid, name="sender%d" % k) for k in range(4)]
    assert wait_until(lambda: gone(rid), timeout=60)
    assert all(wait_until(lambda t=t: gone(t)) for t in ids)
    assert sorted(received) == sorted(accepted) and len(received) == 4 * count
    for k in range(4):
        mine = [v for v in received if v // 10_000 == k]
        assert mine == sorted(mine)  # FIFO per sender


# --- replAcceptMsg -------------------------------------------------------------------------

def test_repl_accept_msg_default_and_set():
    assert mthread.replAcceptMsg() is True
    # Setting returns the previous setting, as the device's mp_thread_replAcceptMsg does.
    assert mthread.replAcceptMsg(False) is True
    assert mthread.replAcceptMsg() is False
    me = mthread.getReplID()
    assert mthread.sendmsg(me, "kept")  # stays queued for getmsg
    assert mthread.getmsg() == (2, me, "kept")
    assert mthread.replAcceptMsg(True) is False
    assert mthread.replAcceptMsg() is True
    assert mthread.replAcceptMsg(0) is True
    assert mthread.replAcceptMsg(1) is False
    assert mthread.mainAcceptMsg() is True
    assert mthread.mainAcceptMsg(False) is True
    assert mthread.replAcceptMsg() is False
    assert mthread.mainAcceptMsg(True) is False


def test_repl_accept_msg_flag_ignored_in_thread():
    assert in_thread(mthread.replAcceptMsg, False) is True
    assert mthread.replAcceptMsg() is True
    mthread.replAcceptMsg(False)
    assert in_thread(mthread.replAcceptMsg) is False


# --- sleeps --------------------------------------------------------------------------------

@pytest.mark.parametrize("func, amount, seconds", [
    (mthread.sleep, 0.05, 0.05), (mthread.sleep, 0, 0), (mthread.sleep_ms, 50, 0.05),
    (mthread.sleep_ms, 0.5, 0.0005), (mthread.sleep_us, 50_000, 0.05), (mthread.sleep_us, 1, 0),
])
def test_sleeps_last_at_least_as_long(func, amount, seconds):
    begin = time.monotonic()
    assert func(amount) is None
    elapsed = time.monotonic() - begin
    assert seconds <= elapsed < seconds + 2.0


def test_sleep_shows_waiting():
    tid = start(mthread.sleep, 30)
    assert wait_until(lambda: mthread.status(tid) == mthread.WAITING)
    mthread.kill(tid)


@pytest.mark.parametrize("func, argument", [(mthread.sleep, "seconds"), (mthread.sleep_ms, "ms"),
                                            (mthread.sleep_us, "us")])
def test_sleep_argument_errors(func, argument):
    with pytest.raises(ValueError, match=argument):
        func(-1)
    with pytest.raises(ValueError, match=argument):
        func(float("nan"))
    with pytest.raises(TypeError, match=argument):
        func("1")
    with pytest.raises(TypeError, match=argument):
        func(None)
    with pytest.raises(TypeError):
        func()


def test_sleep_zero_lets_a_thread_waiting_for_the_gil_run():
    """sleep_ms(0) yields, as on the device: a sender retrying a full mailbox with it lets the
    receiver drain it."""
    count = 2000

    def sink(main):
        got = 0
        while got < count:
            if mthread.getmsg(10_000)[0]:
                got += 1
        mthread.notify(main, 1)

    tid = mthread.start_new_thread("sink", sink, (mthread.getReplID(),))
    for i in range(count):
        while not mthread.sendmsg(tid, i):
            mthread.sleep_ms(0)
    assert mthread.wait(10_000) == 1
    assert wait_until(lambda: gone(tid))


def test_sleep_in_foreign_thread_works():
    done = []
    t = threading.Thread(target=lambda: (mthread.sleep_ms(10), done.append(1)))
    t.start()
    t.join(SHORT)
    assert done == [1]


def test_sleep_main_thread_lets_others_run():
    counter = [0]

    def body():
        while counter[0] < 1000:
            counter[0] += 1

    tid = start(body)
    mthread.sleep(0.2)
    assert wait_until(lambda: gone(tid))
    assert counter[0] == 1000
