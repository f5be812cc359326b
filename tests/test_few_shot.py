"""Few-shot draws: k per class, a pure function of (list, k, seed), written and read back, and
training on a drawn list."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest

from data_prep import few_shot_lists
from motion_clip_jax.data import few_shot_draw, pipeline, source
from motion_clip_jax.synthetic import world
from tests.configs.tiny_synthetic import DEFAULT_DATASET_DIR

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _train_list(num_classes: int = 5, per_class: int = 12) -> list[tuple[str, int, int]]:
    rng = np.random.default_rng(0)
    rows = [(f"c{c}/video_{i:03d}", c, 10) for c in range(num_classes) for i in range(per_class)]
    return [rows[i] for i in rng.permutation(len(rows))]


def _reference_draw(rows, k: int, seed: int) -> list[tuple[str, int]]:
    """The documented rule, written independently: per class, the k ids with the smallest
    BLAKE2b-128 digest of f"{seed}\\0{id}"."""
    drawn = []
    for label in sorted({r[1] for r in rows}):
        ids = [r[0] for r in rows if r[1] == label]
        digest = {
            v: hashlib.blake2b(f"{seed}\x00{v}".encode(), digest_size=16).digest() for v in ids
        }
        drawn += [(v, label) for v in sorted(ids, key=lambda v: (digest[v], v))[:k]]
    return drawn


@pytest.mark.parametrize("k", [1, 2, 4, 8, 12])
def test_draw_matches_reference_rule(k):
    rows = _train_list()
    for seed in range(3):
        drawn = few_shot_draw.draw_few_shot(rows, k, seed)
        assert drawn == _reference_draw(rows, k, seed)
        assert [label for _, label in drawn] == sorted([c for c in range(5)] * k)
        assert len({v for v, _ in drawn}) == 5 * k


def test_draw_is_pure_and_nested():
    rows = _train_list()
    shuffled = list(reversed(rows))
    assert few_shot_draw.draw_few_shot(rows, 4, 7) == few_shot_draw.draw_few_shot(shuffled, 4, 7)
    assert few_shot_draw.draw_few_shot(rows, 4, 7) != few_shot_draw.draw_few_shot(rows, 4, 8)
    two, four = few_shot_draw.draw_few_shot(rows, 2, 7), few_shot_draw.draw_few_shot(rows, 4, 7)
    assert set(two) <= set(four)
    draws = few_shot_draw.draw_many(rows, 2)
    assert sorted(draws) == list(range(10)) and len({tuple(d) for d in draws.values()}) == 10


def test_draw_is_the_same_in_another_interpreter():
    """No dependence on Python's per-process hash seed (PYTHONHASHSEED) or set order."""
    code = (
        "from motion_clip_jax.data import few_shot_draw\n"
        "rows = [(f'c{c}/video_{i:03d}', c) for c in range(5) for i in range(12)]\n"
        "print(few_shot_draw.draw_few_shot(rows, 3, 11))\n"
    )
    outputs = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONPATH": REPO_ROOT, "PYTHONHASHSEED": hash_seed}
        result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                                text=True, check=True)  # fmt: skip
        outputs.add(result.stdout)
    rows = [(f"c{c}/video_{i:03d}", c) for c in range(5) for i in range(12)]
    assert outputs == {f"{few_shot_draw.draw_few_shot(rows, 3, 11)}\n"}


def test_too_few_videos_names_the_class():
    rows = [r for r in _train_list(per_class=5) if r[0] not in ("c2/video_000", "c2/video_001")]
    with pytest.raises(ValueError, match=r"class 2 'c two' has 3 training videos, fewer than k=4"):
        few_shot_draw.draw_few_shot(rows, 4, 0, class_names=["a", "b", "c two", "d", "e"])
    with pytest.raises(ValueError, match="class 5 has 0 training videos"):
        few_shot_draw.draw_few_shot(rows, 1, 0, num_classes=6)
    with pytest.raises(ValueError, match="appears twice"):
        few_shot_draw.draw_few_shot(rows + rows[:1], 1, 0)
    with pytest.raises(ValueError, match="k must be"):
        few_shot_draw.draw_few_shot(rows, 0, 0)


def test_list_files_round_trip(tmp_path):
    rows = _train_list()
    paths = few_shot_draw.write_draws(str(tmp_path), rows, dataset="toy", shots=(2, 4), seeds=range(3),
                                class_names=["a", "b", "c", "d", "e"])  # fmt: skip
    assert sorted(os.path.basename(p) for p in paths) == sorted(
        f"toy_{k}shot_seed{s}.txt" for k in (2, 4) for s in range(3)
    )
    path = str(tmp_path / "toy_4shot_seed1.txt")
    assert few_shot_draw.read_video_list(path) == few_shot_draw.draw_few_shot(rows, 4, 1)
    text = open(path).read()
    assert text.startswith("# few-shot draw of toy: k=4 per class, seed=1, 20 videos\n")
    (tmp_path / "bad.txt").write_text("# ok\nvideo_a 1\n")
    with pytest.raises(ValueError, match="bad.txt line 2"):
        few_shot_draw.read_video_list(str(tmp_path / "bad.txt"))


def test_check_disjoint():
    few_shot_draw.check_disjoint(["a", "b"], ["c"])
    with pytest.raises(ValueError, match="1 training videos are also evaluation videos"):
        few_shot_draw.check_disjoint(["a", "b"], ["b", "c"], " (split 1)")


def test_cli_draws_and_training_on_a_drawn_list(tmp_path):
    data_dir = world.write_synthetic_dataset(str(tmp_path), num_train=48, num_test=16,
                                                 num_shards=3)  # fmt: skip
    assert few_shot_lists.main(["--data_dir", data_dir, "--out_dir", str(tmp_path / "lists"),
                              "--shots", "2,4", "--seeds", "0-2"]) == 0  # fmt: skip
    lists = sorted(os.listdir(tmp_path / "lists"))
    assert lists == sorted(
        f"synthetic_motion_{k}shot_seed{s}.txt" for k in (2, 4) for s in range(3)
    )
    drawn = few_shot_draw.read_video_list(
        str(tmp_path / "lists" / "synthetic_motion_2shot_seed1.txt")
    )
    index = source.read_split_index(data_dir, "train")
    assert drawn == few_shot_draw.draw_few_shot(index, 2, 1)
    label_of = {video_id: label for video_id, label, _ in index}
    assert all(label_of[v] == label for v, label in drawn)

    options = pipeline.PipelineOptions(num_frames=8, crop_size=32, batch_size=8, flip=False)
    iterator = pipeline.make_train_iterator(
        data_dir, "train", options, process_index=0, process_count=1,
        video_ids=[v for v, _ in drawn],
    )  # fmt: skip
    assert iterator.num_local_examples == 16
    labels = np.concatenate([next(iterator)["label"] for _ in range(2)])  # one epoch
    assert sorted(labels.tolist()) == sorted(label for _, label in drawn)


def _reference_validation(rows, per_class: int, seed: int) -> list[tuple[str, int]]:
    """The documented rule, written independently: per class, the per_class ids with the LARGEST
    BLAKE2b-128 digest of f"{seed}\\0{id}" (ties by id), in rank order."""
    held_out = []
    for label in sorted({r[1] for r in rows}):
        ids = [r[0] for r in rows if r[1] == label]
        digest = {
            v: hashlib.blake2b(f"{seed}\x00{v}".encode(), digest_size=16).digest() for v in ids
        }
        held_out += [(v, label) for v in sorted(ids, key=lambda v: (digest[v], v))[-per_class:]]
    return held_out


def test_validation_videos_are_held_out_of_every_draw_of_the_seed():
    rows = _train_list(per_class=12)
    for seed in range(3):
        held_out = few_shot_draw.draw_validation(rows, 3, seed, k=9)
        assert held_out == _reference_validation(rows, 3, seed)
        assert few_shot_draw.draw_validation(rows, 3, seed, k=1) == held_out  # the same for every k
        for k in (1, 2, 4, 9):
            drawn = few_shot_draw.draw_few_shot(rows, k, seed)
            assert not {v for v, _ in drawn} & {v for v, _ in held_out}
    assert few_shot_draw.draw_validation(rows, 3, 0, k=2) != few_shot_draw.draw_validation(
        rows, 3, 1, k=2
    )
    with pytest.raises(ValueError, match=r"class 0 'a' has 12 training videos, fewer than "
                       r"k=10 \+ 3 validation videos"):  # fmt: skip
        few_shot_draw.draw_validation(rows, 3, 0, k=10, class_names="abcde")
    with pytest.raises(ValueError, match="validation videos per class must be >= 1"):
        few_shot_draw.draw_validation(rows, 0, 0, k=2)


def test_a_few_shot_run_evaluates_its_held_out_validation_videos(tmp_path):
    """The 'validation' set is the listed held-out training videos (not the test split), its
    metrics are written beside the test set's, and the feature cache gives the same numbers."""
    from motion_clip_jax.train import data_input, trainer
    from motion_clip_jax.train.config import validate_config

    from .conftest import tiny_config

    config = tiny_config(DEFAULT_DATASET_DIR)  # the session's shared tiny dataset
    config.data.few_shot_k, config.data.few_shot_seed = 2, 1
    config.eval.validation_per_class = 3  # 48 train videos: 6 per class = k + 3 + 1 spare
    config.train.num_steps = 2
    workdir = str(tmp_path / "run")
    results = trainer.train_and_evaluate(config, workdir)

    dataset = data_input.prepare_dataset(config, workdir)
    index = source.read_split_index(dataset.dataset_dir, "train")
    expected = few_shot_draw.draw_validation(index, 3, 1, k=2, num_classes=8)
    listed = few_shot_draw.read_video_list(os.path.join(workdir, "validation_3per_class_seed1.txt"))
    assert listed == expected and dataset.validation_video_ids == [v for v, _ in expected]
    drawn = few_shot_draw.read_video_list(os.path.join(workdir, "few_shot_2shot_seed1.txt"))
    assert not {v for v, _ in drawn} & {v for v, _ in listed}
    # The evaluation stream holds exactly those training records.
    validation = data_input.validation_dataset(dataset)
    positions = np.concatenate([
        b["index"][b["mask"]] for b in data_input.eval_iterator(config, validation, False)
    ])  # fmt: skip
    assert sorted(index[p][0] for p in positions) == sorted(v for v, _ in expected)
    assert results["validation/single_view"]["num_videos"] == 24
    assert results["main/single_view"]["num_videos"] == 16  # the test split, as before

    cached = config.copy_and_resolve_references()
    cached.eval.feature_cache_dir = str(tmp_path / "cache")
    os.remove(os.path.join(workdir, "eval_results.json"))
    again = trainer.train_and_evaluate(cached, workdir)  # trained: evaluates from the cache
    assert len(os.listdir(tmp_path / "cache")) == 2  # test and validation: two entries
    for name in ("main/single_view", "validation/single_view"):
        assert again[name]["top1"] == results[name]["top1"]
        np.testing.assert_array_equal(
            again[name]["confusion_matrix"], results[name]["confusion_matrix"]
        )

    closed = config.copy_and_resolve_references()
    closed.data.few_shot_k = 0
    with pytest.raises(ValueError, match=r"eval.validation_per_class=3: needs data.few_shot_k"):
        validate_config(closed)
