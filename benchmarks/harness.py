"""One timing harness for every comparison with a peer: each candidate in a process of its own.

A candidate (ours in JAX, or a PyTorch peer at one thread count) is built in a fresh process
(multiprocessing 'spawn') and its settings are fixed there once, before any call: torch's intra-op
thread count is set when the process starts and never changed, and no JAX runtime sits beside a
torch one. The parent times in rounds: each round asks every candidate in turn for one call
(alternated, so a burst of load on a shared machine hits them all), after a short pause that lets
the previous candidate's thread pool go idle; the call is timed in the candidate's own process
(from the call to its result ready), and a candidate's time is the best of its rounds.

A candidate is a function `build(**kwargs) -> (call, info)` named "module:function": `call()`
returns its output as NumPy (so it has finished), `info` is a JSON-able dict about it (parameters,
FLOPs; a PyTorch candidate also its thread count). The builder module is imported in the
candidate's process only, so a script that compares JAX with PyTorch imports neither at its top
level.
"""

from __future__ import annotations

import dataclasses
import importlib
import multiprocessing
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


@dataclasses.dataclass(frozen=True)
class Candidate:
    name: str
    builder: str  # "module:function", imported in the candidate's process
    kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    torch_threads: int = 0  # set once at the process start; 0: torch's default (not set)


@dataclasses.dataclass
class Result:
    best_s: float
    seconds: list[float]  # every timed round
    info: dict[str, Any]
    output: np.ndarray | dict | None  # the warm-up call's output


def _serve(conn, candidate: Candidate) -> None:
    """The candidate's process: build, then answer 'call' / 'output' / 'stop' requests."""
    try:
        if candidate.torch_threads:
            import torch

            torch.set_num_threads(candidate.torch_threads)
        module, name = candidate.builder.split(":")
        call, info = getattr(importlib.import_module(module), name)(**candidate.kwargs)
        conn.send(("ok", info))
        while (request := conn.recv()) != "stop":
            start = time.perf_counter()
            out = call()
            elapsed = time.perf_counter() - start
            conn.send(("ok", (elapsed, out if request == "output" else None)))
    except BaseException:  # the parent reports it under the candidate's name
        conn.send(("error", traceback.format_exc()))


def _ask(conn, name: str, request: str | None) -> Any:
    """Sends `request` (None: only waits) and returns the answer; a candidate's error raised."""
    try:
        if request is not None:
            conn.send(request)
        status, value = conn.recv()
    except (EOFError, BrokenPipeError, ConnectionResetError) as error:
        raise RuntimeError(
            f"benchmark candidate {name!r}: its process exited ({error!r})"
        ) from None
    if status == "error":
        last = value.strip().splitlines()[-1]
        raise RuntimeError(f"benchmark candidate {name!r} failed: {last}\n{value}")
    return value


def compare(
    candidates: Sequence[Candidate],
    repeats: int,
    settle_s: float = 0.2,
    log: Callable[[str], None] = print,
) -> dict[str, Result]:
    """Best seconds per call of every candidate over `repeats` alternated rounds, after one
    warm-up call each (which also compiles, for JAX, and keeps the output)."""
    context = multiprocessing.get_context("spawn")
    workers, infos = {}, {}
    try:
        for c in candidates:  # built one at a time: a build (a compile) does not slow another's
            parent, child = context.Pipe()
            process = context.Process(target=_serve, args=(child, c), daemon=True)
            process.start()
            workers[c.name] = (process, parent)
            infos[c.name] = _ask(parent, c.name, None)
            log(f"built {c.name}: {infos[c.name]}")
        results = {}
        for c in candidates:
            elapsed, output = _ask(workers[c.name][1], c.name, "output")
            results[c.name] = Result(float("inf"), [], infos[c.name], output)
            log(f"warm-up {c.name}: {elapsed:.2f} s")
        for r in range(repeats):
            for c in candidates:
                time.sleep(settle_s)
                elapsed, _ = _ask(workers[c.name][1], c.name, "call")
                results[c.name].seconds.append(elapsed)
                results[c.name].best_s = min(results[c.name].best_s, elapsed)
            times = ", ".join(f"{n} {res.seconds[-1]:.2f}" for n, res in results.items())
            log(f"round {r + 1}/{repeats} (s): {times}")
        return results
    finally:
        for process, conn in workers.values():
            if process.is_alive():
                try:
                    conn.send("stop")
                except (BrokenPipeError, OSError):
                    pass
            process.join(timeout=30)
            if process.is_alive():
                process.terminate()
