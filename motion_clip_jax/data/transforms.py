"""Per-clip image ops in TF: decode only the sampled JPEGs, crop, resize, flip, CLIP-normalise.

One crop box for all T frames of a clip (the motion between frames is what the model reads).
Boxes are [y, x, h, w] in stored-frame pixels (int32).
- Training, multi-scale crop (TSN): base = short side; crop height and width are base * s for
  scales s in `scales` (default 1, .875, .75, .66), the two scale indices at most one apart;
  the box is placed uniformly at random, then resized to crop_size x crop_size.
- Test: squares of side = short side, at the start / centre / end of the long side (left / centre /
  right for landscape frames), resized to crop_size: the same as resizing the short side to
  crop_size and cropping crop_size x crop_size there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import tensorflow as tf

from motion_clip_jax.core.video_spec import CLIP_MEAN, CLIP_STD

MULTISCALE_SCALES = (1.0, 0.875, 0.75, 0.66)


def normalize(frames: tf.Tensor) -> tf.Tensor:
    """[0, 255] RGB (..., 3) -> CLIP-normalised float32: (x / 255 - mean) / std."""
    frames = tf.cast(frames, tf.float32) / 255.0
    return (frames - tf.constant(CLIP_MEAN)) / tf.constant(CLIP_STD)


def frame_size(jpeg: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """(height, width) int32 of a JPEG, read from its header only."""
    shape = tf.image.extract_jpeg_shape(jpeg)
    return shape[0], shape[1]


def multiscale_crop_box(
    height: tf.Tensor,
    width: tf.Tensor,
    seed: tf.Tensor,
    scales: Sequence[float] = MULTISCALE_SCALES,
) -> tf.Tensor:
    """A random TSN multi-scale crop box [y, x, h, w] (int32) from a stateless seed (2,)."""
    pairs = [(i, j) for i in range(len(scales)) for j in range(len(scales)) if abs(i - j) <= 1]
    scale_seed, y_seed, x_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 3))
    pick = tf.random.stateless_uniform([], scale_seed, 0, len(pairs), dtype=tf.int32)
    base = tf.cast(tf.minimum(height, width), tf.float32)
    scale_values = tf.constant(scales, tf.float32)
    pair = tf.gather(tf.constant(pairs, tf.int32), pick)
    crop_h = tf.maximum(1, tf.cast(base * tf.gather(scale_values, pair[0]), tf.int32))
    crop_w = tf.maximum(1, tf.cast(base * tf.gather(scale_values, pair[1]), tf.int32))
    crop_h, crop_w = tf.minimum(crop_h, height), tf.minimum(crop_w, width)
    y = tf.random.stateless_uniform([], y_seed, 0, height - crop_h + 1, dtype=tf.int32)
    x = tf.random.stateless_uniform([], x_seed, 0, width - crop_w + 1, dtype=tf.int32)
    return tf.stack([y, x, crop_h, crop_w])


def side_crop_boxes(height: tf.Tensor, width: tf.Tensor) -> tf.Tensor:
    """(3, 4) square boxes [y, x, s, s], s = short side, at the start / centre / end of the long
    side: left / centre / right for landscape frames, top / centre / bottom for portrait."""
    side = tf.minimum(height, width)
    extra_y, extra_x = height - side, width - side  # one of them is 0
    return tf.stack(
        [
            tf.stack([0, 0, side, side]),
            tf.stack([extra_y // 2, extra_x // 2, side, side]),
            tf.stack([extra_y, extra_x, side, side]),
        ]
    )


def centre_crop_box(height: tf.Tensor, width: tf.Tensor) -> tf.Tensor:
    """[y, x, s, s]: the centre square of side = short side."""
    return side_crop_boxes(height, width)[1]


def decode_crop_resize(
    jpegs: tf.Tensor,
    box: tf.Tensor,
    crop_size: int,
    finish: Callable[[tf.Tensor], tf.Tensor] | None = None,
) -> tf.Tensor:
    """Decodes the window `box` of each JPEG (T,) and resizes it: (T, crop, crop, 3) float32 in
    [0, 255], or `finish` of that (a per-pixel map, e.g. rounding to uint8). Only the window is
    decoded (tf.image.decode_and_crop_jpeg).

    Each frame goes through decode -> resize -> finish on its own and only the results are
    stacked: the same values as doing each step on the stack (every op is per frame), with ~1 MB
    intermediates that stay in cache instead of ~6 MB ones.
    """
    num_frames = jpegs.shape[0]
    if num_frames is None:
        raise ValueError("decode_crop_resize needs a static number of frames")
    finish = finish or (lambda frames: frames)
    return tf.stack(
        [
            finish(resize(tf.image.decode_and_crop_jpeg(jpegs[t], box, channels=3), crop_size))
            for t in range(num_frames)
        ]
    )


def resize(frames: tf.Tensor, crop_size: int) -> tf.Tensor:
    """(..., h, w, 3) -> (..., crop, crop, 3) float32, bilinear.

    Anti-aliased only when shrinking by more than 1.5x: it costs ~2x the time, and crops of frames
    stored at short side 256 shrink by at most 256 / 224. A crop already crop x crop is only cast:
    bilinear at scale 1 samples every pixel with weight exactly 0 on its neighbour (the same bits).
    """
    shape = tf.shape(frames)
    height, width = shape[-3], shape[-2]
    shrink = tf.maximum(height, width) * 2 > crop_size * 3
    frames = tf.cast(frames, tf.float32)

    def bilinear():
        return tf.cond(
            shrink,
            lambda: tf.image.resize(frames, [crop_size, crop_size], "bilinear", antialias=True),
            lambda: tf.image.resize(frames, [crop_size, crop_size], "bilinear", antialias=False),
        )

    same = tf.logical_and(tf.equal(height, crop_size), tf.equal(width, crop_size))
    # No shape assertion inside the branch: traced with a known shape of another size, the
    # untaken branch would fail. The two branches' shapes merge to the common one.
    resized = tf.cond(same, lambda: frames, bilinear)
    resized.set_shape(frames.shape[:-3].concatenate([crop_size, crop_size, frames.shape[-1]]))
    return resized


def flip_drawn(seed: tf.Tensor) -> tf.Tensor:
    """Whether a clip is mirrored: probability 1/2 from a stateless seed (2,); () bool."""
    return tf.random.stateless_uniform([], seed) < 0.5


def random_flip(frames: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """Mirrors all frames (T, H, W, C) left-right with probability 1/2 (stateless seed (2,))."""
    flip = flip_drawn(seed)

    def mirror():
        # The same reversal on a (T * H, W, C) view: Eigen's 4-D reverse costs ~3x the 3-D one.
        shape = tf.shape(frames)
        rows = tf.reshape(frames, tf.concat([[-1], shape[-2:]], axis=0))
        return tf.reshape(tf.reverse(rows, axis=[1]), shape)

    return tf.cond(flip, mirror, lambda: frames)
