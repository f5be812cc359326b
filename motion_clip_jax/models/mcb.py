"""Multimodal Communication Block (paper §3.4, Fig. 2): two parallel residual cross-attentions.

  SMA (semantic matching):   T' = T + CA(query T_k, keys/values = the video V, or [S; M])
  SAA (semantic allocating): V' = V + CA(query V,   keys/values = the K text features T)

Both read the un-updated T and V ("two parallel attentions"). `keys="pooled"` (default) is the
paper's literal reading (Eq. 2 is MCB(T, V); §3.4 names V as key and value): with one key the
softmax is 1 and SMA adds W_o W_v V, a video-dependent shift shared by all classes. `keys="tokens"`
(our extension) lets each class attend over the video's T + L tokens [S; M].
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from motion_clip_jax.core.model_spec import MCB_KEYS
from motion_clip_jax.models.blocks import CrossAttention

Array = jax.Array
DType = Any


class MultimodalCommunicationBlock(nn.Module):
    """(text (B, K, D) or (K, D), video V (B, D), video tokens (B, N, D)) -> (T' (B, K, D), V')."""

    num_heads: int
    qkv_dim: int
    keys: str = "pooled"  # pooled | tokens (core/model_spec.py MCB_KEYS)
    dtype: DType = jnp.float32

    @nn.compact
    def __call__(self, text: Array, video: Array, video_tokens: Array) -> tuple[Array, Array]:
        b = video.shape[0]
        if text.ndim == 2:  # prompts shared by all videos: SMA still makes them per video
            text = jnp.broadcast_to(text, (b, *text.shape))
        if self.keys not in MCB_KEYS:
            raise ValueError(f"MCB keys must be one of {MCB_KEYS}, got {self.keys!r}")
        keys = video[:, None, :] if self.keys == "pooled" else video_tokens
        text_out = CrossAttention(self.num_heads, self.qkv_dim, self.dtype, name="sma")(text, keys)
        video_out = CrossAttention(self.num_heads, self.qkv_dim, self.dtype, name="saa")(
            video[:, None, :], text
        )[:, 0]
        return text_out, video_out
