"""Timing helpers shared by the benchmarks: best-of-rounds wall time, XLA's FLOP count."""

from __future__ import annotations

import time
from collections.abc import Callable


def best_times(
    fns: dict[str, Callable[[], object]], repeats: int, warmup: bool = False
) -> dict[str, float]:
    """Best wall seconds of each fn (which must block until its result is ready) over `repeats`
    rounds, after one warm-up round if `warmup`. The fns alternate within a round, so a burst of
    load on a shared machine hits all of them."""
    if warmup:
        for fn in fns.values():
            fn()
    best = {name: float("inf") for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def lowered_flops(lowered) -> float:
    """XLA's FLOP count of a lowered (or compiled) computation."""
    analysis = lowered.cost_analysis()
    analysis = analysis[0] if isinstance(analysis, list | tuple) else analysis
    return float(analysis["flops"])
