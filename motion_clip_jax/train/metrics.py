"""Metric output: clu writers (TensorBoard + log) and `metrics.jsonl`, from process 0 only."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from typing import Any

import jax
import numpy as np
from clu import metric_writers


def _plain(value: Any) -> Any:
    value = np.asarray(value).item() if np.ndim(value) == 0 else np.asarray(value).tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN / Inf
    return value


class MetricWriter:
    """Writes scalars to TensorBoard (clu) and one JSON object per call to `metrics.jsonl`."""

    def __init__(self, workdir: str):
        self.is_main = jax.process_index() == 0
        self.writer = metric_writers.create_default_writer(
            workdir, just_logging=not self.is_main, asynchronous=False
        )
        self.jsonl_path = os.path.join(workdir, "metrics.jsonl")

    def write(self, step: int, scalars: Mapping[str, Any], kind: str = "train") -> None:
        self.writer.write_scalars(step, {f"{kind}/{k}": v for k, v in scalars.items()})
        if self.is_main:
            row = {"step": int(step), "kind": kind, **{k: _plain(v) for k, v in scalars.items()}}
            with open(self.jsonl_path, "a") as f:
                f.write(json.dumps(row) + "\n")

    def write_text(self, step: int, name: str, text: str) -> None:
        self.writer.write_texts(step, {name: text})

    def flush(self) -> None:
        self.writer.flush()
