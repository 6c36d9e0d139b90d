"""Start-up latency of ``train.py --cfg job`` and ``train.py --help``: ours against an eager app.

"ours" is the repository's ``train.py``. "eager" is the same app with ``import lightning.pytorch``
and ``import torch`` added at the top, as many Lightning+Hydra templates do; it is written to a
temporary directory at run time, next to a copy of ``conf/``, so both resolve the same config
(checked: their outputs must be identical). Both run from the repository root with this
interpreter. One untimed run of each also reports whether it imported torch.

Targets (from the issue): ours under 1 s for each command, and the eager app at least 4x slower.
The script prints PASS/FAIL per target and exits 0 either way.

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


def seconds(script: Path, args: list[str]) -> float:
    start = time.perf_counter()
    run([str(script), *args])
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
        torch_imported: dict[tuple[str, str], str] = {}
        for command, argv in COMMANDS.items():
            outputs = set()
            for app, script in apps.items():
                output, torch_imported[app, command] = probe(script, argv)
                outputs.add(output)
            if len(outputs) != 1:
                sys.exit(f"ours and eager print different output for {command}: check the copy")

        times: dict[tuple[str, str], list[float]] = {key: [] for key in torch_imported}
        for _ in range(args.repeats):  # interleaved, so that load changes hit both apps
            for app, command in times:
                times[app, command].append(seconds(apps[app], COMMANDS[command]))

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
    for ok, target in verdicts:
        print(f"{'PASS' if ok else 'FAIL'}: {target}")


if __name__ == "__main__":
    main()
