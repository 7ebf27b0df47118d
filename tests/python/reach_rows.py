"""The rows of "What kill reaches" (docs/runner.md), run in a child process after
``mthread.install()`` (or under ``python -m mthread``): for each blocking call, a managed thread
blocked there is killed, suspended and resumed, and the call is made again in a ``threading``
thread and in a managed thread that nobody disturbs. Prints one JSON object: row -> findings.
test_reach.py asserts on them; bench/python_bench.py reads the kill latencies.

Usage: reach_rows.py [install]   ("install": call mthread.install() first; else the runner did)
"""
import json
import os
import queue
import select
import socket
import sys
import threading
import time

import mthread

if len(sys.argv) > 1 and sys.argv[1] == "install":
    mthread.install()

DEADLINE = 10.0  # generous: the machine may be busy


def wait_until(predicate, timeout=DEADLINE):
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= end:
            return False
        time.sleep(0.0005)
    return True


def socket_pair():
    return socket.socketpair()


def full_sender():
    """A connected pair whose first socket's send buffer is full: a blocking send waits."""
    a, b = socket.socketpair()
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    b.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    a.setblocking(False)
    try:
        while True:
            a.send(b"x" * 4096)
    except BlockingIOError:
        pass
    a.setblocking(True)
    return a, b


def drain(sock):
    sock.setblocking(False)
    try:
        while sock.recv(1 << 16):
            pass
    except BlockingIOError:
        pass
    finally:
        sock.setblocking(True)


def listener():
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    return server


# Each row: a function making the objects, returning (block, release, check):
#   block()   the blocking call, in the thread under test;
#   release() makes it return (None: it returns by itself, shortly);
#   check()   after a kill: the primitive still works for the others (True/False).

def row_lock():
    lock = threading.Lock()
    lock.acquire()

    def check():
        lock.release()
        with lock:
            return lock.locked()

    return lock.acquire, lock.release, check


def row_lock_timeout():
    lock = threading.Lock()
    lock.acquire()

    def check():
        lock.release()
        return lock.acquire(timeout=1) and (lock.release() is None)

    return (lambda: lock.acquire(timeout=60)), lock.release, check


def row_rlock():
    rlock = threading.RLock()
    rlock.acquire()

    def block():
        with rlock:
            pass

    def check():
        rlock.release()
        return rlock.acquire(timeout=1) and (rlock.release() is None)

    return block, rlock.release, check


def row_condition():
    cond = threading.Condition()

    def block():
        with cond:
            cond.wait()

    def release():
        with cond:
            cond.notify_all()

    def check():
        # The killed waiter's `with` released the lock: it can be taken, and notify works.
        if not cond.acquire(timeout=1):
            return False
        cond.notify_all()
        cond.release()
        return True

    return block, release, check


def row_event():
    event = threading.Event()

    def check():
        event.set()
        return event.wait(1)

    return event.wait, event.set, check


def row_semaphore():
    sem = threading.Semaphore(0)

    def check():
        sem.release()
        return sem.acquire(timeout=1)

    return sem.acquire, sem.release, check


def row_bounded_semaphore():
    sem = threading.BoundedSemaphore(1)
    sem.acquire()

    def check():
        sem.release()
        return sem.acquire(timeout=1) and (sem.release() is None)

    return sem.acquire, sem.release, check


def row_barrier():
    barrier = threading.Barrier(2)

    def check():
        # A killed waiter breaks the barrier (as any exception in wait() does): reset, reuse.
        barrier.reset()
        other = threading.Thread(target=barrier.wait, args=(5,))
        other.start()
        barrier.wait(5)
        other.join(5)
        return not other.is_alive()

    return barrier.wait, (lambda: barrier.wait(5)), check


def row_queue_get():
    q = queue.Queue()

    def check():
        q.put(7)
        return q.get(timeout=1) == 7 and q.empty()

    return q.get, (lambda: q.put(1)), check


def row_queue_put_full():
    q = queue.Queue(maxsize=1)
    q.put("kept")

    def check():
        return q.qsize() == 1 and q.get(timeout=1) == "kept"

    return (lambda: q.put("new")), q.get, check


def row_lifo_queue_get():
    q = queue.LifoQueue()

    def check():
        q.put(1)
        q.put(2)
        return q.get(timeout=1) == 2 and q.get(timeout=1) == 1

    return q.get, (lambda: q.put(1)), check


def row_simple_queue_get():
    q = queue.SimpleQueue()

    def check():
        q.put(3)
        return q.get(timeout=1) == 3

    return q.get, (lambda: q.put(1)), check


def row_thread_join():
    go = threading.Event()
    worker = threading.Thread(target=go.wait, daemon=True)
    worker.start()

    def check():
        go.set()
        worker.join(5)
        return not worker.is_alive()

    return worker.join, go.set, check


def row_time_sleep():
    return (lambda: time.sleep(60)), None, (lambda: True)


def row_select():
    a, b = socket_pair()

    def check():
        b.send(b"x")
        return select.select([a], [], [], 1)[0] == [a]

    return (lambda: select.select([a], [], [])), (lambda: b.send(b"x")), check


def row_poll():
    a, b = socket_pair()
    poller = select.poll()
    poller.register(a, select.POLLIN)

    def check():
        b.send(b"x")
        return poller.poll(1000) == [(a.fileno(), select.POLLIN)]

    return poller.poll, (lambda: b.send(b"x")), check


def row_socket_accept():
    server = listener()

    def connect():
        client = socket.create_connection(server.getsockname())
        client.close()

    def check():
        client = socket.create_connection(server.getsockname())
        conn, _ = server.accept()
        conn.close()
        client.close()
        return True

    return server.accept, connect, check


def row_socket_recv():
    a, b = socket_pair()

    def check():
        b.send(b"after")
        return a.recv(10) == b"after"

    return (lambda: a.recv(10)), (lambda: b.send(b"x")), check


def row_socket_recv_into():
    a, b = socket_pair()
    buffer = bytearray(10)

    def check():
        b.send(b"z")
        return a.recv_into(buffer) == 1 and buffer[:1] == b"z"

    return (lambda: a.recv_into(buffer)), (lambda: b.send(b"x")), check


def row_socket_recvfrom():
    a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    a.bind(("127.0.0.1", 0))
    b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    def check():
        b.sendto(b"d", a.getsockname())
        return a.recvfrom(10)[0] == b"d"

    return (lambda: a.recvfrom(10)), (lambda: b.sendto(b"x", a.getsockname())), check


def row_socket_sendall():
    a, b = full_sender()

    def check():
        drain(b)
        a.sendall(b"y" * 100)
        return True

    def release():
        threading.Thread(target=drain_forever, args=(b,), daemon=True).start()

    return (lambda: a.sendall(b"s" * 200_000)), release, check


def drain_forever(sock):
    """Read whatever a blocked sendall sends, until the process ends."""
    while sock.recv(1 << 16):
        pass


def row_socket_connect():
    # A listener whose backlog is full drops new connection requests: connect() blocks.
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    fillers = []
    for _ in range(4):
        filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        filler.setblocking(False)
        try:
            filler.connect(server.getsockname())
        except BlockingIOError:
            pass
        fillers.append(filler)
    client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)

    def release():
        server.setblocking(False)
        try:
            while True:
                server.accept()[0].close()
        except BlockingIOError:
            pass

    return (lambda: client.connect(server.getsockname())), None, (lambda: True)


ROWS = {name[4:]: function for name, function in globals().items() if name.startswith("row_")}
# connect() against a full backlog blocks on most kernels but not all: its row is reported,
# and the test only asserts on it where it blocked.
NO_RELEASE_FOR_SUSPEND = {"time_sleep", "socket_connect"}


def start_blocked(name, block, log, suspendable=False):
    def body():
        if suspendable:
            mthread.allowsuspend(True)
        try:
            log.append("blocking")
            block()
            log.append("returned")
        finally:
            log.append(("finally", time.perf_counter()))

    tid = mthread.start_new_thread(name, body, ())
    ready = wait_until(lambda: "blocking" in log)
    # Blocked: in one of mthread's waits (WAITING), or for join in CPython's join between
    # two slices (a system call, futex).
    in_wait = wait_until(lambda: mthread.status(tid) == mthread.WAITING or
                         mthread._mthread._blocked_in(tid).startswith("system call futex"))
    return tid, ready and in_wait


def finally_time(log):
    for entry in log:
        if isinstance(entry, tuple) and entry[0] == "finally":
            return entry[1]
    return None


def kill_row(name):
    block, release, check = ROWS[name]()
    log = []
    tid, blocked = start_blocked(name, block, log)
    killed_at = time.perf_counter()
    mthread.kill(tid)
    gone = wait_until(lambda: mthread.status(tid) == mthread.TERMINATED)
    ran_finally = finally_time(log)
    result = {
        "blocked": blocked,
        "gone": gone,
        "finally_ran": ran_finally is not None,
        "returned": "returned" in log,
        "latency_ms": None if ran_finally is None else (ran_finally - killed_at) * 1000,
    }
    try:
        result["works_after"] = bool(check())
    except Exception as error:  # reported, not raised: the parent asserts
        result["works_after"] = repr(error)
    return result


def suspend_row(name):
    block, release, _ = ROWS[name]()
    log = []
    tid, blocked = start_blocked(name + "-s", block, log, suspendable=True)
    suspended = mthread.suspend(tid)
    state_suspended = mthread.status(tid) == mthread.SUSPENDED
    result = {"blocked": blocked, "suspended": suspended, "state_suspended": state_suspended}
    if name not in NO_RELEASE_FOR_SUSPEND:
        release()
        # Released but suspended: it must not return. (A bounded look: it shows it did not
        # return within this window, which is what a suspended thread does.)
        returned_while_suspended = wait_until(lambda: "returned" in log, timeout=0.1)
        result["returned_while_suspended"] = returned_while_suspended
        result["still_suspended"] = mthread.status(tid) == mthread.SUSPENDED
        result["resumed"] = mthread.resume(tid)
        result["returned_after_resume"] = wait_until(lambda: "returned" in log)
    else:
        result["resumed"] = mthread.resume(tid)
    mthread.kill(tid)
    result["gone"] = wait_until(lambda: mthread.status(tid) == mthread.TERMINATED)
    return result


def plain_thread_behaviour():
    """The same calls in a threading thread, after install: what they did before."""
    findings = {}

    def run():
        lock = threading.Lock()
        lock.acquire()
        start = time.monotonic()
        findings["lock_timeout_false"] = lock.acquire(timeout=0.05) is False
        findings["lock_timeout_waited"] = time.monotonic() - start >= 0.04
        findings["event_timeout_false"] = threading.Event().wait(0.01) is False
        try:
            queue.Queue().get(timeout=0.01)
            findings["queue_empty_raised"] = False
        except queue.Empty:
            findings["queue_empty_raised"] = True
        a, b = socket.socketpair()
        findings["select_timeout"] = select.select([a], [], [], 0.01) == ([], [], [])
        b.sendall(b"hello")
        findings["recv"] = a.recv(10) == b"hello"
        a.settimeout(0.01)
        try:
            a.recv(1)
            findings["recv_timeout_raised"] = False
        except socket.timeout:
            findings["recv_timeout_raised"] = True
        findings["sleep"] = time.sleep(0.001) is None

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(DEADLINE)
    return findings


def managed_thread_behaviour():
    """The patched calls in an undisturbed managed thread return what the originals do."""
    findings = {}

    def run():
        lock = threading.Lock()
        lock.acquire()
        findings["lock_timeout_false"] = lock.acquire(timeout=0.02) is False
        findings["event_timeout_false"] = threading.Event().wait(0.01) is False
        try:
            queue.Queue().get(timeout=0.01)
            findings["queue_empty_raised"] = False
        except queue.Empty:
            findings["queue_empty_raised"] = True
        a, b = socket.socketpair()
        findings["select_timeout"] = select.select([a], [], [], 0.01) == ([], [], [])
        poller = select.poll()
        poller.register(a, select.POLLIN)
        findings["poll_timeout"] = poller.poll(10) == []
        b.sendall(b"hello")
        findings["select_ready"] = select.select([a], [], [], 1) == ([a], [], [])
        findings["recv"] = a.recv(10) == b"hello"
        payload = bytes(range(256)) * 4096  # 1 MiB: more than a socket buffer holds
        received = bytearray()
        reader = threading.Thread(target=lambda: received.extend(read_exactly(b, len(payload))))
        reader.start()
        a.sendall(payload)
        reader.join(DEADLINE)
        findings["sendall_whole"] = bytes(received) == payload
        a.settimeout(0.01)
        try:
            a.recv(1)
            findings["recv_timeout_raised"] = False
        except socket.timeout:
            findings["recv_timeout_raised"] = True
        server = listener()
        client = socket.socket()
        client.connect(server.getsockname())
        conn, _ = server.accept()
        conn.sendall(b"ok")
        findings["connect_accept"] = client.recv(2) == b"ok"
        other = socket.socket()
        findings["connect_ex"] = other.connect_ex(server.getsockname()) == 0
        server.close()
        refused = socket.socket()
        try:
            refused.connect(("127.0.0.1", free_port()))
            findings["connect_refused_raised"] = False
        except ConnectionRefusedError:
            findings["connect_refused_raised"] = True
        done_worker = threading.Thread(target=lambda: None)
        done_worker.start()
        done_worker.join()
        findings["join"] = not done_worker.is_alive()

    tid = mthread.start_new_thread("undisturbed", run, ())
    wait_until(lambda: mthread.status(tid) == mthread.TERMINATED)
    return findings


def read_exactly(sock, count):
    data = bytearray()
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            break
        data.extend(chunk)
    return data


def free_port():
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return port


def main():
    names = sys.argv[2:] or list(ROWS)
    report = {"kill": {}, "suspend": {}}
    for name in names:
        sys.stderr.write(f"row {name}\n")
        report["kill"][name] = kill_row(name)
        report["suspend"][name] = suspend_row(name)
    report["plain"] = plain_thread_behaviour()
    report["managed"] = managed_thread_behaviour()
    report["python"] = list(sys.version_info[:2])
    sys.stdout.write(json.dumps(report) + "\n")
    sys.stdout.flush()
    os._exit(0)  # objects the rows left blocked (a full backlog, a worker) do not matter now


if __name__ == "__main__":
    main()
