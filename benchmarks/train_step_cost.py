"""Cost of one training step of the video model at ViT-B/16, with and without the exact shortcuts.

    python benchmarks/train_step_cost.py [--variant full] [--batch 2] [--repeats 3]
        [--dataset hmdb51] [--contexts shortest,full] [--share_prompt_prefix both|on|off]
        [--suffix_groups 1,3]

Random-init ViT-B/16 CLIP, T = 8 frames, the dataset's class names (K = 51 for HMDB-51, 400 for
kinetics400). The step is what the trainer differentiates: loss on precomputed frame features,
gradients w.r.t. the trainable params only; the frozen image tower runs outside it (forward only)
and is reported on its own line. Step lines give XLA cost-analysis FLOPs, compile time and the
best of `--repeats` run times. Two exact shortcuts are compared side by side in one run:
`text_context` ("shortest": the text tower runs on the shortest context holding every EOT;
"full": 77 tokens) and `share_prompt_prefix` (on: the prompts' common prefix [SOT, ctx] runs once
per video, only the class suffixes K times; off: all K rows in full); with the prefix shared,
`text_suffix_groups` (the train step's module, `video_clip.for_classes`: class suffixes padded per
group of similar lengths, at most N groups; 1: all to the longest). The text-side lines isolate
the text tower (forward, and forward + backward into the prompt learner) by FLOPs per video.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from motion_clip_jax.core import model_spec  # noqa: E402
from motion_clip_jax.core.class_prompts import class_prompt_tokens  # noqa: E402
from motion_clip_jax.core.classnames import load_classnames  # noqa: E402
from motion_clip_jax.models import cost  # noqa: E402
from motion_clip_jax.models import model_config as config_lib  # noqa: E402
from motion_clip_jax.models import params as params_lib  # noqa: E402
from motion_clip_jax.models import video_clip as video_lib  # noqa: E402

VideoCLIP = video_lib.VideoCLIP
SHARE_CHOICES = {"both": (False, True), "on": (True,), "off": (False,)}


def machine_line() -> str:
    """The calibration line of benchmarks/calibration.py when it exists, else a local stand-in:
    CPU model, cores, measured 2048^3 float32 matmul GFLOP/s (jitted, best of 5), load."""
    if importlib.util.find_spec("benchmarks.calibration") is not None:
        from benchmarks.calibration import machine_line as calibrated

        return calibrated()
    model = platform.processor() or platform.machine()
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        model = names[0] if names else model
    n = 2048
    a = jnp.ones((n, n), jnp.float32)
    matmul = jax.jit(lambda a: a @ a)
    jax.block_until_ready(matmul(a))
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        jax.block_until_ready(matmul(a))
        best = min(best, time.perf_counter() - start)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"machine (local stand-in, no benchmarks/calibration.py): {model}, {os.cpu_count()} "
        f"cores, fp32 matmul 2048^3 {2 * n**3 / best / 1e9:.0f} GFLOP/s, load average {load}"
    )


def compile_and_time(fn, args, repeats: int) -> dict[str, float]:
    """FLOPs (XLA cost analysis), compile seconds, best run seconds of jax.jit(fn)(*args); no
    runs (run_s = nan) when repeats is 0."""
    start = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    compile_s = time.perf_counter() - start
    analysis = compiled.cost_analysis()
    analysis = analysis[0] if isinstance(analysis, list | tuple) else analysis
    best = float("nan")
    if repeats:
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
    parser.add_argument("--dataset", default="hmdb51", help="class-name list, e.g. kinetics400")
    parser.add_argument("--contexts", default="shortest,full", help="text_context values to run")
    parser.add_argument("--share_prompt_prefix", default="both", choices=sorted(SHARE_CHOICES))
    parser.add_argument(
        "--suffix_groups", default="1,3", help="text_suffix_groups values (prefix shared)"
    )
    args = parser.parse_args()
    suffix_groups = [int(g) for g in args.suffix_groups.split(",")]
    contexts = args.contexts.split(",")
    for context in contexts:
        if context not in model_spec.TEXT_CONTEXTS:
            parser.error(f"--contexts: {context!r} is not one of {model_spec.TEXT_CONTEXTS}")
    print(machine_line(), flush=True)

    config = config_lib.model_config(args.variant)
    class_names = load_classnames(args.dataset)
    model, trainable, frozen = video_lib.init_video_clip(config, 0)
    res = config_lib.clip_config_of(config).image_resolution
    b, t, k = args.batch, config.num_frames, len(class_names)
    print(
        f"variant={args.variant} batch={b} T={t} K={k} ({args.dataset}) "
        f"devices={jax.devices()} trainable={params_lib.count_params(trainable):,}",
        flush=True,
    )

    video = jax.random.normal(jax.random.PRNGKey(1), (b, t, res, res, 3), jnp.float32)
    labels = jnp.arange(b) % k
    rows = []

    def encode(frozen, video):
        return model.apply({"params": frozen}, video, method=VideoCLIP.encode_frames)

    image = compile_and_time(encode, (frozen, video), args.repeats)
    # encode_frames may loop over frame chunks (image_chunk_frames), and XLA's cost analysis
    # counts a loop body once: count the image tower per frame instead.
    image["flops"] = cost.image_flops(config) * b * t
    rows.append(("image tower forward (outside the step)", "-", "-", image))
    frames = jax.jit(encode)(frozen, video)
    motion = jax.random.normal(jax.random.PRNGKey(2), (b, frames.shape[-1]))
    has_ctx = config.prompts != "handcrafted"

    step = jax.value_and_grad(video_lib.loss_from_features, argnums=1, has_aux=True)
    results = {}
    settings = [
        (context, share, groups)
        for context in contexts
        for share in SHARE_CHOICES[args.share_prompt_prefix]
        for groups in (suffix_groups if share else [1])
    ]
    for context, share, groups in settings:
        # The trainable tree does not depend on these fields: only the module changes.
        fields = {
            **config.to_dict(), "text_context": context, "share_prompt_prefix": share,
            "text_suffix_groups": groups,
        }  # fmt: skip
        ids, eos = class_prompt_tokens(fields, class_names)
        run_model = video_lib.for_classes(
            video_lib.build_model(config_lib.model_config(**fields)), eos
        )
        on = f"on, {groups} suffix group{'s' if groups > 1 else ''}" if share else "off"
        r = compile_and_time(
            lambda tr, fz, fr, i, e, y, m=run_model: step(m, tr, fz, fr, i, e, y),
            (trainable, frozen, frames, ids, eos, labels),
            args.repeats,
        )
        results[context, share, groups, "step"] = r
        rows.append((f"train step fwd+bwd, {context}", ids.shape[1], on, r))
        print(f"measured: {rows[-1]}", flush=True)  # progress: the table comes at the end
        if not has_ctx:
            continue

        def text_fwd(trainable, frozen, ids, eos, motion, m=run_model):
            params = {"params": params_lib.merge_params(trainable, frozen)}
            return m.apply(params, ids, eos, motion, method=VideoCLIP.text_features)

        def text_side(trainable, frozen, ids, eos, motion, fwd=text_fwd):
            loss = lambda tr: jnp.sum(fwd(tr, frozen, ids, eos, motion) ** 2)
            return jax.value_and_grad(loss)(trainable)

        text_args = (trainable, frozen, ids, eos, motion)
        for part, fn in (("fwd", text_fwd), ("fwd+bwd", text_side)):
            r = compile_and_time(fn, text_args, 0)  # FLOPs only: the step above is timed
            results[context, share, groups, part] = r
            rows.append((f"  text side {part}, {context}", ids.shape[1], on, r))

    print()
    print("| part | context L | share prefix | GFLOPs | GFLOPs / video | compile s | run s |")
    print("|---|---|---|---|---|---|---|")
    for name, length, on, r in rows:
        per_video = r["flops"] / (b * t if on == "-" else b)
        run_s = "-" if r["run_s"] != r["run_s"] else f"{r['run_s']:.3f}"
        print(
            f"| {name} | {length} | {on} | {r['flops'] / 1e9:.2f} | {per_video / 1e9:.2f}"
            f"{' / frame' if on == '-' else ''} | {r['compile_s']:.1f} | {run_s} |"
        )
    print()
    ratio = lambda a, c, key: a[key] / c[key]
    if args.share_prompt_prefix == "both" and has_ctx:
        for context in contexts:
            off, on = (results[context, s, 1, "step"] for s in (False, True))
            text = [
                ratio(results[context, False, 1, p], results[context, True, 1, p], "flops")
                for p in ("fwd", "fwd+bwd")
            ]
            print(
                f"share_prompt_prefix off/on (1 suffix group), {context}: step FLOPs "
                f"{ratio(off, on, 'flops'):.2f}x,"
                f" step time {ratio(off, on, 'run_s'):.2f}x; text side FLOPs fwd {text[0]:.2f}x,"
                f" fwd+bwd {text[1]:.2f}x"
            )
    if args.share_prompt_prefix != "off" and has_ctx and 1 in suffix_groups:
        for context in contexts:
            for groups in suffix_groups:
                if groups == 1:
                    continue
                one, grouped = (results[context, True, g, "step"] for g in (1, groups))
                text = [
                    ratio(results[context, True, 1, p], results[context, True, groups, p], "flops")
                    for p in ("fwd", "fwd+bwd")
                ]
                print(
                    f"text_suffix_groups 1/{groups}, {context}: step FLOPs "
                    f"{ratio(one, grouped, 'flops'):.2f}x, step time "
                    f"{ratio(one, grouped, 'run_s'):.2f}x; text side FLOPs fwd {text[0]:.2f}x, "
                    f"fwd+bwd {text[1]:.2f}x"
                )
    if {"shortest", "full"} <= set(contexts):
        for share in SHARE_CHOICES[args.share_prompt_prefix]:
            s, f = results["shortest", share, 1, "step"], results["full", share, 1, "step"]
            print(
                f"text_context full/shortest, share_prompt_prefix {'on' if share else 'off'}: "
                f"step FLOPs {ratio(f, s, 'flops'):.2f}x, time {ratio(f, s, 'run_s'):.2f}x"
            )


if __name__ == "__main__":
    main()
