"""Multimodal Communication Block (paper §3.4, Fig. 2): two parallel residual cross-attentions.

  SMA (semantic matching):   T' = T + CA(query T_k, keys/values = the video's tokens [S; M])
  SAA (semantic allocating): V' = V + CA(query V,   keys/values = the K text features T)

Both read the un-updated T and V ("two parallel attentions"). The paper's SMA key is "the video
representation V"; a single pooled key makes the softmax trivially 1, so by default the keys are
the video's T + L tokens [S; M]; `pooled_keys=True` uses V alone (the ablation).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from motion_clip_jax.models.blocks import CrossAttention

Array = jax.Array
DType = Any


class MultimodalCommunicationBlock(nn.Module):
    """(text (B, K, D) or (K, D), video V (B, D), video tokens (B, N, D)) -> (T' (B, K, D), V')."""

    num_heads: int
    qkv_dim: int
    pooled_keys: bool = False
    dtype: DType = jnp.float32

    @nn.compact
    def __call__(self, text: Array, video: Array, video_tokens: Array) -> tuple[Array, Array]:
        b = video.shape[0]
        if text.ndim == 2:  # prompts shared by all videos: SMA still makes them per video
            text = jnp.broadcast_to(text, (b, *text.shape))
        keys = video[:, None, :] if self.pooled_keys else video_tokens
        text_out = CrossAttention(self.num_heads, self.qkv_dim, self.dtype, name="sma")(text, keys)
        video_out = CrossAttention(self.num_heads, self.qkv_dim, self.dtype, name="saa")(
            video[:, None, :], text
        )[:, 0]
        return text_out, video_out
