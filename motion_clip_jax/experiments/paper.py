"""Every table and figure of the paper as one command: plan its runs, train the missing ones,
write the table beside the paper's numbers.

  python -m motion_clip_jax.experiments.paper NAME [--dataset D] [--root DIR] [--draws N]
      [--only ROW,...] [--mcb_tokens_row] [--dry_run [--json]] [-- --config.x=y ...]

NAME: fig3a fig3b fig3c fig3d table1 ... table8 (experiments/paper_tables.py says what each holds).
D: hmdb51 | ucf101 | kinetics400 (the table's own, default all of them) or synthetic (the
synthetic motion world, configs/synthetic.py). Each run is `python -m motion_clip_jax.main
--config=... --workdir=<root>/... [overrides]` run in this process, in plan order: a finished run
(eval_results.json holding what the table reads) is skipped, an interrupted one resumes. A run
whose workdir records other training fields is refused (see train/workdir.py). Overrides after
`--` go to every run (e.g. a shorter schedule); one that a row sets itself is refused.
Writes <root>/NAME[_D].md and .json: the table, our mean +- sample std next to the paper's number
and the difference, and every run's command. --dry_run prints the plan and runs nothing (--json: a
JSON list of {table, row, column, dataset, draw, config, overrides, workdir}); table3 trains nothing
and prints parameters and GFLOPs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from motion_clip_jax import cli_errors
from motion_clip_jax.experiments import paper_tables, report
from motion_clip_jax.experiments import plan as plan_lib
from motion_clip_jax.experiments.plan import Run


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(
        prog="python -m motion_clip_jax.experiments.paper", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("name", choices=paper_tables.NAMES, metavar="NAME",
                        help=f"one of {', '.join(paper_tables.NAMES)}")  # fmt: skip
    parser.add_argument("--dataset", choices=plan_lib.DATASETS)
    parser.add_argument("--root", default="workdirs/paper")
    parser.add_argument("--draws", type=int, default=10, help="few-shot draws per cell (paper 10)")
    parser.add_argument("--only", default="", help="comma-separated row keys")
    parser.add_argument("--mcb_tokens_row", action="store_true",
                        help="add the full model with MCB keys = tokens [S; M] (our extension)")  # fmt: skip
    parser.add_argument("--dry_run", action="store_true")
    parser.add_argument("--json", action="store_true", help="with --dry_run: the plan as JSON")
    args = parser.parse_args(argv)
    args.extra = extra
    if args.json and not args.dry_run:
        parser.error("--json goes with --dry_run")
    if args.draws < 1:
        parser.error(f"--draws must be >= 1, got {args.draws}")
    if os.path.exists(args.root) and not os.path.isdir(args.root):
        parser.error(f"--root {args.root} is a file, not a folder")
    bad = [o for o in extra if not o.startswith("--config.")]
    if bad:
        parser.error(f"after --, only --config.x=y overrides go to the runs, got {bad[0]}")
    return args, extra


def main(argv: list[str] | None = None) -> int:
    args, extra = parse_args(sys.argv[1:] if argv is None else argv)
    return cli_errors.run_main(run_table, args, extra)


def run_table(args: argparse.Namespace, extra: list[str]) -> int:
    table = paper_tables.TABLES[args.name]
    only = [key for key in args.only.split(",") if key]
    runs = plan_lib.plan(
        args.name, args.root, args.dataset, args.draws, only, args.mcb_tokens_row, extra
    )
    unique = plan_lib.unique_runs(runs)
    plan_lib.validate_runs(unique)
    if args.dry_run:
        if args.json:
            print(json.dumps([run.plan_entry() for run in unique], indent=1))
        else:
            for run in unique:
                print(report.shell_command(run))
            print(f"{args.name}: {len(unique)} run(s)", file=sys.stderr)
        if table.trains or args.json:
            return 0
    if not table.trains:
        return write_cost_table(args, table)
    for index, run in enumerate(unique):
        if finished(run, runs):
            print(f"[{index + 1}/{len(unique)}] done: {run.workdir}", flush=True)
            continue
        print(
            f"[{index + 1}/{len(unique)}] {args.name} {run.row} / {run.column}"
            f"{f' draw {run.draw}' if run.draw else ''}: {report.shell_command(run)}",
            flush=True,
        )
        train_run(run)
    write_table(args, table, runs, only)
    return 0


def needed_sets(run: Run, runs: list[Run]) -> list[str]:
    """Eval-set prefixes the table reads from `run`'s workdir (over every cell sharing it)."""
    prefixes = {p for r in runs if r.workdir == run.workdir for _, p in r.reads}
    return sorted(prefixes) or ["main/"]


def finished(run: Run, runs: list[Run]) -> bool:
    """eval_results.json holds every set the table reads; a workdir recording other training
    fields is refused before anything runs."""
    check_recorded_config(run)
    results = report.load(run)
    if results is None:
        return False
    return all(any(key.startswith(p) for key in results) for p in needed_sets(run, runs))


def check_recorded_config(run: Run) -> None:
    from motion_clip_jax.train import workdir as workdir_lib

    path = os.path.join(run.workdir, workdir_lib.CONFIG_FILE)
    if not os.path.exists(path):
        return
    recorded = cli_errors.read_json(path)
    config = plan_lib.build_config(run.config, run.overrides)
    changes = workdir_lib.training_changes(recorded, json.loads(config.to_json_best_effort()))
    if changes:
        raise ValueError(
            f"{run.workdir} holds another experiment than {run.table} {run.row} plans "
            f"({'; '.join(changes[:4])}): use another --root"
        )


_STARTED = False


def train_run(run: Run) -> None:
    """`python -m motion_clip_jax.main --config=... --workdir=...`, in this process."""
    global _STARTED
    from motion_clip_jax.train import trainer
    from motion_clip_jax.train.config import validate_config

    config = plan_lib.build_config(run.config, run.overrides)
    validate_config(config)
    if not _STARTED:
        import tensorflow as tf

        tf.config.set_visible_devices([], "GPU")  # tf.data only: JAX owns the accelerators
        trainer.initialize_distributed(config)
        _STARTED = True
    start = time.time()
    trainer.train_and_evaluate(config, run.workdir)
    print(f"    {run.workdir}: {time.time() - start:.0f} s", flush=True)


def output_stem(args: argparse.Namespace) -> str:
    suffix = f"_{args.dataset}" if args.dataset else ""
    return os.path.join(args.root, f"{args.name}{suffix}")


def write_table(
    args: argparse.Namespace, table: paper_tables.Table, runs: list[Run], only: list[str]
) -> None:
    table_cells = report.cells(table, runs, only, args.mcb_tokens_row)
    header = f"`{command_line(args)}`"
    text = report.markdown(table, table_cells, plan_lib.unique_runs(runs), header)
    write_outputs(args, text, {"table": table.name, "title": table.title, "cells": table_cells,
                               "runs": [dict(r.plan_entry(), command=report.shell_command(r))
                                        for r in plan_lib.unique_runs(runs)]})  # fmt: skip
    print(text)


def write_cost_table(args: argparse.Namespace, table: paper_tables.Table) -> int:
    from motion_clip_jax.experiments import cost_table

    rows = []
    planner = plan_lib.Planner(args.root)
    only = [key for key in args.only.split(",") if key]
    for dataset in plan_lib.datasets_of(table, args.dataset):
        names = cost_table.class_names_of(dataset)
        for row in plan_lib.rows_of(table, only):
            config_arg = plan_lib.CONFIGS["closed"][dataset].format(
                variant=row.spec["variant"], split=1
            )
            model_config = planner.base(config_arg).model
            print(f"table3: {row.label} on {dataset} ({len(names)} classes)...", flush=True)
            rows.append(
                {
                    "row": row.key,
                    "row_label": row.label,
                    "dataset": dataset,
                    **cost_table.row_cost(model_config, names),
                }  # fmt: skip
            )
    text = cost_table.markdown(
        table.title, table.note, rows, table.paper, f"`{command_line(args)}`"
    )
    write_outputs(args, text, {"table": table.name, "title": table.title, "rows": rows})
    print(text)
    return 0


def write_outputs(args: argparse.Namespace, text: str, data: dict[str, Any]) -> None:
    os.makedirs(args.root, exist_ok=True)
    stem = output_stem(args)
    with open(stem + ".md", "w") as f:
        f.write(text)
    with open(stem + ".json", "w") as f:
        json.dump(data, f, indent=1)


def command_line(args: argparse.Namespace) -> str:
    parts = ["python -m motion_clip_jax.experiments.paper", args.name]
    for flag in ("dataset", "root", "draws", "only"):
        value = getattr(args, flag)
        if value and not (flag == "draws" and value == 10):
            parts.append(f"--{flag} {value}")
    if args.mcb_tokens_row:
        parts.append("--mcb_tokens_row")
    if args.extra:
        parts += ["--", *args.extra]
    return " ".join(parts)


if __name__ == "__main__":
    sys.exit(main())
