"""Crop boxes, JPEG window decoding, resizing, flipping and CLIP normalisation."""

from __future__ import annotations

import io

import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from motion_clip_jax.core import video_spec
from motion_clip_jax.data import transforms


def _jpeg(image: np.ndarray, quality: int = 95) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality, subsampling=0)
    return buffer.getvalue()


def _gradient(height: int, width: int) -> np.ndarray:
    """R grows with x, G with y, B constant: a crop's position shows in its pixel values."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack(
        [x * 255 // (width - 1), y * 255 // (height - 1), np.full_like(x, 90)], -1
    ).astype(np.uint8)


def test_clip_normalisation_constants_and_formula():
    assert transforms.CLIP_MEAN == (0.48145466, 0.4578275, 0.40821073)
    assert transforms.CLIP_STD == (0.26862954, 0.26130258, 0.27577711)
    frames = np.random.default_rng(0).integers(0, 256, (2, 5, 7, 3)).astype(np.uint8)
    expected = (frames / 255.0 - np.array(transforms.CLIP_MEAN)) / np.array(transforms.CLIP_STD)
    np.testing.assert_allclose(transforms.normalize(frames).numpy(), expected, atol=1e-5)
    np.testing.assert_allclose(np.asarray(video_spec.normalize(frames, jnp)), expected, atol=1e-5)


def test_side_crop_boxes_landscape_and_portrait():
    boxes = transforms.side_crop_boxes(tf.constant(256), tf.constant(341)).numpy()
    np.testing.assert_array_equal(boxes, [[0, 0, 256, 256], [0, 42, 256, 256], [0, 85, 256, 256]])
    boxes = transforms.side_crop_boxes(tf.constant(300), tf.constant(200)).numpy()
    np.testing.assert_array_equal(boxes, [[0, 0, 200, 200], [50, 0, 200, 200], [100, 0, 200, 200]])
    centre = transforms.centre_crop_box(tf.constant(48), tf.constant(64)).numpy()
    np.testing.assert_array_equal(centre, [0, 8, 48, 48])


def test_multiscale_crop_boxes():
    height, width = 256, 341
    sizes = [int(256 * s) for s in transforms.MULTISCALE_SCALES]
    seen_pairs, seen_y, seen_x = set(), set(), set()
    for k in range(400):
        seed = tf.constant([7, k], tf.int64)
        box = transforms.multiscale_crop_box(tf.constant(height), tf.constant(width), seed).numpy()
        y, x, h, w = box.tolist()
        assert h in sizes and w in sizes and abs(sizes.index(h) - sizes.index(w)) <= 1
        assert 0 <= y <= height - h and 0 <= x <= width - w
        seen_pairs.add((h, w))
        seen_y.add(y)
        seen_x.add(x)
        again = transforms.multiscale_crop_box(tf.constant(height), tf.constant(width), seed)
        np.testing.assert_array_equal(box, again.numpy())  # stateless: same seed, same box
    assert len(seen_pairs) == 10  # 4 scales, pairs at most one apart: 4 + 3 + 3
    assert len(seen_x) > 50 and len(seen_y) > 20


@pytest.mark.parametrize("box", [[0, 0, 48, 48], [0, 16, 48, 48], [5, 10, 30, 40]])
def test_decode_crop_resize_matches_pil_reference(box):
    image = _gradient(48, 64)
    jpegs = tf.constant([_jpeg(image), _jpeg(image[::-1].copy())])
    got = transforms.decode_crop_resize(jpegs, tf.constant(box), 24).numpy()
    assert got.shape == (2, 24, 24, 3) and got.dtype == np.float32
    y, x, h, w = box
    for k, source in enumerate([image, image[::-1]]):
        reference = Image.fromarray(source[y : y + h, x : x + w]).resize((24, 24), Image.BILINEAR)
        diff = np.abs(got[k] - np.asarray(reference, dtype=np.float32))
        assert diff.mean() < 2.5, diff.mean()  # JPEG quality 95 and two bilinear kernels


def test_resize_antialiases_only_large_shrinks():
    stripes = np.zeros((8, 96, 96, 3), np.float32)
    stripes[:, :, ::2] = 255  # 1-pixel stripes: aliasing turns them into a wrong flat value
    small = transforms.resize(tf.constant(stripes), 24).numpy()
    np.testing.assert_allclose(small.mean(), 127.5, atol=3)
    np.testing.assert_allclose(small.std(), 0, atol=3)  # anti-aliased: uniform grey
    same = transforms.resize(tf.constant(stripes[:, :24, :24]), 24).numpy()
    np.testing.assert_array_equal(same, stripes[:, :24, :24])  # no shrink: unchanged


@pytest.mark.parametrize(
    "box", [[3, 9, 24, 24], [5, 10, 30, 40], [0, 4, 48, 48]], ids=["same", "bilinear", "antialias"]
)
def test_decode_crop_resize_equals_the_frame_by_frame_steps(box):
    """Window decoding and the resize kind gives the bits of decoding each whole frame, slicing
    the window and resizing it as `resize` documents, eager and traced alike."""
    rng = np.random.default_rng(1)
    images = [_gradient(48, 64), rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)]
    jpegs = tf.constant([_jpeg(image) for image in images])
    y, x, h, w = box
    kind = "same" if (h, w) == (24, 24) else "antialias" if max(h, w) * 2 > 24 * 3 else "bilinear"
    expected = []
    for jpeg in jpegs:
        window = tf.cast(tf.io.decode_jpeg(jpeg, channels=3)[y : y + h, x : x + w], tf.float32)
        if kind != "same":
            window = tf.image.resize(window, [24, 24], "bilinear", antialias=kind == "antialias")
        expected.append(window.numpy())
    call = lambda: transforms.decode_crop_resize(jpegs, tf.constant(box), 24)  # noqa: E731
    for got in (call(), tf.function(call)()):
        np.testing.assert_array_equal(got.numpy(), np.stack(expected))


def test_resize_traces_for_a_known_shape_of_another_size():
    """A static input shape must not be asserted inside the untaken as-it-is branch."""
    traced = tf.function(lambda frames: transforms.resize(frames, 24))
    frames = np.random.default_rng(0).uniform(0, 255, (2, 30, 40, 3)).astype(np.float32)
    got = traced(tf.constant(frames))
    assert got.shape == (2, 24, 24, 3)
    np.testing.assert_array_equal(got.numpy(), transforms.resize(tf.constant(frames), 24).numpy())


def test_random_flip_mirrors_all_frames_together():
    frames = tf.constant(np.random.default_rng(0).uniform(0, 255, (3, 4, 5, 3)), tf.float32)
    outcomes = set()
    for k in range(40):
        seed = tf.constant([1, k], tf.int64)
        out = transforms.random_flip(frames, seed).numpy()
        if np.array_equal(out, frames.numpy()):
            outcomes.add("same")
        else:
            np.testing.assert_array_equal(out, frames.numpy()[:, :, ::-1])
            outcomes.add("flipped")
        np.testing.assert_array_equal(out, transforms.random_flip(frames, seed).numpy())
    assert outcomes == {"same", "flipped"}


def test_frame_size_reads_the_header():
    height, width = transforms.frame_size(tf.constant(_jpeg(_gradient(37, 53))))
    assert (int(height), int(width)) == (37, 53)
