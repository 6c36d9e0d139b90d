"""The marks' rule, checked on every test that runs (a pytest plugin, loaded by conftest.py).

An unmarked test is one of the fast ones (``make test-fast``): it runs in the test process. A
test that starts a Python interpreter (``train.py``, ``lightning-args``, a helper script, a
notebook kernel), in its own body or in a fixture it is the first to use, costs seconds: it
must carry ``slow`` (or ``slurm`` / ``postgres``, which imply it). A test that runs ``mount``,
``umount`` or ``unshare`` must carry ``root``. What a test starts is seen where processes are
made (:class:`subprocess.Popen` and :func:`tests.preload.python`), not guessed from its source;
a test that breaks the rule errors at teardown, naming the command and the mark it needs.

Tests that share a real service (``slurm``, ``postgres``) are put in one ``xdist_group`` each.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Generator, Sequence
from pathlib import Path
from typing import Any

import pytest

#: The marks that allow starting Python processes.
SPAWNING = frozenset({"slow", "slurm", "postgres"})
#: Commands that need root, and the mark that says so.
ROOT_COMMANDS = frozenset({"mount", "umount", "unshare"})

#: For each running test (a stack: a test may run pytest inside), ``(needed mark, command)``.
_started: list[list[tuple[str, str]]] = []


def record(argv: Sequence[str] | str) -> None:
    """Note that the running test starts ``argv`` (called where processes are made)."""
    if not _started:
        return
    started = _started[-1]
    args = argv.split() if isinstance(argv, str) else [str(a) for a in argv]
    if not args:
        return
    name = Path(args[0]).name
    command = " ".join(args).split("\n")[0][:160]
    if name in ROOT_COMMANDS:
        started.append(("root", command))
    if name in ROOT_COMMANDS or name in ("sh", "bash", "env"):
        # ``unshare --uts sh -c ... python ...``: what the wrapper runs counts too.
        inner = [a for a in args[1:] if Path(a).name.startswith("python") or a == sys.executable]
        if inner:
            started.append(("slow", command))
    elif name.startswith("python") or args[0] == sys.executable:
        started.append(("slow", command))


_original_init = subprocess.Popen.__init__


def _recording_init(self: subprocess.Popen[Any], args: Any, *rest: Any, **kwargs: Any) -> None:
    record(args if not isinstance(args, os.PathLike) else [os.fspath(args)])
    _original_init(self, args, *rest, **kwargs)


_sessions = 0  # configured pytest sessions in this process (pytester runs one inside)


def pytest_configure(config: pytest.Config) -> None:
    global _sessions
    _sessions += 1
    subprocess.Popen.__init__ = _recording_init  # type: ignore[method-assign]


def pytest_unconfigure(config: pytest.Config) -> None:
    global _sessions
    _sessions -= 1
    if not _sessions:
        subprocess.Popen.__init__ = _original_init  # type: ignore[method-assign]


#: Marks whose tests share one fixed resource: under pytest-xdist (``--dist loadgroup``) each
#: such group runs on one worker, in order. Slurm's two CPUs and its queue are the cluster's; the
#: PostgreSQL server is started (and stopped) by the first worker that needs it.
SHARED = ("slurm", "postgres")


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> Generator[None, None, None]:
    """Each test of a shared service joins that service's ``xdist_group`` (before
    pytest-xdist's own hook reads the groups), then every grouped test gets its ``@group``.

    ``--dist loadgroup`` sends a test to its group's worker by that suffix of its node id, which
    pytest-xdist 3.8 writes into ``item._nodeid``; pytest 9.2 keeps the id in ``item._id``, so
    the suffix was lost and every group silently spread over all workers (seen on 2026-12-02:
    two Slurm tests ran at once on the 2-CPU node and a DDP job waited behind the other's jobs;
    module fixtures were trained once per worker). Where it is missing it is put where pytest
    reads it (checked on pytest 9.2.0, pytest-xdist 3.8.0; ``tests/test_marks.py`` fails when
    a group no longer runs on one worker).
    """
    for item in items:
        names = {m.name for m in item.iter_markers()}
        group = next((name for name in SHARED if name in names), None)
        if group is not None and item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(group))
    # The long tests first, the short ones last (a stable sort: the order is kept within each
    # kind): pytest-xdist hands each worker its next test as it finishes one, so short tests at
    # the end fill the workers evenly instead of one long test running on while the others
    # wait. Every worker collects and sorts alike, as xdist requires.
    items.sort(key=lambda item: not any(item.iter_markers(name) for name in SPAWNING))
    yield
    if not hasattr(config, "workerinput") or not config.getoption("loadgroup", default=False):
        return
    from _pytest.nodeid import coerce_node_id

    for item in items:
        groups = {
            str(m.args[0] if m.args else m.kwargs.get("name", "default"))
            for m in item.iter_markers("xdist_group")
        }
        if groups and item.nodeid.rfind("@") <= item.nodeid.rfind("]"):
            item._id = coerce_node_id(f"{item.nodeid}@{'_'.join(sorted(groups))}")  # type: ignore[attr-defined]


def _missing(item: pytest.Item, started: list[tuple[str, str]]) -> list[str]:
    marks = {m.name for m in item.iter_markers()}
    problems = []
    for needed, command in dict.fromkeys(started):
        if needed == "slow" and not marks & SPAWNING:
            problems.append(f"starts a Python process, so it needs @pytest.mark.slow: {command}")
        if needed == "root" and "root" not in marks:
            problems.append(f"needs root, so it needs @pytest.mark.root: {command}")
    return problems


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None]:
    _started.append([])
    try:
        return (yield)
    finally:
        _started.pop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None]:
    result = yield
    problems = _missing(item, _started[-1] if _started else [])
    if problems:
        pytest.fail(
            f"{item.nodeid} breaks the marks' rule (tests/marks.py):\n  " + "\n  ".join(problems),
            pytrace=False,
        )
    return result
