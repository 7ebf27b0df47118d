"""Shows what arrives for the main thread while the interactive prompt waits, as the device's
REPL does, then redraws the prompt and the text typed so far.

``show_pending`` is called by mthread's ``PyOS_InputHook`` about ten times a second while GNU
readline waits for a key (in ``python3 -m mthread`` and in the plain ``python3`` REPL), and only
while ``replAcceptMsg()`` is true.
"""
import os
import sys

from . import _mthread

# Names of the threads seen alive, so that a message whose sender has ended since still shows
# its sender's name. Refreshed at every call of the hook.
_names = {}
_NAMES_KEPT = 4096


def _remember_names():
    if len(_names) > _NAMES_KEPT:
        _names.clear()
    for row in _mthread.list(False):
        _names[row[0]] = row[2]


def sender_name(sender):
    """The name of the thread that sent a message, even if it has ended since (when the hook
    saw it alive); ``"unknown"`` otherwise."""
    name = _mthread.getThreadName(sender)
    if name == "unknown":
        name = _names.get(sender, name)
    return name


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
        lines.append(f'[Message from thread "{sender_name(sender)}"] {msg}')
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


def _keep_interrupts(previous):
    def unraisablehook(unraisable):
        """A Ctrl-C that lands in the input hook belongs to readline: hand it back."""
        if unraisable.object is show_pending and unraisable.exc_type is KeyboardInterrupt:
            _give_interrupt_back()
        else:
            previous(unraisable)

    unraisablehook.mthread_keeps_interrupts = True
    return unraisablehook


class _Prompt:
    """Stands in for ``sys.ps1``/``sys.ps2`` until the next prompt: python's REPL calls
    ``str()`` on them as it shows one, which tells that the interrupt was taken."""

    def __init__(self, text, shown):
        self.text, self.shown = text, shown

    def __str__(self):
        for name in ("ps1", "ps2"):
            prompt = getattr(sys, name, None)
            if isinstance(prompt, _Prompt):
                setattr(sys, name, prompt.text)
        _mthread._set_repl_display(show_pending)
        self.shown.set()
        return str(self.text)


def _give_interrupt_back():
    # Re-armed from Python, the interrupt would be taken at once by Python code again, and
    # readline runs this hook before it checks for signals. So: no display (no Python code in
    # the hook) until the next prompt, and a helper thread sends SIGINT again, which interrupts
    # readline's select(); readline then raises KeyboardInterrupt as usual.
    import threading

    _mthread._set_repl_display(None)
    shown = threading.Event()
    for name in ("ps1", "ps2"):
        if hasattr(sys, name) and not isinstance(getattr(sys, name), _Prompt):
            setattr(sys, name, _Prompt(getattr(sys, name), shown))
    threading._start_new_thread(_resend_interrupt, (threading.main_thread().ident, shown))


def _resend_interrupt(main_ident, shown):
    import signal

    for _ in range(50):  # at most 5 s: should the main thread be away from the prompt
        signal.pthread_kill(main_ident, signal.SIGINT)
        if shown.wait(0.1):
            return
    _mthread._set_repl_display(show_pending)


def keep_interrupts_for_readline():
    """Ctrl-C at the prompt interrupts select() in readline, which runs the input hook before
    it checks for signals; the hook's Python code then takes the KeyboardInterrupt, and the C
    hook can only report it as unraisable. Give it back to readline instead."""
    if not getattr(sys.unraisablehook, "mthread_keeps_interrupts", False):
        sys.unraisablehook = _keep_interrupts(sys.unraisablehook)


def show_pending():
    """Print the main thread's pending notification and messages on lines of their own, then
    redraw the prompt and the text typed so far. Called by the input hook in the main thread."""
    global _readline
    if _mthread.getSelfID() != _mthread.getReplID() or not _mthread.replAcceptMsg():
        return
    lines = pending_lines()
    _remember_names()
    if not lines:
        return
    if _readline is None:
        _readline = _Readline()
    sys.stdout.flush()
    clear = "" if _readline.clear_visible_line() else "\r\x1b[K"
    sys.stdout.write(clear + "\n".join(lines) + "\n")
    sys.stdout.flush()
    if not _mthread._redisplay_prompt():
        sys.stdout.write(str(getattr(sys, "ps1", "")))
        sys.stdout.flush()


keep_interrupts_for_readline()
