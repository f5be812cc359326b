"""ViT-B/16 tower speed: ours (Flax) vs OpenAI's PyTorch code and Hugging Face's, one harness.

    python benchmarks/clip_towers.py [--frames 8,64] [--chunks 0,4] [--prompts 16] [--repeats 3]
        [--torch_threads 0,1] [--hf_attention sdpa]

Needs the test requirements (torch, transformers, openai-clip). Every tower has the same weights:
Hugging Face's `CLIPModel` at ViT-B/16 sizes under seed 0, converted to OpenAI's layout and to
ours (benchmarks/candidates.py). For each batch of --frames frames: ours,
`VideoCLIP.encode_frames` jitted, at each `image_chunk_frames` of --chunks (0 = all frames in one
call; -1 = the backend default); OpenAI's `encode_image` and Hugging Face's `get_image_features`
(attention --hf_attention: sdpa is torch's fused scaled_dot_product_attention) at each thread
count of --torch_threads (0 = torch's default). Then the text tower, ours vs OpenAI's, on
--prompts prompts x 77 tokens. Timing: benchmarks/harness.py (each candidate in a process of its
own, its thread count fixed there; calls alternated within rounds; best of --repeats after a
warm-up). Prints the calibration line first, ms per frame (prompt), GFLOP/s (ours: XLA's cost
analysis of the unchunked tower; PyTorch: torch's FlopCounterMode) as a fraction of the
calibration's JAX matmul rate, each time over the fastest PyTorch tower's, the parity of every
output against OpenAI's, and the load average.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from benchmarks.calibration import calibration, machine_line  # noqa: E402
from benchmarks.harness import Candidate, compare  # noqa: E402
from benchmarks.inference import thread_label  # noqa: E402


def rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


def report(results: dict, count: int, unit: str, matmul: float) -> None:
    """One line per candidate: ms per unit, rate, time over the fastest PyTorch, parity."""
    torch_best = min(r.best_s for n, r in results.items() if not n.startswith("ours"))
    reference = next(r.output for n, r in results.items() if n.startswith("OpenAI"))
    flops = next(r.info[f"gflops_per_{unit}"] for n, r in results.items() if n.startswith("ours"))
    for name, r in results.items():
        own = r.info.get(f"gflops_per_{unit}", flops)
        gflops = own * count / r.best_s
        print(
            f"  {name:28s} {1e3 * r.best_s / count:7.1f} ms/{unit}  {gflops:6.1f} GFLOP/s = "
            f"{gflops / matmul:.2f} x matmul  time / fastest PyTorch {r.best_s / torch_best:.2f}"
            f"  parity {rel(r.output, reference):.1e}  {r.info}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", default="8,64", help="batches of frames, comma-separated")
    parser.add_argument("--chunks", default="0,4", help="image_chunk_frames values to compare")
    parser.add_argument("--prompts", type=int, default=16, help="0: no text tower")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--torch_threads", default="0,1", help="0: torch's default")
    parser.add_argument("--hf_attention", default="sdpa", help="sdpa | eager")
    args = parser.parse_args()
    print(machine_line(), flush=True)
    matmul = calibration()["matmul_gflops_jax"]
    threads = list(dict.fromkeys(args.torch_threads.split(",")))
    for frames in (int(f) for f in args.frames.split(",")):
        candidates = [
            Candidate(f"ours chunk {c}", "benchmarks.candidates:ours_tower",
                      {"frames": frames, "image_chunk_frames": int(c)})
            for c in args.chunks.split(",")
        ]  # fmt: skip
        for n in threads:
            candidates += [
                Candidate(f"OpenAI {thread_label(n)}", "benchmarks.candidates:openai_tower",
                          {"frames": frames}, int(n)),
                Candidate(f"HF {args.hf_attention} {thread_label(n)}",
                          "benchmarks.candidates:hf_tower",
                          {"frames": frames, "attention": args.hf_attention}, int(n)),
            ]  # fmt: skip
        load = os.getloadavg()[0]
        results = compare(candidates, args.repeats)
        print(f"image tower, {frames} frames, best of {args.repeats} (load average {load:.1f} "
              f"-> {os.getloadavg()[0]:.1f}):")  # fmt: skip
        report(results, frames, "frame", matmul)
    if args.prompts:
        candidates = [
            Candidate("ours", "benchmarks.candidates:ours_text", {"prompts": args.prompts})
        ]
        candidates += [
            Candidate(f"OpenAI {thread_label(n)}", "benchmarks.candidates:openai_text",
                      {"prompts": args.prompts}, int(n))
            for n in threads
        ]  # fmt: skip
        results = compare(candidates, args.repeats)
        print(f"text tower, {args.prompts} prompts x 77 tokens, best of {args.repeats}:")
        report(results, args.prompts, "prompt", matmul)
    print(f"load average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
