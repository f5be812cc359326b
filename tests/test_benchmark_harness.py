"""benchmarks/harness.py: each candidate in a process of its own with its thread setting fixed
there, calls alternated within rounds, the best of them kept, a candidate's failure named."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from benchmarks.harness import Candidate, compare


def sleeper(seconds: float):
    """A candidate: sleeps, then returns (its pid, torch's thread count, the time of the call)."""
    import torch

    def call():
        time.sleep(seconds)
        return np.asarray([os.getpid(), torch.get_num_threads(), time.time()])

    return call, {"pid": os.getpid()}


def broken():
    raise ValueError("no such weights")


def test_candidates_run_apart_alternated_with_their_thread_count():
    logged = []
    results = compare(
        [
            Candidate("slow", f"{__name__}:sleeper", {"seconds": 0.3}, torch_threads=1),
            Candidate("fast", f"{__name__}:sleeper", {"seconds": 0.05}),
        ],
        repeats=2,
        settle_s=0.0,
        log=logged.append,
    )
    slow, fast = results["slow"], results["fast"]
    pids = {int(slow.output[0]), int(fast.output[0])}
    assert len(pids) == 2 and os.getpid() not in pids
    assert {slow.info["pid"], fast.info["pid"]} == pids
    assert int(slow.output[1]) == 1  # set once in its own process
    assert len(slow.seconds) == len(fast.seconds) == 2
    assert 0.3 <= slow.best_s == min(slow.seconds) and 0.05 <= fast.best_s < 0.3
    assert sum(line.startswith("round ") for line in logged) == 2


def test_a_failing_candidate_is_named():
    with pytest.raises(RuntimeError, match="candidate 'weights'.*ValueError: no such weights"):
        compare([Candidate("weights", f"{__name__}:broken")], repeats=1)
