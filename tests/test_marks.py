"""The marks' rule (tests/marks.py) on a small test file, run by pytest in this process."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

RULED = """
import subprocess, sys

import pytest


def test_unmarked_starts_python():
    subprocess.run([sys.executable, "-c", "pass"], check=True)


@pytest.mark.slow
def test_slow_starts_python():
    subprocess.run([sys.executable, "-c", "pass"], check=True)


def test_unmarked_runs_git():
    subprocess.run(["git", "--version"], capture_output=True, check=True)


def test_unmarked_runs_unshare():
    subprocess.run(["unshare", "--help"], capture_output=True)


@pytest.mark.root
def test_root_runs_unshare():
    subprocess.run(["unshare", "--help"], capture_output=True)


@pytest.fixture(scope="module")
def trained():
    subprocess.run([sys.executable, "-c", "pass"], check=True)


def test_unmarked_first_user_of_a_fixture_that_starts_python(trained):
    pass


def test_unmarked_later_user_of_that_fixture(trained):
    pass
"""


def test_unmarked_tests_that_start_processes_error_naming_the_mark(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_ruled=RULED)
    result = pytester.runpytest_inprocess(
        "-p",
        "tests.marks",
        "-p",
        "no:cacheprovider",
        "-o",
        "addopts=",
        "--strict-markers",
        "-o",
        "markers=slow\nroot",
    )
    result.assert_outcomes(passed=7, errors=3)
    errors = {line.split(" - ")[0] for line in result.outlines if line.startswith("ERROR ")}
    assert errors == {
        "ERROR test_ruled.py::test_unmarked_starts_python",
        "ERROR test_ruled.py::test_unmarked_runs_unshare",
        "ERROR test_ruled.py::test_unmarked_first_user_of_a_fixture_that_starts_python",
    }
    output = result.stdout.str()
    assert "starts a Python process, so it needs @pytest.mark.slow" in output
    assert "needs root, so it needs @pytest.mark.root: unshare --help" in output


GROUPED = """
import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.slurm  # a shared service: its tests join the group "slurm"


@pytest.mark.parametrize("n", range(6))
def test_records_its_worker(n):
    Path(os.environ["WORKERS_SEEN"], str(n)).write_text(os.environ["PYTEST_XDIST_WORKER"])
"""


@pytest.mark.slow  # pytest in a subprocess, with two xdist workers
@pytest.mark.parametrize("fixed", [True, False], ids=["grouped", "control-without-the-suffix"])
def test_a_group_runs_on_one_worker(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, fixed: bool
) -> None:
    """The tests of a shared service run on one worker (``--dist loadgroup``); the control
    runs the same file with the node-id suffix of tests/marks.py undone: they spread."""
    from tests.helpers import REPO

    seen = pytester.mkdir("seen")
    monkeypatch.setenv("WORKERS_SEEN", str(seen))
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    pytester.makepyfile(test_grouped=GROUPED)
    if not fixed:  # the control: a plugin after ours drops every "@group" again
        pytester.makepyfile(
            undo="""
import pytest
from _pytest.nodeid import coerce_node_id

@pytest.hookimpl(wrapper=True)  # loaded after tests.marks: around it, so after it
def pytest_collection_modifyitems(items):
    yield
    for item in items:
        item._id = coerce_node_id(item.nodeid.split("@")[0])
"""
        )
    plugins = ["-p", "tests.marks", *(["-p", "undo"] if not fixed else [])]
    result = pytester.runpytest_subprocess(
        *plugins,
        "-p",
        "no:cacheprovider",
        "-o",
        "addopts=",
        "-o",
        "markers=slurm",
        "-n",
        "2",
        "--dist",
        "loadgroup",
    )
    result.assert_outcomes(passed=6)
    workers = {p.read_text() for p in seen.iterdir()}
    assert len(workers) == (1 if fixed else 2), workers
