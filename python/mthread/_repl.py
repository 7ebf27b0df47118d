"""Shows what arrives for the main thread while the interactive prompt waits, as the device's
REPL does, then redraws the prompt and the text typed so far."""
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
        lines.append(f'[Message from thread "{_mthread.getThreadName(sender)}"] {msg}')
    return lines


def show_pending():
    """Called by the input hook about ten times a second, in the main thread."""
    if _mthread.getSelfID() != _mthread.getReplID() or not _mthread.replAcceptMsg():
        return
    lines = pending_lines()
    if not lines:
        return
    # Clear the prompt line, print the news on lines of their own, redraw prompt and input.
    sys.stdout.write("\r\x1b[K" + "\n".join(lines) + "\n")
    sys.stdout.flush()
    if not _mthread._redisplay_prompt():
        sys.stdout.write(str(getattr(sys, "ps1", "")))
        sys.stdout.flush()
