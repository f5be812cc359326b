"""Segment-based (TSN-style) frame sampling: which T of a clip's N stored frames to decode.

The clip [0, N) is cut into T equal segments, segment t = [t N / T, (t + 1) N / T); frame i
covers [i, i + 1).
- Test (single view): the frame at each segment's centre, floor((t + 1/2) N / T), TSN's and
  mmaction's test-time formula.
- Training: a random frame of each segment. Segment t owns the frames whose centre i + 1/2 lies
  in it, i in [ceil(t N / T - 1/2), ceil((t + 1) N / T - 1/2)); these sets partition the frames,
  so for N >= T the T frames are distinct; frame = first + floor(u_t * count), u_t in [0, 1).
- N < T: segments are shorter than a frame and frames repeat, floor((t + u_t) N / T) (a 3-frame
  clip at T = 8 gives 0 0 0 1 1 2 2 2 at the centre), so short clips never fail.
The NumPy functions are the reference; the TF ones run inside tf.data and give the same indices
for the same offsets (integer arithmetic, and float64 in the same order where floats are used).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf


def _check(num_frames: int, offsets: np.ndarray) -> np.ndarray:
    offsets = np.asarray(offsets, dtype=np.float64)
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    if offsets.ndim != 1 or np.any(offsets < 0) or np.any(offsets >= 1):
        raise ValueError(f"offsets must be a vector in [0, 1), got {offsets!r}")
    return offsets


def segment_starts(num_frames: int, num_segments: int) -> np.ndarray:
    """(T + 1,) int64: segment t owns frames [starts[t], starts[t + 1]) (N >= T: all non-empty)."""
    t = np.arange(num_segments + 1, dtype=np.int64)
    # ceil(t N / T - 1/2) = ceil((2 t N - T) / (2 T)), in integers.
    starts = -((num_segments - 2 * t * num_frames) // (2 * num_segments))
    return np.clip(starts, 0, num_frames)


def random_indices(num_frames: int, offsets: np.ndarray) -> np.ndarray:
    """Training indices (T,) int64: frame floor(u_t * count) of segment t, for offsets u (T,)."""
    offsets = _check(num_frames, offsets)
    num_segments = len(offsets)
    if num_frames < num_segments:
        positions = (np.arange(num_segments) + offsets) * num_frames / num_segments
        return np.minimum(np.floor(positions).astype(np.int64), num_frames - 1)
    starts = segment_starts(num_frames, num_segments)
    count = starts[1:] - starts[:-1]
    pick = np.minimum(np.floor(offsets * count).astype(np.int64), count - 1)
    return starts[:-1] + pick


def centre_indices(num_frames: int, num_segments: int) -> np.ndarray:
    """Single-view test indices (T,) int64: floor((t + 1/2) N / T)."""
    _check(num_frames, np.zeros(num_segments))
    t = np.arange(num_segments, dtype=np.int64)
    return (2 * t + 1) * num_frames // (2 * num_segments)


def random_indices_tf(num_frames: tf.Tensor, offsets: tf.Tensor) -> tf.Tensor:
    """TF version of `random_indices`: num_frames scalar int, offsets (T,) float64 -> (T,) int64."""
    offsets = tf.cast(offsets, tf.float64)
    n = tf.cast(num_frames, tf.int64)
    num_segments = tf.shape(offsets, out_type=tf.int64)[0]
    t = tf.range(num_segments + 1, dtype=tf.int64)
    starts = tf.clip_by_value(-((num_segments - 2 * t * n) // (2 * num_segments)), 0, n)
    count = starts[1:] - starts[:-1]
    pick = tf.minimum(tf.cast(tf.floor(offsets * tf.cast(count, tf.float64)), tf.int64), count - 1)
    long_clip = starts[:-1] + pick
    positions = (tf.cast(t[:-1], tf.float64) + offsets) * tf.cast(n, tf.float64)
    positions = positions / tf.cast(num_segments, tf.float64)
    short_clip = tf.minimum(tf.cast(tf.floor(positions), tf.int64), n - 1)
    return tf.where(n < num_segments, short_clip, long_clip)


def centre_indices_tf(num_frames: tf.Tensor, num_segments: int) -> tf.Tensor:
    """TF version of `centre_indices`: (T,) int64."""
    t = tf.range(num_segments, dtype=tf.int64)
    return (2 * t + 1) * tf.cast(num_frames, tf.int64) // (2 * num_segments)


def random_offsets_tf(num_segments: int, seed: tf.Tensor) -> tf.Tensor:
    """Offsets (T,) float64, uniform in [0, 1), from a stateless seed (2,)."""
    return tf.random.stateless_uniform([num_segments], seed=seed, dtype=tf.float64)
