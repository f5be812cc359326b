"""Plans the runs of a paper table: every cell's config argument, overrides and workdir.

A run is what `python -m motion_clip_jax.main --config=CONFIG --workdir=WORKDIR OVERRIDES` trains.
Workdirs are named by what is trained, so runs that share a trained model share a workdir across
rows and tables (Fig. 3b's T = 8, Fig. 3c's H = 5 and Fig. 3d's s = 4 are one run; the zero-shot
source model of Table 7 is the closed-set split-1 model; Table 6's Kinetics-400 model is trained
once and evaluated on the 6 target splits):

  <root>/<dataset>/closed_split<s>/<variant>[-<field><value>...]
  <root>/<dataset>/few_shot_k<k>/<variant>[-...]/draw<d>      (-lr<lr> with --choose_lr)

Overrides that equal the config's own value are dropped, so one experiment has one name.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from typing import Any

import ml_collections

from motion_clip_jax.data.few_shot_draw import PAPER_DRAWS
from motion_clip_jax.experiments import paper_tables
from motion_clip_jax.experiments.paper_tables import Column, Row, Table
from motion_clip_jax.train import config_file

# protocol -> dataset -> config argument template ({variant}, {split}, {k}, {draw}).
CONFIGS = {
    "closed": {
        "hmdb51": "configs/hmdb_closed.py:{split},{variant}",
        "ucf101": "configs/ucf_closed.py:{split},{variant}",
        "kinetics400": "configs/k400_closed.py:validation,{variant}",
        "synthetic": "configs/synthetic.py:closed,{variant}",
    },
    "few_shot": {
        "hmdb51": "configs/few_shot.py:hmdb51,{k},{draw},{variant}",
        "ucf101": "configs/few_shot.py:ucf101,{k},{draw},{variant}",
        "kinetics400": "configs/few_shot.py:kinetics400,{k},{draw},{variant}",
        "synthetic": "configs/synthetic.py:few_shot,{variant},{k},{draw}",
    },
    "zero_shot": {  # the source is trained as closed-set split 1 (Kinetics-400: its train split)
        "hmdb51": "configs/zero_shot.py:hmdb,{variant}",
        "ucf101": "configs/zero_shot.py:ucf,{variant}",
        "kinetics400": "configs/zero_shot.py:k400,{variant}",
        "synthetic": "configs/synthetic.py:zero_shot,{variant}",
    },
}
DATASETS = ("hmdb51", "ucf101", "kinetics400", "synthetic")
# Short names for workdir names.
_SHORT = {
    "num_frames": "T",
    "motion_step": "s",
    "n_ctx": "H",
    "ctx_init": "",
    "mcb_keys": "keys_",
    "mcb_projections": "proj_",
    "mcb_norm": "norm_",
    "mcb_scale_init": "gate",
    "learning_rate": "lr",
}
# The config sections a cell's spec may set (model fields from the tables; the learning rate
# from the driver's --choose_lr).
SECTIONS = ("model", "optim")


@dataclasses.dataclass(frozen=True)
class Run:
    """One training run of a table cell (a cell of a few-shot table has one run per draw)."""

    table: str
    row: str
    column: str
    dataset: str
    config: str  # --config argument, e.g. configs/few_shot.py:hmdb51,2,0,baseline
    overrides: tuple[str, ...]  # --config.x=y strings
    workdir: str
    draw: int = 0
    split: int = 1
    reads: tuple[tuple[str, str], ...] = ()  # zero-shot: (column label, eval-set prefix)
    validation: bool = False  # the run must have evaluated its few-shot 'validation' set

    def command(self) -> list[str]:
        return [
            "python", "-m", "motion_clip_jax.main", f"--config={self.config}",
            f"--workdir={self.workdir}", *self.overrides,
        ]  # fmt: skip

    def plan_entry(self) -> dict[str, Any]:
        """The --dry_run --json object of this run."""
        return {
            "table": self.table,
            "row": self.row,
            "column": self.column,
            "dataset": self.dataset,
            "draw": self.draw,
            "config": self.config,
            "overrides": list(self.overrides),
            "workdir": self.workdir,
        }


def build_config(config_arg: str, overrides: Sequence[str]) -> ml_collections.ConfigDict:
    """The config `main` would train for --config=config_arg plus overrides (same loader)."""
    return config_file.load(config_arg, overrides)


def _format(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _slug(name: str, value: Any) -> str:
    return f"{_SHORT.get(name, name)}{_format(value)}".replace(" ", "_").replace("/", "_")


def _cell_spec(row: Row, column: Column, learning_rate: float | None) -> dict[str, Any]:
    spec = {**column.spec, **row.spec}
    for section in SECTIONS:
        spec[section] = {**column.spec.get(section, {}), **row.spec.get(section, {})}
    if learning_rate is not None:
        spec["optim"]["learning_rate"] = learning_rate
    return spec


class Planner:
    """Plans runs, building each distinct config argument once (to drop no-op overrides)."""

    def __init__(self, root: str, extra_overrides: Sequence[str] = ()):
        self.root = root
        self.extra = tuple(extra_overrides)
        self._base: dict[str, ml_collections.ConfigDict] = {}

    def base(self, config_arg: str) -> ml_collections.ConfigDict:
        if config_arg not in self._base:
            self._base[config_arg] = build_config(config_arg, ())
        return self._base[config_arg]

    def runs(
        self,
        table: Table,
        row: Row,
        column: Column,
        draws: int,
        learning_rate: float | None = None,
        seeds: int = 1,
    ) -> list[Run]:
        """The cell's runs (one per split and seed, or per draw); `learning_rate` overrides the
        config's. Seed s > 0 trains at --config.seed=s in a workdir named -seed<s>."""
        spec = _cell_spec(row, column, learning_rate)
        dataset, protocol, variant = spec["dataset"], spec["protocol"], spec["variant"]
        template = CONFIGS[protocol][dataset]
        runs = []
        # (draw, seed offset): few-shot draws seed their own runs; other cells take --seeds.
        repeats = [(d, 0) for d in range(draws)] if protocol == "few_shot" else [
            (0, s) for s in range(seeds)
        ]  # fmt: skip
        for split in spec.get("splits", (1,)):
            for draw, seed in repeats:
                config_arg = template.format(
                    variant=variant, split=split, k=spec.get("k"), draw=draw
                )
                base = self.base(config_arg)
                changed = [
                    (section, k, v)
                    for section in SECTIONS
                    for k, v in spec[section].items()
                    if base[section][k] != v
                ]
                overrides = [f"--config.{sec}.{k}={_format(v)}" for sec, k, v in changed]
                if seed:
                    overrides.append(f"--config.seed={base.seed + seed}")
                sets_steps = any(o.startswith("--config.train.num_steps=") for o in self.extra)
                if variant == "clip" and base.train.num_steps != 1 and not sets_steps:
                    # Nothing is trainable: one step instead of epochs of no-op updates.
                    overrides.append("--config.train.num_steps=1")
                self._check_extra(overrides, table, row)
                name = "-".join(
                    [variant, *(_slug(k, v) for _, k, v in changed)]
                    + ([f"seed{base.seed + seed}"] if seed else [])
                )
                if protocol == "few_shot":
                    where = os.path.join(f"few_shot_k{spec['k']}", name, f"draw{draw}")
                elif dataset in ("kinetics400", "synthetic"):
                    where = os.path.join("closed", name)
                else:
                    where = os.path.join(
                        f"closed_split{1 if protocol == 'zero_shot' else split}", name
                    )
                runs.append(
                    Run(
                        table=table.name,
                        row=row.key,
                        column=column.key,
                        dataset=dataset,
                        config=config_arg,
                        overrides=(*overrides, *self.extra),
                        workdir=os.path.join(self.root, dataset, where),
                        draw=draw,
                        split=split,
                        reads=tuple(spec.get("reads", {}).items()),
                        validation=learning_rate is not None,
                    )
                )
        return runs

    def _check_extra(self, overrides: list[str], table: Table, row: Row) -> None:
        fields = {o.split("=")[0] for o in overrides}
        clash = sorted(fields & {o.split("=")[0] for o in self.extra})
        if clash:
            raise ValueError(
                f"{table.name} row {row.key} sets {', '.join(clash)} itself: "
                "leave it out of the extra overrides"
            )


def rows_of(table: Table, only: Sequence[str] = (), mcb_forms: bool = False) -> list[Row]:
    """The table's rows (+ each MCB row in every other MCB form, right after it), filtered by
    `only` (row keys)."""
    rows = list(table.rows)
    if mcb_forms:
        if not any(r.marks and r.marks[2] for r in rows):  # rows ticked for MCB
            raise ValueError(f"{table.name} has no MCB rows: --mcb_forms does not apply")
        rows = [
            extra
            for r in rows
            for extra in [r, *(paper_tables.mcb_form_rows(r) if r.marks and r.marks[2] else [])]
        ]
    if only:
        known = [r.key for r in rows]
        unknown = [key for key in only if key not in known]
        if unknown:
            raise ValueError(
                f"--only {','.join(unknown)}: {table.name} has rows {', '.join(known)}"
            )
        rows = [r for r in rows if r.key in only]
    return rows


def datasets_of(table: Table, dataset: str | None) -> list[str]:
    """--dataset (checked against the table) or the table's default datasets."""
    if dataset is None:
        return list(table.datasets)
    if dataset != "synthetic" and dataset not in table.datasets:
        raise ValueError(
            f"--dataset {dataset}: {table.name} is run on {', '.join(table.datasets)} (or synthetic)"
        )
    return [dataset]


def plan(
    name: str,
    root: str,
    dataset: str | None = None,
    draws: int = PAPER_DRAWS,
    only: Sequence[str] = (),
    mcb_forms: bool = False,
    extra_overrides: Sequence[str] = (),
    learning_rates: Mapping[tuple[str, str], float] | None = None,
    seeds: int = 1,
) -> list[Run]:
    """Every run of table / figure `name` (see paper_tables.NAMES), in order; table3 has none.

    learning_rates: {(dataset, row key): lr} for every planned row (--choose_lr): those runs
    train at that rate and must evaluate their validation set. seeds: closed-set and zero-shot
    cells train once per run seed 0..seeds-1 (few-shot draws seed their runs already)."""
    if name not in paper_tables.TABLES:
        raise ValueError(f"unknown table {name!r}; known: {', '.join(paper_tables.NAMES)}")
    if draws < 1 or seeds < 1:
        raise ValueError(f"--draws and --seeds must be >= 1, got {draws} and {seeds}")
    table = paper_tables.TABLES[name]
    planner = Planner(root, extra_overrides)
    runs: list[Run] = []
    rows = rows_of(table, only, mcb_forms)
    for ds in datasets_of(table, dataset):
        for column in table.columns(ds):
            for row in rows:
                if table.trains:
                    lr = None if learning_rates is None else learning_rates[ds, row.key]
                    count = draws if table.draws else 1
                    runs += planner.runs(table, row, column, count, lr, seeds)
    return runs


def unique_runs(runs: Sequence[Run]) -> list[Run]:
    """One run per workdir, in plan order (cells that read the same trained model share it)."""
    seen: dict[str, Run] = {}
    for run in runs:
        first = seen.setdefault(run.workdir, run)
        if (first.config, first.overrides) != (run.config, run.overrides):
            raise ValueError(
                f"{run.workdir}: planned twice with different configs "
                f"({first.config} {first.overrides} / {run.config} {run.overrides})"
            )
    return list(seen.values())


def validate_runs(runs: Sequence[Run]) -> None:
    """Builds every run's config and validates it (files need not exist here)."""
    from motion_clip_jax.train.config import validate_config

    for run in runs:
        config = build_config(run.config, run.overrides)
        try:
            validate_config(config, check_files=False)
        except ValueError as e:
            raise ValueError(f"{run.table} {run.row} {run.column}: {e}") from None
