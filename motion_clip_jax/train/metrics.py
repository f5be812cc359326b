"""Metric output: clu writers (TensorBoard + log) and `metrics.jsonl`, from process 0 only."""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import numpy as np

from motion_clip_jax.core.error_text import first_line
from motion_clip_jax.train.workdir import WriteFailedError


def _plain(value: Any) -> Any:
    value = np.asarray(value).item() if np.ndim(value) == 0 else np.asarray(value).tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN / Inf
    return value


def append_line(path: str, line: str) -> None:
    """Appends `line` + newline to `path`; a write that fails leaves the file as it was (a
    partial line is cut off again), so every line of it stays a whole record."""
    size = os.path.getsize(path) if os.path.exists(path) else 0
    try:
        with open(path, "a") as f:
            f.write(line + "\n")
    except OSError as error:
        with contextlib.suppress(OSError):
            os.truncate(path, size)
        raise WriteFailedError(
            f"writing {path} failed ({error.strerror or error}); the metrics and checkpoints "
            "written before are intact: free space, then rerun the same command to resume from "
            "the last checkpoint"
        ) from error


class MetricWriter:
    """Writes scalars to TensorBoard (clu) and one JSON object per call to `metrics.jsonl`."""

    def __init__(self, workdir: str):
        from clu import metric_writers  # loads TensorFlow: only where metrics are written

        self.is_main = jax.process_index() == 0
        self.writer = metric_writers.create_default_writer(
            workdir, just_logging=not self.is_main, asynchronous=False
        )
        self.jsonl_path = os.path.join(workdir, "metrics.jsonl")

    def write(self, step: int, scalars: Mapping[str, Any], kind: str = "train") -> None:
        """One row; a failed write (a full disk, say) raises WriteFailedError naming the file."""
        try:
            self.writer.write_scalars(step, {f"{kind}/{k}": v for k, v in scalars.items()})
        except Exception as error:  # TensorFlow's summary writer raises its own OpErrors
            raise self._events_failed(error) from error
        if self.is_main:
            row = {"step": int(step), "kind": kind, **{k: _plain(v) for k, v in scalars.items()}}
            append_line(self.jsonl_path, json.dumps(row))

    def write_text(self, step: int, name: str, text: str) -> None:
        self.writer.write_texts(step, {name: text})

    def flush(self) -> None:
        try:
            self.writer.flush()
        except Exception as error:  # TensorFlow's summary writer raises its own OpErrors
            raise self._events_failed(error) from error

    def _events_failed(self, error: Exception) -> WriteFailedError:
        return WriteFailedError(
            f"writing the TensorBoard events in {os.path.dirname(self.jsonl_path)} failed "
            f"({first_line(error)}); the metrics and checkpoints written before are intact: free "
            "space, then rerun the same command to resume from the last checkpoint"
        )


def finite_metrics(
    pending: Sequence[tuple[int, Mapping[str, Any]]], error: Callable[[int, float], Exception]
) -> list[dict[str, Any]]:
    """The metrics of pending (step, metrics) pairs on the host (waiting for those steps); at
    the first NaN / Inf loss, raises error(step, loss) instead."""
    fetched = []
    for step, values in jax.device_get(list(pending)):
        if not np.isfinite(values["loss"]):
            raise error(step, values["loss"])
        fetched.append(values)
    return fetched


def window_means(window: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """The mean of each metric over a logging window of steps."""
    return {name: float(np.mean([values[name] for values in window])) for name in window[0]}
