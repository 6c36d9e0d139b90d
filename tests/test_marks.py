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
