"""Every table and figure of the paper as one command: plan its runs, train the missing ones,
write the table beside the paper's numbers.

  python -m motion_clip_jax.experiments.paper NAME [--dataset D] [--root DIR] [--draws N]
      [--seeds N] [--only ROW,...] [--mcb_forms] [--choose_lr LR,LR,...] [--dry_run [--json]]
      [-- --config.x=y ...]

NAME: fig3a fig3b fig3c fig3d table1 ... table8 (experiments/paper_tables.py says what each holds).
D: hmdb51 | ucf101 | kinetics400 (the table's own, default all of them) or synthetic (the
synthetic motion world, configs/synthetic.py). Each run is `python -m motion_clip_jax.main
--config=... --workdir=<root>/... [overrides]` run in this process, in plan order: a finished run
(eval_results.json holding what the table reads) is skipped, an interrupted one resumes. A run
whose workdir records other training fields is refused (see train/workdir.py). Overrides after
`--` go to every run (e.g. a shorter schedule); one that a row sets itself is refused.
Writes <root>/NAME[_D].md and .json: the table, our mean +- sample std next to the paper's number
and the difference, and every run's command; Fig. 3a-3d and Tables 4-5 also NAME[_D].png
(experiments/figures.py). --dry_run prints the plan and runs nothing (--json: a
JSON list of {table, row, column, dataset, draw, config, overrides, workdir}); table3 trains nothing
and prints parameters and GFLOPs. --choose_lr (few-shot tables): each row's learning rate is first
chosen from the grid on held-out training videos (experiments/choose_lr.py), then every draw
trains at it; the choice is written beside the table. --feature_cache DIR (default
<root>/feature_cache, 'none': off) is the training feature cache every run shares
(config.train.feature_cache_dir, train/train_features.py): a training clip's frozen image
features are computed by the first run that trains on it and read by the others; the table's
JSON sums the clips through the tower and read from / written to it ("image_tower").
--seeds N (closed-set and zero-shot tables): every cell trains with run seeds 0..N-1 and reports
mean +- std. --mcb_forms (tables with MCB rows): each MCB row is added in every other MCB form of
experiments/paper_tables.py MCB_FORMS (SMA keys V or [S; M], projections, input norm, residual
gate; docs/model.md), row key `<row>-<form>`; pick some with --only (e.g. --only
baseline_mcb,baseline_mcb-pooled_ungated).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from motion_clip_jax import cli_errors
from motion_clip_jax.core import json_file
from motion_clip_jax.data.few_shot_draw import PAPER_DRAWS
from motion_clip_jax.experiments import choose_lr, figures, paper_tables, report
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
    parser.add_argument("--draws", type=int, default=PAPER_DRAWS,
                        help=f"few-shot draws per cell (paper {PAPER_DRAWS})")  # fmt: skip
    parser.add_argument("--only", default="", help="comma-separated row keys")
    parser.add_argument("--seeds", type=int, default=1,
                        help="closed-set / zero-shot cells: runs with seeds 0..N-1 per cell")  # fmt: skip
    parser.add_argument("--mcb_forms", action="store_true",
                        help="add every MCB row in the other MCB forms (paper_tables.MCB_FORMS)")  # fmt: skip
    parser.add_argument("--choose_lr", default="", metavar="LR,LR,...",
                        help="few-shot tables: choose each row's learning rate from this grid on "
                        "the runs' validation set (eval.validation_per_class)")  # fmt: skip
    parser.add_argument("--compile_cache", default="", metavar="DIR",
                        help="JAX's persistent compilation cache, shared by the runs (default "
                        "<root>/compile_cache; 'none': off)")  # fmt: skip
    parser.add_argument("--feature_cache", default="", metavar="DIR",
                        help="the training feature cache shared by the runs: each training "
                        "clip's frozen image features computed once (default "
                        "<root>/feature_cache; 'none': off)")  # fmt: skip
    parser.add_argument("--dry_run", action="store_true")
    parser.add_argument("--json", action="store_true", help="with --dry_run: the plan as JSON")
    args = parser.parse_args(argv)
    args.extra = extra
    if args.json and not args.dry_run:
        parser.error("--json goes with --dry_run")
    if args.draws < 1:
        parser.error(f"--draws must be >= 1, got {args.draws}")
    if args.seeds < 1:
        parser.error(f"--seeds must be >= 1, got {args.seeds}")
    if args.seeds > 1 and paper_tables.TABLES[args.name].draws:
        parser.error(
            "--seeds applies to closed-set and zero-shot tables (few-shot draws seed runs)"
        )
    if args.seeds > 1 and any(o.startswith("--config.seed=") for o in extra):
        parser.error("--seeds sets config.seed: leave it out of the overrides")
    if os.path.exists(args.root) and not os.path.isdir(args.root):
        parser.error(f"--root {args.root} is a file, not a folder")
    bad = [o for o in extra if not o.startswith("--config.")]
    if bad:
        parser.error(f"after --, only --config.x=y overrides go to the runs, got {bad[0]}")
    if args.choose_lr:
        if not paper_tables.TABLES[args.name].draws:
            few_shot = [n for n, t in paper_tables.TABLES.items() if t.draws]
            parser.error(f"--choose_lr applies to the few-shot tables ({', '.join(few_shot)})")
        if any(o.startswith("--config.optim.learning_rate=") for o in extra):
            parser.error("--choose_lr chooses optim.learning_rate: leave it out of the overrides")
    return args, extra


def main(argv: list[str] | None = None) -> int:
    args, extra = parse_args(sys.argv[1:] if argv is None else argv)
    return cli_errors.run_main(run_table, args, extra)


def run_table(args: argparse.Namespace, extra: list[str]) -> int:
    table = paper_tables.TABLES[args.name]
    only = [key for key in args.only.split(",") if key]
    plan = functools.partial(
        plan_lib.plan, args.name, args.root, args.dataset, only=only,
        mcb_forms=args.mcb_forms, extra_overrides=extra, seeds=args.seeds,
    )  # fmt: skip
    lr_choice = None
    if not args.dry_run and table.trains:
        use_compile_cache(args)
    train = functools.partial(train_missing, feature_cache=feature_cache_dir(args))
    if args.choose_lr:
        learning_rates, lr_choice = choose_learning_rates(args, plan, train)
        if learning_rates is None:  # --dry_run: the selection runs were printed
            return 0
        runs = plan(draws=args.draws, learning_rates=learning_rates)
    else:
        runs = plan(draws=args.draws)
    unique = plan_lib.unique_runs(runs)
    plan_lib.validate_runs(unique)
    if args.dry_run:
        print_plan(args, unique)
        if table.trains or args.json:
            return 0
    if not table.trains:
        return write_cost_table(args, table)
    train(args.name, unique, runs)
    write_table(args, table, runs, only, lr_choice)
    return 0


def use_compile_cache(args: argparse.Namespace) -> None:
    """Runs that differ only in seed or draw compile the same programs: the persistent cache
    compiles them once per table (a table of small runs is mostly compile time otherwise)."""
    import jax

    if args.compile_cache == "none":
        return
    directory = os.path.abspath(args.compile_cache or os.path.join(args.root, "compile_cache"))
    jax.config.update("jax_compilation_cache_dir", directory)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def feature_cache_dir(args: argparse.Namespace) -> str:
    """The training feature cache the runs share: like the compile cache, one per --root by
    default; '' when off (--feature_cache none)."""
    if args.feature_cache == "none":
        return ""
    return os.path.abspath(args.feature_cache or os.path.join(args.root, "feature_cache"))


def print_plan(args: argparse.Namespace, unique: list[Run]) -> None:
    if args.json:
        print(json.dumps([run.plan_entry() for run in unique], indent=1))
        return
    for run in unique:
        print(report.shell_command(run))
    print(f"{args.name}: {len(unique)} run(s)", file=sys.stderr)


def train_missing(
    name: str,
    unique: list[Run],
    runs: list[Run],
    phase: str = "",
    selection: bool = False,
    feature_cache: str = "",
) -> None:
    """Trains (or resumes, or evaluates again) every run that has not got what the table reads.

    selection: a run whose loss turns NaN / Inf is recorded as diverged (choose_lr) and the
    others go on; elsewhere that stops the table."""
    from motion_clip_jax.train.trainer import NonFiniteLossError

    for index, run in enumerate(unique):
        if finished(run, runs) or (selection and choose_lr.diverged(run)):
            print(f"[{phase}{index + 1}/{len(unique)}] done: {run.workdir}", flush=True)
            continue
        print(
            f"[{phase}{index + 1}/{len(unique)}] {name} {run.row} / {run.column}"
            f"{f' draw {run.draw}' if run.draw else ''}: {report.shell_command(run)}",
            flush=True,
        )
        try:
            train_run(run, feature_cache)
        except NonFiniteLossError as e:
            if not selection:
                raise
            choose_lr.mark_diverged(run, str(e))
            print(f"    {run.workdir}: diverged, this rate is not chosen ({e})", flush=True)


def choose_learning_rates(
    args: argparse.Namespace, plan: Callable[..., list[Run]], train: Callable[..., None]
) -> tuple[dict[tuple[str, str], float] | None, dict[str, Any] | None]:
    """Trains every row at every rate of --choose_lr on draw 0 and chooses, per (dataset, row),
    the rate of the best validation top-1 -> ({(dataset, row): lr}, the record of the choice).
    With --dry_run: prints the selection runs and returns (None, None)."""
    grid = choose_lr.parse_grid(args.choose_lr)
    keys = {(r.dataset, r.row) for r in plan(draws=1)}
    selection = {lr: plan(draws=1, learning_rates=dict.fromkeys(keys, lr)) for lr in grid}
    every = [run for runs in selection.values() for run in runs]
    unique = plan_lib.unique_runs(every)
    plan_lib.validate_runs(unique)
    per_class = set()
    for run in unique:
        value = plan_lib.build_config(run.config, run.overrides).eval.validation_per_class
        if not value:
            raise ValueError(
                f"--choose_lr: {run.config} evaluates no validation set; add "
                "-- --config.eval.validation_per_class=V (held-out training videos per class)"
            )
        per_class.add(value)
    if args.dry_run:
        print_plan(args, unique)
        if not args.json:
            print(
                f"{args.name}: then {args.draws} draw(s) of every row at its chosen rate (draw "
                "0 is the selection run)",
                file=sys.stderr,
            )
        return None, None
    train(args.name, unique, every, phase="lr ", selection=True)
    table_rows = plan_lib.rows_of(paper_tables.TABLES[args.name], (), args.mcb_forms)
    labels = {row.key: row.label for row in table_rows}
    chosen, records = choose_lr.choose(selection, labels)
    for record in records:
        print(
            f"{args.name}: {record['row']} ({record['dataset']}) learning rate {record['chosen']:g}"
            f" (validation top-1 per rate: {record['mean']})",
            flush=True,
        )
    choice = {"grid": grid, "set": choose_lr.SET, "metric": choose_lr.METRIC, "draw": 0,
              "validation_per_class": sorted(per_class), "rows": records}  # fmt: skip
    return chosen, choice


def needed_sets(run: Run, runs: list[Run]) -> list[str]:
    """Eval-set prefixes the table reads from `run`'s workdir (over every cell sharing it)."""
    sharing = [r for r in runs if r.workdir == run.workdir]
    prefixes = {p for r in sharing for _, p in r.reads} or {"main/"}
    if any(r.validation for r in sharing):
        prefixes |= {"main/", "validation/"}
    return sorted(prefixes)


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
    recorded = json_file.read_json(path)
    config = plan_lib.build_config(run.config, run.overrides)
    changes = workdir_lib.training_changes(recorded, json.loads(config.to_json_best_effort()))
    if changes:
        raise ValueError(
            f"{run.workdir} holds another experiment than {run.table} {run.row} plans "
            f"({'; '.join(changes[:4])}): use another --root"
        )


def train_run(run: Run, feature_cache: str = "") -> None:
    """`python -m motion_clip_jax.main --config=... --workdir=...`, in this process; the
    training feature cache `feature_cache` unless the overrides name one."""
    from motion_clip_jax.train import launch

    start = time.time()
    config = plan_lib.build_config(run.config, run.overrides)
    if feature_cache and not config.train.feature_cache_dir:
        config.train.feature_cache_dir = feature_cache
    results = launch.start(config, run.workdir)
    counts = results.get("train_feature_cache")
    cache = f", feature cache: read {counts['read']}, wrote {counts['written']}" if counts else ""
    print(
        f"    {run.workdir}: {time.time() - start:.0f} s, "
        f"{results['train_tower_clips']} clips through the image tower{cache}",
        flush=True,
    )


def output_stem(args: argparse.Namespace) -> str:
    suffix = f"_{args.dataset}" if args.dataset else ""
    return os.path.join(args.root, f"{args.name}{suffix}")


def write_table(
    args: argparse.Namespace,
    table: paper_tables.Table,
    runs: list[Run],
    only: list[str],
    lr_choice: dict[str, Any] | None = None,
) -> None:
    table_cells = report.cells(table, runs, only, args.mcb_forms)
    header = f"`{command_line(args)}`"
    data = {"table": table.name, "title": table.title, "cells": table_cells,
            "runs": [dict(r.plan_entry(), command=report.shell_command(r))
                     for r in plan_lib.unique_runs(runs)],
            "image_tower": tower_totals(plan_lib.unique_runs(runs))}  # fmt: skip
    sections = []
    if lr_choice is not None:
        per_class = ", ".join(map(str, lr_choice["validation_per_class"]))
        sections.append(choose_lr.markdown(lr_choice["rows"], lr_choice["grid"], per_class))
        data["learning_rate_choice"] = lr_choice
    figure = figures.write_figure(table, table_cells, output_stem(args) + ".png")
    if figure:
        sections.insert(0, f"![{table.title}]({os.path.basename(figure)})\n")
    pairs = report.pair_rows(table_cells, runs)
    if pairs:
        sections.append(report.pair_markdown(pairs))
        data["pair_accuracy"] = pairs
    extra = "\n".join(sections)
    text = report.markdown(table, table_cells, plan_lib.unique_runs(runs), header, extra)
    write_outputs(args, text, data)
    print(text)


def tower_totals(unique: list[Run]) -> dict[str, int]:
    """Training clips through the image tower, and read from / written to the training feature
    cache, summed over the runs' last starts (eval_results.json)."""
    totals = {"train_tower_clips": 0, "feature_cache_read": 0, "feature_cache_written": 0}
    for run in unique:
        results = report.load(run) or {}
        counts = results.get("train_feature_cache", {})
        totals["train_tower_clips"] += results.get("train_tower_clips", 0)
        totals["feature_cache_read"] += counts.get("read", 0)
        totals["feature_cache_written"] += counts.get("written", 0)
    return totals


def write_cost_table(args: argparse.Namespace, table: paper_tables.Table) -> int:
    from motion_clip_jax.experiments import cost_table

    rows = []
    planner = plan_lib.Planner(args.root)
    only = [key for key in args.only.split(",") if key]
    for dataset in plan_lib.datasets_of(table, args.dataset):
        for row in plan_lib.rows_of(table, only):
            config_arg = plan_lib.CONFIGS["closed"][dataset].format(
                variant=row.spec["variant"], split=1
            )
            config = planner.base(config_arg)
            model_config = config.model
            names = cost_table.class_names_of(dataset, config)
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
    for flag in ("dataset", "root", "draws", "seeds", "only"):
        value = getattr(args, flag)
        if (
            value
            and not (flag == "draws" and value == PAPER_DRAWS)
            and not (flag == "seeds" and value == 1)
        ):
            parts.append(f"--{flag} {value}")
    if args.mcb_forms:
        parts.append("--mcb_forms")
    if args.feature_cache:
        parts.append(f"--feature_cache {args.feature_cache}")
    if args.choose_lr:
        parts.append(f"--choose_lr {args.choose_lr}")
    if args.extra:
        parts += ["--", *args.extra]
    return " ".join(parts)


if __name__ == "__main__":
    sys.exit(main())
