"""What each layer may import: the core is framework-free, the PyTorch model needs no JAX, the
Flax model with its train/eval steps needs no TensorFlow (a GPU image with JAX alone runs them), and
the engine and the paper driver load nothing of the synthetic world until a config names it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .conftest import REPO_ROOT

FRAMEWORKS = ("jax", "jaxlib", "flax", "optax", "tensorflow", "tensorflow_datasets", "torch")

# A layer's modules, the frameworks it must not load, and calls that must not load them lazily.
CASES = {
    "core": (
        [
            "motion_clip_jax.core.model_spec",
            "motion_clip_jax.core.clip_spec",
            "motion_clip_jax.core.video_spec",
            "motion_clip_jax.core.tokenizer",
            "motion_clip_jax.core.class_prompts",
            "motion_clip_jax.core.classnames",
            "motion_clip_jax.core.json_file",
            "motion_clip_jax.core.error_text",
        ],
        FRAMEWORKS + ("ml_collections", "av"),
        "m = sys.modules; m['motion_clip_jax.core.tokenizer'].tokenize('a video');"
        " m['motion_clip_jax.core.classnames'].load_classnames('ucf101')",
    ),
    "pytorch": (
        ["motion_clip_jax.pytorch.model", "motion_clip_jax.pytorch.predict"],
        ("jax", "jaxlib", "flax", "optax", "tensorflow", "tensorflow_datasets"),
        "",
    ),
    # The engine and Table 3 reach the synthetic world only through providers a config names.
    "engine": (
        [
            "motion_clip_jax.train.trainer",
            "motion_clip_jax.train.launch",
            "motion_clip_jax.experiments.cost_table",
            "motion_clip_jax.experiments.paper",
        ],
        ("motion_clip_jax.synthetic",),
        "",
    ),
    "flax": (
        ["motion_clip_jax.models.video_clip", "motion_clip_jax.train.steps"],
        ("tensorflow", "tensorflow_datasets", "torch", "clu"),
        "",
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_layer_imports_only_what_it_may(name):
    modules, forbidden, calls = CASES[name]
    code = (
        "import importlib, json, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        f"{calls}\n"
        f"print(json.dumps(sorted(m for m in {list(forbidden)!r} if m in sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.splitlines()[-1]) == [], f"{name} layer loaded forbidden modules"
