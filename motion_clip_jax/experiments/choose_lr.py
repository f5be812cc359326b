"""The learning rate of each row of a few-shot table, chosen on held-out training videos.

`experiments.paper table5 --choose_lr 1e-3,3e-3,1e-2` trains every row at every rate of the grid
on draw 0 of each k column, evaluates the run's validation set (eval.validation_per_class
training videos per class that no draw of that seed holds: data/few_shot_draw.py draw_validation),
and gives each (dataset, row) the rate with the best validation top-1 averaged over its columns
(ties: the first rate of the grid). A rate whose run stops at a NaN / Inf loss on any column is
recorded as diverged (DIVERGED_FILE in its workdir) and is not chosen. The test set is evaluated
too (draw 0 at the chosen rate is the table's draw-0 run), but never read here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from motion_clip_jax.experiments import report
from motion_clip_jax.experiments.plan import Run

METRIC = "top1"
SET = "validation/single_view"
DIVERGED_FILE = "diverged.txt"  # written in a selection run's workdir when its loss was NaN / Inf


def parse_grid(text: str) -> list[float]:
    """'1e-3,3e-3' -> [0.001, 0.003]; raises ValueError naming a bad or repeated entry."""
    grid = []
    for part in (p.strip() for p in text.split(",")):
        try:
            value = float(part)
        except ValueError:
            raise ValueError(f"--choose_lr: {part!r} is not a number") from None
        if not value > 0:
            raise ValueError(f"--choose_lr: learning rates must be > 0, got {part}")
        if value in grid:
            raise ValueError(f"--choose_lr: {part} is given twice")
        grid.append(value)
    if len(grid) < 2:
        raise ValueError(f"--choose_lr needs at least two learning rates, got {text!r}")
    return grid


def diverged(run: Run) -> bool:
    return os.path.exists(os.path.join(run.workdir, DIVERGED_FILE))


def mark_diverged(run: Run, message: str) -> None:
    with open(os.path.join(run.workdir, DIVERGED_FILE), "w") as f:
        f.write(message + "\n")


def validation_top1(run: Run) -> float | None:
    """The run's validation top-1 in %, None if it diverged; raises naming the workdir when it
    has neither."""
    if diverged(run):
        return None
    results = report.load(run)
    if results is None or SET not in results:
        raise ValueError(
            f"{run.workdir}/eval_results.json has no {SET}: the config needs "
            "eval.validation_per_class > 0"
        )
    return 100 * results[SET][METRIC]


def choose(
    selection: Mapping[float, Sequence[Run]], labels: Mapping[str, str]
) -> tuple[dict[tuple[str, str], float], list[dict[str, Any]]]:
    """{lr: its selection runs} -> ({(dataset, row): chosen lr}, one record per (dataset, row)).

    A record: dataset, row, row_label, per-lr {column: validation top-1 or None (diverged)} and
    their mean (None when a column diverged), chosen.
    """
    grid = list(selection)
    keys = list(dict.fromkeys((r.dataset, r.row) for runs in selection.values() for r in runs))
    chosen, records = {}, []
    for dataset, row in keys:
        per_lr = {}
        for lr in grid:
            members = [r for r in selection[lr] if (r.dataset, r.row) == (dataset, row)]
            per_lr[lr] = {r.column: validation_top1(r) for r in members}
        means = {
            lr: None if None in v.values() else float(np.mean(list(v.values())))
            for lr, v in per_lr.items()
        }
        eligible = [lr for lr in grid if means[lr] is not None]
        if not eligible:
            raise ValueError(f"--choose_lr: every rate diverged for {row} ({dataset})")
        best = max(eligible, key=lambda lr: (means[lr], -grid.index(lr)))
        chosen[dataset, row] = best
        records.append(
            {
                "dataset": dataset,
                "row": row,
                "row_label": labels.get(row, row),
                "validation": {str(lr): per_lr[lr] for lr in grid},
                "mean": {str(lr): means[lr] for lr in grid},
                "chosen": best,
            }
        )
    return chosen, records


def markdown(records: Sequence[dict[str, Any]], grid: Sequence[float], per_class: str) -> str:
    """The choice as a table: validation top-1 (%) per row and rate, the chosen rate marked."""
    lines = [
        "## Learning rate, chosen per row on held-out training videos",
        "",
        f"Validation top-1 (%) on draw 0, {per_class} held-out training videos per class "
        "(never the test set), mean over the k columns; `*` marks the rate each row trains "
        "with in the table above.",
        "",
        "| Method | " + " | ".join(f"lr {lr:g}" for lr in grid) + " | chosen |",
        "|" + " --- |" * (len(grid) + 2),
    ]
    for record in records:
        cells = []
        for lr in grid:
            mean = record["mean"][str(lr)]
            mark = "*" if lr == record["chosen"] else ""
            cells.append("diverged" if mean is None else f"{mean:.1f}{mark}")
        label = record["row_label"]
        if len({r["dataset"] for r in records}) > 1:
            label = f"{label} ({record['dataset']})"
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {record['chosen']:g} |")
    return "\n".join(lines) + "\n"
