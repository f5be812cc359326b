"""The dry run's memory plan (motion_clip_jax/train/memory_plan.py) on the tiny config: no dataset
and no CLIP checkpoint read, only the plan file written, the figure falls with micro-batches."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from motion_clip_jax.train import memory_plan

from .conftest import REPO_ROOT, tiny_config


def test_dry_run_needs_no_data_and_writes_only_the_plan(tmp_path):
    missing = tmp_path / "no_dataset_here"
    workdir = tmp_path / "workdir"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "motion_clip_jax.main",
            f"--config=tests/configs/tiny_synthetic.py:{missing}",
            f"--workdir={workdir}",
            "--dry_run",
            "--config.train.batch_size=16",
            "--config.train.grad_accum_steps=2",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "memory per device: " in out.stdout
    assert "in 2 micro-batch(es) of 8" in out.stdout
    assert not missing.exists()  # the data source did not run
    assert sorted(os.listdir(workdir)) == ["memory_plan.json"]
    with open(workdir / "memory_plan.json") as f:
        plan = json.load(f)
    assert plan["grad_accum_steps"] == 2 and plan["num_classes"] == 8
    assert plan["train_step"]["temporaries"] > 0 and plan["train_step"]["flops"] > 0


@pytest.mark.slow
def test_the_figure_falls_as_micro_batches_grow(tmp_path):
    config = tiny_config(str(tmp_path / "no_dataset_here"))
    config.train.batch_size = 16
    config.eval.batch_size = 2
    totals = []
    for n in (1, 4):  # micro-batches of 16 and of 4
        config.train.grad_accum_steps = n
        plan = memory_plan.run_plan(config, str(tmp_path / f"n{n}"))
        totals.append(plan["train_step"]["total"])
        # The figure is the step's arguments (frozen CLIP, state, batch), outputs and temporaries.
        step = plan["train_step"]
        assert step["total"] >= step["arguments"] + step["temporaries"] - step["aliased"]
    assert totals[0] > totals[1], totals
