"""FLOPs of a few-shot table's training with and without the training feature cache.

    python benchmarks/feature_cache_flops.py [--table table5] [--dataset hmdb51] [--draws 10]

Plans the table as `experiments.paper` does (every row, k and draw), and takes each row's train
step FLOPs from XLA's cost analysis of the lowered step (train/memory_plan.step_flops: the whole
batch, the image tower in one call), once on pixels and once on cached frame features. Without
the cache every run pays the pixel step at every step. With it every run pays the feature step,
and the image tower runs once per distinct training clip (a video in one of its epochs): the runs
of one draw share a seed and their draws are nested across k, so a draw's clips are those of its
run that sees the most epochs of the most videos (checked: every run of the draw covers no more
epochs than that run's complete ones). Nothing runs but lowering; no data or weights are read.
"""

from __future__ import annotations

import argparse
import math
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from motion_clip_jax.data.few_shot_draw import PAPER_DRAWS  # noqa: E402
from motion_clip_jax.experiments import plan as plan_lib  # noqa: E402
from motion_clip_jax.train import memory_plan  # noqa: E402
from motion_clip_jax.train import mesh as mesh_lib  # noqa: E402


def run_clips(config, num_classes: int) -> tuple[int, int, int]:
    """(steps, clips trained on = steps x batch, videos of the draw = k x classes)."""
    steps, batch = config.train.num_steps, config.train.batch_size
    return steps, steps * batch, config.data.few_shot_k * num_classes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--table", default="table5")
    parser.add_argument("--dataset", default="hmdb51")
    parser.add_argument("--draws", type=int, default=PAPER_DRAWS)
    args = parser.parse_args()
    mesh = mesh_lib.make_mesh(1, 1)
    runs = plan_lib.unique_runs(plan_lib.plan(args.table, "/nonexistent", args.dataset,
                                              draws=args.draws))  # fmt: skip
    step_cost: dict[str, tuple[float, float]] = {}
    num_classes: dict[str, int] = {}
    totals = {"plain": 0.0, "steps_on_features": 0.0, "runs": 0, "clips": 0}
    by_draw: dict[int, list[tuple[int, int]]] = {}
    for run in runs:
        config = plan_lib.build_config(run.config, run.overrides)
        variant = config.model.variant
        if variant not in step_cost:
            pixels = memory_plan.step_flops(config, mesh)
            features = memory_plan.step_flops(config, mesh, frames=True)
            step_cost[variant] = (pixels, features)
            print(f"{variant}: train step (batch {config.train.batch_size}) {pixels / 1e12:.3f} "
                  f"TFLOPs on pixels, {features / 1e12:.4f} TFLOPs on cached features", flush=True)  # fmt: skip
        if variant not in num_classes:
            num_classes[variant] = memory_plan.abstract_parts(config, mesh)["num_classes"]
        steps, clips, videos = run_clips(config, num_classes[variant])
        totals["plain"] += steps * step_cost[variant][0]
        totals["steps_on_features"] += steps * step_cost[variant][1]
        totals["runs"] += 1
        totals["clips"] += clips
        by_draw.setdefault(config.data.few_shot_seed, []).append((clips, videos))
        batch = config.train.batch_size
    pixels, features = next(iter(step_cost.values()))
    tower_per_clip = (pixels - features) / batch  # the same tower in every row
    distinct = 0
    for draw, clips in sorted(by_draw.items()):
        most, videos = max(clips)
        full_epochs = most // videos
        for c, n in clips:  # nested draws: a run's clips lie within the largest run's epochs
            assert math.ceil(c / n) <= full_epochs and n <= videos, (draw, c, n, most, videos)
        distinct += most
    cached = totals["steps_on_features"] + distinct * tower_per_clip
    print(f"{args.table} {args.dataset}, {args.draws} draws: {totals['runs']} runs, "
          f"{totals['clips']:,} training clips; image tower {tower_per_clip / 1e9:.1f} GFLOPs "
          f"per clip")  # fmt: skip
    print(
        f"without the cache: {totals['clips']:,} tower passes, {totals['plain'] / 1e15:.1f} PFLOPs"
    )
    print(f"with the cache: {distinct:,} tower passes, {cached / 1e15:.1f} PFLOPs "
          f"({totals['plain'] / cached:.2f}x fewer)")  # fmt: skip


if __name__ == "__main__":
    main()
