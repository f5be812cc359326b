"""The README's main job (configs/demo.py) end to end through the real CLI, at a smaller size.

Running it again reuses the dataset and the tiny CLIP and resumes: each part has its own test
(tests/test_synthetic.py: the provider; tests/test_pretrain_clip.py: the CLIP cache;
tests/test_resume.py: the rerun), so this one starts the command once."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from .conftest import REPO_ROOT


@pytest.mark.slow
def test_demo_end_to_end_small(tmp_path):
    command = [
        sys.executable, "-m", "motion_clip_jax.main", "--config=configs/demo.py",
        f"--workdir={tmp_path / 'demo'}",
        f"--config.clip_source_settings.cache_dir={tmp_path / 'tiny_clip'}",
        "--config.clip_source_settings.pretrain_steps=20",
        f"--config.data.dataset_dir={tmp_path / 'data' / 'synthetic_motion'}",
        "--config.data.source_settings.num_train=128",
        "--config.data.source_settings.num_test=32",
        "--config.train.num_epochs=4",
        "--config.train.log_every_steps=4",
        "--config.eval.batch_size=32",
    ]  # fmt: skip
    out = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-4000:]
    for expected in ("Writing the synthetic motion dataset", "pretrain_clip: wrote",
                     "Trainable parameters", "step 8/8", "Results after 8 steps",
                     "| main/multiview | 32 |", "moving left / moving right"):  # fmt: skip
        assert expected in out.stdout, (expected, out.stdout[-3000:])
    # This world and this recipe: the dataset and the cached CLIP carry their versions.
    from motion_clip_jax.data import manifest
    from motion_clip_jax.synthetic import pretrain_clip, world

    dataset = tmp_path / "data" / "synthetic_motion" / "1.0.0"
    assert manifest.read_manifest(str(dataset))["options"]["world_version"] == world.WORLD_VERSION
    versions = f"tiny_clip-r{pretrain_clip.RECIPE_VERSION}w{world.WORLD_VERSION}-"
    assert [p.name for p in (tmp_path / "tiny_clip").glob(versions + "*.msgpack")]
    results = json.loads((tmp_path / "demo" / "eval_results.json").read_text())
    single = results["main/single_view"]
    assert single["num_videos"] == 32
    pairs = single["pair_accuracy"]  # the order pairs the synthetic manifest records
    assert set(pairs) == {"0-1", "2-3", "4-5", "6-7", "mean"}
    assert pairs["mean"] == pytest.approx(np.mean([pairs[k] for k in pairs if k != "mean"]))
    confusion = np.array(single["confusion_matrix"])
    for key in ("0-1", "2-3", "4-5", "6-7"):
        a, b = (int(i) for i in key.split("-"))
        videos = confusion[[a, b]].sum()
        # An 8-way hit is a within-pair hit; a video taken for its partner is a within-pair miss.
        assert (confusion[a, a] + confusion[b, b]) / videos <= pairs[key] + 1e-9
        assert pairs[key] <= 1 - (confusion[a, b] + confusion[b, a]) / videos + 1e-9
        assert f"{pairs[key]:.2f}" in out.stdout  # the printed table shows it
