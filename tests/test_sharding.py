"""The sharded train step on 8 fake CPU devices, (4, 2) mesh, against one device."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np

from .conftest import REPO_ROOT


def test_mesh_4x2_matches_one_device(tmp_path):
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8")
    out = subprocess.run(
        [
            sys.executable,
            "tests/scripts/sharded_steps.py",
            "--meshes",
            "1x1,4x2,8x1",
            "--steps",
            "3",
            "--out",
            str(tmp_path),
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    one = np.load(tmp_path / "1x1.npz")
    assert not one["sharded"]
    for spec in ("4x2", "8x1"):
        many = np.load(tmp_path / f"{spec}.npz")
        if spec == "4x2":
            assert many["sharded"], "frozen CLIP weights should be split over the model axis"
        assert set(many.files) == set(one.files)
        np.testing.assert_allclose(many["losses"], one["losses"], rtol=1e-5)
        assert one["losses"][-1] < one["losses"][0]  # the steps did train
        keys = [k for k in one.files if k not in ("losses", "sharded")]
        a = np.concatenate([many[k].ravel() for k in keys]).astype(np.float64)
        b = np.concatenate([one[k].ravel() for k in keys]).astype(np.float64)
        # Relative to the whole trainable tree: leaves whose gradient is exactly zero in theory
        # (an attention key bias) hold only rounding noise, where a per-leaf ratio means nothing.
        assert np.abs(a - b).max() / np.abs(b).max() < 1e-5, spec
        for k in keys:  # and per leaf, relative to the leaf's largest value
            err = np.abs(many[k].astype(np.float64) - one[k]).max()
            assert err <= 1e-5 * np.abs(one[k]).max() + 1e-7, (spec, k, err)
