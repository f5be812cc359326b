"""Kill-and-resume: SIGKILL at a random step and during a checkpoint save, or SIGTERM (preemption)
at a random moment; rerun the same command, and the final params equal (bitwise, CPU) those of a
run that was never interrupted."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.configs.tiny_synthetic import DEFAULT_DATASET_DIR

from .conftest import REPO_ROOT, restore_train_state, xla_env

CONFIG = "tests/configs/tiny_synthetic.py"
NUM_STEPS = 30  # checkpoints every 3 steps


def main_command(workdir, dataset_dir, kill_during_save=None, overrides=()):
    """The trainer's command line; with kill_during_save=STEP, a wrapper that SIGKILLs itself
    while the checkpoint of STEP is being written (tests/scripts/kill_during_save.py)."""
    if kill_during_save is None:
        launcher = [sys.executable, "-m", "motion_clip_jax.main"]
    else:
        launcher = [sys.executable, "tests/scripts/kill_during_save.py", str(kill_during_save)]
    return [
        *launcher,
        f"--config={CONFIG}:{dataset_dir}",
        f"--workdir={workdir}",
        "--config.eval.single_view=False",
        f"--config.train.num_steps={NUM_STEPS}",
        *overrides,
    ]


def run(workdir, dataset_dir, kill_during_save=None, timeout=600, overrides=(), env=None):
    return subprocess.run(
        main_command(workdir, dataset_dir, kill_during_save, overrides),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def final_params(workdir, step=NUM_STEPS):
    """Every leaf of the saved train state (params, optimizer state, step) at `step`."""
    state = restore_train_state(workdir, step)
    return state, int(state["['step']"])


def complete_steps(workdir):
    ckpt = os.path.join(workdir, "checkpoints")
    if not os.path.isdir(ckpt):
        return []
    return sorted(int(n) for n in os.listdir(ckpt) if n.isdigit())


def signal_after_checkpoint(
    workdir, dataset_dir, signum, after=0
) -> tuple[subprocess.Popen, float]:
    """Starts (or resumes) the trainer, waits for a complete checkpoint past step `after`, then
    sends `signum` after a random delay (so at a random step) -> (the process, the delay)."""
    proc = subprocess.Popen(
        main_command(workdir, dataset_dir),
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if complete_steps(workdir) and complete_steps(workdir)[-1] > after:
            break
        time.sleep(0.05)
    delay = np.random.default_rng().uniform(0, 0.5)
    time.sleep(delay)
    proc.send_signal(signum)
    return proc, delay


@pytest.mark.slow
def test_kill_and_resume_is_bitwise_exact(tmp_path):
    """One run interrupted three ways in turn, each start resuming the last: SIGKILL at a random
    step, SIGKILL while a checkpoint is written, SIGTERM (preemption) at a random moment; the
    last start ends bitwise where an uninterrupted run ends."""
    dataset_dir = DEFAULT_DATASET_DIR  # the session's shared tiny dataset (written once)
    reference = tmp_path / "uninterrupted"
    out = run(reference, dataset_dir)
    assert out.returncode == 0, out.stderr[-3000:]
    expected, step = final_params(reference)
    assert step == NUM_STEPS

    workdir = tmp_path / "interrupted"
    # 1. SIGKILL at a random moment after the first checkpoint is complete.
    proc, delay = signal_after_checkpoint(workdir, dataset_dir, signal.SIGKILL)
    proc.communicate(timeout=300)
    killed_at = complete_steps(workdir)
    assert killed_at and killed_at[-1] < NUM_STEPS, (killed_at, delay)

    # 2. Resume, and die in the middle of writing the next checkpoint.
    next_save = (killed_at[-1] // 3 + 1) * 3
    out = run(workdir, dataset_dir, kill_during_save=next_save)
    assert out.returncode == -signal.SIGKILL, out.stderr[-3000:]
    resumed_at = complete_steps(workdir)[-1]
    assert resumed_at < next_save  # the half-written one does not count

    # 3. Resume; preemption: SIGTERM at a random moment saves a checkpoint where it stops and
    # exits 143.
    proc, _ = signal_after_checkpoint(workdir, dataset_dir, signal.SIGTERM, after=resumed_at)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 143, (proc.returncode, stderr[-3000:])
    assert f"Resumed from step {resumed_at}" in stdout
    stopped = int(re.search(r"Preempted \(SIGTERM\): checkpoint saved at step (\d+)", stdout)[1])
    assert stopped < NUM_STEPS and complete_steps(workdir)[-1] == stopped, stdout[-2000:]
    assert "Traceback" not in stderr

    # 4. Resume to the end.
    out = run(workdir, dataset_dir)
    assert out.returncode == 0, out.stderr[-3000:]
    assert f"Resumed from step {stopped}" in out.stdout
    got, step = final_params(workdir)
    assert step == NUM_STEPS
    assert set(got) == set(expected)
    for key in expected:
        assert np.array_equal(got[key], expected[key]), key


@pytest.mark.slow
def test_resume_with_gradient_accumulation_is_bitwise_exact(tmp_path):
    """2 micro-batches per step: killed while saving step 6, resumed, the step-12 state equals an
    uninterrupted run's bitwise; config.json, run_info.json and the log state N and its size."""
    dataset_dir = DEFAULT_DATASET_DIR  # the session's shared tiny dataset (written once)
    overrides = ("--config.train.grad_accum_steps=2", "--config.train.num_steps=12")
    reference = tmp_path / "uninterrupted"
    out = run(reference, dataset_dir, overrides=overrides)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "global batch 8, 2 micro-batches of 4" in out.stdout
    assert re.search(r"step 12/12: loss .* steps/s, 2 micro-batches of 4", out.stdout)
    with open(reference / "config.json") as f:
        assert json.load(f)["train"]["grad_accum_steps"] == 2
    with open(reference / "run_info.json") as f:
        record = json.load(f)["train_batch"]
    assert record == {"batch_size": 8, "grad_accum_steps": 2, "micro_batch_size": 4}
    expected, _ = final_params(reference, 12)

    workdir = tmp_path / "interrupted"
    out = run(workdir, dataset_dir, kill_during_save=6, overrides=overrides)
    assert out.returncode == -signal.SIGKILL, out.stderr[-3000:]
    assert complete_steps(workdir)[-1] == 3
    out = run(workdir, dataset_dir, overrides=overrides)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Resumed from step 3" in out.stdout
    got, step = final_params(workdir, 12)
    assert step == 12 and set(got) == set(expected)
    for key in expected:
        assert np.array_equal(got[key], expected[key]), key


@pytest.mark.slow
def test_resume_with_the_training_feature_cache_on_8_devices(tmp_path):
    """A (data 4, model 2) mesh of 8 CPU devices with the training feature cache: killed while
    saving step 6 and resumed (the clips written before the kill are read back), the step-12
    state equals an uninterrupted cached run's bitwise. (That a cached run ends where a plain one
    ends is tested in tests/test_train_feature_cache.py, on one device.)"""
    env = xla_env(fake_devices=8)
    dataset_dir = DEFAULT_DATASET_DIR
    overrides = ("--config.train.num_steps=12", "--config.mesh.model=2")
    reference = tmp_path / "uninterrupted"
    cached = (*overrides, f"--config.train.feature_cache_dir={tmp_path / 'cache_a'}")
    out = run(reference, dataset_dir, overrides=cached, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "mesh {'data': 4, 'model': 2}" in out.stdout
    with open(reference / "eval_results.json") as f:
        counts = json.load(f)["train_feature_cache"]
    assert (counts["written"], counts["read"]) == (12 * 8, 0)
    expected, _ = final_params(reference, 12)

    workdir = tmp_path / "interrupted"
    cached = (*overrides, f"--config.train.feature_cache_dir={tmp_path / 'cache_b'}")
    out = run(workdir, dataset_dir, kill_during_save=6, overrides=cached, env=env)
    assert out.returncode == -signal.SIGKILL, out.stderr[-3000:]
    assert complete_steps(workdir)[-1] == 3
    out = run(workdir, dataset_dir, overrides=cached, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Resumed from step 3" in out.stdout
    with open(workdir / "eval_results.json") as f:
        counts = json.load(f)["train_feature_cache"]
    # Steps 3-5 ran before the kill: their clips are read, the rest written.
    assert (counts["read"], counts["written"]) == (3 * 8, 6 * 8)
    got, step = final_params(workdir, 12)
    assert step == 12 and set(got) == set(expected)
    for key in expected:
        assert np.array_equal(got[key], expected[key]), key
