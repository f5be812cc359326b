"""The paper's figures as pictures: Fig. 3a-3d and the few-shot curves of Tables 4-5, as PNGs.

  fig3a          bars: one group per row, ours (mean +- std over seeds/splits) beside the paper's
                 bars where it gives numbers (on the synthetic world: its HMDB-51 / UCF-101 bars,
                 for the ordering only, the scales differ)
  fig3b-fig3d    lines over the swept setting (T, H, s), one line per dataset, error bars
  table4/table5  few-shot curves: top-1 against k, one line per row, error bars over the draws;
                 the paper's rows dashed where it gives numbers for the dataset plotted

Input: the cells `experiments/report.py` builds (row, column, mean, std, n) and the table (its
paper numbers). Matplotlib with the Agg backend, so it runs without a display.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from motion_clip_jax.experiments.paper_tables import DATASET_LABELS, Table

BARS = ("fig3a",)
LINES = ("fig3b", "fig3c", "fig3d")
CURVES = ("table4", "table5")
NAMES = BARS + LINES + CURVES


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _rows(cells: Sequence[dict]) -> list[tuple[str, str]]:
    return list(dict.fromkeys((c["row"], c["row_label"]) for c in cells))


def _paper_bars(table: Table, rows: list[tuple[str, str]], column: str) -> dict[str, list]:
    """{series label: [paper value or nan per row]} for a column (synthetic: every real dataset
    the paper gives, labelled by it)."""
    dataset = column.split("/")[0]
    sources = table.datasets if dataset == "synthetic" else (dataset,)
    series = {}
    for real in sources:
        key = column.replace(dataset, real, 1)
        values = [table.paper.get((row, key), np.nan) for row, _ in rows]
        if not all(np.isnan(values)):
            series[f"paper, {DATASET_LABELS[real]}"] = values
    return series


def bar_figure(table: Table, cells: Sequence[dict], path: str) -> str:
    """Grouped bars per row: ours per column (error bars: std), the paper's beside."""
    plt = _pyplot()
    rows = _rows(cells)
    columns = list(dict.fromkeys(c["column"] for c in cells))
    series: dict[str, tuple[list, list]] = {}
    for column in columns:
        by_row = {c["row"]: c for c in cells if c["column"] == column and c["metric"] == "top1"}
        means = [by_row[r]["mean"] if r in by_row and by_row[r]["mean"] is not None else np.nan
                 for r, _ in rows]  # fmt: skip
        stds = [(by_row[r]["std"] or 0.0) if r in by_row else 0.0 for r, _ in rows]
        series[f"ours, {DATASET_LABELS.get(column.split('/')[0], column)}"] = (means, stds)
        for label, values in _paper_bars(table, rows, column).items():
            series.setdefault(label, (values, [0.0] * len(rows)))
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(rows) + 2), 4.5))
    width = 0.8 / len(series)
    x = np.arange(len(rows))
    for i, (label, (means, stds)) in enumerate(series.items()):
        hatch = "//" if label.startswith("paper") else None
        ax.bar(x + (i - (len(series) - 1) / 2) * width, means, width, yerr=stds, capsize=3,
               label=label, hatch=hatch, alpha=0.85)  # fmt: skip
    ax.set_xticks(x, [_wrap(label) for _, label in rows], fontsize=8)
    return _finish(fig, ax, table.title, "top-1 (%)", path)


def line_figure(table: Table, cells: Sequence[dict], path: str) -> str:
    """The swept setting on x (the rows in order), one line per column, error bars: std."""
    plt = _pyplot()
    rows = _rows(cells)
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for column in dict.fromkeys(c["column"] for c in cells):
        by_row = {c["row"]: c for c in cells if c["column"] == column and c["metric"] == "top1"}
        xs = [i for i, (r, _) in enumerate(rows) if r in by_row and by_row[r]["mean"] is not None]
        ax.errorbar(xs, [by_row[rows[i][0]]["mean"] for i in xs],
                    yerr=[by_row[rows[i][0]]["std"] or 0.0 for i in xs], marker="o", capsize=3,
                    label=f"ours, {DATASET_LABELS.get(column.split('/')[0], column)}")  # fmt: skip
        for label, values in _paper_bars(table, rows, column).items():
            ax.plot(range(len(rows)), values, "s--", label=label, alpha=0.7)
    ax.set_xticks(range(len(rows)), [_wrap(label) for _, label in rows], fontsize=8)
    return _finish(fig, ax, table.title, "top-1 (%)", path)


def few_shot_curve(table: Table, cells: Sequence[dict], path: str) -> str:
    """Top-1 against k, one line per row (error bars: std over draws), per dataset."""
    plt = _pyplot()
    rows = _rows(cells)
    datasets = list(dict.fromkeys(c["column"].split("/")[0] for c in cells))
    fig, axes = plt.subplots(1, len(datasets), figsize=(6 * len(datasets), 4.5), squeeze=False)
    for ax, dataset in zip(axes[0], datasets):
        for i, (row, label) in enumerate(rows):
            mine = sorted((_shots(c["column"]), c) for c in cells
                          if c["row"] == row and c["column"].startswith(dataset + "/")
                          and c["mean"] is not None)  # fmt: skip
            if mine:
                ax.errorbar([k for k, _ in mine], [c["mean"] for _, c in mine],
                            yerr=[c["std"] or 0.0 for _, c in mine], marker="o", capsize=3,
                            label=label, color=f"C{i}")  # fmt: skip
            paper = sorted((_shots(col), v) for (r, col), v in table.paper.items()
                           if r == row and col.startswith(dataset + "/"))  # fmt: skip
            if paper:
                ax.plot(*zip(*paper), "--", color=f"C{i}", alpha=0.6, label=f"paper: {label}")
        ax.set_xscale("log", base=2)
        ax.set_xticks([2, 4, 8, 16], ["2", "4", "8", "16"])
        ax.set_xlabel("k (videos per class)")
        _finish(None, ax, DATASET_LABELS.get(dataset, dataset), "top-1 (%)", None)
    fig.suptitle(table.title, fontsize=10)
    return _save(fig, path)


def write_figure(table: Table, cells: Sequence[dict], path: str) -> str | None:
    """The table's figure at `path` (PNG), or None when the table has none."""
    if not any(c["mean"] is not None for c in cells):
        return None
    if table.name in BARS:
        return bar_figure(table, cells, path)
    if table.name in LINES:
        return line_figure(table, cells, path)
    if table.name in CURVES:
        return few_shot_curve(table, cells, path)
    return None


def _shots(column: str) -> int:
    return int(re.search(r"k=(\d+)", column).group(1))


def _wrap(label: str, width: int = 16) -> str:
    words, lines = label.split(), [""]
    for word in words:
        if len(lines[-1]) + len(word) > width and lines[-1]:
            lines.append("")
        lines[-1] = f"{lines[-1]} {word}".strip()
    return "\n".join(lines)


def _finish(fig: Any, ax: Any, title: str, ylabel: str, path: str | None) -> str | None:
    ax.set_title(title, fontsize=10)
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, path) if fig is not None and path else None


def _save(fig: Any, path: str) -> str:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp.png"
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, path)
    return path
