"""Start-up latency of ``train.py --cfg job`` and ``train.py --help``: ours against an eager app
and a bare Hydra app.

"ours" is the repository's ``train.py``. "eager" is the same app with ``import lightning.pytorch``
and ``import torch`` added at the top, as many Lightning+Hydra templates do; it is written to a
temporary directory at run time, next to a copy of ``conf/``, so both resolve the same config
(checked: their outputs must be identical). "bare" is a one-file ``@hydra.main`` app over a
one-key config, the floor of any Hydra app (#13). All run from the repository root with this
interpreter, interleaved. One untimed run of ours and eager also reports whether it imported
torch.

Targets: ours under 1 s for each command, the eager app at least 4x slower; ours at most 1.3x
the bare app (#13). The script prints PASS/FAIL per target and exits 0 either way.

    python benchmarks/cli_latency.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = {"--cfg job": ["--cfg", "job"], "--help": ["--help"]}
EAGER_IMPORTS = "import lightning.pytorch  # noqa: F401\nimport torch  # noqa: F401\n"
# Runs a script as __main__ and reports afterwards whether torch was imported.
PROBE = """
import runpy, sys
sys.argv = sys.argv[1:]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
finally:
    print("imports torch:", "yes" if "torch" in sys.modules else "no", file=sys.stderr)
"""
TARGET_SECONDS = 1.0
TARGET_RATIO = 4.0
TARGET_BARE = 1.3
BARE_APP = """
import hydra


@hydra.main(version_base="1.3", config_path=".", config_name="bare")
def main(cfg):
    print(cfg)


if __name__ == "__main__":
    main()
"""


# Runs a script with this repository's Hydra plugins hidden, as in an environment without
# lightning_args: the editable install's finder is dropped, and the plugin path of the repo.
CLEAN = """
import runpy, sys
root = sys.argv[1]
import hydra_plugins
hydra_plugins.__path__ = [p for p in hydra_plugins.__path__ if p != root + "/hydra_plugins"]
sys.meta_path = [f for f in sys.meta_path if "editable" not in getattr(f, "__module__", "")]
sys.path = [p for p in sys.path if p not in (root, "")]
sys.argv = sys.argv[2:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def write_bare_app(directory: Path) -> tuple[Path, Path]:
    """A one-file Hydra app over a one-key config, and a wrapper that runs a script with
    lightning_args' plugins hidden."""
    (directory / "bare.yaml").write_text("x: 1\n")
    script = directory / "bare.py"
    script.write_text(BARE_APP)
    clean = directory / "clean.py"
    clean.write_text(CLEAN)
    return script, clean


def write_eager_app(directory: Path) -> Path:
    """``train.py`` with lightning and torch imported at module top, beside a copy of conf/."""
    shutil.copytree(ROOT / "conf", directory / "conf")
    script = directory / "train.py"
    script.write_text(EAGER_IMPORTS + (ROOT / "train.py").read_text())
    return script


def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, *argv], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        sys.exit(f"{' '.join(argv)} exited {result.returncode}:\n{result.stderr}")
    return result


def probe(script: Path, args: list[str]) -> tuple[str, str]:
    """Run once, untimed: the output, and whether torch was imported ("yes"/"no")."""
    result = run(["-c", PROBE, str(script), *args])
    return result.stdout, result.stderr.rsplit("imports torch: ", 1)[-1].strip()


def seconds(script: Path, args: list[str], clean: Path | None = None) -> float:
    """``script args`` timed; through ``clean`` (lightning_args' plugins hidden) if given."""
    argv = [str(script), *args] if clean is None else [str(clean), str(ROOT), str(script), *args]
    start = time.perf_counter()
    run(argv)
    return time.perf_counter() - start


def row(*cells: str) -> str:
    widths = (11, 7, 8, 12, 20, 21)
    return cells[0].ljust(widths[0]) + "".join(
        cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of each (default 5)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        apps = {"ours": ROOT / "train.py", "eager": write_eager_app(Path(tmp))}
        bare, clean = write_bare_app(Path(tmp))
        torch_imported: dict[tuple[str, str], str] = {}
        for command, argv in COMMANDS.items():
            outputs = set()
            for app, script in apps.items():
                output, torch_imported[app, command] = probe(script, argv)
                outputs.add(output)
            if len(outputs) != 1:
                sys.exit(f"ours and eager print different output for {command}: check the copy")

        times: dict[tuple[str, str], list[float]] = {key: [] for key in torch_imported}
        times |= {(app, command): [] for app in ("bare", "bare, clean") for command in COMMANDS}
        for _ in range(args.repeats):  # interleaved, so that load changes hit every app
            for app, command in times:
                hidden = clean if app == "bare, clean" else None
                script = bare if app.startswith("bare") else apps[app]
                times[app, command].append(seconds(script, COMMANDS[command], hidden))

    median = {key: statistics.median(values) for key, values in times.items()}
    print(f"python {sys.version.split()[0]}, median of {args.repeats} runs, seconds")
    print(
        row("command", "ours", "eager", "eager/ours", "ours imports torch", "eager imports torch")
    )
    verdicts = []
    for command in COMMANDS:
        ours, eager = median["ours", command], median["eager", command]
        imports = torch_imported["ours", command], torch_imported["eager", command]
        print(row(command, f"{ours:.2f}", f"{eager:.2f}", f"{eager / ours:.1f}x", *imports))
        verdicts += [
            (ours < TARGET_SECONDS, f"ours {command} under {TARGET_SECONDS:.0f} s ({ours:.2f} s)"),
            (
                eager / ours >= TARGET_RATIO,
                f"eager {command} at least {TARGET_RATIO:.0f}x slower ({eager / ours:.1f}x)",
            ),
        ]
    for command in COMMANDS:
        ours, here, floor = (median[a, command] for a in ("ours", "bare", "bare, clean"))
        print(
            f"{command}: bare Hydra app {here:.2f} s here, {floor:.2f} s without lightning_args' "
            f"plugins; ours/bare {ours / here:.2f}x, ours/clean bare {ours / floor:.2f}x"
        )
        verdicts.append(
            (
                ours / floor <= TARGET_BARE,
                f"ours {command} at most {TARGET_BARE}x a bare Hydra app in an environment "
                f"without lightning_args ({ours / floor:.2f}x)",
            )
        )
    for ok, target in verdicts:
        print(f"{'PASS' if ok else 'FAIL'}: {target}")


if __name__ == "__main__":
    main()
