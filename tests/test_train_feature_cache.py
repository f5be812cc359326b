"""The training feature cache (train/train_features.py): a cached run ends where the plain run
ends, a second variant on the same draw reads every clip and adds nothing, and a damaged or
mismatched entry is refused by name and recomputed."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from motion_clip_jax.train import trainer
from tests.configs.tiny_synthetic import DEFAULT_DATASET_DIR, tiny_model_config

from .conftest import restore_train_state, tiny_config

NUM_STEPS = 4  # a 2-shot draw of 8 classes: 16 videos, 2 steps per epoch, 2 epochs


def config_for(cache_dir: str = "", variant: str = "mmb"):
    config = tiny_config(DEFAULT_DATASET_DIR)  # the session's shared tiny dataset
    config.model = tiny_model_config(variant)
    config.data.few_shot_k = 2
    config.train.num_steps = NUM_STEPS
    config.eval.single_view = False
    config.train.feature_cache_dir = cache_dir
    return config


def cache_files(cache_dir) -> list[str]:
    return sorted(
        os.path.join(root, name) for root, _, names in os.walk(cache_dir) for name in names
    )


@pytest.fixture(scope="module")
def first_runs(tmp_path_factory):
    """The MMB variant trained without the cache and with an empty one -> (root, results)."""
    root = tmp_path_factory.mktemp("train_cache")
    plain = trainer.train_and_evaluate(config_for(), str(root / "plain"))
    cached = trainer.train_and_evaluate(config_for(str(root / "cache")), str(root / "cached"))
    return root, plain, cached


def test_a_cached_run_ends_where_the_plain_run_ends(first_runs):
    root, plain, cached = first_runs
    clips = NUM_STEPS * 8
    assert plain["train_tower_clips"] == clips and "train_feature_cache" not in plain
    counts = cached["train_feature_cache"]
    assert (counts["written"], counts["read"], counts["refused"]) == (clips, 0, 0)
    assert cached["train_tower_clips"] == clips
    assert len(cache_files(root / "cache")) == clips  # one file per clip, no temp file left
    expected = restore_train_state(root / "plain", NUM_STEPS)
    got = restore_train_state(root / "cached", NUM_STEPS)
    assert set(got) == set(expected)
    for key in expected:  # the tower ran in its own step: float tolerance, not bits
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-5, atol=1e-6, err_msg=key)


def test_a_second_variant_reads_every_clip_and_a_bad_entry_is_refused(first_runs, capsys):
    root, _, _ = first_runs
    cache_dir = root / "cache"
    before = cache_files(cache_dir)
    other = trainer.train_and_evaluate(
        config_for(str(cache_dir), "baseline"), str(root / "baseline")
    )
    counts = other["train_feature_cache"]
    assert (counts["written"], counts["read"], counts["tower_clips"]) == (0, NUM_STEPS * 8, 0)
    assert cache_files(cache_dir) == before  # nothing added

    # One entry truncated, another replaced by a third's file (recorded for another clip).
    truncated, replaced, source = before[0], before[1], before[2]
    with open(truncated, "rb") as f:
        data = f.read()
    with open(truncated, "wb") as f:
        f.write(data[:-50])
    shutil.copy(source, replaced)
    capsys.readouterr()
    again = trainer.train_and_evaluate(
        config_for(str(cache_dir), "baseline"), str(root / "baseline_again")
    )
    log = capsys.readouterr().out
    for path, why in ((truncated, "unreadable or truncated"), (replaced, "another key")):
        (line,) = [line for line in log.splitlines() if path in line]
        assert why in line and "refused" in line and "recomputing" in line
    counts = again["train_feature_cache"]
    assert (counts["refused"], counts["written"]) == (2, 2)
    assert counts["read"] == NUM_STEPS * 8 - 2
    assert cache_files(cache_dir) == before


def test_a_finished_run_started_again_evaluates_with_the_cache_on(first_runs):
    """No step left to train, a set to evaluate (the paper driver evaluates a shared model again
    on other sets): the cache has no clip to load, the evaluation runs."""
    root, _, _ = first_runs
    config = config_for(str(root / "cache"))
    config.eval.single_view = True
    again = trainer.train_and_evaluate(config, str(root / "cached"))
    assert again["step"] == NUM_STEPS and again["main/single_view"]["num_videos"] == 16
