"""ViT-B/16 tower speed on this machine: Flax (ours) vs OpenAI's PyTorch code, same weights, one run.

    python benchmarks/clip_towers.py [--frames 8,64] [--chunks 0,8] [--prompts 16] [--repeats 3]
        [--torch_threads 0,1]

Needs the test requirements (torch + openai-clip). A random-weight ViT-B/16 built with OpenAI's
own `clip/model.py`, converted to Flax. For each batch of --frames frames: PyTorch's
`encode_image` at each thread count of --torch_threads (0 = torch's default; on a loaded box its
OpenMP pool can lose more to a busy core than one thread does, so the ratios are taken to the
fastest PyTorch setting) and ours, `VideoCLIP.encode_frames` (the model's path, jitted) at each
`image_chunk_frames` of --chunks (0 = all frames in one call; -1 = the backend default), timed in
rounds (each round times every candidate once, so a burst of load on the shared box hits all),
best of --repeats after a warm-up. Then the text tower on --prompts prompts x 77 tokens. Prints
the calibration line first, ms/frame, GFLOP/s (ours: FLOPs by XLA cost analysis of the unchunked
tower, the same arithmetic for every chunk size; PyTorch: torch's FlopCounterMode) as a fraction of the calibration's JAX matmul GFLOP/s,
time ratios to PyTorch, the parity error of every output, and the load average.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from benchmarks.calibration import calibration, machine_line  # noqa: E402
from benchmarks.timing import best_times, lowered_flops  # noqa: E402
from motion_clip_jax.convert import clip_from_torch  # noqa: E402
from motion_clip_jax.models import model_config as config_lib  # noqa: E402
from motion_clip_jax.models import video_clip as video_lib  # noqa: E402
from tests.conftest import load_openai_clip_file  # noqa: E402


def rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


def encode_frames_fn(clip_params, chunk: int):
    """jit((1, N, H, W, 3) video) -> (N, D) through VideoCLIP.encode_frames at `chunk`."""
    model = video_lib.build_model(config_lib.model_config("full", image_chunk_frames=chunk))
    params = {"clip": clip_params}
    fn = jax.jit(
        lambda p, v: model.apply({"params": p}, v, method=video_lib.VideoCLIP.encode_frames)[0]
    )
    return lambda video: fn(params, video), lambda video: fn.lower(params, video)


def torch_call(threads: int, fn, x):
    """A call of fn(x) with torch's intra-op pool at `threads` threads."""

    def call():
        torch.set_num_threads(threads)
        return fn(x)

    return call


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", default="8,64", help="batches of frames, comma-separated")
    parser.add_argument("--chunks", default="0,8", help="image_chunk_frames values to compare")
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--torch_threads", default="0,1", help="0: torch's default")
    args = parser.parse_args()
    default_threads = torch.get_num_threads()
    threads = list(dict.fromkeys(int(n) or default_threads for n in args.torch_threads.split(",")))
    print(machine_line(), flush=True)
    matmul = calibration()["matmul_gflops_jax"]
    print(
        f"jax {jax.__version__} ({jax.default_backend()}), torch {torch.__version__} "
        f"(default {default_threads} threads); -1 resolves to image_chunk_frames="
        f"{video_lib.image_chunk_size(-1)} here; fraction = GFLOP/s / calibration JAX matmul "
        f"{matmul:.0f} GFLOP/s",
        flush=True,
    )

    torch.manual_seed(0)
    oa = load_openai_clip_file("model")
    model = oa.CLIP(512, 224, 12, 768, 16, 77, 49408, 512, 8, 12).eval()
    module, variables = clip_from_torch(model.state_dict())
    chunks = [int(c) for c in args.chunks.split(",")]
    encoders = {c: encode_frames_fn(variables["params"], c) for c in chunks}
    unchunked = encode_frames_fn(variables["params"], 0)[1]
    rng = np.random.default_rng(0)

    for frames in (int(f) for f in args.frames.split(",")):
        images = rng.standard_normal((frames, 224, 224, 3), dtype=np.float32)
        t_images = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
        video = jnp.asarray(images)[None]
        flops = lowered_flops(unchunked(video)) / frames
        with torch.inference_mode(), FlopCounterMode(display=False) as counter:
            ref = model.encode_image(t_images).numpy()
        torch_flops = counter.get_total_flops() / frames  # matmuls/convs: all of OpenAI's tower
        with torch.inference_mode():
            fns = {f"PyTorch {n}T": torch_call(n, model.encode_image, t_images) for n in threads}
            parity = dict.fromkeys(fns, "")
            for c, (run, _) in encoders.items():
                fns[f"Flax chunk {c}"] = lambda run=run, v=video: run(v).block_until_ready()
                parity[f"Flax chunk {c}"] = f", parity {rel(np.asarray(run(video)), ref):.1e}"
            load_before = os.getloadavg()[0]
            best = best_times(fns, args.repeats, warmup=True)
        print(
            f"image tower, {frames} frames, GFLOPs/frame {flops / 1e9:.2f} ours (XLA; the last "
            f"block runs the class token only), {torch_flops / 1e9:.2f} PyTorch, best of "
            f"{args.repeats} (load average {load_before:.1f} -> {os.getloadavg()[0]:.1f}):"
        )
        torch_best = min(v for k, v in best.items() if k.startswith("PyTorch"))
        for name, seconds in best.items():
            gflops = (torch_flops if name.startswith("PyTorch") else flops) * frames / seconds / 1e9
            print(
                f"  {name:14s} {1e3 * seconds / frames:7.1f} ms/frame  {gflops:6.1f} GFLOP/s = "
                f"{gflops / matmul:.2f} x matmul  time / best PyTorch {seconds / torch_best:.2f}"
                f"{parity[name]}",
                flush=True,
            )

    ids = np.zeros((args.prompts, 77), np.int64)
    ids[:, 0] = 49406
    ids[:, 1:15] = rng.integers(1, 49000, (args.prompts, 14))
    ids[:, 15] = 49407
    t_ids = torch.from_numpy(ids)
    j_ids = jnp.asarray(ids, jnp.int32)
    encode_text = jax.jit(lambda v, x: module.apply(v, x, method="encode_text"))
    flops = lowered_flops(encode_text.lower(variables, j_ids)) / args.prompts
    with torch.inference_mode():
        ref_txt = model.encode_text(t_ids).numpy()
        fns = {f"PyTorch {n}T": torch_call(n, model.encode_text, t_ids) for n in threads}
        fns["Flax"] = lambda: encode_text(variables, j_ids).block_until_ready()
        best = best_times(fns, args.repeats, warmup=True)
    torch_best = min(v for k, v in best.items() if k.startswith("PyTorch"))
    out_txt = np.asarray(encode_text(variables, j_ids))
    print(f"text tower, {args.prompts} prompts x 77 tokens, {flops / 1e9:.2f} GFLOPs/prompt:")
    for name, seconds in best.items():
        gflops = flops * args.prompts / seconds / 1e9
        print(
            f"  {name:14s} {1e3 * seconds / args.prompts:7.1f} ms/prompt {gflops:6.1f} GFLOP/s = "
            f"{gflops / matmul:.2f} x matmul  time / best PyTorch {seconds / torch_best:.2f}"
        )
    print(f"  parity (max abs err / max abs ref): text {rel(out_txt, ref_txt):.2e}")
    print(f"load average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
