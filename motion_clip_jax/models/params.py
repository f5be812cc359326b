"""Trainable / frozen parameter trees and the parameter overview.

The video model's params are {'clip': frozen CLIP, 'mmb': ..., 'prompt': ..., 'mcb': ...}.
`split_params` gives (trainable, frozen) so a train step is `grad(loss, argnums=trainable)` and
optimizer state exists only for the trainable tree.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import numpy as np

FROZEN_KEYS = ("clip",)


def split_params(params: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """{'clip': ..., rest} -> (trainable = rest, frozen = {'clip': ...})."""
    if "clip" not in params:
        raise KeyError(f"video model params need a 'clip' entry, got keys {sorted(params)}")
    frozen = {k: params[k] for k in FROZEN_KEYS}
    trainable = {k: v for k, v in params.items() if k not in FROZEN_KEYS}
    return trainable, frozen


def merge_params(trainable: Mapping[str, Any], frozen: Mapping[str, Any]) -> dict[str, Any]:
    """Inverse of `split_params`; the two trees must not share a top-level key."""
    shared = sorted(set(trainable) & set(frozen))
    if shared:
        raise ValueError(f"trainable and frozen params both hold {shared}")
    return {**frozen, **trainable}


def count_params(tree: Any) -> int:
    return int(sum(np.prod(x.shape) for x in jax.tree_util.tree_leaves(tree)))


def count_per_module(tree: Mapping[str, Any], depth: int = 1) -> dict[str, int]:
    """Parameter counts of the subtrees `depth` levels down, keyed 'a/b'."""
    counts: dict[str, int] = {}

    def visit(node, prefix, level):
        if level == depth or not isinstance(node, Mapping):
            counts[prefix] = count_params(node)
            return
        for key in sorted(node):
            visit(node[key], f"{prefix}/{key}" if prefix else key, level + 1)

    visit(tree, "", 0)
    return counts


def trainable_record(trainable: Mapping[str, Any]) -> dict[str, Any]:
    """What a run record says about the trained parameters: the total and the count per module
    (one and two levels down, e.g. 'mmb' and 'mmb/motion_stream')."""
    return {
        "total": count_params(trainable),
        "per_module": count_per_module(trainable, depth=1) if trainable else {},
        "per_submodule": count_per_module(trainable, depth=2) if trainable else {},
    }


def overview(trainable: Mapping[str, Any]) -> str:
    """clu's table of every trainable leaf (shape, size) plus counts per module and the total.

    Works on real arrays and on `jax.eval_shape` results (no statistics are computed).
    """
    # clu is the trainer's dependency, not the model's: a JAX + Flax image builds the model without it.
    from clu import parameter_overview

    lines = []
    if trainable:
        lines.append(parameter_overview.get_parameter_overview(trainable, include_stats=False))
    per_module = count_per_module(trainable, depth=2)
    width = max([len(k) for k in per_module] + [9])
    lines += [f"{k:<{width}} {v:>12,}" for k, v in per_module.items()]
    lines.append(f"{'trainable':<{width}} {count_params(trainable):>12,}")
    return "\n".join(lines)
