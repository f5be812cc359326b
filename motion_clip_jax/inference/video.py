"""A video file -> the model's test views, in NumPy: PyAV decode, segment sampling, crops, resize.

Both predict commands (JAX and PyTorch) read videos through this module, so they see identical
inputs. It applies the evaluation views of `core/video_spec.py` (the same sampling, crops and
normalisation as the tf.data pipeline, docs/data.md) to the frames of a file:

- Single view: the centre frame of each of T segments, centre square crop. Multi-view: 4 random
  samplings (offsets from `numpy.random.default_rng(seed)`) x left / centre / right squares.
- Each crop is resized to crop_size x crop_size with TF's bilinear resize (half-pixel centres;
  anti-aliased only when shrinking by more than 1.5x, as the pipeline does), then CLIP-normalised.
Differences from a dataset record: the record's frames were resized to short side 256 (FFmpeg's
area filter) and JPEG-encoded by `data_prep`; here the decoded frames are cropped as they are.

No JAX, TensorFlow or torch here: only NumPy and PyAV.
"""

from __future__ import annotations

import os

import numpy as np

from motion_clip_jax.core.video_spec import normalize, side_crop_boxes, view_indices
from motion_clip_jax.data.video_file import decoded_frames, open_video


def _resize_weights(in_size: int, out_size: int, antialias: bool) -> np.ndarray:
    """(out, in) float64 weights of TF's bilinear resize along one axis.

    Triangle kernel at half-pixel centres, sample_i = (i + 1/2) in / out; when anti-aliasing a
    shrink the kernel is widened by in / out. Weights are renormalised at the borders, which for
    an unwidened kernel equals TF's edge clamping.
    """
    inv_scale = in_size / out_size
    kernel_scale = max(inv_scale, 1.0) if antialias else 1.0
    centres = (np.arange(out_size) + 0.5) * inv_scale
    taps = np.arange(in_size) + 0.5
    weights = np.maximum(0.0, 1.0 - np.abs(taps[None, :] - centres[:, None]) / kernel_scale)
    return weights / weights.sum(axis=1, keepdims=True)


def resize(frames: np.ndarray, size: int) -> np.ndarray:
    """(..., h, w, 3) -> (..., size, size, 3) float32, as the pipeline's `transforms.resize`
    (tf.image.resize bilinear, anti-aliased only when the long side shrinks more than 1.5x)."""
    h, w = frames.shape[-3], frames.shape[-2]
    antialias = max(h, w) * 2 > size * 3
    rows = _resize_weights(h, size, antialias)
    cols = _resize_weights(w, size, antialias)
    rows = rows.astype(np.float32)
    cols = cols.astype(np.float32)
    channels_first = np.moveaxis(np.asarray(frames, np.float32), -1, -3)  # (..., 3, h, w)
    out = rows @ channels_first @ cols.T  # (..., 3, size, size)
    return np.ascontiguousarray(np.moveaxis(out, -3, -1))


def _decode(path: str, wanted: set[int]) -> tuple[int, dict[int, np.ndarray]]:
    """Decodes the video once -> (frames decoded, {index: RGB uint8 (H, W, 3)} for the wanted
    indices). A decoding error after some frames ends the video there (as data_prep stores it)."""
    kept, frames = {}, decoded_frames(path)
    for index, frame in enumerate(frames):
        if index in wanted:
            kept[index] = frame.to_ndarray(format="rgb24")
    return frames.count, kept


def _frame_count_hint(path: str) -> int:
    """The container's frame count, else the number of video packets (no decoding)."""
    with open_video(path) as container:
        stream = container.streams.video[0]
        if stream.frames and stream.frames > 0:
            return int(stream.frames)
        try:
            return sum(1 for packet in container.demux(stream) if packet.size)
        except Exception:  # a damaged container: no hint, the frames are counted by decoding
            return 0


def read_sampled_frames(
    path: str | os.PathLike, num_segments: int, multiview: bool = False, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, int]:
    """Decodes the sampled frames of a video file.

    The sampling needs N, the number of decodable frames. The header (or packet count) gives a
    guess; the frames are decoded once keeping only the sampled ones, and decoded again in the
    rare case the guess was wrong, so the indices always refer to the true N.
    Returns:
      frames (S, T, H, W, 3) uint8 RGB (S = 1, or 4 samplings for multi-view), indices (S, T),
      and N.
    """
    path = os.fspath(path)
    guess = _frame_count_hint(path)
    if guess > 0:
        indices = view_indices(guess, num_segments, multiview, seed)
        count, kept = _decode(path, set(indices.ravel().tolist()))
    else:
        count = _decode(path, set())[0]  # no guess: count the frames first
    if count != guess:  # sample from the true count
        indices = view_indices(count, num_segments, multiview, seed)
        count, kept = _decode(path, set(indices.ravel().tolist()))
    frames = np.stack([np.stack([kept[int(i)] for i in row]) for row in indices])
    return frames, indices, count


def frames_to_views(frames: np.ndarray, crop_size: int, multiview: bool) -> np.ndarray:
    """Sampled frames (S, T, H, W, 3) uint8 -> views (V, T, crop, crop, 3) float32, normalised.

    Single view (S = 1): the centre square. Multi-view: left / centre / right squares of every
    sampling, view = sampling * 3 + crop.
    """
    boxes = side_crop_boxes(frames.shape[2], frames.shape[3])
    crops = boxes if multiview else [boxes[1]]
    views = [
        resize(clip[:, y : y + h, x : x + w], crop_size) for clip in frames for y, x, h, w in crops
    ]
    return normalize(np.stack(views))


def load_views(
    path: str | os.PathLike,
    num_frames: int,
    crop_size: int,
    multiview: bool = False,
    seed: int = 0,
) -> np.ndarray:
    """A video file -> its test views (V, T, crop, crop, 3) float32, CLIP-normalised, channels
    last. V = 1 (centre frames, centre crop) or 12 (4 samplings x left / centre / right)."""
    frames, _, _ = read_sampled_frames(path, num_frames, multiview, seed)
    return frames_to_views(frames, crop_size, multiview)
