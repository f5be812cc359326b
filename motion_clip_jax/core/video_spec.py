"""The video spec: what a clip is for the model, in NumPy (no JAX, TensorFlow or torch).

Sampling (segment-based, TSN style). The clip [0, N) is cut into T equal segments, segment
t = [t N / T, (t + 1) N / T); frame i covers [i, i + 1).
- Test (single view): the frame at each segment's centre, floor((t + 1/2) N / T), TSN's and
  mmaction's test-time formula.
- Training and multi-view test: a random frame of each segment. Segment t owns the frames whose
  centre i + 1/2 lies in it, i in [ceil(t N / T - 1/2), ceil((t + 1) N / T - 1/2)); these sets
  partition the frames, so for N >= T the T frames are distinct; frame = first + floor(u_t count),
  u_t in [0, 1).
- N < T: segments are shorter than a frame and frames repeat, floor((t + u_t) N / T) (a 3-frame
  clip at T = 8 gives 0 0 0 1 1 2 2 2 at the centre), so short clips never fail.

Views. Multi-view testing (paper §4.1, as X-CLIP does it) takes NUM_TEST_SAMPLINGS random
samplings x NUM_TEST_CROPS square crops (left / centre / right along the long side), view index
= sampling * NUM_TEST_CROPS + crop; per-view softmax scores are summed.

Normalisation: CLIP's own mean and std, on RGB in [0, 1].

The tf.data pipeline (`data/sampling.py`) implements the same formulas as TF ops and is tested
against these functions.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)  # RGB, of pixels in [0, 1]
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
NUM_TEST_SAMPLINGS = 4  # multi-view test: random segment samplings ...
NUM_TEST_CROPS = 3  # ... x left / centre / right crops = 12 views


def num_views(multiview: bool) -> int:
    """Views per test video: 1, or NUM_TEST_SAMPLINGS * NUM_TEST_CROPS."""
    return NUM_TEST_SAMPLINGS * NUM_TEST_CROPS if multiview else 1


def _check_offsets(num_frames: int, offsets: np.ndarray) -> np.ndarray:
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
    """Indices (T,) int64: frame floor(u_t * count) of segment t, for offsets u (T,) in [0, 1)."""
    offsets = _check_offsets(num_frames, offsets)
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
    if num_segments < 1:
        raise ValueError(f"num_segments must be >= 1, got {num_segments}")
    _check_offsets(num_frames, np.zeros(num_segments))
    t = np.arange(num_segments, dtype=np.int64)
    return (2 * t + 1) * num_frames // (2 * num_segments)


def view_indices(num_frames: int, num_segments: int, multiview: bool, seed: int = 0) -> np.ndarray:
    """(S, T) frame indices of a file's test views: S = 1 centre sampling, or NUM_TEST_SAMPLINGS
    random samplings whose offsets come from `numpy.random.default_rng(seed)`."""
    if not multiview:
        return centre_indices(num_frames, num_segments)[None]
    offsets = np.random.default_rng(seed).random((NUM_TEST_SAMPLINGS, num_segments))
    return np.stack([random_indices(num_frames, u) for u in offsets])


def side_crop_boxes(height: int, width: int) -> list[tuple[int, int, int, int]]:
    """NUM_TEST_CROPS square boxes (y, x, side, side), side = short side, at the start / centre /
    end of the long side (left / centre / right for landscape frames, top / centre / bottom for
    portrait ones). Single view uses the centre box."""
    side = min(height, width)
    extra_y, extra_x = height - side, width - side
    starts = [(0, 0), (extra_y // 2, extra_x // 2), (extra_y, extra_x)]
    return [(y, x, side, side) for y, x in starts]


def normalize(frames: Any, xp: ModuleType = np) -> Any:
    """RGB (..., 3) in [0, 255] (uint8 or float) -> CLIP-normalised float32: (x/255 - mean) / std.

    `xp` is the array namespace: NumPy on the host, `jax.numpy` inside a jitted step.
    """
    frames = xp.asarray(frames, dtype=xp.float32) / 255.0
    mean = xp.asarray(CLIP_MEAN, dtype=xp.float32)
    return (frames - mean) / xp.asarray(CLIP_STD, dtype=xp.float32)
