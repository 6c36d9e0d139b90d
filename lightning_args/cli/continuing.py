"""``resume``, ``fork`` and ``reproduce``: a run continued in its directory, continued in a new
one with some hyperparameters changed, or trained again and compared."""

from __future__ import annotations

import argparse

from lightning_args.cli.runs import run_at


def cmd_resume(args: argparse.Namespace) -> int:
    from lightning_args.run.resume import resume

    value = resume(run_at(args.run).path, args.overrides)
    print(f"objective: {value}")
    return 0


def cmd_fork(args: argparse.Namespace) -> int:
    from lightning_args.run.resume import fork

    forked = fork(run_at(args.run).path, args.overrides, args.checkpoint, args.out)
    print(f"objective: {forked.value}. New run: {forked.run_dir}")
    return 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    from lightning_args.run.reproduce import reproduce

    result = reproduce(run_at(args.run).path, args.out)
    for warning in result.warnings:
        print(f"warning: {warning}")
    if result.identical:
        print(f"reproduced: every final metric is equal. New run: {result.run_dir}")
        return 0
    print(f"NOT reproduced ({len(result.differences)} metrics differ). New run: {result.run_dir}")
    for key, (old, new) in result.differences.items():
        print(f"  {key}: {old} -> {new}")
    return 1
