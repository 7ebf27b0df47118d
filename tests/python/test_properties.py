"""Property tests for argument handling: any Python objects, to every function, give a result or
one of the documented exceptions (TypeError/ValueError/OverflowError naming the function and the
argument) — never a crash, a SystemError or a RuntimeError. Run in-process, and once more in a
subprocess where a hard crash is reported instead of taking pytest down."""
import contextlib
import fractions
import decimal
import io
import os
import subprocess

import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

import mthread
from conftest import PYTHON, assert_clean_exit, drain_main, gone, others, wait_until

IN_CHILD = os.environ.get("MTHREAD_PROPERTIES_CHILD") == "1"
EXAMPLES = 300 if IN_CHILD else 150
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.function_scoped_fixture])


class UserError(Exception):
    """Raised by the test's own hostile objects: propagating it is what Python does."""


class BadBool:
    def __bool__(self):
        raise UserError("__bool__")


class BadIndex:
    def __index__(self):
        raise UserError("__index__")

    def __int__(self):
        raise UserError("__int__")

    def __float__(self):
        raise UserError("__float__")


class HostileInt(int):
    def __str__(self):
        raise UserError("__str__")

    def __repr__(self):
        return "HostileInt(%s)" % int.__repr__(self)

    def __lt__(self, other):
        raise UserError("__lt__")

    def __float__(self):
        raise UserError("__float__")

    def __index__(self):
        raise UserError("__index__")


class HostileFloat(float):
    def __str__(self):
        raise UserError("__str__")

    def __repr__(self):
        return "HostileFloat(%s)" % float.__repr__(self)


class HostileStr(str):
    def __repr__(self):
        return "HostileStr(%s)" % str.__repr__(self)

    def __str__(self):
        raise UserError("__str__")

    def encode(self, *a, **k):
        raise UserError("encode")


class HostileDict(dict):
    def keys(self):
        raise UserError("keys")


class HugeInt(int):
    """An int beyond str()'s digit limit, with a repr hypothesis can print."""

    def __repr__(self):
        return "HugeInt(%d bits)" % self.bit_length()


def noop(*args, **kwargs):
    return None


ODD_OBJECTS = [BadBool(), BadIndex(), HostileInt(0), HostileInt(3), HostileInt(-3),
               HostileFloat(0.0), HostileFloat(-1.0), HostileStr("x"), HostileStr(""),
               HostileDict(), object(), type, Ellipsis, NotImplemented, 1j, print,
               decimal.Decimal("1.5"), fractions.Fraction(1, 3), HugeInt(10 ** 5000), HugeInt(-(10 ** 5000)),
               2 ** 31, 2 ** 32, 2 ** 63, 2 ** 64, -(2 ** 63) - 1, float("nan"), float("inf"),
               -float("inf"), -0.0, "\ud800", "a\0b", b"", bytearray(b"x"), memoryview(b"y"),
               range(3), frozenset(), noop]

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=-(2 ** 70), max_value=2 ** 70),
    st.floats(), st.text(st.characters(blacklist_categories=()), max_size=20), st.binary(max_size=8),
    st.sampled_from(ODD_OBJECTS))
anything = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.lists(inner, max_size=3).map(tuple),
    st.dictionaries(st.text(max_size=3), inner, max_size=3)), max_leaves=6)

DOCUMENTED = (TypeError, ValueError, OverflowError, UserError)

# name -> (argument names, maximum positional count, blocking-duration limit or None)
FUNCTIONS = {
    "stack_size": (("size",), 1, None),
    "allowsuspend": (("allow",), 1, None),
    "suspend": (("th_id",), 1, None),
    "resume": (("th_id",), 1, None),
    "kill": (("th_id",), 1, None),
    "getThreadName": (("th_id",), 1, None),
    "getSelfName": ((), 0, None),
    "getReplID": ((), 0, None),
    "getMainID": ((), 0, None),
    "getnotification": ((), 0, None),
    "getmsg": (("timeout_ms",), 1, 2),
    "notify": (("th_id", "value"), 2, None),
    "sendmsg": (("th_id", "msg"), 2, None),
    "replAcceptMsg": (("flag",), 1, None),
    "list": (("print",), 1, None),
    "status": (("th_id",), 1, None),
    "isnotified": (("th_id",), 1, None),
    "stop": (("th_id",), 1, None),
    "wait": (("timeout_ms",), 1, 2),
    "sleep": (("seconds",), 1, 0.002),
    "sleep_ms": (("ms",), 1, 2),
    "sleep_us": (("us",), 1, 2000),
}


def bounded(value, limit):
    """A duration argument that cannot block the test for long."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            if value == value and float(value) > limit:
                return limit
        except (OverflowError, UserError):
            return -1
    if value is True and limit < 1:
        return 0
    return value


def call_checked(name, args, kwargs=None):
    func = getattr(mthread, name)
    argument_names, most, limit = FUNCTIONS.get(name, ((), 99, None))
    if limit is not None:
        args = [bounded(a, limit) for a in args]
    if name == "wait" and (not args or args[0] is None):
        mthread.notify(mthread.getSelfID(), 1)  # wait() without limit returns at once
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return func(*args, **(kwargs or {}))
    except UserError:
        return None
    except DOCUMENTED as e:
        text = str(e)
        assert name in text, f"{name}{tuple(args)!r}: message does not name the function: {text}"
        if len(args) <= most and not kwargs and argument_names and "incompatible" not in text:
            assert any(a in text for a in argument_names), \
                f"{name}{tuple(args)!r}: message names no argument: {text}"
        return None
    finally:
        drain_main()


@pytest.fixture(autouse=True)
def restore_settings():
    yield
    mthread.stack_size(0)
    mthread.replAcceptMsg(True)
    for tid in others():
        mthread.kill(tid)
    assert wait_until(lambda: not others(), timeout=30)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
@SETTINGS
@given(args=st.lists(anything, max_size=3))
def test_any_arguments_documented_errors_only(name, args):
    call_checked(name, args)


@SETTINGS
@given(args=st.lists(st.one_of(anything, st.just(noop), st.just(()), st.just({}),
                               st.just("name")), max_size=5),
       stacksize=st.one_of(st.none(), anything))
def test_start_new_thread_any_arguments(args, stacksize):
    kwargs = {} if stacksize is None else {"stacksize": stacksize}
    before = set(others())
    result = call_checked("start_new_thread", args, kwargs)
    if result is not None:
        assert isinstance(result, int) and result > 0
    new = set(others()) - before
    assert wait_until(lambda: all(gone(t) for t in new), timeout=30)


UNKNOWN_ID_RESULTS = {"suspend": False, "resume": False, "kill": False, "isnotified": False,
                      "stop": False, "status": mthread.TERMINATED, "getThreadName": "unknown"}


@SETTINGS
@given(tid=st.one_of(st.integers(min_value=-(2 ** 80), max_value=2 ** 80),
                     st.integers(min_value=2 ** 64 - 5, max_value=2 ** 64 + 5)))
def test_id_domain(tid):
    for name, expected in UNKNOWN_ID_RESULTS.items():
        func = getattr(mthread, name)
        if tid < 0:
            with pytest.raises(ValueError, match="th_id"):
                func(tid)
        elif tid >= 2 ** 64:
            with pytest.raises(OverflowError, match="th_id"):
                func(tid)
        elif tid >= 10 ** 6:  # never given out in this process
            assert func(tid) == expected


@SETTINGS
@given(value=st.integers(min_value=-(2 ** 70), max_value=2 ** 70))
def test_notify_value_domain(value):
    me = mthread.getReplID()
    if value < 0 or value == 0:
        with pytest.raises(ValueError):
            mthread.notify(me, value)
    elif value >= 2 ** 32:
        with pytest.raises(OverflowError):
            mthread.notify(me, value)
    else:
        assert mthread.notify(me, value) is True
        assert mthread.getnotification() == value


@SETTINGS
@given(value=st.integers(min_value=-(2 ** 70), max_value=2 ** 70))
def test_sendmsg_int_round_trip(value):
    drain_main()
    me = mthread.getReplID()
    if -(2 ** 63) <= value < 2 ** 63:
        assert mthread.sendmsg(me, value) is True
        assert mthread.getmsg() == (1, me, value)
    else:
        with pytest.raises(OverflowError):
            mthread.sendmsg(me, value)


@SETTINGS
@given(text=st.text(st.characters(blacklist_categories=()), max_size=300))
def test_sendmsg_str_round_trip(text):
    drain_main()
    me = mthread.getReplID()
    try:
        encoded = text.encode("utf-8")
    except UnicodeEncodeError:
        with pytest.raises(ValueError):
            mthread.sendmsg(me, text)
        return
    if not encoded:
        with pytest.raises(ValueError):
            mthread.sendmsg(me, text)
        return
    assert mthread.sendmsg(me, text) is True
    assert mthread.getmsg() == (2, me, text)


@SETTINGS
@given(value=st.one_of(st.integers(min_value=-(2 ** 70), max_value=2 ** 70), st.floats()))
def test_duration_domain(value):
    bad = value != value or value < 0
    for name in ("getmsg", "wait", "sleep_ms", "sleep_us"):
        func = getattr(mthread, name)
        if bad:
            with pytest.raises(ValueError):
                func(value)
        else:
            assume(True)
            func(min(value, 1))


@SETTINGS
@given(size=st.integers(min_value=-(2 ** 70), max_value=2 ** 70))
def test_stack_size_domain(size):
    if size < 0:
        with pytest.raises(ValueError):
            mthread.stack_size(size)
    elif size >= 2 ** 63:
        with pytest.raises(OverflowError):
            mthread.stack_size(size)
    else:
        got = mthread.stack_size(size)
        if size == 0:
            assert got == mthread.DEFAULT_STACK_SIZE
        else:
            assert mthread.MIN_STACK_SIZE <= got <= mthread.MAX_STACK_SIZE
            assert got % os.sysconf("SC_PAGE_SIZE") == 0
            if mthread.MIN_STACK_SIZE <= size <= mthread.MAX_STACK_SIZE:
                assert size <= got < size + os.sysconf("SC_PAGE_SIZE")
        assert mthread.stack_size() == got


@SETTINGS
@given(name=st.text(st.characters(blacklist_categories=()), max_size=40))
def test_thread_names_kept_whole(name):
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        with pytest.raises(ValueError):
            mthread.start_new_thread(name, noop, ())
        return
    seen = []
    tid = mthread.start_new_thread(name, lambda: seen.append(mthread.getSelfName()), ())
    assert wait_until(lambda: gone(tid), timeout=30)
    assert seen == [name]


@SETTINGS
@given(args=st.lists(anything, max_size=3))
def test_any_arguments_from_a_managed_thread(args):
    """The same calls from inside a managed thread (other code paths: not the main thread)."""
    outcome = []

    def body():
        try:
            for name in ("getmsg", "wait", "replAcceptMsg", "sendmsg", "notify", "list",
                         "allowsuspend", "kill", "suspend"):
                call_checked(name, args)
            outcome.append("ok")
        except BaseException as e:  # noqa: BLE001
            outcome.append(repr(e))

    tid = mthread.start_new_thread("prop", body, ())
    assert wait_until(lambda: gone(tid), timeout=30)
    assert outcome in (["ok"], []) or outcome[0].startswith("ThreadKilled"), outcome


@pytest.mark.skipif(IN_CHILD, reason="this is the child run")
def test_properties_in_a_subprocess():
    """The same properties in a child interpreter, with more examples and another seed: a hard
    crash (a segfault, an abort) shows up here with its traceback."""
    env = dict(os.environ, MTHREAD_PROPERTIES_CHILD="1", PYTHONFAULTHANDLER="1")
    result = subprocess.run(
        [PYTHON, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "--timeout=200",
         "--hypothesis-seed=%d" % (os.getpid() % 100000), __file__,
         "-k", "not in_a_subprocess"],
        capture_output=True, text=True, timeout=280, env=env,
        cwd=os.path.dirname(os.path.abspath(__file__)))
    assert_clean_exit(result.returncode, result.stderr)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-5000:]
