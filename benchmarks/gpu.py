"""Accelerator benchmark: train-step clips/s, model-FLOPs utilisation and inference videos/s.

    python benchmarks/gpu.py [--out gpu_benchmark.json] [--dtypes bfloat16,float32]
        [--batches 32,64,128,256] [--steps 5] [--budget_s 420] [--peak_tflops X]
        [--peak_tflops_fp32 X] [--tiny]

The paper's full model at ViT-B/16 (random weights), T = 8 frames, K = 51 (HMDB-51 class names),
on synthetic in-memory batches (uint8 frames, normalised on the device, as the input pipeline
delivers them). For each compute dtype the trainer's own step (`train/steps.py`: frozen image
tower forward, loss, gradients w.r.t. the trainable params, SGD update) runs at growing global
batches until one runs out of memory, the list ends, throughput stops growing (< 3%) or the time
budget is spent; then the eval step (single view) at the best train batch. Times: best of --steps
timed calls after a compile and a warm-up call. FLOPs per call from XLA's cost analysis of the
unchunked step (a loop's body counts once); model-FLOPs utilisation (MFU) = FLOPs / time / peak, peak from PEAK_TFLOPS keyed on
`device_kind` (or --peak_tflops / --peak_tflops_fp32; on CPU the calibration's JAX matmul rate).
Writes a JSON result (--out) and prints a markdown table. Needs JAX, Flax, optax, numpy,
ml_collections, ftfy and regex only (no TensorFlow, tensorflow-datasets, clu or torch); one H200
run of the defaults should take 5-7 min, mostly compiles (unmeasured: no GPU session yet). `--tiny`
is the CPU smoke test (the tiny CLIP preset, one layer per tower).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import sys
import time
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks.timing import best_times, lowered_flops  # noqa: E402

# What the model import chain needs (module -> requirements.txt name); checked before importing.
NEEDED = {
    "jax": "jax",
    "jaxlib": "jaxlib",
    "flax": "flax",
    "optax": "optax",
    "numpy": "numpy",
    "ml_collections": "ml-collections",
    "ftfy": "ftfy",
    "regex": "regex",
}

# Dense peak TFLOP/s per (device_kind substring, compute dtype), from the vendors' data sheets.
# float32 matmuls run at JAX's default precision, which is TF32 on NVIDIA tensor cores and bf16
# passes on TPUs, so their peak is that mode's. The longest matching key wins.
PEAK_TFLOPS = {
    "H200": {"bfloat16": 989.0, "float32": 494.5},
    "H100": {"bfloat16": 989.0, "float32": 494.5},  # SXM
    "H100 PCIe": {"bfloat16": 756.0, "float32": 378.0},
    "A100": {"bfloat16": 312.0, "float32": 156.0},
    "L4": {"bfloat16": 121.0, "float32": 60.0},
    "TPU v4": {"bfloat16": 275.0, "float32": 275.0},
    "TPU v5 lite": {"bfloat16": 197.0, "float32": 197.0},
    "TPU v5": {"bfloat16": 459.0, "float32": 459.0},
    "TPU v6 lite": {"bfloat16": 918.0, "float32": 918.0},
}


def pinned(name: str) -> str:
    """`name==version` as requirements.txt pins it, else the bare name."""
    try:
        with open(os.path.join(ROOT, "requirements.txt")) as f:
            for line in f:
                if re.match(rf"{re.escape(name)}\s*==", line.strip(), re.IGNORECASE):
                    return line.split("#")[0].strip()
    except OSError:
        pass
    return name


def check_packages() -> None:
    """Exits with one line per missing package, naming the wheel to carry."""
    missing = [m for m in NEEDED if importlib.util.find_spec(m) is None]
    for module in missing:
        wheel = pinned(NEEDED[module])
        print(
            f"benchmarks/gpu.py: missing package '{module}': install or carry the wheel "
            f"({wheel}; e.g. `pip download --no-deps '{wheel}'` on a machine with internet)",
            file=sys.stderr,
        )
    if missing:
        sys.exit(2)


def peak_tflops(device_kind: str, dtype: str, override: float) -> tuple[float | None, str]:
    """(peak TFLOP/s, where it came from) for this device and compute dtype."""
    if override > 0:
        return override, "--peak_tflops flag"
    keys = sorted((k for k in PEAK_TFLOPS if k.lower() in device_kind.lower()), key=len)
    if keys:
        return PEAK_TFLOPS[keys[-1]][dtype], f"PEAK_TFLOPS[{keys[-1]!r}]"
    return None, f"no PEAK_TFLOPS entry for {device_kind!r}"


def is_oom(error: Exception) -> bool:
    text = str(error)
    return "RESOURCE_EXHAUSTED" in text or "out of memory" in text.lower()


class Bench:
    """One model config's params, prompts and steps; `train(batch)` / `infer(batch)` time them."""

    def __init__(self, dtype: str, tiny: bool, classes: int, frames: int):
        import jax
        import ml_collections
        import numpy as np

        from motion_clip_jax.core.class_prompts import class_prompt_tokens
        from motion_clip_jax.core.classnames import load_classnames
        from motion_clip_jax.models import model_config as config_lib
        from motion_clip_jax.models import video_clip as video_lib
        from motion_clip_jax.train import config as train_config
        from motion_clip_jax.train import mesh as mesh_lib
        from motion_clip_jax.train import optim, steps

        self.jax, self.np, self.steps = jax, np, steps
        # --tiny: the 'tiny' preset cut to one layer per tower, so a CPU smoke run compiles fast.
        one_layer = dict(vision_layers=1, transformer_layers=1)
        sizes = dict(clip_model="tiny", clip_overrides=one_layer) if tiny else {}
        self.config = config_lib.model_config(
            "full", num_frames=frames, motion_step=min(4, frames - 1), dtype=dtype, **sizes
        )
        self.model, trainable, self.frozen = video_lib.init_video_clip(self.config, 0)
        names = load_classnames("hmdb51")[:classes]
        ids, eos = class_prompt_tokens(self.config, names)
        self.ids, self.eos = jax.numpy.asarray(ids), jax.numpy.asarray(eos)
        self.mesh = mesh_lib.make_mesh()
        self.res = config_lib.clip_config_of(self.config).image_resolution
        replicated = mesh_lib.replicated(self.mesh)
        self.frozen_shardings = mesh_lib.param_shardings(self.frozen, self.mesh)
        self.tx, schedule = optim.make_optimizer(train_config.base_config().optim, 1000)
        self.trainable = trainable
        state = steps.TrainState.create(trainable, self.tx)
        self.state_shardings = jax.tree.map(lambda _: replicated, state)
        make = lambda model: (
            steps.make_train_step(
                model, self.tx, schedule, self.mesh, self.state_shardings, self.frozen_shardings
            ),
            steps.make_eval_step(model, self.mesh, self.frozen_shardings),
        )
        # The steps as the trainer builds them for one class list (`for_classes`: the class
        # suffixes in groups, exact).
        model = video_lib.for_classes(self.model, eos)
        self.train_step, self.eval_step = make(model)
        # XLA's cost analysis counts a while loop's body once, so FLOPs come from the unchunked
        # program (same arithmetic), lowered only.
        unchunked = ml_collections.FrozenConfigDict(
            {**self.config.to_dict(), "image_chunk_frames": 0}
        )
        self.flops_steps = make(model.clone(config=unchunked))

    def video(self, batch: int):
        t = self.config.num_frames
        rng = self.np.random.default_rng(batch)
        return rng.integers(0, 256, (batch, t, self.res, self.res, 3), dtype=self.np.uint8)

    def train(self, batch: int, steps: int) -> dict[str, float]:
        jax, np = self.jax, self.np
        data = {
            "video": jax.device_put(self.video(batch)),
            "label": jax.numpy.asarray(np.arange(batch) % self.ids.shape[0], np.int32),
        }
        # The step donates its state: give it copies, so self.trainable outlives it.
        copies = jax.tree.map(jax.numpy.array, self.trainable)
        state = self.steps.TrainState.create(copies, self.tx)
        args = (state, self.frozen, data, self.ids, self.eos)
        flops = lowered_flops(self.flops_steps[0].lower(*args))
        start = time.perf_counter()
        compiled = self.train_step.lower(*args).compile()
        compile_s = time.perf_counter() - start
        holder = [compiled(state, self.frozen, data, self.ids, self.eos)[0]]  # warm-up
        jax.block_until_ready(holder[0])

        def one():  # the state is donated: feed each step the last one's output
            holder[0], metrics = compiled(holder[0], self.frozen, data, self.ids, self.eos)
            jax.block_until_ready(metrics["loss"])

        seconds = best_times({"train": one}, steps)["train"]
        _, metrics = compiled(holder[0], self.frozen, data, self.ids, self.eos)
        if not np.isfinite(float(metrics["loss"])):
            raise RuntimeError(f"train step at batch {batch}: loss {float(metrics['loss'])}")
        return {"flops": flops, "seconds": seconds, "compile_s": compile_s}

    def infer(self, batch: int, steps: int) -> dict[str, float]:
        jax, np = self.jax, self.np
        video = jax.device_put(self.video(batch))
        start = time.perf_counter()
        compiled = self.eval_step.lower(
            self.trainable, self.frozen, video, self.ids, self.eos
        ).compile()
        compile_s = time.perf_counter() - start
        scores = compiled(self.trainable, self.frozen, video, self.ids, self.eos)
        if not np.all(np.isfinite(np.asarray(scores))):
            raise RuntimeError(f"eval step at batch {batch}: non-finite scores")
        seconds = best_times(
            {
                "infer": lambda: compiled(
                    self.trainable, self.frozen, video, self.ids, self.eos
                ).block_until_ready()
            },
            steps,
        )["infer"]
        flops = lowered_flops(
            self.flops_steps[1].lower(self.trainable, self.frozen, video, self.ids, self.eos)
        )
        return {"flops": flops, "seconds": seconds, "compile_s": compile_s}


def row(kind: str, dtype: str, batch: int, result: dict, peak: float | None) -> dict[str, Any]:
    tflops = result["flops"] / result["seconds"] / 1e12
    return {
        "kind": kind,
        "dtype": dtype,
        "batch": batch,
        "per_s": batch / result["seconds"],
        "seconds": result["seconds"],
        "compile_s": result["compile_s"],
        "tflop_per_item": result["flops"] / batch / 1e12,
        "tflops": tflops,
        "mfu": None if peak is None else tflops / peak,
    }


def markdown(rows: list[dict]) -> str:
    lines = [
        "| step | dtype | batch | clips or videos/s | s/step | TFLOP/clip (XLA) | TFLOP/s | MFU | "
        "compile s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['kind']} | {r['dtype']} | {r['batch']} | {r['error']} |||||")
            continue
        mfu = "n/a" if r["mfu"] is None else f"{100 * r['mfu']:.1f}%"
        lines.append(
            f"| {r['kind']} | {r['dtype']} | {r['batch']} | {r['per_s']:.1f} | {r['seconds']:.4f} | "
            f"{r['tflop_per_item']:.4f} | {r['tflops']:.1f} | {mfu} | {r['compile_s']:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="gpu_benchmark.json", help="JSON result file")
    parser.add_argument("--dtypes", default="bfloat16,float32")
    parser.add_argument("--batches", default="32,64,128,256", help="global train batches, growing")
    parser.add_argument("--steps", type=int, default=5, help="timed calls (best of)")
    parser.add_argument("--budget_s", type=float, default=420, help="stop growing batches after")
    parser.add_argument("--peak_tflops", type=float, default=0, help="override bf16 peak")
    parser.add_argument("--peak_tflops_fp32", type=float, default=0, help="override fp32 peak")
    parser.add_argument("--classes", type=int, default=51, help="first K HMDB-51 class names")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--tiny", action="store_true", help="tiny CLIP (CPU smoke test)")
    args = parser.parse_args()
    check_packages()
    start = time.perf_counter()

    import jax

    from benchmarks.calibration import calibration, machine_line

    print(machine_line(), flush=True)
    device = jax.devices()[0]
    overrides = {"bfloat16": args.peak_tflops, "float32": args.peak_tflops_fp32}
    batches = [int(b) for b in args.batches.split(",")]
    rows: list[dict[str, Any]] = []
    peaks = {}
    for dtype in args.dtypes.split(","):
        peak, source = peak_tflops(device.device_kind, dtype, overrides[dtype])
        if peak is None and device.platform == "cpu":
            peak, source = calibration()["matmul_gflops_jax"] / 1e3, "calibration JAX matmul"
        peaks[dtype] = {"tflops": peak, "source": source}
        bench = Bench(dtype, args.tiny, args.classes, args.frames)
        best = None
        for batch in batches:
            try:
                r = row("train", dtype, batch, bench.train(batch, args.steps), peak)
            except Exception as error:  # noqa: BLE001 (OOM is an XlaRuntimeError)
                if not is_oom(error):
                    raise
                rows.append({"kind": "train", "dtype": dtype, "batch": batch, "error": "OOM"})
                break
            rows.append(r)
            print(markdown([r]).splitlines()[-1], flush=True)
            grew = best is None or r["per_s"] > 1.03 * best["per_s"]
            best = r if best is None or r["per_s"] > best["per_s"] else best
            if not grew or time.perf_counter() - start > args.budget_s:
                break
        if best is not None:
            r = row("inference", dtype, best["batch"], bench.infer(best["batch"], args.steps), peak)
            rows.append(r)
            print(markdown([r]).splitlines()[-1], flush=True)
        del bench
    result = {
        "machine": machine_line(),
        "calibration": calibration(),
        "device_kind": device.device_kind,
        "platform": device.platform,
        "devices": jax.device_count(),
        "jax": jax.__version__,
        "model": "tiny CLIP (1 layer per tower)" if args.tiny else "ViT-B/16",
        "frames": args.frames,
        "classes": args.classes,
        "peaks": peaks,
        "rows": rows,
        "wall_s": time.perf_counter() - start,
    }
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    print(f"\n{result['model']}, T = {args.frames}, K = {args.classes}, {device.device_kind}; "
          f"peaks: {peaks}\n")  # fmt: skip
    print(markdown(rows))
    print(f"\nwrote {args.out} ({result['wall_s']:.0f} s)")


if __name__ == "__main__":
    main()
