"""Multimodal Communication Block (paper §3.4, Fig. 2): two parallel residual cross-attentions.

  SMA (semantic matching):   T' = T + CA(query T_k, keys/values = the video V, or [S; M])
  SAA (semantic allocating): V' = V + CA(query V,   keys/values = the K text features T)

Both read the un-updated T and V ("two parallel attentions"). `keys="pooled"` (default) is the
paper's literal reading (Eq. 2 is MCB(T, V); §3.4 names V as key and value): with one key the
softmax is 1 and SMA adds the (projected) V, a video-dependent shift shared by all classes.
`keys="tokens"` (our extension) lets each class attend over the video's T + L tokens [S; M].

Each CA is `ResidualCrossAttention`, three independent choices (docs/model.md, interpretation 8):
  projections  False: none (queries, keys and values are the features, split into `num_heads`
               heads of d = D / num_heads, softmax(q k^T / sqrt(d)) v per head); True: q/k/v
               projections to `qkv_dim` and an output projection back to D.
  norm         of the attention's inputs. "none"; "l2": the block works on unit vectors (queries,
               keys, values and the residual stream: x / |x|), free of the features' scale, which
               the cosine logits ignore but a residual sum does not; "layernorm": pre-LN (LN(q),
               LN(kv) into the attention, the residual on the raw q).
  scale_init   0: plain residual q + CA; > 0: q + g * CA with a learned per-channel gate g (D,)
               initialised to `scale_init` (so at a small value the block starts as the identity).
The earlier projected form is projections=True, norm="layernorm", scale_init=0.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from motion_clip_jax.core.model_spec import MCB_KEYS, MCB_NORMS
from motion_clip_jax.models.blocks import Attention
from motion_clip_jax.models.clip import LayerNorm

Array = jax.Array
DType = Any


def l2_normalize(x: Array, eps: float = 1e-12) -> Array:
    """x / max(|x|, eps) over the last axis (torch's F.normalize, float32)."""
    norm = jnp.linalg.norm(x.astype(jnp.float32), axis=-1, keepdims=True)
    return (x / jnp.maximum(norm, eps)).astype(x.dtype)


def plain_attention(
    queries: Array, keys_values: Array, num_heads: int, dtype: DType = jnp.float32
) -> Array:
    """softmax(q k^T / sqrt(d)) v per head, no parameters: q = queries, k = v = keys_values split
    into heads of d = D / num_heads, heads concatenated back to D.

    queries (N, Q, D), keys_values (N, S, D) -> (N, Q, D)."""
    width = queries.shape[-1]
    if width % num_heads:
        raise ValueError(f"feature width {width} is not divisible into {num_heads} heads")
    split = lambda x: x.astype(dtype).reshape(*x.shape[:-1], num_heads, width // num_heads)
    kv = split(keys_values)
    out = nn.dot_product_attention(split(queries), kv, kv, dtype=dtype)  # (N, Q, heads, d)
    return out.reshape(queries.shape).astype(queries.dtype)


def plain_cross_attention(
    queries: Array, keys_values: Array, num_heads: int, dtype: DType = jnp.float32
) -> Array:
    """The parameter-free residual form: queries + plain_attention(queries, keys_values)."""
    return queries + plain_attention(queries, keys_values, num_heads, dtype)


class ResidualCrossAttention(nn.Module):
    """q (N, Q, D), kv (N, S, D) -> q + [g *] CA(norm(q), norm(kv)) (N, Q, D) (module docstring)."""

    num_heads: int
    qkv_dim: int
    projections: bool = False
    norm: str = "none"  # none | l2 | layernorm (core/model_spec.py MCB_NORMS)
    scale_init: float = 0.0
    dtype: DType = jnp.float32

    @nn.compact
    def __call__(self, queries: Array, keys_values: Array) -> Array:
        if self.norm not in MCB_NORMS:
            raise ValueError(f"MCB norm must be one of {MCB_NORMS}, got {self.norm!r}")
        if self.norm == "l2":  # the whole block on unit vectors, residual stream included
            queries, keys_values = l2_normalize(queries), l2_normalize(keys_values)
            q, kv = queries, keys_values
        elif self.norm == "layernorm":
            q, kv = LayerNorm(name="ln_q")(queries), LayerNorm(name="ln_kv")(keys_values)
        else:
            q, kv = queries, keys_values
        if self.projections:
            out = Attention(self.num_heads, self.qkv_dim, self.dtype, name="attn")(q, kv)
        else:
            out = plain_attention(q, kv, self.num_heads, self.dtype)
        out = out.astype(queries.dtype)
        if self.scale_init:
            width = queries.shape[-1]
            gate = self.param("residual_scale", nn.initializers.constant(self.scale_init), (width,))
            out = out * gate
        return queries + out


class MultimodalCommunicationBlock(nn.Module):
    """(text (B, K, D) or (K, D), video V (B, D), video tokens (B, N, D)) -> (T' (B, K, D), V')."""

    num_heads: int
    qkv_dim: int
    keys: str = "pooled"  # pooled | tokens (core/model_spec.py MCB_KEYS)
    projections: bool = False  # module docstring: the forms of each cross-attention
    norm: str = "none"
    scale_init: float = 0.0
    dtype: DType = jnp.float32

    @nn.compact
    def __call__(self, text: Array, video: Array, video_tokens: Array) -> tuple[Array, Array]:
        b = video.shape[0]
        if text.ndim == 2:  # prompts shared by all videos: SMA still makes them per video
            text = jnp.broadcast_to(text, (b, *text.shape))
        if self.keys not in MCB_KEYS:
            raise ValueError(f"MCB keys must be one of {MCB_KEYS}, got {self.keys!r}")
        keys = video[:, None, :] if self.keys == "pooled" else video_tokens
        attend = lambda name: ResidualCrossAttention(
            self.num_heads, self.qkv_dim, self.projections, self.norm, self.scale_init,
            self.dtype, name=name,
        )  # fmt: skip
        text_out = attend("sma")(text, keys)
        video_out = attend("saa")(video[:, None, :], text)[:, 0]
        return text_out, video_out
