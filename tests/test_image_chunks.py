"""Image-tower chunking (`image_chunk_frames`): the same features as one call, and the default."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from motion_clip_jax.models import clip as clip_lib
from motion_clip_jax.models import video_clip as video_lib

from .conftest import tiny_video_config

TINY_CLIP = dict(vision_layers=2, transformer_layers=1, vision_width=64)
B, T = 2, 5  # 10 frames: chunks of 3 leave a padded last chunk, 4 too, 5 divides


@pytest.fixture(scope="module")
def setup():
    clip_params = clip_lib.init_clip(clip_lib.clip_config("tiny", **TINY_CLIP), 3)[1]["params"]
    res = clip_lib.clip_config("tiny", **TINY_CLIP).image_resolution
    video = jax.random.normal(jax.random.PRNGKey(0), (B, T, res, res, 3), jnp.float32)
    whole, whole_hlo = encode(clip_params, video, 0)
    assert "while" not in whole_hlo
    return clip_params, video, whole


def test_one_call_equals_clip_module(setup):
    clip_params, video, whole = setup
    # Independent reference: the CLIP module on the flat frames, outside the video model.
    module = clip_lib.CLIP(clip_lib.clip_config("tiny", **TINY_CLIP))
    flat = video.reshape(B * T, *video.shape[2:])
    ref = module.apply({"params": clip_params}, flat, method="encode_image")
    assert whole.shape == (B, T, clip_params["visual"]["proj"].shape[1])
    np.testing.assert_allclose(whole, np.asarray(ref).reshape(whole.shape), rtol=0, atol=1e-6)


def encode(clip_params, video, chunk):
    config = tiny_video_config(TINY_CLIP, num_frames=T, motion_step=2, image_chunk_frames=chunk)
    model = video_lib.build_model(config)
    params = {"clip": clip_params}
    fn = jax.jit(
        lambda p, v: model.apply({"params": p}, v, method=video_lib.VideoCLIP.encode_frames)
    )
    return np.asarray(fn(params, video)), fn.lower(params, video).as_text()


@pytest.mark.parametrize("chunk", [1, 3, 4, 64, -1])
def test_chunked_features_equal_one_call(setup, chunk):
    clip_params, video, whole = setup
    chunked, chunked_hlo = encode(clip_params, video, chunk)
    # Frames are independent rows: chunking changes only the matmuls' row counts, so the
    # features agree to float32 rounding of a differently blocked matmul.
    np.testing.assert_allclose(chunked, whole, rtol=0, atol=1e-6 * np.abs(whole).max())
    # The chunked program really loops unless one chunk holds every frame.
    size = video_lib.image_chunk_size(chunk)
    assert ("while" in chunked_hlo) == (0 < size < B * T), (chunk, size)


def test_default_chunk_size_by_backend():
    assert video_lib.image_chunk_size(0) == 0
    assert video_lib.image_chunk_size(6, "gpu") == 6
    for backend, default in video_lib.DEFAULT_IMAGE_CHUNK_FRAMES.items():
        assert video_lib.image_chunk_size(-1, backend) == default
    assert video_lib.image_chunk_size(-1, "gpu") == 0
    assert video_lib.image_chunk_size(-1, "some_new_backend") == 0
