"""Summarise eval_results.json files: mean +- std over few-shot draws or over dataset splits.

  python -m motion_clip_jax.experiments.summarize WORKDIR [WORKDIR ...]

One workdir: its evaluation sets grouped by dataset (e.g. hmdb51_split1..3 -> hmdb51, mean +- std
over the splits, as paper Tab. 6-7). Several workdirs (e.g. 10 few-shot draws): each set's mean +- std
over the workdirs (paper Tab. 4-5).
"""

from __future__ import annotations

import os
import re
import sys
from collections import defaultdict

from motion_clip_jax import cli_errors
from motion_clip_jax.core import json_file
from motion_clip_jax.experiments import report


def load_results(workdir: str) -> dict:
    if not os.path.isdir(workdir):
        raise FileNotFoundError(f"workdir {workdir} is not a folder")
    path = os.path.join(workdir, "eval_results.json")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no evaluation results (has the run finished?)")
    return json_file.read_json(path)


def summarize(workdirs: list[str], metric: str = "top1") -> dict[str, dict[str, float]]:
    """{group/view: {mean, std (sample, n - 1; None for one value), n, values}} over splits (one workdir) or over
    workdirs."""
    groups: dict[str, list[float]] = defaultdict(list)
    for workdir in workdirs:
        for key, value in load_results(workdir).items():
            if not isinstance(value, dict) or metric not in value:
                continue
            name, _, view = key.partition("/")
            if not isinstance(value[metric], (int, float)):
                raise ValueError(
                    f"{workdir}/eval_results.json: {key}.{metric} is {value[metric]!r}, "
                    "not a number"
                )
            if len(workdirs) == 1:
                name = re.sub(r"_split\d+$", "", name)
            groups[f"{name}/{view}"].append(100 * value[metric])
    summary = {}
    for key, values in sorted(groups.items()):
        mean, std = report.mean_std(values)
        summary[key] = {"mean": mean, "std": std, "n": len(values), "values": values}
    return summary


def format_table(summary: dict[str, dict[str, float]], metric: str = "top1") -> str:
    lines = [f"| set / view | {metric} (%) mean +- std | n |", "| --- | --- | --- |"]
    for key, s in summary.items():
        std = "-" if s["std"] is None else f"{s['std']:.2f}"
        lines.append(f"| {key} | {s['mean']:.2f} +- {std} | {s['n']} |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if not argv or any(a.startswith("-") for a in argv):
        print(__doc__.split("\n\n")[0].strip(), file=sys.stderr)
        bad = [a for a in argv if a.startswith("-")]
        return cli_errors.report(f"unknown option {bad[0]}" if bad else "give at least one WORKDIR")
    try:
        summary = summarize(argv)
    except cli_errors.USER_ERRORS as e:
        return cli_errors.report(e)
    if not summary:
        return cli_errors.report(f"no top1 results in {', '.join(argv)}")
    print(format_table(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
