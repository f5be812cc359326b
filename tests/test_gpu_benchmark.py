"""benchmarks/gpu.py runs without TensorFlow, tfds, clu or torch; its bfloat16 path vs float32."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np

from motion_clip_jax.core.class_prompts import class_prompt_tokens
from motion_clip_jax.models import model_config as config_lib
from motion_clip_jax.models import params as params_lib
from motion_clip_jax.models import video_clip as video_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BLOCKED = ("tensorflow", "tensorflow_datasets", "clu", "torch", "transformers")


def run_blocked(args, blocked=BLOCKED):
    """Runs benchmarks/gpu.py in a fresh interpreter where importing `blocked` fails."""
    code = (
        "import runpy, sys\n"
        f"for name in {tuple(blocked)!r}: sys.modules[name] = None  # import -> ImportError\n"
        f"sys.argv = ['benchmarks/gpu.py', *{list(args)!r}]\n"
        "runpy.run_path('benchmarks/gpu.py', run_name='__main__')\n"
    )
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900
    )


def test_gpu_benchmark_runs_without_tensorflow_tfds_clu(tmp_path):
    out = tmp_path / "gpu.json"
    args = ["--tiny", "--dtypes", "float32", "--batches", "2", "--classes", "3", "--frames", "4"]
    proc = run_blocked([*args, "--steps", "1", "--out", str(out)])
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["machine"].startswith("machine: ") and "GFLOP/s" in result["machine"]
    kinds = [(r["kind"], r["dtype"], r["batch"]) for r in result["rows"]]
    assert kinds == [("train", "float32", 2), ("inference", "float32", 2)]
    for r in result["rows"]:
        assert r["per_s"] > 0 and r["tflop_per_item"] > 0 and 0 < r["mfu"]
    assert "| train | float32 | 2 |" in proc.stdout  # the markdown table


def test_gpu_benchmark_names_a_missing_package():
    proc = run_blocked(["--tiny"], blocked=("ml_collections",))
    assert proc.returncode == 2
    assert "missing package 'ml_collections'" in proc.stderr
    assert "ml-collections==" in proc.stderr  # the pinned wheel to carry


def test_peak_table_lookup():
    sys.path.insert(0, ROOT)
    from benchmarks import gpu

    assert gpu.peak_tflops("NVIDIA H200", "bfloat16", 0)[0] == 989.0
    assert gpu.peak_tflops("NVIDIA H100 PCIe", "bfloat16", 0)[0] == 756.0  # longest key wins
    assert gpu.peak_tflops("NVIDIA H100 80GB HBM3", "float32", 0)[0] == 494.5
    assert gpu.peak_tflops("NVIDIA H200", "bfloat16", 700.0) == (700.0, "--peak_tflops flag")
    assert gpu.peak_tflops("cpu", "bfloat16", 0)[0] is None


# bfloat16 keeps 8 significant bits (relative rounding 2^-9 ~ 2e-3 per op). Measured on this
# tiny random model: max |logit_bf16 - logit_f32| = 0.018 at |logits| ~ 1.9 (2026-12-02); the bound
# leaves 2.7x headroom. It is non-vacuous: the float32 logits spread over > 4x the bound, so
# features scrambled or collapsed by a broken bf16 path would exceed it.
BF16_LOGIT_ATOL = 0.05


def test_bfloat16_logits_match_float32():
    overrides = dict(
        clip_model="tiny", clip_overrides=dict(vision_layers=1, transformer_layers=1),
        num_frames=4, motion_step=2,
    )  # fmt: skip
    config32 = config_lib.model_config("full", **overrides)
    config16 = config_lib.model_config("full", dtype="bfloat16", **overrides)
    model32, trainable, frozen = video_lib.init_video_clip(config32, 0)
    model16 = video_lib.build_model(config16)
    params = params_lib.merge_params(trainable, frozen)
    ids, eos = class_prompt_tokens(config32, ["run", "jump", "brush hair", "wave", "sit"])
    video = jax.random.normal(jax.random.PRNGKey(1), (3, 4, 32, 32, 3), jnp.float32)
    logits = {}
    for name, model in (("f32", model32), ("bf16", model16)):
        fn = jax.jit(lambda p, v, m=model: m.apply({"params": p}, v, ids, eos))
        logits[name] = np.asarray(fn(params, video), np.float32)
        hlo = fn.lower(params, video).as_text()
        assert ("bf16" in hlo) == (name == "bf16")  # the bf16 config really computes in bf16
    spread = logits["f32"].max() - logits["f32"].min()
    assert spread > 4 * BF16_LOGIT_ATOL, spread
    err = np.abs(logits["bf16"] - logits["f32"]).max()
    assert 0 < err <= BF16_LOGIT_ATOL, err
