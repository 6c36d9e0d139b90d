"""``--help``, ``--cfg job`` and shell completion never import the heavy libraries."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO

pytestmark = pytest.mark.slow  # every test starts Python processes

HEAVY = ("torch", "lightning", "optuna", "sklearn")

# Runs train.py as __main__ and reports, at exit, which heavy libraries got imported.
PROBE = """
import atexit, runpy, sys
heavy = {heavy!r}
def report():
    found = sorted(h for h in heavy if h in sys.modules)
    print("HEAVY_IMPORTED=" + ",".join(found), file=sys.stderr)
atexit.register(report)
sys.argv = ["train.py", *{args!r}]
runpy.run_path("train.py", run_name="__main__")
"""


@pytest.mark.parametrize(
    ("args", "env", "returncode"),
    [
        pytest.param(["--help"], {}, 0, id="help"),
        pytest.param(["--cfg", "job"], {}, 0, id="cfg-job"),
        pytest.param(["--cfg", "job", "model=cnn", "optimizer=sgd"], {}, 0, id="cfg-job-overrides"),
        pytest.param(["--info", "defaults"], {}, 0, id="info"),
        pytest.param(
            ["--shell-completion", "query=bash"],
            {"COMP_LINE": "python train.py trainer="},
            0,
            id="shell-completion",
        ),
        # Bad input is refused before anything heavy is imported.
        pytest.param(["trainer.max_epoch=3"], {}, 1, id="unknown-key"),
        pytest.param(["trainer.max_epochs=abc"], {}, 1, id="wrong-type"),
        pytest.param(["model=mpl"], {}, 1, id="unknown-option"),
    ],
)
def test_cli_stays_light(args: list[str], env: dict[str, str], returncode: int) -> None:
    code = PROBE.format(heavy=HEAVY, args=args)
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
    )
    assert proc.returncode == returncode, proc.stderr
    assert "HEAVY_IMPORTED=\n" in proc.stderr, proc.stderr


def test_shell_completion_lists_library_groups() -> None:
    proc = subprocess.run(
        [sys.executable, "train.py", "--shell-completion", "query=bash"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COMP_LINE": "python train.py trainer="},
    )
    assert proc.returncode == 0, proc.stderr
    for option in ("trainer=cpu", "trainer=gpu", "trainer=ddp", "trainer=debug"):
        assert option in proc.stdout


def _help_without_and_with_the_speed_up(
    script: str, cwd: Path
) -> tuple[subprocess.CompletedProcess[str], subprocess.CompletedProcess[str]]:
    """``script --help`` with lightning_args' help speed-up turned off, then as it runs."""
    code = (
        "import sys, runpy, lightning_args._compat.hydra as p\n"
        "p.HELP_FLAGS = ()  # turns the speed-up off\n"
        f"sys.argv = [{script!r}, '--help']\n"
        f"runpy.run_path({script!r}, run_name='__main__')\n"
    )
    plain = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=60
    )
    fast = subprocess.run(
        [sys.executable, script, "--help"], cwd=cwd, capture_output=True, text=True, timeout=60
    )
    return plain, fast


def test_fast_help_prints_what_hydra_prints() -> None:
    """``--help`` reuses one config repository; the text must equal Hydra's own."""
    plain, fast = _help_without_and_with_the_speed_up("train.py", REPO)
    assert plain.returncode == fast.returncode == 0
    assert "trainer: cpu, ddp, debug, default, gpu" in fast.stdout
    assert fast.stdout == plain.stdout


BARE_APP = """
import hydra


@hydra.main(version_base="1.3", config_path=".", config_name="bare")
def main(cfg):
    print(cfg)


if __name__ == "__main__":
    main()
"""


def test_any_hydra_apps_help_lists_our_groups_in_hydras_own_text(
    tmp_path: Path,
) -> None:
    """Our search path plugin adds our groups to every Hydra app in the environment, and
    speeds up its ``--help`` (one repository for all the groups it lists) with the same text."""
    (tmp_path / "bare.yaml").write_text("x: 1\n")
    (tmp_path / "bare.py").write_text(BARE_APP)
    plain, fast = _help_without_and_with_the_speed_up("bare.py", tmp_path)
    assert plain.returncode == fast.returncode == 0, fast.stderr
    assert "trainer: cpu, ddp, debug, default, gpu" in fast.stdout  # our groups, listed
    assert fast.stdout == plain.stdout
