"""The integration with ``threading``: what the extension needs from Python to run a thread as
a CPython user expects (each thread known to ``threading``, its hooks, its exception report).

The extension calls ``prepare()`` once, before the first thread starts; then, per thread,
``entry_for(name)`` in the starting thread and ``thread_ended()`` in the thread, last.
"""
import functools
import sys
import threading
import time
import types

from . import _mthread


def _call(func, args, kwargs):
    if type(threading._active) is not _Active:  # see prepare()
        _register()
    # As a threading.Thread does: the tracer and profiler set for new threads with
    # threading.settrace()/setprofile() (coverage, debuggers) run in this one too.
    if threading._trace_hook is not None or threading._profile_hook is not None:
        _set_hooks()
    try:
        func(*args, **kwargs)
    except SystemExit:  # ThreadKilled too: the thread ends silently
        raise
    except BaseException as exc:  # noqa: B902  (as threading reports every other exception)
        # Reported from inside the handler, as threading does: a kill that lands meanwhile is
        # raised at the next line (this is not a ThreadKilled being handled) and ends the
        # thread silently. The traceback starts at the user's function, not at this frame.
        _report(type(exc), exc.with_traceback(exc.__traceback__.tb_next))


def _report(exc_type, exc):
    """Hand an uncaught exception to ``threading.excepthook`` with ``args.thread`` the calling
    thread's ``threading`` object (its name the thread's name). The default hook's output is the
    device's: a header naming the thread and its id, then the traceback."""
    args = threading.ExceptHookArgs([exc_type, exc, exc.__traceback__, threading.current_thread()])
    try:
        hook = threading.excepthook
        if hook is threading.__excepthook__:
            _print_report(args)
        else:
            hook(args)
    except Exception as error:  # noqa: B902  (what threading does when its hook fails)
        error.__suppress_context__ = True
        sys.stderr.write("Exception in threading.excepthook:\n")
        sys.stderr.flush()
        sys.excepthook(*sys.exc_info())
    finally:
        del args


def _print_report(args):
    """The default report, written to ``sys.stderr`` through ``sys.excepthook`` (a replaced one
    is honoured). At an interactive prompt it is printed above the prompt, which is then
    redrawn, as the REPL does with messages."""
    header = f'Unhandled exception in thread "{_mthread.getSelfName()}" (id {_mthread.getSelfID()}):\n'
    stderr = sys.stderr
    if stderr is None:
        return
    if sys.excepthook is not sys.__excepthook__:
        stderr.write(header)
        stderr.flush()
        sys.excepthook(args.exc_type, args.exc_value, args.exc_traceback)
        return
    # Imported here, not with this module: it takes longer to import than the rest of a first
    # thread start, and most programs never need it.
    import traceback

    text = header + "".join(traceback.format_exception(args.exc_type, args.exc_value,
                                                       args.exc_traceback))
    if stderr is sys.__stderr__ and _mthread._at_prompt():
        _show_above_prompt(text)
    else:
        stderr.write(text)
        stderr.flush()


def _show_above_prompt(text):
    """Queue ``text`` for the REPL display (mthread._repl.show_pending) and wait until it was
    shown; if the prompt goes away first (a statement runs), write it directly."""
    _mthread._repl_write(text)
    deadline = time.monotonic() + 1.0
    while _mthread._repl_output_pending() and _mthread._at_prompt() and time.monotonic() < deadline:
        _mthread.sleep_ms(20)
    rest = _mthread._take_repl_output()
    if rest:
        sys.stderr.write(rest)
        sys.stderr.flush()


def _set_hooks():
    if threading._trace_hook is not None:
        sys.settrace(threading._trace_hook)
    if threading._profile_hook is not None:
        sys.setprofile(threading._profile_hook)


# Threads often share a name (a pool of "worker"s): one code object per name, not per thread.
@functools.lru_cache(maxsize=256)
def entry_for(name):
    """A copy of ``_call`` whose code is named after the thread, so tracebacks and faulthandler
    dumps show the thread's name in their outermost frame."""
    label = f'<thread "{name}">'
    code = _call.__code__.replace(co_name=label, co_qualname=label)
    return types.FunctionType(code, _call.__globals__, label)


class _Active(dict):
    """``threading._active`` (ident -> Thread) that also knows mthread's threads.

    ``threading.current_thread()`` looks the caller up here; a thread that is not in it gets an
    anonymous ``_DummyThread``. A managed thread is registered at that first look-up, under its
    own name, instead of at its start: most threads never ask, and registering costs a
    ``_DummyThread`` (several objects) and a stack page each. So, like a thread of CPython's
    ``_thread``, a managed thread shows in ``threading.enumerate()`` once it asked for
    ``current_thread()`` (``logging`` does, for ``%(threadName)s``)."""

    __slots__ = ()

    def __missing__(self, ident):
        me = _mthread.getSelfID()
        if ident != threading.get_ident() or me == 0 or me == _mthread.getReplID():
            raise KeyError(ident)
        return _register()


def _register():
    """Make ``threading.current_thread().name`` (and so logging's ``%(threadName)s``) the
    thread's name."""
    dummy = threading._DummyThread()  # registers itself under get_ident()
    dummy.name = _mthread.getSelfName()
    return dummy


def prepare():
    # threading's functions look _active up by name at each call; its fork handler clears and
    # refills it in place, so the subclass stays. If something else replaced it, it is left
    # alone and each thread registers at its start instead.
    with threading._active_limbo_lock:
        if type(threading._active) is dict:
            threading._active = _Active(threading._active)


def thread_ended():
    """Forget the thread's ``_DummyThread``, if it made one: its ident will be reused."""
    ident = threading.get_ident()
    if ident in threading._active:
        with threading._active_limbo_lock:
            threading._active.pop(ident, None)
