"""Training clips finished on the accelerator: crop windows -> resized, rounded, mirrored uint8.

With `PipelineOptions.window` the host sends each clip's decoded crop window, zero-padded to
(T, W, W, 3), its size (h, w) and its mirror bit, and `finish_clips` makes the clip the host would
have made, bit for bit: TF's bilinear resize (half-pixel centres, no antialiasing), +0.5 and
truncation to uint8, then the mirror.

Bit for bit needs TF's float32 arithmetic in TF's order (TF's CPU kernels are built without
FMA). The weights come from NumPy tables (one row per window side, computed as TF does:
in = (x + 0.5) * (n / out) - 0.5, lower / upper the neighbours, lerp = in - floor(in)); computed
in JAX they drift, XLA fusing the multiply-add. Each interpolation is a + (b - a) * t with the
product rounded first: XLA contracts it into a fused multiply-add (one rounding) in some fusions
and not in others (on this CPU: a per-frame form of this resize moved 3.7% of the floats and 188
of 7.2 M uint8 values; this batched form none), so the product passes through its integer bits
OR'd with a runtime zero, which no backend's fusion can see through. tests/test_window_resize.py checks the floats and the clips against TF, compiled with
optimisations on.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array


@functools.lru_cache(maxsize=16)
def weight_tables(window: int, out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lower, upper) int32 and lerp float32, each (window + 1, out): row n holds TF's bilinear
    weights from n input pixels to `out` (row 0 repeats row 1: padding clips are zeros anyway)."""
    lower = np.zeros((window + 1, out), np.int32)
    upper = np.zeros((window + 1, out), np.int32)
    lerp = np.zeros((window + 1, out), np.float32)
    x = np.arange(out, dtype=np.float32) + np.float32(0.5)
    for n in range(1, window + 1):
        position = x * (np.float32(n) / np.float32(out)) - np.float32(0.5)  # NumPy: no FMA
        floor = np.floor(position)
        lower[n] = np.maximum(floor, 0)
        upper[n] = np.minimum(np.ceil(position), n - 1)
        lerp[n] = position - floor
    for table in (lower, upper, lerp):
        table[0] = table[1]
    return lower, upper, lerp


def _lerp(a: Array, b: Array, t: Array, zero: Array) -> Array:
    """a + (b - a) * t with the product rounded to float32 before the sum (see module doc)."""
    product = (b - a) * t
    bits = jax.lax.bitcast_convert_type(product, jnp.int32) | zero
    return a + jax.lax.bitcast_convert_type(bits, jnp.float32)


def _resize_clip(window: Array, hw: Array, tables: tuple[Array, ...], zero: Array) -> Array:
    """(T, W, W, 3) uint8 window of valid size hw (2,) -> (T, out, out, 3) float32."""
    lower, upper, lerp = tables
    y0, y1, ty = lower[hw[0]], upper[hw[0]], lerp[hw[0]]
    x0, x1, tx = lower[hw[1]], upper[hw[1]], lerp[hw[1]]
    top, bottom = window[:, y0], window[:, y1]  # (T, out, W, 3), gathered as uint8: 1/4 the bytes

    def corners(rows: Array) -> tuple[Array, Array]:
        return rows[:, :, x0].astype(jnp.float32), rows[:, :, x1].astype(jnp.float32)

    tx = tx[None, None, :, None]
    top = _lerp(*corners(top), tx, zero)
    bottom = _lerp(*corners(bottom), tx, zero)
    return _lerp(top, bottom, ty[None, :, None, None], zero)


def finish_clips(windows: Array, window_hw: Array, flip: Array, out: int, zero: Array) -> Array:
    """Windows (B, T, W, W, 3) uint8, sizes (B, 2) int32, mirror bits (B,) bool -> the clips
    (B, T, out, out, 3) uint8. `zero`: a () int32 zero given at run time (not a constant)."""
    tables = tuple(jnp.asarray(t) for t in weight_tables(windows.shape[2], out))
    resized = jax.vmap(lambda w, hw: _resize_clip(w, hw, tables, zero))(windows, window_hw)
    clips = (resized + 0.5).astype(jnp.uint8)  # values in [0, 255]: +0.5 and truncation round
    return jnp.where(flip[:, None, None, None, None], clips[:, :, :, ::-1], clips)
