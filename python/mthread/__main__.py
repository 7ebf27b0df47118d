"""``python3 -m mthread``: run device scripts unmodified, and a REPL that shows thread messages.

The REPL is CPython's own interactive loop (entered through ``PYTHONINSPECT`` once this module
returns), so prompts, tracebacks, ``exit()``, Ctrl-C and Ctrl-D are python's. mthread's input
hook shows what arrives for the main thread while the prompt waits.
"""
import atexit
import os
import signal
import sys
import types

USAGE = """\
usage: python3 -m mthread [-i] [-c CODE | -m MODULE | SCRIPT | -] [ARG ...]

Runs code written for the ESP32 MicroPython (LoBo) firmware: `import _thread` gives mthread,
`import utime` and `import micropython` work, `gc` gains mem_free, mem_alloc and threshold,
`time` gains sleep_ms, sleep_us, ticks_ms, ticks_us, ticks_cpu, ticks_diff and ticks_add (ticks
wrap at 2**30), and time.sleep in a thread started by _thread becomes mthread.sleep, which
suspend and kill interrupt. Without SCRIPT: an interactive REPL that prints
what threads send to getReplID() at the prompt, [Message from thread "NAME"] text and
[Notification] N, then redraws the line (_thread.replAcceptMsg(False) leaves them queued).

  SCRIPT ARG...  run a script as `python3 SCRIPT ARG...` would ('-': standard input)
  -c CODE        run CODE as `python3 -c CODE` would
  -m MODULE      run a module as `python3 -m MODULE` would
  -i             enter the REPL after the script, its threads still running
  -h, --help     print this text

When the script ends, the process waits for its threads, showing what they send to the main
thread as the REPL does; Ctrl-C then kills them. Ctrl-C during
the script kills them too. Leaving the REPL (exit(), Ctrl-D) kills the threads still running,
as the device's soft reset does. Docs: docs/runner.md.
"""


class UsageError(Exception):
    """A command line that python itself would refuse."""


def parse_args(argv):
    """Split the command line as python does: options, then what to run, then its arguments.
    Returns ``(inspect, kind, target, args)`` with kind one of repl, script, command, module."""
    inspect = False
    rest = list(argv)
    while rest:
        arg = rest.pop(0)
        if arg in ("-h", "--help", "-?"):
            return inspect, "help", None, []
        if arg == "-i":
            inspect = True
        elif arg in ("-c", "-m"):
            if not rest:
                raise UsageError(f"Argument expected for the {arg} option")
            return inspect, "command" if arg == "-c" else "module", rest[0], rest[1:]
        elif arg.startswith("-c") or arg.startswith("-m"):
            return inspect, "command" if arg[1] == "c" else "module", arg[2:], rest
        elif arg == "--":
            break
        elif arg == "-" or not arg.startswith("-"):
            return inspect, "script", arg, rest
        elif arg.startswith("-i") and len(arg) > 2:
            inspect = True
            rest.insert(0, "-" + arg[2:])
        else:
            raise UsageError(f"Unknown option: {arg}")
    if rest:
        return inspect, "script", rest[0], rest[1:]
    return inspect, "repl", None, []


def fresh_main(**attributes):
    """A new ``__main__`` module, made current in ``sys.modules`` (the REPL runs in it)."""
    import builtins

    module = types.ModuleType("__main__")
    module.__dict__.update(__builtins__=builtins, __spec__=None, __package__=None, **attributes)
    sys.modules["__main__"] = module
    return module


def kill_threads():
    """Kill every thread mthread started that still runs; return how many there were."""
    import mthread

    main = mthread.getReplID()
    others = [row[0] for row in mthread.list(False) if row[0] != main]
    for thread in others:
        mthread.kill(thread)
    return len(others)


def _kill_threads_on_leaving_repl():
    count = kill_threads()
    if count:
        sys.stderr.write(f"mthread: killed {count} thread(s) still running\n")


def _start_repl_hook(original):
    def interactive_hook():
        """Entered by python's REPL: forget the PYTHONINSPECT that brought us here, so child
        processes do not inherit it, then set up readline as python does."""
        os.environ.pop("PYTHONINSPECT", None)
        if original is not None:
            original()

    return interactive_hook


def enter_repl():
    """Make python enter its interactive loop once this module returns (as ``-i`` does), or run
    one here when python cannot (its environment is ignored, standard input is no terminal)."""
    atexit.register(_kill_threads_on_leaving_repl)
    if sys.flags.ignore_environment or not sys.stdin.isatty():
        import code

        try:
            import readline  # noqa: F401  (line editing, and the input hook that shows messages)
        except ImportError:
            pass
        code.interact(banner="", local=sys.modules["__main__"].__dict__, exitmsg="")
        return
    sys.__interactivehook__ = _start_repl_hook(getattr(sys, "__interactivehook__", None))
    os.environ["PYTHONINSPECT"] = "1"
    # CPython 3.13's new REPL draws its own line, without GNU readline: mthread's display could
    # show messages but not redraw the prompt and the text typed. Its basic REPL is the readline
    # one of 3.11 and 3.12 (python reads the variable once this module returns).
    if sys.version_info >= (3, 13):
        os.environ.setdefault("PYTHON_BASIC_REPL", "1")


def print_banner():
    """The banner of python's REPL, and a line for mthread."""
    sys.stderr.write(f"Python {sys.version} on {sys.platform}\n"
                     'Type "help", "copyright", "credits" or "license" for more information.\n'
                     "mthread: `import _thread` gives mthread; messages to the REPL show at "
                     "the prompt.\n")


def run_startup_file(namespace):
    """Run $PYTHONSTARTUP as python's REPL does."""
    path = os.environ.get("PYTHONSTARTUP")
    if not path or sys.flags.ignore_environment:
        return
    try:
        with open(path, "rb") as startup:
            source = startup.read()
    except OSError as error:
        sys.stderr.write(f"Could not open PYTHONSTARTUP\n{error}\n")
        return
    run_code(compile(source, path, "exec"), namespace, inspect=True)


def report(exc, tb):
    """Print an exception as python prints one that ends a script, and remember it as the REPL
    does (``sys.last_*``)."""
    exc.__traceback__ = tb
    sys.last_type, sys.last_value, sys.last_traceback = type(exc), exc, tb
    sys.excepthook(type(exc), exc, tb)


def exit_on_interrupt():
    """End the process as python does after an uncaught KeyboardInterrupt: killed by SIGINT.
    The threads are killed first, and the exit functions run."""
    kill_threads()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGINT)
    os._exit(130)


def run_main(function, args, inspect):
    """Call ``function(*args)`` as python runs its main script: an exception is printed without
    this runner's frames, then python's exit status follows, unless ``inspect`` (the REPL comes
    next, as with ``python -i``). ``function`` is ``exec`` or runpy's, so that the first frame of
    the traceback is this one."""
    try:
        function(*args)
    except SystemExit as exc:
        if not inspect:
            raise
        report(exc, exc.__traceback__.tb_next)
    except BaseException as exc:  # noqa: B902  (reported as python reports it)
        report(exc, exc.__traceback__.tb_next)
        if inspect:
            return
        if isinstance(exc, KeyboardInterrupt):
            exit_on_interrupt()
        raise SystemExit(1) from None


def run_code(code, namespace, inspect):
    """Execute compiled code in ``namespace`` as python runs its main script."""
    run_main(exec, (code, namespace), inspect)


def compile_or_report(source, filename, inspect):
    """Compile a script; a SyntaxError is reported as python reports it (exit status 1)."""
    try:
        return compile(source, filename, "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as exc:
        report(exc, None)
        if inspect:
            return None
        raise SystemExit(1) from None


def run_script(path, args, inspect):
    """``python3 SCRIPT ARGS``: a file, a directory or zip file with ``__main__.py``, or ``-``."""
    sys.argv = [path, *args]
    if path == "-":
        sys.path[0] = ""
        module = fresh_main()
        code = compile_or_report(sys.stdin.buffer.read(), "<stdin>", inspect)
        if code is not None:
            run_code(code, module.__dict__, inspect)
        return
    if os.path.isdir(path) or not path.endswith(".py") and _is_zip(path):
        import runpy

        sys.path[0] = path
        fresh_main()
        run_main(runpy._run_module_as_main, ("__main__", False), inspect)
        return
    try:
        with open(path, "rb") as script:
            source = script.read()
    except OSError as error:
        sys.stderr.write(f"{sys.executable} -m mthread: can't open file {path!r}: "
                         f"[Errno {error.errno}] {error.strerror}\n")
        raise SystemExit(2) from None
    from importlib.machinery import SourceFileLoader

    filename = path if os.path.isabs(path) else os.path.join(os.getcwd(), path)
    sys.path[0] = os.path.dirname(os.path.realpath(path))
    module = fresh_main(__file__=filename, __cached__=None,
                        __loader__=SourceFileLoader("__main__", filename))
    code = compile_or_report(source, filename, inspect)
    if code is not None:
        run_code(code, module.__dict__, inspect)


def _is_zip(path):
    import zipfile

    return zipfile.is_zipfile(path)


def run_command(command, args, inspect):
    """``python3 -c CODE ARGS``."""
    sys.argv = ["-c", *args]
    sys.path[0] = ""
    module = fresh_main()
    code = compile_or_report(command, "<string>", inspect)
    if code is None:
        return
    if sys.version_info >= (3, 13):
        # From 3.13 python keeps CODE's text for its tracebacks, which then show its lines. An
        # entry without a modification time is never dropped by linecache.checkcache().
        import linecache

        lines = [line + "\n" for line in command.splitlines()]
        linecache.cache["<string>"] = (len(command), None, lines, "<string>")
    run_code(code, module.__dict__, inspect)


def run_module(name, args, inspect):
    """``python3 -m MODULE ARGS``, through runpy as python does (its frames show in tracebacks,
    as they do under python)."""
    import runpy

    sys.argv = ["-m", *args]
    fresh_main()
    run_main(runpy._run_module_as_main, (name, True), inspect)


def main(argv=None):
    """Run the command line ``argv`` (default: ``sys.argv[1:]``)."""
    try:
        inspect, kind, target, args = parse_args(sys.argv[1:] if argv is None else argv)
    except UsageError as error:
        sys.stderr.write(f"{error}\n{USAGE.splitlines()[0]}\n"
                         "Try `python3 -m mthread --help' for more information.\n")
        raise SystemExit(2) from None
    if kind == "help":
        sys.stdout.write(USAGE)
        return
    import mthread

    mthread.install()
    if kind == "repl" and not sys.stdin.isatty():
        kind, target = "script", "-"
    if kind == "repl":
        sys.argv = [""]
        sys.path[0] = ""
        module = fresh_main()
        print_banner()
        run_startup_file(module.__dict__)
    elif kind == "script":
        run_script(target, args, inspect)
    elif kind == "command":
        run_command(target, args, inspect)
    else:
        run_module(target, args, inspect)
    if kind == "repl" or inspect:
        enter_repl()


if __name__ == "__main__":
    main()
