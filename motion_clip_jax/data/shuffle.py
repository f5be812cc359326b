"""Stable, seeded orderings: the same keys give the same order on every machine and version.

NumPy's Generator streams and Python's `hash()` may change between releases; the data order of a
run must not (exact resume, reproducible few-shot draws). So orderings here are built from
SplitMix64, a fixed integer hash, applied to (keys..., position) and sorted.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

_MASK64 = (1 << 64) - 1


def splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser of uint64 values (wrapping arithmetic), elementwise."""
    with np.errstate(over="ignore"):  # wrapping modulo 2**64 is the point
        z = np.asarray(x, dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def hash_keys(keys: Sequence[int], values: np.ndarray) -> np.ndarray:
    """uint64 hash of (keys..., value) for every value: keys are non-negative Python ints."""
    state = np.uint64(0)
    for key in keys:
        if not 0 <= int(key) <= _MASK64:
            raise ValueError(f"hash keys must be integers in [0, 2**64), got {key!r}")
        state = splitmix64(np.asarray(state ^ np.uint64(int(key)), dtype=np.uint64))
    return splitmix64(np.asarray(values, dtype=np.uint64) ^ state)


def stable_permutation(n: int, keys: Sequence[int]) -> np.ndarray:
    """A permutation of range(n) (int64) that depends only on (n, keys)."""
    order = hash_keys(keys, np.arange(n, dtype=np.uint64))
    return np.argsort(order, kind="stable").astype(np.int64)


def string_rank_key(seed: int, text: str) -> bytes:
    """Sort key for `text` under `seed`: BLAKE2b of both, stable across Python versions."""
    return hashlib.blake2b(f"{int(seed)}\x00{text}".encode(), digest_size=16).digest()
