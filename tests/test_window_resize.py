"""Training clips finished on the device (train/window_resize.py): the same uint8 clips, bit for
bit, as the host pipeline's resize, rounding and flip, over every multi-scale crop shape, both
mirror states, windows the host must resize itself, and zero (cached or placeholder) clips."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from motion_clip_jax.data import pipeline
from motion_clip_jax.train import window_resize

from .test_data_pipeline import _jpeg, take, write_dataset

T, CROP = 4, 32


def _noise_jpegs(seed: int, count: int, height: int, width: int) -> list[bytes]:
    rng = np.random.default_rng(seed)
    # Smooth noise: JPEG keeps detail, so interpolation weights show in every pixel.
    small = rng.integers(0, 256, (count, height // 4 + 1, width // 4 + 1, 3), dtype=np.uint8)
    return [
        _jpeg(np.asarray(Image.fromarray(s).resize((width, height), Image.BILINEAR))) for s in small
    ]


@pytest.fixture(scope="module")
def noisy(tmp_path_factory):
    # Short side 44: crops 44, 38, 33, 29 wide or high, resized to 32 (up and down); one video
    # of short side 56 (> the 48 window: resized on the host), portrait and landscape.
    sizes = [(44, 60), (60, 44), (44, 44), (56, 70), (44, 52), (48, 44)]
    rows = [(f"v{i}", i % 4, _noise_jpegs(i, 9, *sizes[i % len(sizes)])) for i in range(12)]
    return write_dataset(str(tmp_path_factory.mktemp("noisy")), "noisy", {"train": rows})


def _optimized(fn, *args):
    """fn(*args) compiled with LLVM's optimisations on, as in a training run (the suite turns
    them off for speed, tests/conftest.py), where a compiler may fuse multiply-adds."""
    compiled = jax.jit(fn).lower(*args).compile({"xla_backend_optimization_level": "3"})
    return np.asarray(compiled(*args))


def _finish(batch: dict) -> np.ndarray:
    fields = [jnp.asarray(batch[k]) for k in ("video", "window_hw", "flip")]
    return _optimized(lambda v, hw, f, z: window_resize.finish_clips(v, hw, f, CROP, z),
                      *fields, jnp.int32(0))  # fmt: skip


@pytest.mark.parametrize("flip", [True, False])
def test_device_finished_clips_equal_the_host_clips(noisy, flip):
    common = dict(num_frames=T, crop_size=CROP, batch_size=6, seed=5, uint8=True, flip=flip)
    host = pipeline.make_train_iterator(
        noisy, "train", pipeline.PipelineOptions(**common), process_index=0, process_count=1
    )
    device = pipeline.make_train_iterator(
        noisy, "train", pipeline.PipelineOptions(**common, window=48),
        process_index=0, process_count=1,
    )  # fmt: skip
    shapes, mirrored = set(), 0
    for a, b in zip(take(host, 8), take(device, 8)):  # 4 epochs of 12 videos
        assert b["video"].shape == (6, T, 48, 48, 3) and b["window_hw"].dtype == np.int32
        np.testing.assert_array_equal(_finish(b), a["video"])
        for key in ("label", "index", "epoch", "mask"):
            np.testing.assert_array_equal(a[key], b[key])
        shapes |= {tuple(hw) for hw in b["window_hw"].tolist()}
        mirrored += int(b["flip"].sum())
    # Both directions of resize, the identity and the host-resized windows were all met.
    assert {(CROP, CROP)} < shapes and any(h < CROP for h, _ in shapes)
    assert any(h > CROP for h, _ in shapes) and any(w > CROP for _, w in shapes)
    assert (0 < mirrored < 48) if flip else mirrored == 0


def test_zero_windows_finish_as_zero_clips():
    windows = jnp.zeros((2, T, 48, 48, 3), jnp.uint8)
    out = window_resize.finish_clips(
        windows, jnp.zeros((2, 2), jnp.int32), jnp.array([True, False]), CROP, jnp.int32(0)
    )
    assert out.shape == (2, T, CROP, CROP, 3) and not np.asarray(out).any()


def test_weight_tables_match_tf_on_a_ramp():
    # Row n of the tables, applied to the ramp 0..n-1, is TF's resize of that ramp.
    lower, upper, lerp = window_resize.weight_tables(48, CROP)
    for n in (17, 29, 32, 44, 48):
        ramp = np.arange(n, dtype=np.float32)[None, :, None]
        tf_out = tf.image.resize(ramp, [1, CROP], "bilinear").numpy()[0, :, 0]
        ours = ramp[0, lower[n], 0] + (ramp[0, upper[n], 0] - ramp[0, lower[n], 0]) * lerp[n]
        np.testing.assert_array_equal(ours, tf_out)


def test_resized_floats_equal_tf_bit_for_bit():
    # Before rounding, every float equals TF's (NumPy-made weights, TF's order of operations).
    rng = np.random.default_rng(0)
    sizes = [(h, w) for h in (48, 42, 36, 31, 29) for w in (48, 42, 36, 31, 29)]
    windows = np.zeros((len(sizes), 1, 48, 48, 3), np.uint8)
    expected = []
    for k, (h, w) in enumerate(sizes):
        windows[k, 0, :h, :w] = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        frame = tf.cast(windows[k, 0, :h, :w], tf.float32)
        expected.append(tf.image.resize(frame, [CROP, CROP], "bilinear").numpy())
    tables = tuple(jnp.asarray(t) for t in window_resize.weight_tables(48, CROP))
    resize = jax.vmap(lambda w, hw, z: window_resize._resize_clip(w, hw, tables, z),
                      in_axes=(0, 0, None))  # fmt: skip
    ours = _optimized(resize, jnp.asarray(windows), jnp.asarray(sizes, jnp.int32), jnp.int32(0))
    np.testing.assert_array_equal(ours[:, 0], np.stack(expected))


def test_training_with_device_finished_clips_equals_host_clips(tmp_path):
    # The trainer's default (data.resize_on_device) against the host's clips: the same training,
    # bit for bit, with the flip on.
    from motion_clip_jax.train import trainer

    from .conftest import restore_train_state
    from .test_train_feature_cache import NUM_STEPS, config_for

    states = {}
    for on_device in (False, True):
        config = config_for()
        config.data.flip = True
        config.data.resize_on_device = on_device
        trainer.train_and_evaluate(config, str(tmp_path / str(on_device)))
        states[on_device] = restore_train_state(tmp_path / str(on_device), NUM_STEPS)
    assert set(states[True]) == set(states[False])
    for key, value in states[False].items():
        np.testing.assert_array_equal(states[True][key], value, err_msg=key)
