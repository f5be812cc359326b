"""A video file -> the model's test views, in NumPy: PyAV decode, segment sampling, crops, resize.

Both predict commands (JAX and PyTorch) read videos through this module, so they see identical
inputs. It reproduces the evaluation pipeline (`data/sampling.py`, `data/transforms.py`,
docs/data.md) on the frames of a file instead of a dataset record:

- The N decoded frames are cut into T segments. Single view: the centre frame of each segment,
  floor((t + 1/2) N / T). Multi-view: 4 random samplings (a random frame in each segment; the 4
  offset vectors drawn from `numpy.random.default_rng(seed)`) x 3 square crops.
- Crops: squares of side = short side at the start / centre / end of the long side (left / centre
  / right for landscape video); single view uses the centre one. Each crop is resized to
  crop_size x crop_size with TF's bilinear resize (half-pixel centres; anti-aliased only when
  shrinking by more than 1.5x, as the pipeline does), then CLIP-normalised.
Differences from a dataset record: the record's frames were resized to short side 256 (FFmpeg's
area filter) and JPEG-encoded by `data_prep`; here the decoded frames are cropped as they are.

No JAX, TensorFlow or torch here: only NumPy and PyAV.
"""

from __future__ import annotations

import os

import av
import numpy as np

# CLIP's normalisation (the same values as motion_clip_jax.data.device, which imports JAX).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
NUM_TEST_SAMPLINGS = 4  # multi-view: random segment samplings ...
NUM_TEST_CROPS = 3  # ... times left / centre / right crops


class VideoError(ValueError):
    """A video file that is missing, unreadable or holds no frames; the message names the file."""


# ----------------------------------------------------------------------------- frame sampling


def centre_indices(num_frames: int, num_segments: int) -> np.ndarray:
    """Single-view indices (T,) int64: the centre frame floor((t + 1/2) N / T) of each segment."""
    if num_frames < 1 or num_segments < 1:
        raise ValueError(f"need num_frames, num_segments >= 1, got {num_frames}, {num_segments}")
    t = np.arange(num_segments, dtype=np.int64)
    return (2 * t + 1) * num_frames // (2 * num_segments)


def random_indices(num_frames: int, offsets: np.ndarray) -> np.ndarray:
    """A random frame of each of T segments (T,) int64, for offsets u (T,) in [0, 1).

    Segment t owns the frames whose centre lies in [t N / T, (t + 1) N / T), so for N >= T the T
    frames are distinct; frame = first + floor(u_t * count). For N < T frames repeat:
    floor((t + u_t) N / T).
    """
    offsets = np.asarray(offsets, np.float64)
    if num_frames < 1 or offsets.ndim != 1 or np.any(offsets < 0) or np.any(offsets >= 1):
        raise ValueError(f"need num_frames >= 1, offsets in [0, 1): got {num_frames}, {offsets!r}")
    num_segments = len(offsets)
    t = np.arange(num_segments, dtype=np.int64)
    if num_frames < num_segments:
        positions = (t + offsets) * num_frames / num_segments
        return np.minimum(np.floor(positions).astype(np.int64), num_frames - 1)
    edges = np.arange(num_segments + 1, dtype=np.int64)
    # First frame of segment t: ceil(t N / T - 1/2), in integers.
    starts = np.clip(
        -((num_segments - 2 * edges * num_frames) // (2 * num_segments)), 0, num_frames
    )
    count = starts[1:] - starts[:-1]
    pick = np.minimum(np.floor(offsets * count).astype(np.int64), count - 1)
    return starts[:-1] + pick


def view_indices(num_frames: int, num_segments: int, multiview: bool, seed: int = 0) -> np.ndarray:
    """(S, T) frame indices: S = 1 centre sampling, or 4 random samplings seeded by `seed`."""
    if not multiview:
        return centre_indices(num_frames, num_segments)[None]
    offsets = np.random.default_rng(seed).random((NUM_TEST_SAMPLINGS, num_segments))
    return np.stack([random_indices(num_frames, u) for u in offsets])


# ----------------------------------------------------------------------------- crops and resize


def side_crop_boxes(height: int, width: int) -> list[tuple[int, int, int, int]]:
    """Three square boxes (y, x, side, side), side = short side, at the start / centre / end of
    the long side (left / centre / right for landscape frames, top / centre / bottom portrait)."""
    side = min(height, width)
    extra_y, extra_x = height - side, width - side
    starts = [(0, 0), (extra_y // 2, extra_x // 2), (extra_y, extra_x)]
    return [(y, x, side, side) for y, x in starts]


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


def normalize(frames: np.ndarray) -> np.ndarray:
    """[0, 255] RGB (..., 3) -> CLIP-normalised float32: (x / 255 - mean) / std."""
    frames = np.asarray(frames, np.float32) / np.float32(255.0)
    return (frames - np.asarray(CLIP_MEAN, np.float32)) / np.asarray(CLIP_STD, np.float32)


# ----------------------------------------------------------------------------- decoding


def _open(path: str):
    if not os.path.isfile(path):
        raise VideoError(f"Video file not found: {path}")
    try:
        container = av.open(path)
    except Exception as error:  # PyAV raises many FFmpeg error types; all mean "unreadable"
        raise VideoError(f"Cannot read video {path}: {type(error).__name__}: {error}") from None
    if not container.streams.video:
        container.close()
        raise VideoError(f"Cannot read video {path}: it has no video stream")
    return container


def _decode(path: str, wanted: set[int]) -> tuple[int, dict[int, np.ndarray]]:
    """Decodes the first video stream once -> (frames decoded, {index: RGB uint8 (H, W, 3)} for
    the wanted indices). A decoding error after some frames ends the video there (as data_prep
    stores it); an error before the first frame is a VideoError."""
    kept, count = {}, 0
    with _open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        try:
            for frame in container.decode(stream):
                if count in wanted:
                    kept[count] = frame.to_ndarray(format="rgb24")
                count += 1
        except Exception as error:
            if not count:
                raise VideoError(
                    f"Cannot read video {path}: {type(error).__name__}: {error}"
                ) from None
    if not count:
        raise VideoError(f"Video {path} holds no frames")
    return count, kept


def _frame_count_hint(path: str) -> int:
    """The container's frame count, else the number of video packets (no decoding)."""
    with _open(path) as container:
        stream = container.streams.video[0]
        if stream.frames and stream.frames > 0:
            return int(stream.frames)
        try:
            return sum(1 for packet in container.demux(stream) if packet.size)
        except Exception:
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
