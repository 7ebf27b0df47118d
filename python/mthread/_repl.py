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
        lines.append(f'[Message from thread "{_mthread._sender_name(sender)}"] {msg}')
    return lines


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

