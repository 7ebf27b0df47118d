"""The device's additions to ``gc`` (``mem_free``, ``mem_alloc``, ``threshold``), with figures of
this process: ``mthread.install()`` and ``python3 -m mthread`` add them to ``gc``.

- ``mem_alloc()``: the process's anonymous resident memory (``RssAnon`` of
  ``/proc/self/status``): its heaps, CPython's object arenas and the touched part of its
  stacks — what the device's heap holds, and more.
- ``mem_free()``: how much more the process can get: the least of the memory the kernel says is
  available (``MemAvailable``), what its cgroup's ``memory.max`` leaves, and what its
  ``RLIMIT_AS``/``RLIMIT_DATA`` leave.
- ``threshold([amount])``: remembered and returned (-1, the device's "none", at first). CPython
  collects after a count of objects, not of bytes (``gc.set_threshold``), so it changes nothing.
"""
import resource as _resource

#: What ``patch_gc_module()`` adds to ``gc``.
GC_NAMES = ("mem_alloc", "mem_free", "threshold")


def _status_bytes(path, field):
    """A ``Field:   N kB`` line of a /proc file in bytes; None if absent."""
    try:
        with open(path) as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _read_int(path):
    try:
        with open(path) as file:
            return int(file.read().strip())
    except (OSError, ValueError):
        return None  # absent, or "max"


def mem_alloc():
    """Bytes of memory the process has allocated and uses (its anonymous resident memory)."""
    used = _status_bytes("/proc/self/status", "RssAnon")
    return used if used is not None else 0


def mem_free():
    """Bytes the process can still allocate: the least of the system's available memory and what
    its cgroup and its resource limits leave."""
    candidates = []
    available = _status_bytes("/proc/meminfo", "MemAvailable")
    if available is not None:
        candidates.append(available)
    limit, current = _read_int("/sys/fs/cgroup/memory.max"), _read_int(
        "/sys/fs/cgroup/memory.current")
    if limit is not None and current is not None:
        candidates.append(limit - current)
    size = _status_bytes("/proc/self/status", "VmSize")
    data = _status_bytes("/proc/self/status", "VmData")
    for which, in_use in ((_resource.RLIMIT_AS, size), (_resource.RLIMIT_DATA, data)):
        soft = _resource.getrlimit(which)[0]
        if soft != _resource.RLIM_INFINITY and in_use is not None:
            candidates.append(soft - in_use)
    return max(0, min(candidates)) if candidates else 0


_threshold = -1


def threshold(amount=None):
    """Without ``amount``, the threshold last set (-1: none); with it, remember it (a number of
    bytes on the device; CPython's collector counts objects and is not changed)."""
    global _threshold
    if amount is None:
        return _threshold
    if not isinstance(amount, int) or isinstance(amount, bool):
        raise TypeError(f"threshold(): amount must be an int, not {type(amount).__name__}")
    if amount < -1:
        raise ValueError(f"threshold(): amount must be >= -1, got {amount}")
    _threshold = amount
    return None


def patch_gc_module():
    """Give ``gc`` the device's names (see ``GC_NAMES``). Idempotent."""
    import gc

    for name in GC_NAMES:
        setattr(gc, name, globals()[name])
