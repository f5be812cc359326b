"""End-to-end inference throughput: our full model vs Hugging Face's XCLIPModel, one harness.

    python benchmarks/inference.py [--batch 8] [--frames 8] [--classes 51] [--repeats 3]
        [--torch_threads 0,1] [--image_chunk_frames -1] [--profile] [--compare_suffix_groups N]

Both models have random weights at ViT-B/16 size: ours is `init_video_clip(model_config('full'))`
(frozen CLIP ViT-B/16, MMB, motion-aware prompts, MCB) in JAX, jitted, at the model's defaults;
the peer is transformers' `XCLIPModel` at the published microsoft/xclip-base-patch16 sizes
(benchmarks/candidates.py), inference mode. float32 on CPU. Inputs: the same CLIP-normalised random
video (B, T, 224, 224, 3) and the token rows of the first K HMDB-51 class prompts (X-CLIP gets the
matching attention mask). Timing: benchmarks/harness.py, every candidate in a process of its own
with its settings fixed there (X-CLIP once per --torch_threads value, 0 = torch's default), calls
alternated within rounds, best of --repeats after a warm-up; the ratio is taken to the fastest
X-CLIP setting. --profile adds our model's four stages, each jitted on its own (image tower, MMB,
text side with the motion-aware prompts, MCB + logits), to the same rounds: where the time beside
the image tower goes. --compare_suffix_groups N adds ours (and, with --profile, its text stage) at
`text_suffix_groups` N beside the default (1: every class suffix padded to the longest), in the
same rounds: the exact shortcut's before and after. Prints the calibration line first, videos/s, FLOPs per video (ours: XLA's
cost analysis of the unchunked program; X-CLIP: torch's FlopCounterMode, matmuls and convolutions
only) and GFLOP/s as a fraction of the calibration's JAX matmul rate, and the load average.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import candidates as candidates_lib  # noqa: E402
from benchmarks.calibration import calibration, machine_line  # noqa: E402
from benchmarks.harness import Candidate, compare  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--frames", type=int, default=8, help="T (X-CLIP's num_frames too)")
    parser.add_argument("--classes", type=int, default=51, help="first K HMDB-51 class names")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--torch_threads", default="0,1", help="0: torch's default")
    parser.add_argument("--image_chunk_frames", type=int, default=-1, help="ours; -1: default")
    parser.add_argument("--profile", action="store_true", help="also time our model's stages")
    parser.add_argument(
        "--compare_suffix_groups", type=int, default=0, help="ours also at this text_suffix_groups"
    )
    args = parser.parse_args()
    print(machine_line(), flush=True)
    matmul = calibration()["matmul_gflops_jax"]
    sizes = dict(batch=args.batch, frames=args.frames, classes=args.classes)
    ours = Candidate("ours", "benchmarks.candidates:ours_full",
                     {**sizes, "image_chunk_frames": args.image_chunk_frames})  # fmt: skip
    peers = [
        Candidate(f"X-CLIP {thread_label(n)}", "benchmarks.candidates:xclip", sizes, int(n))
        for n in dict.fromkeys(args.torch_threads.split(","))
    ]
    parts = [
        Candidate(f"ours: {part}", "benchmarks.candidates:ours_part", {"part": part, **sizes})
        for part in (candidates_lib.PARTS if args.profile else ())
    ]
    others = []
    if args.compare_suffix_groups:
        groups = {"text_suffix_groups": args.compare_suffix_groups}
        label = f"text_suffix_groups={args.compare_suffix_groups}"
        others.append((
            Candidate(f"ours, {label}", "benchmarks.candidates:ours_full",
                      {**sizes, "image_chunk_frames": args.image_chunk_frames, **groups}),
            "ours",
        ))  # fmt: skip
        if args.profile:
            part = candidates_lib.PARTS[2]
            others.append((
                Candidate(f"ours, {label}: {part}", "benchmarks.candidates:ours_part",
                          {"part": part, **sizes, **groups}),
                f"ours: {part}",
            ))  # fmt: skip
    load_before = os.getloadavg()[0]
    results = compare([ours, *peers, *parts, *(c for c, _ in others)], args.repeats)
    print(
        f"inputs: batch {args.batch} videos x T={args.frames} frames x 224 px, K={args.classes} "
        f"HMDB-51 classes, float32, best of {args.repeats} after a warm-up; load average "
        f"{load_before:.2f} before, {os.getloadavg()[0]:.2f} after; fraction = GFLOP/s / "
        f"calibration JAX matmul {matmul:.0f} GFLOP/s"
    )
    b = args.batch
    for name, r in results.items():
        if "gflops_per_video" not in r.info:  # a stage of the profile
            continue
        flops = r.info["gflops_per_video"]
        if r.output.shape != (b, args.classes) or not (abs(r.output) < float("inf")).all():
            raise RuntimeError(f"{name}: logits {r.output.shape} not finite (B, K)")
        print(
            f"{name:14s} {b / r.best_s:.3f} videos/s ({r.best_s:.2f} s/batch; rounds "
            f"{', '.join(f'{s:.2f}' for s in r.seconds)}), {flops:.1f} GFLOPs/video, "
            f"{flops * b / r.best_s / matmul:.2f} x matmul; {r.info}"
        )
    fastest = min((r.best_s, n) for n, r in results.items() if n.startswith("X-CLIP"))
    print(
        f"throughput ratio ours / fastest X-CLIP ({fastest[1]}): "
        f"{fastest[0] / results['ours'].best_s:.2f}x"
    )
    if parts:
        print_profile(results, parts, b, matmul)
    for other, default in others:
        r, base = results[other.name], results[default]
        print(
            f"{other.name}: {r.best_s:.3f} s/batch against {base.best_s:.3f} at the default "
            f"({r.best_s / base.best_s:.2f}x the time); {r.info}"
        )
    print(f"load average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")


def thread_label(n: str) -> str:
    """'threads=default' for 0 (torch's own count: the candidate's info reports it), else the
    count."""
    return f"threads={'default' if n == '0' else n}"


def print_profile(results: dict, parts: list[Candidate], batch: int, matmul: float) -> None:
    """Each stage's time, share of the stages' sum, FLOPs share and rate."""
    total_s = sum(results[p.name].best_s for p in parts)
    total_flops = sum(results[p.name].info["gflops"] for p in parts)
    whole = results["ours"].best_s
    print(
        f"our stages, each jitted alone (sum {total_s:.2f} s/batch against {whole:.2f} for the one"
    )
    print("program):")
    for p in parts:
        r = results[p.name]
        gflops = r.info["gflops"]
        print(
            f"  {p.kwargs['part']:32s} {r.best_s:7.3f} s/batch  {100 * r.best_s / total_s:5.1f}% "
            f"of time  {100 * gflops / total_flops:5.1f}% of FLOPs ({gflops / batch:.2f} "
            f"GFLOPs/video)  {gflops / r.best_s / matmul:.2f} x matmul"
        )


if __name__ == "__main__":
    main()
