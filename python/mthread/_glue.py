"""What the extension needs from Python to run a thread as a CPython user expects."""
import sys
import threading
import types


def _call(func, args, kwargs):
    return func(*args, **kwargs)


def entry_for(name):
    """A copy of ``_call`` whose code is named after the thread, so tracebacks and faulthandler
    dumps show the thread's name in their outermost frame."""
    label = f'<thread "{name}">'
    code = _call.__code__.replace(co_name=label, co_qualname=label)
    return types.FunctionType(code, _call.__globals__, label)


def thread_began(name):
    """Make ``threading.current_thread().name`` (and so logging's ``%(threadName)s``) the
    thread's name."""
    dummy = threading._DummyThread()  # registers itself under get_ident()
    dummy.name = name
    # As a threading.Thread does: the tracer and profiler set for new threads with
    # threading.settrace()/setprofile() (coverage, debuggers) run in this one too.
    if threading._trace_hook is not None:
        sys.settrace(threading._trace_hook)
    if threading._profile_hook is not None:
        sys.setprofile(threading._profile_hook)


def thread_ended():
    with threading._active_limbo_lock:
        threading._active.pop(threading.get_ident(), None)
