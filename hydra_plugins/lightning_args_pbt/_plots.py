"""A PBT sweep's pictures: the population's scores over its epochs, and its lineage (which
member went on from which checkpoint), from the journal's intervals alone."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from hydra_plugins.lightning_args_pbt._population import Interval

SCORES = "pbt_scores.png"
LINEAGE = "pbt_lineage.png"


def write_plots(intervals: Sequence[Interval], folder: Path, *, metric: str) -> list[Path]:
    """``pbt_scores.png`` and ``pbt_lineage.png`` in ``folder``; the paths written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    members = sorted({i.member for i in intervals})
    by_run = {i.run: i for i in intervals}
    colours = {m: plt.get_cmap("tab10")(n % 10) for n, m in enumerate(members)}

    figure, axes = plt.subplots(figsize=(7, 4.5))
    for member in members:
        own = sorted((i for i in intervals if i.member == member), key=lambda i: i.interval)
        points = [(i.epochs, i.score) for i in own if i.score is not None]
        axes.plot([e for e, _ in points], [s for _, s in points], marker="o", markersize=3,
                  color=colours[member], label=f"member {member}")  # fmt: skip
        for i in own:  # an exploit: a jump from the copied member's checkpoint
            parent = by_run.get(i.parent or "")
            if i.exploited is None or parent is None:
                continue
            if parent.score is not None and i.score is not None:
                axes.plot([parent.epochs, i.epochs], [parent.score, i.score], linestyle=":",
                          color=colours[member], linewidth=1)  # fmt: skip
    axes.set_xlabel("epoch")
    axes.set_ylabel(metric)
    axes.set_title("Population over time (dotted: went on from another member)")
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    figure.tight_layout()
    scores = folder / SCORES
    figure.savefig(scores, dpi=120)
    plt.close(figure)

    figure, axes = plt.subplots(figsize=(7, 0.6 * len(members) + 1.5))
    for i in intervals:
        axes.plot([i.interval], [i.member], marker="o", color=colours[i.member])
        parent = by_run.get(i.parent or "")
        if parent is not None:
            copied = i.exploited is not None
            axes.annotate(
                "", xy=(i.interval, i.member), xytext=(parent.interval, parent.member),
                arrowprops={"arrowstyle": "->", "color": "tab:red" if copied else "0.6",
                            "linewidth": 1.4 if copied else 0.8},
            )  # fmt: skip
    axes.set_xlabel("interval")
    axes.set_ylabel("member")
    axes.set_yticks(members)
    axes.set_xticks(sorted({i.interval for i in intervals}))
    axes.set_title("Lineage (red: copied a better member's checkpoint)")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    lineage = folder / LINEAGE
    figure.savefig(lineage, dpi=120)
    plt.close(figure)
    return [scores, lineage]
