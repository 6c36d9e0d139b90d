"""The tests' shared helpers: paths, the app in a process, run directories, real services.

Import them from here (``tests.conftest`` re-exports them for older imports). The processes
that run ``train.py`` or ``lightning-args`` are forked from a server that has imported torch,
Lightning and Hydra once (:mod:`tests.preload`): each is still its own process, with its own
arguments, directory, environment and exit status, without the 8-11 s of imports.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import lightning.pytorch as pl
import pytest
import torch

from tests import preload

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "conf"


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Torch on one thread while inside. For trainings of tiny models whose result is checked
    against a threshold: their small ops lose more to thread hand-offs than they gain, badly
    so when pytest-xdist runs a worker per core (a meta-learning test took 330 s on two busy
    workers, 26 s alone on one thread, 43 s alone on two). Not for exact comparisons with
    runs made elsewhere: the thread count changes the float sums."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def quiet_trainer(root: Path, **kwargs: Any) -> pl.Trainer:
    """A Trainer that logs, checkpoints and prints nothing unless a test asks for it."""
    options: dict[str, Any] = {
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "default_root_dir": root,
    }
    return pl.Trainer(**{**options, **kwargs})


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def train_in_process(run: Path, *overrides: str) -> Path:
    """Train the example app (``trainer=debug``, then ``overrides``) into ``run``, in this
    process, and return ``run``."""
    from hydra import compose, initialize_config_dir

    import lightning_args

    lightning_args.register()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=[f"paths.run_dir={run}", "trainer=debug", *overrides])
    lightning_args.train(cfg)
    return run


def app_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """This environment without ``HYDRA_FULL_ERROR``, warnings off, ``env`` on top."""
    full_env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    full_env.update({"PYTHONWARNINGS": "ignore", **(env or {})})
    return full_env


def run_app(
    *args: str,
    cwd: Path,
    script: Path = REPO / "train.py",
    env: dict[str, str] | None = None,
    timeout: float = 300,
) -> Result:
    """Run ``train.py`` (or ``script``) in a process of its own whose outputs land under ``cwd``."""
    done = preload.communicate([str(script), *args], cwd=cwd, env=app_env(env), timeout=timeout)
    return Result(done.returncode, done.stdout, done.stderr)


def cli(
    *args: str, cwd: Path = REPO, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """``lightning-args *args`` (``python -m lightning_args.cli``) in a process of its own."""
    return preload.communicate(
        ["-m", "lightning_args.cli", *args], cwd=cwd, env=app_env(env), timeout=timeout
    )


def run_python(
    *argv: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """``python *argv`` (a script or ``-m module``) to its end, its output as text: what
    ``subprocess.run(capture_output=True, text=True)`` gives, in a process of its own forked
    from the preloading server. ``env`` is its whole environment (default: this one's)."""
    return preload.communicate(
        list(argv), cwd=cwd, env=dict(os.environ if env is None else env), timeout=timeout
    )


def start_app(
    *args: str,
    cwd: Path,
    script: Path = REPO / "train.py",
    module: str | None = None,
    env: dict[str, str] | None = None,
    **streams: Any,
) -> preload.Forked | subprocess.Popen[bytes]:
    """Start ``train.py *args`` (or ``script``, or ``python -m module``) and return at once: a
    Popen-like handle (``pid``, ``poll``, ``wait``, ``send_signal``, ``kill``). ``streams`` are
    :func:`tests.preload.python`'s: stdin/stdout/stderr (files or pipes' ends, not
    ``subprocess.PIPE``), ``new_session`` and ``nice``."""
    argv = ["-m", module, *args] if module else [str(script), *args]
    return preload.python(argv, cwd=cwd, env=app_env(env), **streams)


def read_record(run: Path) -> dict[str, Any]:
    """A run directory's ``run.json``, as plain data."""
    record: dict[str, Any] = json.loads((run / "run.json").read_text())
    return record


def run_dirs(root: Path) -> list[Path]:
    """The run directories under ``root/outputs/runs``."""
    runs = root / "outputs" / "runs"
    return sorted(p for p in runs.iterdir() if p.is_dir()) if runs.exists() else []


@contextmanager
def service(name: str) -> Iterator[None]:
    """A real service of ``scripts/<name>`` (``slurm-cluster``, ``postgres-server``) while inside.

    ``up`` installs Debian's packages if needed (root) and says "already up" when the service
    runs (``.ci/run`` starts both first); one started here is stopped on the way out. No skip:
    a service that does not start fails the test with the script's message.
    """
    script = REPO / "scripts" / name
    up = subprocess.run([script, "up"], capture_output=True, text=True, timeout=600)
    if up.returncode != 0:
        pytest.fail(f"scripts/{name} up failed:\n{up.stderr}", pytrace=False)
    try:
        yield
    finally:
        if "already up" not in up.stderr:
            subprocess.run([script, "down"], capture_output=True, timeout=120)


#: What a script started by :func:`run_together` does once it is ready to start for real.
READY = """
open(os.path.join(os.environ["READY_DIR"], str(os.getpid())), "w").close()
sys.stdin.read(1)  # the start signal, sent to every process at once
"""


def run_together(
    code: str,
    *argvs: list[str],
    cwd: Path,
    env: dict[str, str] | None = None,
    timeout: float = 300,
) -> list[subprocess.CompletedProcess[str]]:
    """Run the script ``code`` once per argument list so that they pass one point together:
    ``code`` runs :data:`READY` there (after its slow imports), which says it is ready and
    waits; once every process is ready, each gets its start signal at once. Their ends, in
    order."""
    with contextlib.ExitStack() as stack:
        ready = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="together-")))
        script = ready / "together.py"
        script.write_text(code)
        (ready / "ready").mkdir()
        streams = [
            (
                stack.enter_context(tempfile.TemporaryFile()),
                stack.enter_context(tempfile.TemporaryFile()),
            )
            for _ in argvs
        ]
        procs: list[preload.Forked | subprocess.Popen[bytes]] = []
        gates: list[IO[bytes]] = []
        try:
            for argv, (out, err) in zip(argvs, streams, strict=True):
                gate_in, gate_out = os.pipe()
                with os.fdopen(gate_in, "rb") as stdin:
                    procs.append(
                        start_app(
                            *argv,
                            cwd=cwd,
                            script=script,
                            env={**(env or {}), "READY_DIR": str(ready / "ready")},
                            stdin=stdin,
                            stdout=out,
                            stderr=err,
                        )
                    )
                gates.append(stack.enter_context(os.fdopen(gate_out, "wb")))
            deadline = time.monotonic() + timeout
            while len(os.listdir(ready / "ready")) < len(procs):
                ended = [p.args for p in procs if p.poll() is not None]
                assert not ended, f"ended before it was ready: {ended}"
                assert time.monotonic() < deadline, "the processes did not get ready in time"
                time.sleep(0.01)
            for gate in gates:
                gate.write(b"g")
            for gate in gates:
                gate.flush()
            codes = [p.wait(timeout=timeout) for p in procs]
        finally:
            for proc in procs:
                proc.kill()
        results = []
        for proc, code_, (out, err) in zip(procs, codes, streams, strict=True):
            text = []
            for stream in (out, err):
                stream.seek(0)
                text.append(stream.read().decode(errors="replace"))
            results.append(subprocess.CompletedProcess(proc.args, code_, *text))
        return results


def tree_digest(root: Path) -> str:
    """One hash of every path under ``root`` and every file's bytes: "nothing here changed"."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        digest.update(str(path.relative_to(root)).encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()
