"""Two processes (jax.distributed on localhost, CPU collectives) against one process, and
preemption: SIGTERM to one of the two processes stops both at the same step; rerunning resumes
and ends where one process ends."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.configs.tiny_synthetic import DEFAULT_DATASET_DIR, get_config

from .conftest import REPO_ROOT, restore_train_state

CONFIG = "tests/configs/tiny_synthetic.py"
NUM_STEPS = 24  # checkpoints every 3 steps
BATCH = get_config().train.batch_size  # global


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def trainable(workdir, step=NUM_STEPS):
    state = restore_train_state(workdir, step)
    return {k: v.astype(np.float64) for k, v in state.items() if k.startswith("['trainable']")}


@pytest.mark.slow
def test_two_processes_match_one(tmp_path):
    """Two processes with the training feature cache, SIGTERM to one of them at a random moment:
    both stop at one step with a checkpoint; rerun, they end where one process fed the same global
    batches ends (1e-5; CPU collectives sum in another order), and evaluate every test video once,
    alike. The one process reads every training clip's features from the cache the two wrote,
    each process its own rows. (That a resumed run is bitwise the uninterrupted one is
    tests/test_resume.py's, on one process; that a cached run ends where a plain one ends,
    tests/test_train_feature_cache.py's.)"""
    dataset_dir = DEFAULT_DATASET_DIR  # the session's shared tiny dataset (written once)
    cache_dir = tmp_path / "feature_cache"
    workdir = tmp_path / "two_processes"
    procs = two_processes(workdir, dataset_dir, f"--config.train.feature_cache_dir={cache_dir}")
    steps_dir = workdir / "checkpoints"
    deadline = time.time() + 300
    while time.time() < deadline and all(p.poll() is None for p in procs):
        if steps_dir.is_dir() and any(n.isdigit() for n in os.listdir(steps_dir)):
            break
        time.sleep(0.05)
    time.sleep(np.random.default_rng().uniform(0, 0.2))
    procs[1].send_signal(signal.SIGTERM)
    outputs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [143, 143], [o[1][-2000:] for o in outputs]
    assert "2 process(es)" in outputs[0][0]
    stopped = re.search(r"checkpoint saved at step (\d+)", outputs[0][0])
    assert stopped and int(stopped[1]) < NUM_STEPS, outputs[0][0][-2000:]
    procs = two_processes(workdir, dataset_dir, f"--config.train.feature_cache_dir={cache_dir}")
    outputs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outputs]
    assert f"Resumed from step {stopped[1]}" in outputs[0][0]
    counts = json.load(open(workdir / "eval_results.json"))["train_feature_cache"]
    # The resumed start trains the steps after the checkpoint: new clips, each written once.
    steps_left = NUM_STEPS - int(stopped[1])
    assert (counts["read"], counts["written"]) == (0, steps_left * BATCH), counts

    reference = tmp_path / "one_process"
    out = subprocess.run(
        [sys.executable, "tests/scripts/emulated_two_hosts.py", CONFIG, dataset_dir,
         str(reference), str(NUM_STEPS), str(cache_dir)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    counts = json.load(open(reference / "eval_results.json"))["train_feature_cache"]
    assert (counts["read"], counts["written"], counts["tower_clips"]) == (NUM_STEPS * BATCH, 0, 0)

    got, expected = trainable(workdir), trainable(reference)
    assert set(got) == set(expected)
    a = np.concatenate([got[k].ravel() for k in expected])
    b = np.concatenate([expected[k].ravel() for k in expected])
    assert np.abs(a - b).max() / np.abs(b).max() < 1e-5
    # A resume that replayed or skipped a batch would be far outside: the last three steps, at
    # the schedule's smallest rates, move the parameters by 1.3e-3 of the largest (measured).
    # Evaluation: every test video counted once across the two processes; same predictions.
    results = [json.load(open(w / "eval_results.json")) for w in (workdir, reference)]
    view = results[0]["main/single_view"]
    assert view["num_videos"] == results[1]["main/single_view"]["num_videos"] == 16
    assert view["confusion_matrix"] == results[1]["main/single_view"]["confusion_matrix"]


def test_two_processes_refuse_a_locked_workdir_together(tmp_path):
    """Process 0 takes the workdir lock and broadcasts its decision: on a workdir held by a live
    trainer (another host, recent heartbeat), both processes stop with the line naming it."""
    workdir = tmp_path / "locked"
    workdir.mkdir()
    holder = {"host": "tpu-host-3", "pid": 77, "started": "2026-12-06T09:00:00+00:00",
              "heartbeat": time.time() + 3600, "token": "t", "process_start": ""}  # fmt: skip
    (workdir / "trainer.lock").write_text(json.dumps(holder))
    procs = two_processes(workdir, str(tmp_path / "no_data_needed"))
    outputs = [p.communicate(timeout=600) for p in procs]
    for p, (_stdout, stderr) in zip(procs, outputs):
        errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
        assert p.returncode == 1 and len(errors) == 1, stderr[-3000:]
        assert "in use by another trainer (host tpu-host-3, pid 77, started 2026-12-06" in errors[0]
    assert os.listdir(workdir) == ["trainer.lock"]


def two_processes(workdir, dataset_dir, *overrides: str) -> list[subprocess.Popen]:
    """The trainer as two local processes (jax.distributed on localhost), started."""
    port = free_port()
    return [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "motion_clip_jax.main",
                f"--config={CONFIG}:{dataset_dir}",
                f"--workdir={workdir}",
                f"--config.train.num_steps={NUM_STEPS}",
                "--config.distributed.num_processes=2",
                f"--config.distributed.process_id={i}",
                f"--config.distributed.coordinator_address=127.0.0.1:{port}",
                *overrides,
            ],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
