"""The README's main job (configs/demo.py) end to end through the real CLI, at a smaller size."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .conftest import REPO_ROOT


@pytest.mark.slow
def test_demo_end_to_end_small(tmp_path):
    command = [
        sys.executable, "-m", "motion_clip_jax.main", "--config=configs/demo.py",
        f"--workdir={tmp_path / 'demo'}",
        f"--config.tiny_clip_cache_dir={tmp_path / 'tiny_clip'}",
        "--config.tiny_clip_pretrain_steps=200",
        f"--config.data.dataset_dir={tmp_path / 'data' / 'synthetic_motion'}",
        "--config.data.synthetic_num_train=128",
        "--config.data.synthetic_num_test=64",
        "--config.train.num_epochs=4",
        "--config.train.log_every_steps=4",
        "--config.eval.batch_size=32",
    ]  # fmt: skip
    out = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-4000:]
    for expected in ("Writing the synthetic motion dataset", "pretrain_clip: wrote",
                     "Trainable parameters", "step 8/8", "Results after 8 steps",
                     "| main/multiview | 64 |", "moving left / moving right"):  # fmt: skip
        assert expected in out.stdout, (expected, out.stdout[-3000:])
    results = json.loads((tmp_path / "demo" / "eval_results.json").read_text())
    assert results["main/single_view"]["num_videos"] == 64
    assert 0 <= results["main/single_view"]["pair_accuracy"]["mean"] <= 1

    # The same command again: nothing to train, the cached data and CLIP are reused.
    again = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr[-4000:]
    assert "Resumed from step 8" in again.stdout
    assert (
        "Writing the synthetic" not in again.stdout and "pretrain_clip: wrote" not in again.stdout
    )
