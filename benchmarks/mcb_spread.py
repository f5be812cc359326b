"""Does the MCB make the classes alike? Feature norms and class-cosine spread before / after it.

    python -m benchmarks.mcb_spread --clip data/tiny_clip/<file>.msgpack WORKDIR[:init] ...

For each trained synthetic-world run (its newest checkpoint; `:init` for the same model at its
initialisation instead), on 160 fresh clips of the world (seed 777, none of the train or test
clips): the mean |T_k| (text features before the MCB), |V| (video), |T'_k| and |V'| (after), the
spread over the K classes of cos(T_k, V) and of cos(T'_k, V') (std and max - min, mean over
clips; the logits are these cosines / tau), the mean pairwise cosine of the K text features
before and after, the top-1 of each cosine, and the mean |g| of each MCB gate. A spread that
falls by an order of magnitude across the MCB means its residual made the classes alike
(docs/results.md, "The MCB form"). `--clip` names the frozen CLIP (a run records its absolute
path, which may have moved).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import jax
import ml_collections
import numpy as np

from motion_clip_jax.convert.flax_file import load_clip
from motion_clip_jax.core import model_spec, video_spec
from motion_clip_jax.core.class_prompts import class_prompt_tokens
from motion_clip_jax.inference.restore import restore_trainable
from motion_clip_jax.models.video_clip import VideoCLIP, build_model, init_trainable
from motion_clip_jax.synthetic.world import CLASS_NAMES, make_motion_clips


def _cosines(text: np.ndarray, video: np.ndarray) -> np.ndarray:
    """text (B, K, D), video (B, D) -> cos (B, K)."""
    t = text / np.linalg.norm(text, axis=-1, keepdims=True)
    v = video / np.linalg.norm(video, axis=-1, keepdims=True)
    return np.einsum("bkd,bd->bk", t, v)


def _pairwise(text: np.ndarray) -> float:
    """Mean cosine between the K text features of a clip, over pairs and clips."""
    t = text / np.linalg.norm(text, axis=-1, keepdims=True)
    gram, k = np.einsum("bkd,bjd->bkj", t, t), text.shape[1]
    return float(((gram.sum((1, 2)) - k) / (k * (k - 1))).mean())


def measure(workdir: str, clip_params: dict, video: np.ndarray, labels: np.ndarray) -> dict:
    """The numbers of the module docstring for one run (`workdir`, or `workdir:init`)."""
    at_init = workdir.endswith(":init")
    workdir = workdir.removesuffix(":init")
    with open(os.path.join(workdir, "run_info.json")) as f:
        fields = model_spec.upgrade_record(json.load(f)["model_config"])
    config = ml_collections.ConfigDict(fields)
    model = build_model(config)
    steps = [int(s) for s in os.listdir(os.path.join(workdir, "checkpoints")) if s.isdigit()]
    if at_init:
        trainable, step = init_trainable(model, jax.random.PRNGKey(0)), 0
    else:
        step = max(steps)
        trainable = restore_trainable(workdir, step)
    ids, eos = class_prompt_tokens(config, list(CLASS_NAMES))
    params = {"clip": clip_params, **trainable}
    frames = model.apply({"params": params}, video, method=VideoCLIP.encode_frames)
    run = lambda p, f: model.apply({"params": p}, f, ids, eos, method=VideoCLIP.intermediates)
    out = {k: None if v is None else np.asarray(v) for k, v in jax.jit(run)(params, frames).items()}
    v = out["V"]
    t = np.broadcast_to(out["T"], (len(v), *out["T"].shape[-2:]))
    t2 = t if out.get("T_prime") is None else np.broadcast_to(out["T_prime"], t.shape)
    v2 = v if out.get("V_prime") is None else out["V_prime"]
    before, after = _cosines(t, v), _cosines(t2, v2)
    gates = {
        name: float(np.abs(leaf["residual_scale"]).mean())
        for name, leaf in trainable.get("mcb", {}).items()
        if "residual_scale" in leaf
    }
    norm = lambda x: float(np.linalg.norm(x, axis=-1).mean())
    return {
        "run": workdir + (":init" if at_init else ""), "step": step,
        "norm_T": norm(t), "norm_V": norm(v), "norm_T_prime": norm(t2), "norm_V_prime": norm(v2),
        "spread_std_before": float(before.std(-1).mean()),
        "spread_range_before": float(np.ptp(before, -1).mean()),
        "spread_std_after": float(after.std(-1).mean()),
        "spread_range_after": float(np.ptp(after, -1).mean()),
        "pairwise_T": _pairwise(t), "pairwise_T_prime": _pairwise(t2),
        "top1_before": float((before.argmax(-1) == labels).mean()),
        "top1_after": float((after.argmax(-1) == labels).mean()), "gates": gates,
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clip", required=True, help="the frozen CLIP's .msgpack")
    parser.add_argument("--json", action="store_true", help="one JSON object per run")
    parser.add_argument("runs", nargs="+", help="workdirs, each optionally with :init")
    args = parser.parse_args(argv)
    clip_params = load_clip(args.clip)[1]["params"]
    clips, labels = make_motion_clips(160, seed=777)
    video = video_spec.normalize(clips)
    for workdir in args.runs:
        r = measure(workdir, clip_params, video, labels)
        if args.json:
            print(json.dumps(r), flush=True)
            continue
        print(
            f"{r['run']} (step {r['step']}): |T_k| {r['norm_T']:.2f} |V| {r['norm_V']:.2f} "
            f"|T'_k| {r['norm_T_prime']:.2f} |V'| {r['norm_V_prime']:.2f}; class-cosine spread "
            f"std {r['spread_std_before']:.4f} -> {r['spread_std_after']:.4f}, range "
            f"{r['spread_range_before']:.4f} -> {r['spread_range_after']:.4f}; pairwise cos T "
            f"{r['pairwise_T']:.3f} -> {r['pairwise_T_prime']:.3f}; top-1 {r['top1_before']:.3f}"
            f" -> {r['top1_after']:.3f}; gates {r['gates']}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
