"""Two processes (jax.distributed on localhost, CPU collectives) against one process."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import numpy as np
import pytest

from .conftest import REPO_ROOT, restore_train_state

CONFIG = "tests/configs/tiny_synthetic.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def trainable(workdir, step=12):
    state = restore_train_state(workdir, step)
    return {k: v.astype(np.float64) for k, v in state.items() if k.startswith("['trainable']")}


@pytest.mark.slow
def test_two_processes_match_one(tmp_path):
    dataset_dir = str(tmp_path / "data" / "synthetic_motion")
    reference = tmp_path / "one_process"
    out = subprocess.run(
        [
            sys.executable,
            "tests/scripts/emulated_two_hosts.py",
            CONFIG,
            dataset_dir,
            str(reference),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]

    workdir = tmp_path / "two_processes"
    port = free_port()
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "motion_clip_jax.main",
                f"--config={CONFIG}:{dataset_dir}",
                f"--workdir={workdir}",
                "--config.distributed.num_processes=2",
                f"--config.distributed.process_id={i}",
                f"--config.distributed.coordinator_address=127.0.0.1:{port}",
            ],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    outputs = [p.communicate(timeout=600) for p in procs]
    for p, (_stdout, stderr) in zip(procs, outputs):
        assert p.returncode == 0, stderr[-3000:]
    assert "2 process(es)" in outputs[0][0]

    got, expected = trainable(workdir), trainable(reference)
    assert set(got) == set(expected)
    a = np.concatenate([got[k].ravel() for k in expected])
    b = np.concatenate([expected[k].ravel() for k in expected])
    assert np.abs(a - b).max() / np.abs(b).max() < 1e-5

    # Evaluation: every test video counted once across the two processes; same predictions.
    results = [json.load(open(w / "eval_results.json")) for w in (workdir, reference)]
    view = results[0]["main/single_view"]
    assert view["num_videos"] == results[1]["main/single_view"]["num_videos"] == 16
    assert view["confusion_matrix"] == results[1]["main/single_view"]["confusion_matrix"]
