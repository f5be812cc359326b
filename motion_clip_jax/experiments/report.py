"""A paper table from its runs' eval_results.json: mean +- sample std per cell, beside the paper.

Every cell reads the 4 x 3-view result (`<set>/multiview`) when the run evaluated it, else the
single view, and says which. Multi-view cells are the paper's aggregation (§4.1: the mean over
the views of each view's accuracy, `mean_over_views`); a record written before both were kept
holds only the summed per-view scores, and its cells say "multiview-summed". The std is the sample
std (n - 1); n = 1 has none.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence
from typing import Any

import numpy as np

from motion_clip_jax.core import json_file
from motion_clip_jax.experiments.paper_tables import DATASET_LABELS, Table
from motion_clip_jax.experiments.plan import Run, rows_of
from motion_clip_jax.experiments.settings import held_fixed

VIEWS = ("multiview", "single_view")
CHECK = "x"


def mean_std(values: Sequence[float]) -> tuple[float, float | None]:
    """(mean, sample std with n - 1; None for one value)."""
    array = np.asarray(values, np.float64)
    return float(array.mean()), float(array.std(ddof=1)) if len(array) > 1 else None


def _view(results: dict[str, Any], name: str) -> str | None:
    return next((v for v in VIEWS if f"{name}/{v}" in results), None)


def _value(results: dict[str, Any], name: str, view: str, metric: str) -> tuple[float, str]:
    """(100 * metric, view label) of one evaluation; multi-view: the paper's aggregation."""
    entry = results[f"{name}/{view}"]
    if view != "multiview":
        return 100 * entry[metric], view
    if "mean_over_views" in entry:
        return 100 * entry["mean_over_views"][metric], view
    return 100 * entry[metric], "multiview-summed"  # an older record: summed scores only


def run_values(run: Run, results: dict[str, Any], metric: str) -> dict[str, Any]:
    """The values a run gives its cell: the main set, or every target split (zero-shot)."""
    if not run.reads:
        view = _view(results, "main")
        if view is None:
            raise ValueError(f"{run.workdir}/eval_results.json has no main evaluation")
        value, label = _value(results, "main", view, metric)
        return {"values": [value], "view": label}
    values, views = [], set()
    for _, prefix in run.reads:
        names = sorted({k.split("/")[0] for k in results if k.startswith(prefix)})
        if not names:
            raise ValueError(f"{run.workdir}/eval_results.json has no {prefix}* evaluation")
        for name in names:
            value, label = _value(results, name, _view(results, name), metric)
            views.add(label)
            values.append(value)
    return {"values": values, "view": "/".join(sorted(views))}


def load(run: Run) -> dict[str, Any] | None:
    path = os.path.join(run.workdir, "eval_results.json")
    return json_file.read_json(path) if os.path.exists(path) else None


def _paper_value(table: Table, row: str, column: str, metric: str, dataset: str) -> str:
    key = column if len(table.metrics) == 1 else f"{column}/{metric}"
    if dataset != "synthetic":
        value = table.paper.get((row, key))
        return "-" if value is None else f"{value:.1f}"
    # The synthetic world is compared in shape only: the paper's numbers for its datasets.
    found = []
    for real in table.datasets:
        value = table.paper.get((row, key.replace("synthetic", real, 1)))
        if value is not None:
            found.append(f"{DATASET_LABELS[real]} {value:.1f}")
    return " / ".join(found) or "-"


def cells(table: Table, runs: Sequence[Run], only: Sequence[str], mcb_forms: bool) -> list[dict]:
    """Every (row, column, metric) cell of the planned runs, with our values and the paper's."""
    out = []
    rows = rows_of(table, only, mcb_forms)
    columns: list[tuple[str, str, str]] = []  # (column key, label, dataset)
    for run in runs:
        if not any(c[0] == run.column for c in columns):
            label = next(c.label for c in table.columns(run.dataset) if c.key == run.column)
            columns.append((run.column, label, run.dataset))
    for row in rows:
        for column, label, dataset in columns:
            members = [r for r in runs if r.row == row.key and r.column == column]
            if not members:
                continue
            for metric in table.metrics:
                values, views, missing = [], set(), 0
                for run in members:
                    results = load(run)
                    if results is None:
                        missing += 1
                        continue
                    got = run_values(run, results, metric)
                    values += got["values"]
                    views.add(got["view"])
                mean, std = mean_std(values) if values else (None, None)
                paper = _paper_value(table, row.key, column, metric, dataset)
                diff = None
                if mean is not None and dataset != "synthetic" and paper != "-":
                    diff = mean - float(paper)
                out.append({
                    "row": row.key, "row_label": row.label, "marks": row.marks, "column": column,
                    "column_label": label, "metric": metric, "values": values,
                    "n": len(values), "mean": mean, "std": std, "view": "/".join(sorted(views)),
                    "paper": paper, "diff": diff, "missing_runs": missing,
                    "workdirs": [r.workdir for r in members],
                })  # fmt: skip
    return out


def pair_label(name_a: str, name_b: str) -> str:
    """'moving left', 'moving right' -> 'left / right' (the leading words they share dropped)."""
    a, b = name_a.split(), name_b.split()
    while len(a) > 1 and len(b) > 1 and a[0] == b[0]:
        a, b = a[1:], b[1:]
    return f"{' '.join(a)} / {' '.join(b)}"


def pair_rows(table_cells: list[dict], runs: Sequence[Run]) -> list[dict]:
    """The synthetic world's within-pair accuracy (`main/single_view` `pair_accuracy`: choosing
    between the two classes of a video's order pair, chance 50%) per (row, column) of a table:
    {row, row_label, column, column_label, pairs: {label: {mean, std, n}}} in %, the runs' mean
    over pairs last as 'mean'. Zero-shot cells (they read other sets) have none."""
    out = []
    for row, row_label, column, column_label in dict.fromkeys(
        (c["row"], c["row_label"], c["column"], c["column_label"]) for c in table_cells
    ):
        values: dict[str, list[float]] = {}
        for run in runs:
            if (run.row, run.column) != (row, column) or run.dataset != "synthetic" or run.reads:
                continue
            pairs = ((load(run) or {}).get("main/single_view") or {}).get("pair_accuracy")
            if not pairs:
                continue
            info = json_file.read_json(os.path.join(run.workdir, "run_info.json"))
            names = info["class_names"]
            for key in [k for k in pairs if k != "mean"] + ["mean"]:
                label = (
                    key if key == "mean" else pair_label(*(names[int(i)] for i in key.split("-")))
                )
                values.setdefault(label, []).append(100 * pairs[key])
        if values:
            stats = {}
            for label, got in values.items():
                mean, std = mean_std(got)
                stats[label] = {"mean": mean, "std": std, "n": len(got)}
            out.append({"row": row, "row_label": row_label, "column": column,
                        "column_label": column_label, "pairs": stats})  # fmt: skip
    return out


def pair_markdown(rows: list[dict]) -> str:
    """The within-pair accuracy section of `pair_rows`."""
    labels = list(dict.fromkeys(label for r in rows for label in r["pairs"]))
    head = ["Method", "Column", *(("mean over pairs" if x == "mean" else x) for x in labels)]
    lines = ["## Within-pair accuracy (synthetic world)", "",
             "Choosing between the two classes of the video's order pair (the same frames in "
             "opposite order; chance 50%), on the single view; in %, mean +- sample std over the "
             "runs.", "", "| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]  # fmt: skip
    for r in rows:
        cells = []
        for label in labels:
            stat = r["pairs"].get(label)
            std = "" if stat is None or stat["std"] is None else f" +- {stat['std']:.1f}"
            cells.append("-" if stat is None else f"{stat['mean']:.1f}{std}")
        lines.append("| " + " | ".join([r["row_label"], r["column_label"], *cells]) + " |")
    return "\n".join(lines) + "\n"


def _cell_text(cell: dict) -> str:
    if cell["mean"] is None:
        return f"not run (paper {cell['paper']})"
    std = "" if cell["std"] is None else f" +- {cell['std']:.1f}"
    text = f"{cell['mean']:.1f}{std} (n={cell['n']})"
    if cell["missing_runs"]:
        text += f", {cell['missing_runs']} run(s) missing"
    text += f"; paper {cell['paper']}"
    if cell["diff"] is not None:
        text += f", {cell['diff']:+.1f}"
    return text


def markdown(
    table: Table, table_cells: list[dict], runs: Sequence[Run], header: str, extra: str = ""
) -> str:
    """The table in the paper's layout (rows x columns), `extra` sections, then every run's
    command."""
    columns = list(
        dict.fromkeys((c["column"], c["column_label"], c["metric"]) for c in table_cells)
    )
    marks = any(r.marks for r in table.rows)
    head = ["Method", *(["MMB", "MAP", "MCB"] if marks else [])]
    for _, label, metric in columns:
        head.append(label if len(table.metrics) == 1 else f"{label} {metric}")
    lines = [f"# {table.title}", "", header, ""]
    fixed = held_fixed(runs)
    if fixed:
        lines += [fixed, ""]
    lines += ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    row_keys = list(dict.fromkeys(c["row"] for c in table_cells))
    for key in row_keys:
        mine = {(c["column"], c["metric"]): c for c in table_cells if c["row"] == key}
        first = next(c for c in table_cells if c["row"] == key)
        line = [first["row_label"]]
        if marks:
            ticks = first["marks"] or (False, False, False)
            line += [CHECK if t else "" for t in ticks]
        for column, _, metric in columns:
            cell = mine.get((column, metric))
            line.append(_cell_text(cell) if cell else "")
        lines.append("| " + " | ".join(line) + " |")
    views = sorted({c["view"] for c in table_cells if c["view"]})
    lines += ["", f"Ours: top-1 / top-5 in %, mean +- sample std (n - 1) over the runs "
              f"(few-shot draws, splits, or target splits); view: {', '.join(views) or '-'}. "
              "The number after the paper's is ours minus the paper's."]  # fmt: skip
    if table.note:
        lines += ["", table.note]
    if extra:
        lines += ["", extra.rstrip("\n")]
    lines += ["", "## Runs", ""]
    for run in runs:
        done = "done" if load(run) is not None else "not run"
        lines.append(f"- {run.row} / {run.column} ({done}): `{shell_command(run)}`")
    return "\n".join(lines) + "\n"


def shell_command(run: Run) -> str:
    return " ".join(shlex.quote(part) for part in run.command())
