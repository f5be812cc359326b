"""Multimodal Communication Block (paper §3.4, Fig. 2): two parallel residual cross-attentions.

  SMA (semantic matching):   T' = T + CA(query T_k, keys/values = the video V, or [S; M])
  SAA (semantic allocating): V' = V + CA(query V,   keys/values = the K text features T)

Both read the un-updated T and V ("two parallel attentions"). `keys="pooled"` (default) is the
paper's literal reading (Eq. 2 is MCB(T, V); §3.4 names V as key and value): with one key the
softmax is 1 and SMA adds the (projected) V, a video-dependent shift shared by all classes.
`keys="tokens"` (our extension) lets each class attend over the video's T + L tokens [S; M].

Two forms of CA (`projections`):
  False (default, the size of the paper's Table 3): no parameters. Queries, keys and values are the
      features themselves, each split into `num_heads` heads of d = D / num_heads; per head
      softmax(q k^T / sqrt(d)) v, heads concatenated back to D, added to the query.
  True (our earlier form): q + W_o MHA(W_q LN(q), W_k LN(kv), W_v LN(kv)), width `qkv_dim`.
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


def plain_cross_attention(
    queries: Array, keys_values: Array, num_heads: int, dtype: DType = jnp.float32
) -> Array:
    """Residual cross-attention without parameters: q + softmax(q k^T / sqrt(d)) v per head, with
    q = queries and k = v = keys_values split into heads of d = D / num_heads.

    queries (N, Q, D), keys_values (N, S, D) -> (N, Q, D)."""
    width = queries.shape[-1]
    if width % num_heads:
        raise ValueError(f"feature width {width} is not divisible into {num_heads} heads")
    split = lambda x: x.astype(dtype).reshape(*x.shape[:-1], num_heads, width // num_heads)
    kv = split(keys_values)
    out = nn.dot_product_attention(split(queries), kv, kv, dtype=dtype)  # (N, Q, heads, d)
    return queries + out.reshape(queries.shape).astype(queries.dtype)


class MultimodalCommunicationBlock(nn.Module):
    """(text (B, K, D) or (K, D), video V (B, D), video tokens (B, N, D)) -> (T' (B, K, D), V')."""

    num_heads: int
    qkv_dim: int
    keys: str = "pooled"  # pooled | tokens (core/model_spec.py MCB_KEYS)
    projections: bool = False  # module docstring: the two forms
    dtype: DType = jnp.float32

    @nn.compact
    def __call__(self, text: Array, video: Array, video_tokens: Array) -> tuple[Array, Array]:
        b = video.shape[0]
        if text.ndim == 2:  # prompts shared by all videos: SMA still makes them per video
            text = jnp.broadcast_to(text, (b, *text.shape))
        if self.keys not in MCB_KEYS:
            raise ValueError(f"MCB keys must be one of {MCB_KEYS}, got {self.keys!r}")
        keys = video[:, None, :] if self.keys == "pooled" else video_tokens
        if self.projections:
            attend = lambda name, q, kv: CrossAttention(
                self.num_heads, self.qkv_dim, self.dtype, name=name
            )(q, kv)
        else:
            attend = lambda name, q, kv: plain_cross_attention(q, kv, self.num_heads, self.dtype)
        text_out = attend("sma", text, keys)
        video_out = attend("saa", video[:, None, :], text)[:, 0]
        return text_out, video_out
