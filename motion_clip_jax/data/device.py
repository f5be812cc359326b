"""On-accelerator half of the input pipeline: CLIP normalisation of uint8 clips.

With `make_*_iterator(..., uint8=True)` the host sends uint8 RGB (a quarter of the bytes) and the
jitted step normalises; the result equals the host's float32 output up to the uint8 rounding.
"""

from __future__ import annotations

import jax.numpy as jnp

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def normalize(video: jnp.ndarray) -> jnp.ndarray:
    """uint8 RGB (..., 3) in [0, 255] -> CLIP-normalised float32: (x / 255 - mean) / std."""
    video = video.astype(jnp.float32) / 255.0
    return (video - jnp.asarray(CLIP_MEAN, jnp.float32)) / jnp.asarray(CLIP_STD, jnp.float32)
