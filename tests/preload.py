"""A preloading fork server for the tests' Python processes (``train.py``, ``lightning-args``).

Each run of ``train.py`` in a fresh interpreter spends 8-11 s of CPU importing torch, Lightning,
torchmetrics, scipy and Hydra before it trains a few batches; the suite starts well over a
hundred of them. The server imports those third-party libraries once, then forks: each request
becomes a new process (its own pid, session if asked, working directory, environment,
``sys.argv``, ``sys.path[0]``, stdin/stdout/stderr and exit status) that runs the script or
module as ``__main__`` the way ``python script.py`` / ``python -m module`` would. Nothing of
lightning_args, the script or the app is imported before the fork, so everything the tests are
about starts fresh; only the import of the heavy libraries is shared.

Tests that are about a fresh interpreter itself (which modules ``--help`` imports, signals at
start-up) keep plain :mod:`subprocess`. ``LIGHTNING_ARGS_TEST_FRESH=1`` turns the server off
and every process is a fresh interpreter again, e.g. to check that it makes no difference.

Protocol, over a Unix socket, one connection per process: the client sends one JSON request
with three file descriptors (stdin, stdout, stderr); the server forks a keeper, which forks the
process, answers ``{"pid": N}``, waits for it and answers ``{"returncode": R}`` (Popen's
convention: ``-signum`` when killed by a signal).
"""

from __future__ import annotations

import atexit
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any

FRESH_ENV = "LIGHTNING_ARGS_TEST_FRESH"

#: The third-party libraries a training imports: what the server loads before forking.
PRELOAD = (
    "torch",
    "lightning.pytorch",
    "torchmetrics",
    "scipy.signal",
    "sklearn.datasets",
    "hydra",
    "hydra.core.config_store",
    "omegaconf",
    "optuna",
    "matplotlib",
    "yaml",
)

SERVER = r"""
import importlib, json, os, runpy, select, signal, socket, sys, traceback, warnings

path, preload = sys.argv[1], sys.argv[2].split(",")
for name in preload:
    importlib.import_module(name)
del name
import atexit, threading
assert threading.active_count() == 1, "a preloaded library started a thread: fork is unsafe"
default_filters = list(warnings.filters)  # this interpreter runs without -W / PYTHONWARNINGS
default_path = list(sys.path[1:])
handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD)}


def run(request):
    # What the interpreter does at start-up, for this process.
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    warnings.filters[:] = default_filters
    options = [o for o in os.environ.get("PYTHONWARNINGS", "").split(",") if o]
    sys.warnoptions[:] = options
    warnings._processoptions(options)
    warnings._filters_mutated()
    argv = request["argv"]
    if request.get("module"):
        sys.argv = ["-m", *argv[2:]]  # run_module puts the module's file first
        sys.path[:] = [request["cwd"], *default_path]
    else:
        sys.argv = list(argv)
        sys.path[:] = [os.path.dirname(os.path.abspath(argv[0])), *default_path]
    for signum, handler in handlers.items():
        signal.signal(signum, handler)
    if "numpy" in sys.modules:  # a fresh interpreter's global generator is seeded afresh
        sys.modules["numpy"].random.seed()
    code = 0
    try:
        if request.get("module"):
            runpy.run_module(request["module"], run_name="__main__", alter_sys=True)
        else:
            runpy.run_path(argv[0], run_name="__main__")
    except SystemExit as stop:
        if stop.code is None:
            code = 0
        elif isinstance(stop.code, int):
            code = stop.code
        else:
            print(stop.code, file=sys.stderr)
            code = 1
    except KeyboardInterrupt:
        traceback.print_exc()
        code = -signal.SIGINT
    except BaseException:
        traceback.print_exc()
        code = 1
    try:  # what the interpreter does at exit: join the threads, then the atexit functions
        threading._shutdown()
        atexit._run_exitfuncs()
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
    finally:
        if code < 0:  # as CPython does for an uncaught KeyboardInterrupt
            signal.signal(-code, signal.SIG_DFL)
            os.kill(os.getpid(), -code)
        os._exit(code & 0xFF)


def keep(conn, request, fds):
    # The keeper: forks the process, says its pid, waits for it, says how it ended.
    pid = os.fork()
    if pid == 0:
        conn.close()
        if request.get("new_session"):
            os.setsid()
        if request.get("nice"):
            os.nice(request["nice"])
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        run(request)
    for fd in fds:
        os.close(fd)
    conn.sendall(json.dumps({"pid": pid}).encode() + b"\n")
    _, status = os.waitpid(pid, 0)
    conn.sendall(json.dumps({"returncode": os.waitstatus_to_exitcode(status)}).encode() + b"\n")
    os._exit(0)


server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
server.bind(path)
server.listen(64)
signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # keepers are reaped by the kernel
signal.signal(signal.SIGINT, signal.SIG_IGN)
print("ready", flush=True)
while True:
    # Its stdin is a pipe from the test process: at its end (that process is gone, however it
    # ended) the server goes too.
    readable, _, _ = select.select([server, sys.stdin], [], [])
    if sys.stdin in readable and not os.read(sys.stdin.fileno(), 1):
        os._exit(0)
    if server not in readable:
        continue
    conn, _ = server.accept()
    message, fds, _, _ = socket.recv_fds(conn, 1 << 20, 3)
    while not message.endswith(b"\n"):
        message += conn.recv(1 << 20)
    request = json.loads(message)
    if os.fork() == 0:
        server.close()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        keep(conn, request, fds)
    conn.close()
    for fd in fds:
        os.close(fd)
"""


class Server:
    """A fork server: its test process's own (made on first use) or the run's (:func:`share`)."""

    def __init__(self, *, wait: bool = True) -> None:
        self.dir = tempfile.mkdtemp(prefix="la-preload-")
        self.path = os.path.join(self.dir, "socket")
        unset = ("PYTHONWARNINGS", "HYDRA_FULL_ERROR")
        env = {k: v for k, v in os.environ.items() if k not in unset}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SERVER, self.path, ",".join(PRELOAD)],
            stdin=subprocess.PIPE,  # never written: its end tells the server to go
            stdout=subprocess.PIPE,
            env=env,
            start_new_session=True,
        )
        assert self.proc.stdout is not None
        if not wait:  # its clients wait for its socket instead (see _connect)
            return
        ready = self.proc.stdout.readline()
        if ready != b"ready\n":
            raise RuntimeError(f"the preloading server did not start (exit {self.proc.wait()})")

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()
        for name in os.listdir(self.dir):
            os.unlink(os.path.join(self.dir, name))
        os.rmdir(self.dir)


_server: Server | None = None
_server_lock = threading.Lock()


#: The socket of the run's one server, for the processes of pytest-xdist's workers (:func:`share`).
SHARED_ENV = "LIGHTNING_ARGS_TEST_PRELOAD_SOCKET"


def share() -> None:
    """Start a server without waiting for it, and hand its socket to the processes started from
    here on: pytest calls this before pytest-xdist starts its workers, which then share one
    server instead of starting one each (each imports torch and Lightning: about 10 s of CPU)."""
    shared = Server(wait=False)
    atexit.register(shared.close)
    os.environ[SHARED_ENV] = shared.path


def _connect() -> socket.socket:
    """A connection to this process's server: the run's shared one while it starts (its socket
    appears once it has imported everything), or this process's own."""
    shared = os.environ.get(SHARED_ENV)
    path = shared or server().path  # this process's own is listening once server() returns
    deadline = time.monotonic() + 180
    while True:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            conn.connect(path)
            return conn
        except (FileNotFoundError, ConnectionRefusedError):
            conn.close()
            if not shared:
                raise
            if time.monotonic() > deadline:
                raise RuntimeError(f"the shared preloading server ({path}) did not start") from None
            time.sleep(0.1)


def server() -> Server:
    global _server
    with _server_lock:
        if _server is None or _server.proc.poll() is not None:
            _server = Server()
            atexit.register(_server.close)
        return _server


def fresh() -> bool:
    """Whether every process is a fresh interpreter (``LIGHTNING_ARGS_TEST_FRESH=1``)."""
    return os.environ.get(FRESH_ENV, "") not in ("", "0")


class Forked:
    """A process of the server, with the part of :class:`subprocess.Popen` the tests use."""

    def __init__(self, args: list[str], conn: socket.socket) -> None:
        self.args = args
        self.conn = conn
        self.reader = conn.makefile("rb")
        self.pid: int = json.loads(self.reader.readline())["pid"]
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None and select.select([self.conn], [], [], 0)[0]:
            self._finish()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            if not select.select([self.conn], [], [], timeout)[0]:
                raise subprocess.TimeoutExpired(self.args, timeout or 0)
            self._finish()
        assert self.returncode is not None
        return self.returncode

    def _finish(self) -> None:
        line = self.reader.readline()
        self.returncode = json.loads(line)["returncode"] if line else -signal.SIGKILL
        self.reader.close()
        self.conn.close()

    def send_signal(self, signum: int) -> None:
        if self.returncode is None:
            os.kill(self.pid, signum)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def python(
    argv: list[str],
    *,
    cwd: Path | str,
    env: dict[str, str],
    stdin: IO[Any] | int | None = None,
    stdout: IO[Any] | int | None = None,
    stderr: IO[Any] | int | None = None,
    new_session: bool = False,
    nice: int = 0,
) -> Forked | subprocess.Popen[bytes]:
    """Start ``python *argv`` (``argv[0]`` a script, or ``-m`` and a module): forked from the
    server, or a fresh interpreter under ``LIGHTNING_ARGS_TEST_FRESH=1``. Streams are files
    (a pipe's end too), ``None`` (this process's) or :data:`subprocess.DEVNULL`; not
    :data:`subprocess.PIPE`."""
    if fresh():  # subprocess.Popen: seen by tests/marks.py there
        return subprocess.Popen(
            [sys.executable, *argv],
            cwd=cwd,
            env=env,
            stdin=stdin if stdin is not None else subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            start_new_session=new_session,
            preexec_fn=(lambda: os.nice(nice)) if nice else None,
        )
    from tests import marks

    marks.record([sys.executable, *argv])
    module = argv[1] if argv[0] == "-m" else None
    request = {
        "argv": argv,
        "module": module,
        "cwd": str(cwd),
        "env": env,
        "new_session": new_session,
        "nice": nice,
    }
    opened: list[int] = []

    def fd(stream: IO[Any] | int | None, default: int) -> int:
        if stream is None:
            return default
        if stream == subprocess.DEVNULL:
            opened.append(os.open(os.devnull, os.O_RDWR))
            return opened[-1]
        assert not isinstance(stream, int), "pass a file, None or subprocess.DEVNULL"
        stream.flush()
        return stream.fileno()

    fds = [fd(stdin, -1), fd(stdout, 1), fd(stderr, 2)]
    if fds[0] == -1:
        opened.append(os.open(os.devnull, os.O_RDONLY))
        fds[0] = opened[-1]
    conn = _connect()
    try:
        socket.send_fds(conn, [json.dumps(request).encode() + b"\n"], fds)
        return Forked([sys.executable, *argv], conn)
    except BaseException:
        conn.close()
        raise
    finally:
        for opened_fd in opened:
            os.close(opened_fd)


def communicate(
    argv: list[str],
    *,
    cwd: Path | str,
    env: dict[str, str],
    timeout: float | None = None,
    new_session: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Run ``python *argv`` to its end (see :func:`python`); its output as text."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = python(argv, cwd=cwd, env=env, stdout=out, stderr=err, new_session=new_session)
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
        out.seek(0)
        err.seek(0)
        text = [stream.read().decode(errors="replace") for stream in (out, err)]
        return subprocess.CompletedProcess(proc.args, code, *text)
