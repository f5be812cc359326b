"""Segment-based (TSN-style) frame sampling inside tf.data: which T of N stored frames to decode.

The formulas, defined with their NumPy reference functions in `motion_clip_jax.core.video_spec`: the clip [0, N) is cut into T equal segments, segment t = [t N / T, (t + 1) N / T); frame i
covers [i, i + 1).
- Test (single view): the frame at each segment's centre, floor((t + 1/2) N / T), TSN's and
  mmaction's test-time formula.
- Training: a random frame of each segment. Segment t owns the frames whose centre i + 1/2 lies
  in it, i in [ceil(t N / T - 1/2), ceil((t + 1) N / T - 1/2)); these sets partition the frames,
  so for N >= T the T frames are distinct; frame = first + floor(u_t * count), u_t in [0, 1).
- N < T: segments are shorter than a frame and frames repeat, floor((t + u_t) N / T) (a 3-frame
  clip at T = 8 gives 0 0 0 1 1 2 2 2 at the centre), so short clips never fail.
These TF versions give the same indices as the NumPy ones for the same offsets (integer
arithmetic, and float64 in the same order where floats are used); tests compare the two.
"""

from __future__ import annotations

import tensorflow as tf


def random_indices_tf(num_frames: tf.Tensor, offsets: tf.Tensor) -> tf.Tensor:
    """TF version of `core.video_spec.random_indices`: num_frames scalar int, offsets (T,) float64 -> (T,) int64."""
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
    """TF version of `core.video_spec.centre_indices`: (T,) int64."""
    t = tf.range(num_segments, dtype=tf.int64)
    return (2 * t + 1) * tf.cast(num_frames, tf.int64) // (2 * num_segments)


def random_offsets_tf(num_segments: int, seed: tf.Tensor) -> tf.Tensor:
    """Offsets (T,) float64, uniform in [0, 1), from a stateless seed (2,)."""
    return tf.random.stateless_uniform([num_segments], seed=seed, dtype=tf.float64)
