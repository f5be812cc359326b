"""The train/eval engine in-process: config validation, NaN guard, few-shot runs, eval outputs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import jax
import ml_collections
import numpy as np
import pytest

from motion_clip_jax.data import manifest
from motion_clip_jax.experiments.summarize import summarize
from motion_clip_jax.train import data_input, trainer
from motion_clip_jax.train.config import base_config, validate_config
from motion_clip_jax.train.evaluate import classification_metrics, pair_accuracy
from tests.configs.tiny_synthetic import DEFAULT_DATASET_DIR

from .conftest import REPO_ROOT, load_config_file, restore_train_state, tiny_config


@pytest.fixture(scope="module")
def dataset_dir():
    return DEFAULT_DATASET_DIR  # the session's shared tiny dataset (written once)


def test_config_errors_name_the_field(tmp_path):
    c = base_config()
    c.data.dataset_dir = "somewhere"
    c.clip_checkpoint = str(tmp_path / "vit_b16.msgpack")
    with pytest.raises(ValueError, match=r"clip_checkpoint.*to-flax"):
        validate_config(c)
    c.allow_random_clip, c.clip_checkpoint = True, ""
    validate_config(c)  # now consistent


# One field of a valid config set wrong, and what the error must name.
BAD_FIELDS = [
    ({"data.dataset_dir": ""}, r"data.dataset_dir"),
    ({"train.bogus": 1}, r"unknown field.*train.bogus"),
    ({"model.motion_step": 9}, r"motion_step"),
    ({"optim.name": "lamb"}, r"optim.name"),
    ({"train.grad_accum_steps": 3}, r"grad_accum_steps=3.*divide train.batch_size=128"),
    ({"eval.extra.ucf": {"dataset_dir": "y", "split": "test"}}, r"eval.extra.ucf.*class_names"),
]


@pytest.mark.parametrize("fields, match", BAD_FIELDS)
def test_a_wrong_field_is_named(fields, match):
    config = base_config()
    config.allow_random_clip = True
    config.data.dataset_dir = "x"
    validate_config(config)  # valid before
    config.update_from_flattened_dict(fields)
    with pytest.raises(ValueError, match=match):
        validate_config(config)


def test_micro_batches_take_rows_of_every_shard_and_name_a_bad_split():
    from motion_clip_jax.train import mesh as mesh_lib
    from motion_clip_jax.train.steps import split_micro_batches

    mesh = mesh_lib.make_mesh(1, 1)
    rows = jax.numpy.arange(12.0)
    np.testing.assert_array_equal(split_micro_batches(rows, 3, mesh), rows.reshape(3, 4))
    with pytest.raises(ValueError, match=r"grad_accum_steps=5 must divide the per-shard batch 12"):
        split_micro_batches(rows, 5, mesh)


def test_providers_are_named_and_their_settings_checked():
    c = base_config()
    c.data.dataset_dir, c.allow_random_clip = "x", True
    c.data.source = "synthetic_moton"
    with pytest.raises(ValueError, match=r"^config.data.source='synthetic_moton': unknown provider; "
                       r"known: \['synthetic_motion'\] \(a provider package registers"):  # fmt: skip
        validate_config(c)
    c.data.source = "synthetic_motion"
    c.data.source_settings.num_trian = 3
    with pytest.raises(ValueError, match=r"data.source_settings: unknown setting.*num_trian"):
        validate_config(c)
    del c.data.source_settings["num_trian"]
    validate_config(c)
    c.clip_source = "tiny"
    with pytest.raises(ValueError, match=r"config.clip_source='tiny'.*synthetic_tiny_clip"):
        validate_config(c)
    # A named CLIP source stands in for clip_checkpoint.
    c.clip_source, c.allow_random_clip = "synthetic_tiny_clip", False
    c.clip_source_settings.cache_dir = "somewhere"
    validate_config(c)


def test_engine_does_not_import_the_synthetic_world():
    """The engine reaches the synthetic world by provider name only (train/providers.py)."""
    engine = REPO_ROOT / "motion_clip_jax" / "train"
    for path in engine.glob("*.py"):
        text = path.read_text()
        assert "import motion_clip_jax.synthetic" not in text, path
        assert "from motion_clip_jax.synthetic" not in text, path
        assert "from motion_clip_jax import synthetic" not in text, path
    code = (
        "import sys\n"
        "from motion_clip_jax.train import trainer, config\n"
        "c = config.base_config(); c.data.dataset_dir = 'x'; c.allow_random_clip = True\n"
        "config.validate_config(c)\n"
        "assert not [m for m in sys.modules if m.startswith('motion_clip_jax.synthetic')]\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True,
                         text=True, timeout=300)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]


def test_pair_metrics_come_from_the_manifest(tmp_path, dataset_dir):
    config = tiny_config(dataset_dir)
    dataset = data_input.prepare_dataset(config, str(tmp_path))
    assert dataset.class_pairs == [(0, 1), (2, 3), (4, 5), (6, 7)]
    # The same classes in a folder whose manifest records no pairs: no pair metrics.
    copy = tmp_path / "copy" / "1.0.0"
    shutil.copytree(dataset.dataset_dir, copy)
    info = manifest.read_manifest(str(copy))
    del info["class_pairs"]
    manifest.write_manifest(str(copy), info)
    config.data.source, config.data.dataset_dir = "", str(copy)
    assert data_input.prepare_dataset(config, str(tmp_path)).class_pairs == []


def test_main_refuses_unknown_override(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "motion_clip_jax.main", "--config=configs/demo.py",
         f"--workdir={tmp_path}", "--config.train.bogus_field=3"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode != 0
    assert "bogus_field" in out.stderr


def test_metrics_against_hand_counts():
    scores = np.array([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.5, 0.4, 0.1], [0.1, 0.2, 0.7]])
    labels = np.array([0, 1, 1, 0])
    m = classification_metrics(scores, labels, ["a", "b", "c"])
    assert m["top1"] == 0.5 and m["top5"] == 1.0
    assert m["per_class_accuracy"] == {"a": 0.5, "b": 0.5, "c": None}
    assert m["confusion_matrix"] == [[1, 0, 1], [1, 1, 0], [0, 0, 0]]
    pairs = pair_accuracy(scores, labels, [(0, 1)])
    assert pairs["0-1"] == 0.5  # videos 0 and 1 right, 2 and 3 wrong within the pair


def test_nan_guard_keeps_last_good_checkpoint(tmp_path, dataset_dir):
    config = tiny_config(dataset_dir)
    config.train.num_steps = 6
    config.eval.single_view = False
    workdir = str(tmp_path / "run")
    trainer.train_and_evaluate(config, workdir)
    good = restore_train_state(workdir, 6)

    # Continue the same run with an absurd learning rate: the loss turns NaN; nothing is saved.
    config.train.num_steps = 12
    config.optim.learning_rate = 1e36
    config.optim.warmup_steps = 0
    config.allow_config_change = True  # another experiment in this workdir, on purpose
    with pytest.raises(trainer.NonFiniteLossError, match=r"step \d+.*checkpoint \(step 6\)"):
        trainer.train_and_evaluate(config, workdir)
    steps = sorted(int(n) for n in os.listdir(os.path.join(workdir, "checkpoints")) if n.isdigit())
    assert steps[-1] == 6
    after = restore_train_state(workdir, 6)
    for key, value in good.items():
        assert np.array_equal(after[key], value), key
        assert np.all(np.isfinite(value)), key


def test_few_shot_run_writes_its_draw_and_results(tmp_path, dataset_dir):
    config = tiny_config(dataset_dir)
    config.data.few_shot_k = 2
    config.data.few_shot_seed = 3
    config.train.num_steps = 3
    config.eval.multiview = True
    config.eval.confusion_png = True
    # A zero-shot style extra evaluation set: its own folder, split and class-name file.
    label_file = tmp_path / "labels.txt"
    label_file.write_text("\n".join(f"class number {i}" for i in range(8)) + "\n")
    for split in (1, 2):
        config.eval.extra[f"other_split{split}"] = ml_collections.ConfigDict(
            dict(dataset_dir=dataset_dir, split="test", class_names=str(label_file))
        )
    workdir = tmp_path / "fewshot"
    results = trainer.train_and_evaluate(config, str(workdir))

    lines = (workdir / "few_shot_2shot_seed3.txt").read_text().splitlines()
    drawn = [line.split("\t") for line in lines if not line.startswith("#")]
    assert len(drawn) == 2 * 8  # k per class, 8 synthetic classes
    assert sorted(int(label) for _, label in drawn) == sorted(list(range(8)) * 2)

    saved = json.loads((workdir / "eval_results.json").read_text())
    # The train step padded the world's class suffixes per group: 2 of 3 tokens, 5 of 4, 1 of 6
    # (its parity with one group is tests/test_prefix_sharing.py's); the extra sets, of other
    # class names, were scored by their own steps.
    assert saved["train_suffix_groups"] == [[2, 3], [5, 4], [1, 6]]
    for view in ("main/single_view", "main/multiview"):
        assert saved[view]["num_videos"] == 16  # every test video exactly once
        assert saved[view]["top1"] == results[view]["top1"]
        assert set(saved[view]["pair_accuracy"]) == {"0-1", "2-3", "4-5", "6-7", "mean"}
        assert (workdir / f"confusion_main_{view.split('/')[1]}.png").stat().st_size > 1000
    multiview = saved["main/multiview"]  # both aggregations, named; top1 is the paper's
    assert multiview["top1"] == multiview["mean_over_views"]["top1"]
    assert len(multiview["mean_over_views"]["per_view_top1"]) == multiview["num_views"] == 12
    # The per-video confusion matrix is the summed scores' predictions: its diagonal is their top-1.
    confusion = np.asarray(multiview["confusion_matrix"])
    assert confusion.sum() == 16
    assert multiview["summed_scores"]["top1"] == np.trace(confusion) / 16
    for split in (1, 2):
        other = saved[f"other_split{split}/single_view"]
        assert other["num_videos"] == 16
        assert list(other["per_class_accuracy"]) == [f"class number {i}" for i in range(8)]
    summary = summarize([str(workdir)])  # over the splits of each set
    assert summary["other/single_view"]["n"] == 2
    assert summary["other/single_view"]["std"] == 0.0  # the same videos twice
    rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    train_rows = [r for r in rows if r["kind"] == "train"]
    assert [r["step"] for r in train_rows] == [3]
    assert {"loss", "accuracy", "learning_rate", "steps_per_second"} <= set(train_rows[0])


PAPER_CONFIGS = [
    ("hmdb_closed", "1"),
    ("hmdb_closed", "3,baseline"),
    ("ucf_closed", "2,mmb_map"),
    ("k400_closed", "validation"),
    ("few_shot", "hmdb51,2,0"),
    ("few_shot", "ucf101,16,9"),
    ("few_shot", "kinetics400,5,3"),
    ("zero_shot", "k400"),
    ("zero_shot", "hmdb"),
    ("zero_shot", "ucf"),
]


@pytest.mark.parametrize("name,arg", PAPER_CONFIGS)
def test_paper_configs_are_complete(name, arg):
    """Every paper setting's config validates; the only thing missing here is the CLIP file."""
    config = load_config_file(f"configs/{name}.py", arg)
    with pytest.raises(ValueError, match=r"clip_checkpoint.*to-flax"):
        validate_config(config)
    config.clip_checkpoint, config.allow_random_clip = "", True
    validate_config(config)
    assert config.model.clip_model == "vit_b16" and config.data.crop_size == 224


def test_demo_config_and_bad_arguments():
    sys.path.insert(0, str(REPO_ROOT))
    from configs import demo, few_shot, hmdb_closed

    validate_config(demo.get_config())
    for variant in ("clip", "baseline", "baseline_mcb", "mmb", "mmb_map", "full"):
        validate_config(demo.get_config(variant))
    for bad in (lambda: hmdb_closed.get_config("4"), lambda: few_shot.get_config("hmdb51,2")):
        with pytest.raises(ValueError, match=r"closed-set: split|few_shot: argument"):
            bad()
