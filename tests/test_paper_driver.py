"""The paper driver: the plan of every table on the real datasets (counts, configs that validate,
shared workdirs); a few tables end to end on the synthetic world at a tiny size (runs trained,
finished runs skipped, a shared model evaluated again); every table's cells (mean +- sample std of
its runs, the markdown) checked against numpy over its runs' eval_results.json."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from motion_clip_jax.core import model_spec
from motion_clip_jax.data import few_shot_draw
from motion_clip_jax.experiments import paper, paper_tables, report
from motion_clip_jax.experiments import plan as plan_lib

from .conftest import REPO_ROOT, built_once, locked

# Runs for ONE dataset (the counts).
COUNTS = {
    ("table5", "hmdb51"): 200, ("table5", "ucf101"): 200, ("table4", "kinetics400"): 50,
    ("fig3a", "hmdb51"): 6, ("fig3b", "ucf101"): 4, ("fig3c", "hmdb51"): 3, ("fig3d", "hmdb51"): 5,
    ("table1", "hmdb51"): 6, ("table2", "ucf101"): 3, ("table3", "kinetics400"): 0,
    ("table6", "kinetics400"): 1, ("table7", "hmdb51"): 2, ("table8", "hmdb51"): 3,
    ("table8", "kinetics400"): 1,
}  # fmt: skip


def dry_run(capsys, *argv):
    capsys.readouterr()
    assert paper.main([*argv, "--dry_run", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("name,dataset", sorted(COUNTS))
def test_dry_run_counts_and_every_config_validates(capsys, name, dataset):
    """--dry_run --json builds and validates every run's config (files need not exist)."""
    plan = dry_run(capsys, name, "--dataset", dataset, "--root", "r")
    assert len(plan) == COUNTS[name, dataset]
    for entry in plan:
        assert {"table", "row", "config", "overrides", "workdir"} <= set(entry)
        assert entry["table"] == name and entry["workdir"].startswith(f"r/{dataset}/")
        assert all(o.startswith("--config.") for o in entry["overrides"])
        config = plan_lib.build_config(entry["config"], entry["overrides"])
        assert config.model.variant in model_spec.VARIANTS  # named, and its switches agree
        assert model_spec.variant_mismatch(config.model) == []


def test_the_paper_settings_reach_the_configs(capsys):
    fig3a = dry_run(capsys, "fig3a", "--dataset", "hmdb51")
    for entry in fig3a:  # H = 3, "human action of"
        config = plan_lib.build_config(entry["config"], entry["overrides"])
        assert (config.model.n_ctx, config.model.ctx_init) == (3, "human action of")
        assert config.model.variant == entry["row"]
    fig3b = dry_run(capsys, "fig3b", "--dataset", "hmdb51")
    built = [plan_lib.build_config(e["config"], e["overrides"]).model for e in fig3b]
    assert [(m.num_frames, m.motion_step) for m in built] == [(4, 3), (8, 4), (16, 4), (32, 4)]
    table2 = dry_run(capsys, "table2", "--dataset", "ucf101")
    phrases = [plan_lib.build_config(e["config"], e["overrides"]).model.ctx_init for e in table2]
    assert phrases == list(paper_tables.TABLE2_PHRASES)
    table5 = dry_run(capsys, "table5", "--dataset", "hmdb51")
    config = plan_lib.build_config(table5[0]["config"], table5[0]["overrides"])
    assert (config.train.batch_size, config.optim.learning_rate) == (32, 0.0015)  # paper §4.3


def test_runs_that_share_a_model_share_its_workdir(capsys):
    """Fig. 3c's H = 5, Fig. 3d's s = 4, Table 2's first phrase, Table 8's split 1 and Table 7's
    HMDB-51 source are one trained model; Fig. 3b's T = 8 (at H = 3) is Fig. 3a's full model;
    Table 6 trains one model."""
    workdir = lambda name, row: next(  # noqa: E731
        e["workdir"]
        for e in dry_run(capsys, name, "--dataset", "hmdb51", "--only", row)
        if e["column"].startswith("hmdb51")
    )
    shared = {workdir("fig3c", "H5"), workdir("fig3d", "s4"),
              workdir("table2", "init1"), workdir("table8", "full"), workdir("table7", "full")}  # fmt: skip
    assert shared == {"workdirs/paper/hmdb51/closed_split1/full"}
    assert workdir("fig3c", "H3") == workdir("fig3a", "full") == workdir("fig3b", "T8")
    assert len(dry_run(capsys, "table6")) == 1


def test_seeds_and_mcb_forms_plan_their_runs(capsys):
    """--seeds: one run per seed (seed 0 the plain workdir); --mcb_forms: every MCB row in the
    other forms, right after it."""
    plan = dry_run(capsys, "fig3a", "--dataset", "hmdb51", "--seeds", "3", "--mcb_forms")
    rows = list(dict.fromkeys(e["row"] for e in plan))
    forms = list(paper_tables.MCB_FORMS)[1:]
    assert forms[:4] == ["tokens", "pooled_ungated", "pooled_proj", "tokens_proj"]
    assert rows == ["clip", "baseline", "baseline_mcb", *(f"baseline_mcb-{f}" for f in forms),
                    "mmb", "mmb_map", "full", *(f"full-{f}" for f in forms)]  # fmt: skip
    assert len(plan) == 3 * len(rows) and len({e["workdir"] for e in plan}) == len(plan)
    models = {}
    for entry in plan:
        config = plan_lib.build_config(entry["config"], entry["overrides"])
        seed = config.seed
        assert entry["workdir"].endswith(f"-seed{seed}") == (seed > 0)
        models.setdefault(entry["row"], set()).add(
            (config.model.mcb_keys, config.model.mcb_projections, seed)
        )
    assert models["full"] == {("pooled", False, s) for s in range(3)}  # the default form
    assert models["baseline_mcb-tokens_proj"] == {("tokens", True, s) for s in range(3)}
    gates = {r: plan_lib.build_config(e["config"], e["overrides"]).model.mcb_scale_init
             for e in plan for r in [e["row"]] if r.startswith("full")}  # fmt: skip
    assert gates["full"] == gates["full-tokens"] == 1e-4  # the default form is gated
    assert gates["full-pooled_ungated"] == gates["full-pooled_proj"] == 0.0
    assert {m[:2] for r, ms in models.items() if r.startswith("full") for m in ms} == {
        (keys, proj) for keys in ("pooled", "tokens") for proj in (False, True)
    }
    with pytest.raises(SystemExit):
        paper.parse_args(["table5", "--seeds", "2"])  # few-shot draws seed their own runs


# --- the driver end to end on the synthetic world: a few real runs --------------------------


def tiny(tmp: str) -> list[str]:
    """Overrides that make every synthetic run a seconds-scale one (64 training videos: 8 per
    class, enough for Table 4's 5 shots and 1 held-out validation video)."""
    return [
        f"--config.data.dataset_dir={tmp}/data", "--config.data.source_settings.num_train=64",
        "--config.data.source_settings.num_test=16", f"--config.clip_source_settings.cache_dir={tmp}/clip",
        "--config.clip_source_settings.pretrain_steps=20", "--config.train.num_steps=3",
        "--config.train.batch_size=8", "--config.eval.batch_size=8", "--config.eval.multiview=False",
        "--config.eval.confusion_png=False", "--config.train.log_every_steps=3",
    ]  # fmt: skip


# Few-shot runs hold out 1 training video per class for validation.
FEW_SHOT = ["--", "--config.eval.validation_per_class=1"]
TRAINED = [  # (table, driver flags), run in this order into one root; 4 trainings in all
    ("table8", []),  # trains the closed-set full model (main set only)
    ("table6", []),  # evaluates that model again on the target splits, trains nothing
    ("table7", []),  # trains the baseline; the full model is done
    ("table4", ["--only", "full", "--draws", "2", *FEW_SHOT]),  # two few-shot draws
    ("table3", []),  # counts parameters and FLOPs
]
# Every other table is aggregated over run folders whose results this file writes (below): the
# driver's plan, skipping and table writing are the same code, only the training is left out.
AGGREGATED = [
    ("fig3a", []),
    ("fig3b", []),
    ("fig3c", []),
    ("fig3d", []),
    ("table1", ["--seeds", "2"]),
    ("table2", []),
    ("table5", ["--draws", "2", "--choose_lr", "1e-3,1e-2", *FEW_SHOT]),
]


def split_flags(flags: list[str]) -> tuple[list[str], list[str]]:
    """(driver flags, run overrides after `--`)."""
    if "--" not in flags:
        return flags, []
    return flags[: flags.index("--")], flags[flags.index("--") + 1 :]


def run_tables(root, tables, overrides: list[str]) -> dict:
    """`paper NAME --dataset synthetic --root ROOT` for each table -> {name: NAME_synthetic.json}."""
    for name, flags in tables:
        flags, extra = split_flags(flags)
        # The persistent compile cache is JAX-global: off here (other tests share the worker),
        # tested in a process of its own below.
        argv = [name, "--dataset", "synthetic", "--root", str(root), "--compile_cache", "none",
                *flags, "--", *overrides, *extra]  # fmt: skip
        assert paper.main(argv) == 0, name
    return {n: json.loads((root / f"{n}_synthetic.json").read_text()) for n, _ in tables}


def build_trained_root(root) -> None:
    """The TRAINED tables into `root`, and their outputs as the build left them (BUILT): tests run
    the driver there again (a finished table rewritten, its shared model evaluated again), so a
    test that reads `<name>_synthetic.json` later may see another start's record."""
    outputs = run_tables(root, TRAINED, tiny(str(root)))
    (root / BUILT).write_text(json.dumps(outputs))


BUILT = "tables_as_built.json"


# Built once per machine and shared by the xdist workers (conftest.built_once).
@pytest.fixture(scope="session")
def synthetic_root():
    root = built_once("paper_root", [TRAINED, tiny("ROOT")], build_trained_root)
    return root, json.loads((root / BUILT).read_text())


# --- every other table over results written here ----------------------------------------------


def planned_runs(name: str, root, flags: list[str]) -> list[plan_lib.Run]:
    """Every run the driver may read for `name` with these flags: with --choose_lr, every draw at
    every rate of the grid (the driver reads those of the rate it chooses)."""
    flags, extra = split_flags(flags)
    value = lambda flag, default: flags[flags.index(flag) + 1] if flag in flags else default  # noqa: E731
    plan = functools.partial(plan_lib.plan, name, str(root), "synthetic", extra_overrides=extra,
                             draws=int(value("--draws", 1)), seeds=int(value("--seeds", 1)))  # fmt: skip
    rates = [float(x) for x in value("--choose_lr", "").split(",") if x]
    if not rates:
        return plan_lib.unique_runs(plan())
    keys = {(r.dataset, r.row) for r in plan()}
    runs = [r for lr in rates for r in plan(learning_rates=dict.fromkeys(keys, lr))]
    return plan_lib.unique_runs(runs)


def view_results(rng: np.random.Generator, num_videos: int = 16) -> dict:
    """One evaluated set in eval_results.json's schema, random accuracies."""
    hits = np.sort(rng.integers(0, num_videos + 1, 2))  # top-1 <= top-5
    pairs = {f"{i}-{i + 1}": float(rng.integers(0, 5) / 4) for i in range(0, 8, 2)}
    pairs["mean"] = float(np.mean(list(pairs.values())))
    return {"num_videos": num_videos, "top1": hits[0] / num_videos,
            "top5": hits[1] / num_videos, "pair_accuracy": pairs}  # fmt: skip


def write_finished_run(run: plan_lib.Run, rng: np.random.Generator) -> None:
    """What a finished synthetic run leaves for the table: eval_results.json (main set, and the
    validation set of a few-shot run that holds one out) and run_info.json's class names."""
    from motion_clip_jax.synthetic.world import CLASS_NAMES

    assert not run.reads  # zero-shot tables are trained for real above
    os.makedirs(run.workdir)
    results = {"main/single_view": view_results(rng)}
    if run.validation:
        results["validation/single_view"] = view_results(rng, 8)
    with open(os.path.join(run.workdir, "eval_results.json"), "w") as f:
        json.dump(results, f)
    with open(os.path.join(run.workdir, "run_info.json"), "w") as f:
        json.dump({"class_names": list(CLASS_NAMES)}, f)


@pytest.fixture(scope="session")
def aggregated_root(tmp_path_factory):
    """The AGGREGATED tables over finished runs written here: the driver trains nothing."""
    from unittest import mock

    root = tmp_path_factory.mktemp("aggregated")
    rng = np.random.default_rng(1)  # a seed where each rate wins some row
    runs = [run for name, flags in AGGREGATED for run in planned_runs(name, root, flags)]
    for run in plan_lib.unique_runs(runs):  # a model shared by tables: one folder
        write_finished_run(run, rng)
    untrained = AssertionError("a run the test wrote was not taken as finished")
    with mock.patch.object(paper, "train_run", side_effect=untrained):
        outputs = run_tables(root, AGGREGATED, [])
    return root, outputs


@pytest.fixture(scope="session")
def tables(synthetic_root, aggregated_root):
    """{table name: (root, NAME_synthetic.json)} of every table but Table 3."""
    return {n: (root, outputs[n]) for root, outputs in (synthetic_root, aggregated_root)
            for n in outputs if n != "table3"}  # fmt: skip


def results(workdir: str) -> dict:
    with open(os.path.join(workdir, "eval_results.json")) as f:
        return json.load(f)


@pytest.mark.parametrize("name", sorted(n for n, _ in TRAINED + AGGREGATED if n != "table3"))
def test_each_table_aggregates_its_runs(tables, name):
    """Every cell's mean and sample std are those of its runs' eval_results.json top-1."""
    root, data = tables[name]
    text = (root / f"{name}_synthetic.md").read_text()
    assert text.startswith(f"# {paper_tables.TABLES[name].title}")
    assert data["cells"] and data["runs"]
    for cell in data["cells"]:
        values = []
        for workdir in cell["workdirs"]:
            res = results(workdir)
            sets = [k for k in res if k.endswith("/single_view")]
            if name in ("table6", "table7"):  # zero-shot: the 3 target splits
                sets = [k for k in sets if k.startswith("synthetic_split")]
                assert len(sets) == 3
            else:
                sets = ["main/single_view"]
            values += [100 * res[k][cell["metric"]] for k in sets]
        assert cell["values"] == pytest.approx(values)
        assert cell["mean"] == pytest.approx(np.mean(values))
        if len(values) > 1:
            assert cell["std"] == pytest.approx(np.std(values, ddof=1))
        else:
            assert cell["std"] is None
        assert cell["row_label"] in text
    for run in data["runs"]:
        assert run["command"] in text


@pytest.mark.parametrize("name,flags", TRAINED[:-1] + AGGREGATED)
def test_the_dry_run_plans_the_runs_the_table_reads(tables, capsys, name, flags):
    """--dry_run --json with the same flags names the table's runs (with --choose_lr: the
    selection runs, draw 0 at every rate, among them the table's draw 0)."""
    root, data = tables[name]
    flags, extra = split_flags(flags)
    overrides = tiny(str(root)) if name in dict(TRAINED) else []
    argv = [name, "--dataset", "synthetic", "--root", str(root), *flags, "--dry_run", "--json",
            "--", *overrides, *extra]  # fmt: skip
    capsys.readouterr()
    assert paper.main(argv) == 0
    planned = {(e["config"], tuple(e["overrides"]), e["workdir"])
               for e in json.loads(capsys.readouterr().out)}  # fmt: skip
    ran = {(r["config"], tuple(r["overrides"]), r["workdir"]) for r in data["runs"]}
    if "--choose_lr" not in flags:
        assert planned == ran
    else:
        first_draws = {r for r in ran if r[2].endswith("draw0")}
        assert first_draws < planned and len(planned) == 2 * len(first_draws)


def test_few_shot_cells_hold_one_run_per_draw(tables):
    root, table5 = tables["table5"]
    rows = [r.key for r in paper_tables.TABLES["table5"].rows]
    assert {(c["row"], c["column"]) for c in table5["cells"]} == {
        (row, f"synthetic/k={k}") for row in rows for k in few_shot_draw.PAPER_SHOTS
    }
    for cell in table5["cells"]:
        assert cell["n"] == 2 and len(set(cell["workdirs"])) == 2
        assert "HMDB-51" in cell["paper"] and "UCF-101" in cell["paper"]  # the curve's shape
    (cell,) = tables["table4"][1]["cells"]
    assert cell["n"] == 2 and len(set(cell["workdirs"])) == 2
    lists = [os.path.join(d, f"few_shot_5shot_seed{i}.txt") for i, d in enumerate(cell["workdirs"])]
    assert open(lists[0]).read() != open(lists[1]).read()  # two draws, two video lists
    for draw, workdir in enumerate(cell["workdirs"]):  # the held-out validation videos
        assert os.path.exists(os.path.join(workdir, f"validation_1per_class_seed{draw}.txt"))
        assert "validation/single_view" in results(workdir)


def test_records_say_what_ran(synthetic_root):
    """eval_results.json and run_info.json name the variant, its switches and the trainable
    parameter count per module, counted again here from the model the config builds."""
    from motion_clip_jax.models import params as params_lib
    from motion_clip_jax.models import video_clip

    root, outputs = synthetic_root
    runs = outputs["table7"]["runs"] + outputs["table4"]["runs"]
    assert {run["row"] for run in runs} == {"baseline", "full"}
    counted = {}  # model config -> trainable record (runs of one model share it)
    for run in runs:
        config = plan_lib.build_config(run["config"], run["overrides"])
        record = results(run["workdir"])["model"]
        assert record["variant"] == run["row"] == config.model.variant
        for switch, value in model_spec.VARIANTS[run["row"]].items():
            assert record[switch] == value
        with open(os.path.join(run["workdir"], "run_info.json")) as f:
            run_info = json.load(f)
        model_config = config.model.copy_and_resolve_references()
        model_config.clip_overrides = run_info["model_config"]["clip_overrides"]
        key = model_config.to_json(sort_keys=True)
        if key not in counted:
            _, trainable, _ = video_clip.init_video_clip(model_config, 0)
            counted[key] = params_lib.trainable_record(trainable)
        expected = counted[key]
        assert record["trainable_parameters"] == run_info["trainable_parameters"] == expected
        assert record["trainable_parameters"]["total"] > 0


def test_finished_runs_are_skipped_and_a_shared_model_is_evaluated_again(synthetic_root, capsys):
    root, outputs = synthetic_root
    full = os.path.join(root, "synthetic", "closed", "full")
    # Table 6 read the closed-set model Table 8 trained: it was evaluated again on the target
    # sets, not trained again (one training history line per start, and only two starts).
    assert any(k.startswith("synthetic_split") for k in results(full))
    with open(os.path.join(full, "config_history.jsonl")) as f:
        assert len(f.readlines()) == 2
    before = os.path.getmtime(os.path.join(full, "eval_results.json"))
    capsys.readouterr()
    argv = ["table8", "--dataset", "synthetic", "--root", str(root), "--compile_cache", "none",
            "--", *tiny(str(root))]  # fmt: skip
    with locked(root):
        assert paper.main(argv) == 0
    assert "done:" in capsys.readouterr().out
    assert os.path.getmtime(os.path.join(full, "eval_results.json")) == before


def test_each_row_trains_at_the_rate_its_validation_set_chose(aggregated_root):
    """--choose_lr: every rate of the grid read on draw 0 of every k; per row, the rate of the
    best mean validation top-1 (read again here from the selection runs); every draw of the row
    at it; draw 0 of the table is the selection run at that rate."""
    root, outputs = aggregated_root
    choice = outputs["table5"]["learning_rate_choice"]
    assert choice["grid"] == [0.001, 0.01] and choice["set"] == "validation/single_view"
    text = (root / "table5_synthetic.md").read_text()
    assert "## Learning rate, chosen per row on held-out training videos" in text
    config_arg = "configs/synthetic.py:few_shot,{row},{k},{draw}"
    assert {r["row"] for r in choice["rows"]} == {r.key for r in paper_tables.TABLES["table5"].rows}
    for record in choice["rows"]:
        row = record["row"]
        means = {}
        for lr in choice["grid"]:
            values = []
            for k in few_shot_draw.PAPER_SHOTS:
                slug = "" if lr == 0.001 else f"-lr{lr}"  # 0.001 is the config's own rate
                workdir = root / "synthetic" / f"few_shot_k{k}" / f"{row}{slug}" / "draw0"
                values.append(100 * results(workdir)["validation/single_view"]["top1"])
            means[lr] = np.mean(values)
        best = max(choice["grid"], key=lambda lr: (means[lr], -choice["grid"].index(lr)))
        assert record["chosen"] == best
        assert record["mean"] == {str(lr): pytest.approx(m) for lr, m in means.items()}
        cells = [c for c in outputs["table5"]["cells"] if c["row"] == row]
        for cell in cells:
            for draw, workdir in enumerate(cell["workdirs"]):
                assert workdir.endswith(f"draw{draw}")
                k = cell["column"].split("=")[1]
                planned = config_arg.format(row=row, k=k, draw=draw)
                (run,) = [r for r in outputs["table5"]["runs"] if r["workdir"] == workdir]
                assert run["config"] == planned
                config = plan_lib.build_config(run["config"], run["overrides"])
                assert config.optim.learning_rate == best  # what `main` trains this run with
    assert len({r["chosen"] for r in choice["rows"]}) == 2  # both rates chosen for some row


def test_pair_label():
    assert report.pair_label("moving left", "moving right") == "left / right"
    assert report.pair_label("growing", "shrinking") == "growing / shrinking"
    assert report.pair_label("rotating clockwise", "rotating anticlockwise") == (
        "clockwise / anticlockwise"
    )


def test_synthetic_tables_report_within_pair_accuracy(tables):
    """Per (row, column): each order pair of the world and the runs' mean over pairs, as mean +-
    sample std of the runs' main/single_view pair_accuracy in %; none for zero-shot tables."""
    from motion_clip_jax.synthetic.world import CLASS_NAMES

    pairs = {f"{i}-{i + 1}": report.pair_label(*CLASS_NAMES[i : i + 2]) for i in range(0, 8, 2)}
    for name, n in (("fig3a", 1), ("table5", 2), ("table4", 2)):
        root, data = tables[name]
        assert (
            "## Within-pair accuracy (synthetic world)"
            in (root / f"{name}_synthetic.md").read_text()
        )
        rows = data["pair_accuracy"]
        assert len(rows) == len(data["cells"])  # one metric per cell in these tables
        for record in rows:
            (cell,) = [c for c in data["cells"]
                       if (c["row"], c["column"]) == (record["row"], record["column"])]  # fmt: skip
            got = [results(w)["main/single_view"]["pair_accuracy"] for w in cell["workdirs"]]
            assert list(record["pairs"]) == [*pairs.values(), "mean"]
            for key, label in [*pairs.items(), ("mean", "mean")]:
                values = [100 * g[key] for g in got]
                stat = record["pairs"][label]
                assert stat["n"] == n and stat["mean"] == pytest.approx(np.mean(values))
                if n > 1:
                    assert stat["std"] == pytest.approx(np.std(values, ddof=1))
    for name in ("table6", "table7"):
        assert "pair_accuracy" not in tables[name][1]


def test_a_workdir_of_another_experiment_is_refused(synthetic_root, capsys):
    root, _ = synthetic_root
    other = [o.replace("num_steps=3", "num_steps=5") for o in tiny(str(root))]
    argv = ["table8", "--dataset", "synthetic", "--root", str(root), "--compile_cache", "none",
            "--", *other]  # fmt: skip
    capsys.readouterr()
    with locked(root):
        assert paper.main(argv) == 1
    err = capsys.readouterr().err
    assert "holds another experiment" in err and "train.num_steps: 3 -> 5" in err


def test_table3_counts_parameters_and_flops(synthetic_root):
    """Parameters: the model's own trees; trainable: 0 for CLIP and growing with the blocks; the
    accounting notes and the 77-token text FLOPs beside the shortest context's."""
    root, outputs = synthetic_root
    rows = {r["row"]: r for r in outputs["table3"]["rows"]}
    assert rows["clip"]["trainable"] == 0
    assert 0 < rows["baseline"]["trainable"] < rows["full"]["trainable"]
    for r in rows.values():
        assert r["gflops"] == pytest.approx(r["gflops_image"] + r["gflops_text"] + r["gflops_head"])
    assert rows["clip"]["gflops_image"] == rows["full"]["gflops_image"] > 0
    assert all(r["gflops_text_77"] >= r["gflops_text"] for r in rows.values())
    text = (root / "table3_synthetic.md").read_text()
    for note in ("Accounting notes", "555.366", "at 77", "multiply-add"):
        assert note in text, note


def test_the_runs_of_a_table_share_the_training_feature_cache(synthetic_root):
    """Table 7's baseline trains on the clips Table 8's full model trained on (one seed, one
    dataset): it reads the features that run wrote, so fewer of its clips go through the image
    tower than it trains on."""
    root, outputs = synthetic_root
    assert outputs["table8"]["image_tower"]["feature_cache_written"] > 0
    assert outputs["table7"]["image_tower"]["feature_cache_read"] > 0
    baseline = results(root / "synthetic" / "closed" / "baseline")
    counts = baseline["train_feature_cache"]
    assert counts["read"] > 0
    assert baseline["train_tower_clips"] < counts["read"] + counts["written"]


def test_the_compile_cache_gives_the_same_results(synthetic_root, tmp_path):
    """Two tables in fresh processes: the second compiles nothing new (it reads the cache the
    first wrote) and its results are bit for bit the first's."""
    cache = tmp_path / "cache"
    outputs = []
    for name in ("first", "second"):
        root = tmp_path / name
        overrides = tiny(str(synthetic_root[0]))  # the shared root's dataset and CLIP (read only)
        argv = ["table8", "--dataset", "synthetic", "--root", str(root), "--compile_cache",
                str(cache), "--", *overrides]  # fmt: skip
        code = "import sys; from motion_clip_jax.experiments import paper; sys.exit(paper.main(sys.argv[1:]))"
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        subprocess.run([sys.executable, "-c", code, *argv], env=env, check=True,
                       capture_output=True, cwd=str(tmp_path))  # fmt: skip
        outputs.append(results(root / "synthetic" / "closed" / "full"))
        if name == "first":
            entries = set(os.listdir(cache))
            assert entries  # the first process wrote its compiled programs
    assert set(os.listdir(cache)) == entries  # the second found every program there
    for key in ("main/single_view",):
        assert outputs[1][key] == outputs[0][key]


def test_table_headers_state_what_the_rows_hold_fixed():
    """Fig. 3a (H = 3, s = 4, the paper's initial rate and no warm-up) and Fig. 3b (T varies)."""
    from motion_clip_jax.experiments.settings import held_fixed

    fig3a = held_fixed(plan_lib.plan("fig3a", "r", "hmdb51"))
    for line in ("| frames T | 8 |", "| max step s | 4 | paper: 4 (Fig. 3d); Fig. 3a-3c use s = 4",
                 "| context length H | 3 |", "| phrase (learned-context init; the prompt of "
                 "hand-crafted rows) | human action of |", "| initial learning rate | 0.0025 |",
                 "| warm-up steps | 0 |", "| label smoothing | 0.1 | ours"):  # fmt: skip
        assert line in fig3a, line
    fig3b = held_fixed(plan_lib.plan("fig3b", "r", "ucf101"))
    assert "| frames T | varies by row: T4 4, T8 8, T16 16, T32 32 |" in fig3b
    assert "| context length H | 3 |" in fig3b  # H = 5 is chosen only after Fig. 3c
    table5 = held_fixed(plan_lib.plan("table5", "r", "hmdb51", draws=1))
    assert "| warm-up steps | 0 |" in table5 and "| initial learning rate | 0.0015 |" in table5
