"""Cost of one training step of the video model at ViT-B/16, with and without the context shortcut.

    python benchmarks/train_step_cost.py [--variant full] [--batch 2] [--repeats 3]

Random-init ViT-B/16 CLIP, T = 8 frames, HMDB-51's 51 class names. The step is what the trainer
differentiates: loss on precomputed frame features, gradients w.r.t. the trainable params only; the
frozen image tower runs outside it (forward only) and is reported on its own line. Each line gives
XLA cost-analysis FLOPs, compile time and the best of `--repeats` run times. "shortest" runs the
text tower on the shortest context holding every EOT, "full" on 77 tokens; the text-side rows
isolate the text tower's forward + backward (gradients into the prompt learner).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from motion_clip_jax.core import model_spec  # noqa: E402
from motion_clip_jax.core.class_prompts import class_prompt_tokens  # noqa: E402
from motion_clip_jax.core.classnames import load_classnames  # noqa: E402
from motion_clip_jax.models import config as config_lib  # noqa: E402
from motion_clip_jax.models import cost  # noqa: E402
from motion_clip_jax.models import params as params_lib  # noqa: E402
from motion_clip_jax.models import video_clip as video_lib  # noqa: E402

VideoCLIP = video_lib.VideoCLIP


def compile_and_time(fn, args, repeats: int) -> dict[str, float]:
    """FLOPs (XLA cost analysis), compile seconds, best run seconds of jax.jit(fn)(*args)."""
    start = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    compile_s = time.perf_counter() - start
    analysis = compiled.cost_analysis()
    analysis = analysis[0] if isinstance(analysis, list | tuple) else analysis
    jax.block_until_ready(compiled(*args))  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(compiled(*args))
        best = min(best, time.perf_counter() - start)
    return {"flops": float(analysis["flops"]), "compile_s": compile_s, "run_s": best}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variant", default="full", choices=sorted(model_spec.VARIANTS))
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dataset", default="hmdb51")
    args = parser.parse_args()

    config = config_lib.model_config(args.variant)
    class_names = load_classnames(args.dataset)
    model, trainable, frozen = video_lib.init_video_clip(config, 0)
    res = config_lib.clip_config_of(config).image_resolution
    b, t, k = args.batch, config.num_frames, len(class_names)
    print(
        f"variant={args.variant} batch={b} T={t} K={k} ({args.dataset}) "
        f"devices={jax.devices()} trainable={params_lib.count_params(trainable):,}"
    )

    video = jax.random.normal(jax.random.PRNGKey(1), (b, t, res, res, 3), jnp.float32)
    labels = jnp.arange(b) % k
    rows = []

    def encode(frozen, video):
        return model.apply({"params": frozen}, video, method=VideoCLIP.encode_frames)

    image = compile_and_time(encode, (frozen, video), args.repeats)
    rows.append(("image tower forward (outside the step)", "-", image))
    frames = jax.jit(encode)(frozen, video)

    step = jax.value_and_grad(video_lib.loss_from_features, argnums=1, has_aux=True)

    def text_side(trainable, frozen, ids, eos, motion):
        def text_sum(trainable):
            feats = model.apply(
                {"params": params_lib.merge_params(trainable, frozen)},
                ids,
                eos,
                motion,
                method=VideoCLIP.text_features,
            )
            return jnp.sum(feats**2)

        return jax.value_and_grad(text_sum)(trainable)

    motion = jax.random.normal(jax.random.PRNGKey(2), (b, frames.shape[-1]))
    results = {}
    for context in ("shortest", "full"):
        fields = {**config.to_dict(), "text_context": context}
        ids, eos = class_prompt_tokens(fields, class_names)
        length = ids.shape[1]
        results[context, "step"] = compile_and_time(
            lambda tr, fz, fr, i, e, y: step(model, tr, fz, fr, i, e, y),
            (trainable, frozen, frames, ids, eos, labels),
            args.repeats,
        )
        rows.append((f"train step fwd+bwd, {context} context", length, results[context, "step"]))
        if config.prompts != "handcrafted":
            results[context, "text"] = compile_and_time(
                text_side, (trainable, frozen, ids, eos, motion), args.repeats
            )
            rows.append(
                (f"  of which text side fwd+bwd, {context}", length, results[context, "text"])
            )

    print()
    print("| part | context L | GFLOPs | compile s | run s |")
    print("|---|---|---|---|---|")
    for name, length, r in rows:
        print(
            f"| {name} | {length} | {r['flops'] / 1e9:.2f} | {r['compile_s']:.1f} | "
            f"{r['run_s']:.3f} |"
        )
    print()
    step_s, step_f = results["shortest", "step"], results["full", "step"]
    print(
        f"train step: FLOPs full/shortest = {step_f['flops'] / step_s['flops']:.2f}x, "
        f"time full/shortest = {step_f['run_s'] / step_s['run_s']:.2f}x"
    )
    if ("full", "text") in results:
        text_s, text_f = results["shortest", "text"], results["full", "text"]
        print(
            f"text side: FLOPs full/shortest = {text_f['flops'] / text_s['flops']:.2f}x, "
            f"time full/shortest = {text_f['run_s'] / text_s['run_s']:.2f}x"
        )
    shortest = {**config.to_dict(), "text_context": "shortest"}
    extra = cost.extra_flops(config, k, int(class_prompt_tokens(shortest, class_names)[0].shape[1]))
    print(
        "extra_flops per video (forward): "
        + ", ".join(
            f"{key}={value / 1e9:.4f} G"
            for key, value in extra.items()
            if key != "text_passes_per_video"
        )
        + f", text passes per video = "
        f"{extra['text_passes_per_video']:.0f}"
    )


if __name__ == "__main__":
    main()
