"""The ablation driver: aggregation against hand-computed numbers, and a tiny end-to-end run."""

from __future__ import annotations

import json
import os
import re

import numpy as np
import pytest

from motion_clip_jax.synthetic import ablation

from .conftest import REPO_ROOT, random_tiny_clip

NAMES = ["moving left", "moving right", "moving up", "moving down", "rotating clockwise",
         "rotating anticlockwise", "growing", "shrinking"]  # fmt: skip


def fake_run(workdir, top1, pairs, multiview=None, seconds=None):
    """Writes the files a finished trainer run leaves that the summary reads."""
    os.makedirs(workdir, exist_ok=True)
    keys = ["0-1", "2-3", "4-5", "6-7"]
    pair_accuracy = dict(zip(keys, pairs))
    pair_accuracy["mean"] = float(np.mean(pairs))
    results = {"step": 10, "main/single_view": {"top1": top1, "pair_accuracy": pair_accuracy}}
    if multiview is not None:
        results["main/multiview"] = {"top1": multiview, "pair_accuracy": pair_accuracy}
    with open(os.path.join(workdir, "eval_results.json"), "w") as f:
        json.dump(results, f)
    with open(os.path.join(workdir, "run_info.json"), "w") as f:
        json.dump({"class_names": NAMES}, f)
    if seconds is not None:
        with open(os.path.join(workdir, ablation.RUN_RECORD), "w") as f:
            json.dump({"seconds": seconds}, f)


def write_metrics(workdir, rows):
    with open(os.path.join(workdir, "metrics.jsonl"), "w") as f:
        f.write("".join(json.dumps(r) + "\n" for r in rows))


def test_mean_std_hand_numbers():
    assert ablation.mean_std([0.5, 0.75, 1.0]) == pytest.approx((0.75, 0.25, 3))
    # sample std of (0.2, 0.4): mean 0.3, squared deviations 0.01 + 0.01, / (n - 1) = 0.02
    assert ablation.mean_std([0.2, None, 0.4]) == pytest.approx((0.3, 0.02**0.5, 2))
    assert ablation.mean_std([0.6]) == (0.6, 0.0, 1)
    assert ablation.mean_std([None, None]) is None


def test_pair_labels_and_hard_pair():
    assert ablation.pair_label("moving left", "moving right") == "left / right"
    assert ablation.pair_label("growing", "shrinking") == "growing / shrinking"
    assert ablation.is_hard_pair("rotating clockwise", "rotating anticlockwise")
    assert not ablation.is_hard_pair("moving up", "moving down")


def test_aggregate_and_table_against_hand_numbers(tmp_path):
    # Three seeds; pairs (left/right, up/down, rotation, grow/shrink).
    fake_run(tmp_path / "s0", 0.50, [1.0, 0.9, 0.4, 1.0], multiview=0.55, seconds=10)
    fake_run(tmp_path / "s1", 0.60, [0.8, 1.0, 0.5, 1.0], multiview=0.65, seconds=20)
    fake_run(tmp_path / "s2", 0.70, [0.9, 0.8, 0.6, 1.0], multiview=0.75)
    # The first train window holds the compile: steps/s = mean of the later ones (10, 12).
    write_metrics(tmp_path / "s0", [{"kind": "train", "steps_per_second": 2.0},
                                    {"kind": "train", "steps_per_second": 10.0},
                                    {"kind": "eval/main/single_view", "top1": 0.5},
                                    {"kind": "train", "steps_per_second": 12.0}])  # fmt: skip
    metrics = [ablation.run_metrics(str(tmp_path / f"s{i}")) for i in range(3)]
    assert metrics[0]["pairs"] == {
        "left / right": 1.0,
        "up / down": 0.9,
        "clockwise / anticlockwise": 0.4,
        "growing / shrinking": 1.0,
    }
    assert metrics[0]["hard_pairs"] == ["clockwise / anticlockwise"]
    assert metrics[0]["easy_mean"] == pytest.approx((1.0 + 0.9 + 1.0) / 3)
    assert metrics[0]["hard_mean"] == pytest.approx(0.4)
    assert metrics[0]["pair_mean"] == pytest.approx(0.825)
    assert metrics[0]["seconds"] == 10 and metrics[2]["seconds"] is None
    assert metrics[0]["steps_per_second"] == 11.0 and metrics[1]["steps_per_second"] is None

    agg = ablation.aggregate(metrics)
    assert agg["top1"] == pytest.approx((0.6, 0.1, 3))
    assert agg["top1_multiview"] == pytest.approx((0.65, 0.1, 3))
    assert agg["pair:left / right"] == pytest.approx((0.9, 0.1, 3))
    assert agg["pair:up / down"] == pytest.approx((0.9, 0.1, 3))
    assert agg["pair:clockwise / anticlockwise"] == pytest.approx((0.5, 0.1, 3))
    assert agg["pair:growing / shrinking"] == pytest.approx((1.0, 0.0, 3))
    # easy means per seed: 0.9667, 0.9333, 0.9 -> mean 0.9333, sample std 0.0333
    assert agg["easy_mean"] == pytest.approx((0.93333, 0.03333, 3), abs=1e-4)
    assert agg["pair_mean"] == pytest.approx((0.825, 0.0, 3))

    easy, hard = ablation.pair_columns(metrics)
    assert easy == ["left / right", "up / down", "growing / shrinking"]
    assert hard == ["clockwise / anticlockwise"]
    table = ablation.summary_table([("mmb", agg)], easy, hard)
    header, _, row = table.splitlines()
    assert header.split(" | ")[4:9] == [
        "left / right",
        "up / down",
        "growing / shrinking",
        "mean (these pairs)",
        "clockwise / anticlockwise (hard)",
    ]
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells == ["+ MMB", "3", "60.0 ± 10.0", "65.0 ± 10.0", "90.0 ± 10.0", "90.0 ± 10.0",
                     "100.0 ± 0.0", "93.3 ± 3.3", "50.0 ± 10.0", "82.5 ± 0.0"]  # fmt: skip


def test_table_without_multiview_and_plan_order(tmp_path):
    fake_run(tmp_path / "a", 0.25, [0.5, 0.5, 0.5, 0.5])
    agg = ablation.aggregate([ablation.run_metrics(str(tmp_path / "a"))])
    table = ablation.summary_table([("clip", agg)], ["left / right"], [])
    assert "4x3" not in table
    assert table.splitlines()[2].startswith(
        "| CLIP (mean pooling, hand-crafted prompt) | 1 | 25.0 |"
    )
    # Rounds: every variant's i-th pretrained seed, then its i-th random seed, then round i + 1.
    runs = ablation.plan_runs("r", ["clip", "full"], [0, 1, 2], [5])
    assert [(r.backbone, r.variant, r.seed) for r in runs] == [
        ("pretrained", "clip", 0), ("pretrained", "full", 0), ("random", "clip", 5),
        ("random", "full", 5), ("pretrained", "clip", 1), ("pretrained", "full", 1),
        ("pretrained", "clip", 2), ("pretrained", "full", 2),
    ]  # fmt: skip
    assert runs[2].workdir == os.path.join("r", "random", "clip", "seed5")


def test_overrides_and_run_config_name_fields():
    parsed = ablation.parse_overrides(["train.num_steps=3", "data.dataset_dir=/x/y", "a.b=False"])
    assert parsed == {"train.num_steps": 3, "data.dataset_dir": "/x/y", "a.b": False}
    with pytest.raises(ValueError, match="field=value"):
        ablation.parse_overrides(["train.num_steps"])
    get_config = ablation.load_config_module(str(REPO_ROOT / "configs" / "demo.py"))
    with pytest.raises(ValueError, match="train.bogus.*'bogus'"):
        ablation.apply_overrides(get_config("full"), {"train.bogus": 1})
    # Every pretrained run freezes the same backbone, whatever its seed; random runs freeze none.
    configs = [
        ablation.run_config(
            get_config,
            ablation.Run("mmb", backbone, seed, "w"),
            "clip.msgpack",
            5,
            {"train.log_every_steps": 7},
        )  # fmt: skip
        for backbone in ("pretrained", "random")
        for seed in (0, 2)
    ]
    for c, seed in zip(configs, (0, 2, 0, 2)):
        assert c.seed == seed and c.train.num_epochs == 5 and c.train.log_every_steps == 7
        assert c.clip_source == "" and c.model.variant == "mmb"
    assert [c.clip_checkpoint for c in configs] == ["clip.msgpack"] * 2 + [""] * 2
    assert [c.allow_random_clip for c in configs] == [False, False, True, True]


@pytest.mark.slow
def test_driver_tiny_end_to_end(tmp_path):
    """Two variants, one seed, a few steps on a tiny dataset: the real trainer, then the docs."""
    from motion_clip_jax.convert.flax_file import save_clip

    backbone = str(tmp_path / "clip.msgpack")
    module, variables = random_tiny_clip()
    save_clip(backbone, module.config, variables["params"])
    root, docs = tmp_path / "runs", tmp_path / "docs"
    argv = [
        "--variants", "clip,baseline", "--seeds", "0", "--random_seeds", "1",
        "--root", str(root), "--docs", str(docs), "--clip_checkpoint", backbone,
        "--set", f"data.dataset_dir={tmp_path / 'data' / 'synthetic_motion'}",
        "--set", "data.source_settings.num_train=32",
        "--set", "data.source_settings.num_test=16",
        "--set", "model.num_frames=4", "--set", "model.motion_step=2",
        "--set", "train.batch_size=16", "--set", "train.num_steps=2",
        "--set", "eval.batch_size=16", "--set", "eval.multiview=False",
        "--set", "eval.confusion_png=False",
    ]  # fmt: skip
    assert ablation.main(argv) == 0

    runs = {(b, v): root / b / v / ("seed0" if b == "pretrained" else "seed1")
            for b in ("pretrained", "random") for v in ("clip", "baseline")}  # fmt: skip
    for (backbone_kind, _), workdir in runs.items():
        info = json.loads((workdir / "run_info.json").read_text())
        assert info["seed"] == (0 if backbone_kind == "pretrained" else 1)
        if backbone_kind == "pretrained":
            assert info["clip_checkpoint"] == backbone
        else:  # a random CLIP of the run's own (kept in the workdir by newer trainers)
            assert info["clip_checkpoint"] in ("", str(workdir / "random_clip.msgpack"))
        assert json.loads((workdir / "eval_results.json").read_text())["step"] == 2

    text = (docs / "ablation.md").read_text()
    pretrained, random_part = text.split("## Random-weight")[0], text.split("## Random-weight")[1]
    random_part = random_part.split("## Every run")[0]
    for section in (pretrained, random_part):
        rows = [
            line for line in section.splitlines() if line.startswith("| ") and "---" not in line
        ]
        assert [r.split(" | ")[0] for r in rows] == [
            "| variant",
            "| CLIP (mean pooling, hand-crafted prompt)",
            "| Baseline (spatial transformer)",
        ]
    # The table's numbers are the runs' own: top-1 of pretrained baseline, one seed.
    top1 = json.loads((runs["pretrained", "baseline"] / "eval_results.json").read_text())
    top1 = top1["main/single_view"]["top1"]
    row = next(r for r in pretrained.splitlines() if r.startswith("| Baseline ("))
    assert row.split(" | ")[2] == f"{100 * top1:.1f}"
    every = text.split("## Every run")[1]
    assert len(re.findall(r"^\| (pretrained|random) \| (clip|baseline) \|", every, re.M)) == 4
    assert ablation.NOTES_MARKER in text

    import matplotlib.image

    image = matplotlib.image.imread(docs / "ablation.png")
    assert image.ndim == 3 and image.shape[0] > 300 and image.shape[1] > 600

    # Notes under the marker survive a rerun; finished runs are skipped, not retrained.
    (docs / "ablation.md").write_text(text + "\nhand-written notes\n")
    mtime = os.path.getmtime(runs["pretrained", "baseline"] / "eval_results.json")
    assert ablation.main(argv) == 0
    assert os.path.getmtime(runs["pretrained", "baseline"] / "eval_results.json") == mtime
    again = (docs / "ablation.md").read_text()
    assert again.endswith("\nhand-written notes\n") and again.count(ablation.NOTES_MARKER) == 1
