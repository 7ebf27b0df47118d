"""Shows what arrives for the main thread while the interactive prompt waits, as the device's
REPL does, then redraws the prompt and the text typed so far.

``show_pending`` is called by mthread's ``PyOS_InputHook`` about ten times a second while GNU
readline waits for a key (in ``python3 -m mthread`` and in the plain ``python3`` REPL) when there
is something to show: messages and notifications while ``replAcceptMsg()`` is true, and always
a thread's traceback (which would otherwise be written over the prompt).
"""
import os
import sys

from . import _mthread


def pending_lines():
    """Take the main thread's pending notification and messages, as display lines."""
    lines = []
    value = _mthread.getnotification()
    if value:
        lines.append(f"[Notification] {value}")
    while True:
        kind, sender, msg = _mthread.getmsg()
        if kind == 0:
            break
        lines.append(message_line(sender, msg))
    return lines


def message_line(sender, msg):
    """A message as the device's REPL shows it."""
    return f'[Message from thread "{_mthread._sender_name(sender)}"] {msg}'


class _Readline:
    """The few GNU readline calls that the ``readline`` module does not offer, from the library
    already loaded in the process (never loading one)."""

    def __init__(self):
        self.clear_line = self.flush = None
        try:
            import ctypes

            library = ctypes.CDLL("libreadline.so.8", mode=os.RTLD_NOLOAD | os.RTLD_LAZY)
            self.clear_line = library.rl_clear_visible_line
            self.flush = ctypes.CDLL(None).fflush
        except (OSError, AttributeError, ImportError):
            self.clear_line = None

    def clear_visible_line(self):
        """Erase every screen row of the prompt and input, leaving the cursor at the first
        one's start; false if readline cannot."""
        if self.clear_line is None:
            return False
        self.clear_line()
        self.flush(None)  # readline writes through C stdio; Python writes to the fd directly
        return True


_readline = None


def show_pending():
    """Print the main thread's pending notification and messages on lines of their own, then
    redraw the prompt and the text typed so far. Called by the input hook in the main thread."""
    global _readline
    if _mthread.getSelfID() != _mthread.getReplID():
        return
    lines = pending_lines() if _mthread.replAcceptMsg() else []
    output = _mthread._take_repl_output()
    if not lines and not output:
        return
    if _readline is None:
        _readline = _Readline()
    sys.stdout.flush()
    clear = "" if _readline.clear_visible_line() else "\r\x1b[K"
    sys.stdout.write(clear)
    if lines:
        sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()
    if output:
        sys.stderr.write(output)
        sys.stderr.flush()
    if not _mthread._redisplay_prompt():
        sys.stdout.write(str(getattr(sys, "ps1", "")))
        sys.stdout.flush()



# --- the end of a script ---------------------------------------------------------------------

#: Whether what arrives for the main thread while the process waits for its threads at exit is
#: shown as at the prompt: set by ``python3 -m mthread`` and ``mthread.install()``.
show_at_exit = False

#: How long the end of a script waits quietly before it says, on a terminal, what it waits for.
NOTE_AFTER = 0.5


def _others():
    main = _mthread.getReplID()
    return [row for row in _mthread.list(False) if row[0] != main]


def _print_lines(lines):
    if lines and sys.stdout is not None:
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()


def _stderr_is_terminal():
    try:
        return sys.stderr is not None and sys.stderr.isatty()
    except (AttributeError, ValueError, OSError):
        return False


def wait_showing_arrivals():
    """Run at exit before mthread joins the threads still running: while they run, show what
    arrives for the main thread as the REPL would (when ``show_at_exit``), and on a terminal
    say once which threads the process waits for. A Ctrl-C is passed on to the join, which kills
    them."""
    if _mthread.getSelfID() != _mthread.getReplID():
        return
    import time

    noted = not _stderr_is_terminal()
    start = time.monotonic()
    try:
        while True:
            show = show_at_exit and _mthread.replAcceptMsg()
            if show:
                _print_lines(pending_lines())
            alive = _others()
            if not alive:
                if show:  # what the last ones sent before they ended
                    _print_lines(pending_lines())
                return
            if not noted and time.monotonic() - start >= NOTE_AFTER:
                names = ", ".join(f'"{row[2]}" (id {row[0]})' for row in alive)
                sys.stderr.write(f"mthread: waiting for {len(alive)} thread(s) to end: {names}; "
                                 "Ctrl-C kills them\n")
                sys.stderr.flush()
                noted = True
            if not show:
                if noted:
                    return  # nothing left to do here: mthread's join waits for them
                _mthread.sleep_ms(50)
                continue
            kind, sender, msg = _mthread.getmsg(50)
            if kind:
                _print_lines([message_line(sender, msg)])
    except KeyboardInterrupt:
        # mthread's join (the next exit function) starts with it: kills, then reaps.
        _mthread._interrupt_next_join()


import atexit as _atexit  # noqa: E402

# Registered after mthread's join (mthread imports this module last), so it runs before it.
_atexit.register(wait_showing_arrivals)
