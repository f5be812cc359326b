"""Standard pre-LN transformer pieces for the modules added on top of CLIP (MMB, MCB).

Kernels are drawn from N(0, 0.02^2), biases start at zero (the ViT / X-CLIP convention). No output
projection starts at zero: every trainable leaf must get a gradient from the first step.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from motion_clip_jax.models.clip import LayerNorm

Array = jax.Array
DType = Any

INIT_STD = 0.02


def attention(
    num_heads: int, qkv_dim: int | None, dtype: DType, name: str
) -> nn.MultiHeadDotProductAttention:
    """Multi-head attention with q/k/v/out projections (out back to the query width)."""
    return nn.MultiHeadDotProductAttention(
        num_heads=num_heads,
        qkv_features=qkv_dim,
        dtype=dtype,
        kernel_init=nn.initializers.normal(INIT_STD),
        deterministic=True,
        name=name,
    )


class TransformerBlock(nn.Module):
    """x + MHSA(LN(x)); x + MLP(LN(x)), GELU MLP of width mlp_ratio * D. (N, L, D) -> (N, L, D)."""

    num_heads: int
    mlp_ratio: float
    dtype: DType = jnp.float32

    @nn.compact
    def __call__(self, x: Array) -> Array:
        width = x.shape[-1]
        h = LayerNorm(name="ln_1")(x)
        x = x + attention(self.num_heads, None, self.dtype, "attn")(h, h, h).astype(x.dtype)
        h = LayerNorm(name="ln_2")(x)
        dense = lambda n, name: nn.Dense(
            n, dtype=self.dtype, name=name, kernel_init=nn.initializers.normal(INIT_STD)
        )
        h = dense(int(round(self.mlp_ratio * width)), "fc1")(h)
        h = dense(width, "fc2")(nn.gelu(h, approximate=False))
        return x + h.astype(x.dtype)


class TransformerStack(nn.Module):
    """`depth` TransformerBlocks, no final LayerNorm (the output stays in CLIP's feature space)."""

    depth: int
    num_heads: int
    mlp_ratio: float
    dtype: DType = jnp.float32

    @nn.compact
    def __call__(self, x: Array) -> Array:
        for i in range(self.depth):
            x = TransformerBlock(self.num_heads, self.mlp_ratio, self.dtype, name=f"block_{i}")(x)
        return x


class CrossAttention(nn.Module):
    """Residual cross-attention: q + MHA(LN(q), LN(kv)). q (N, Q, D), kv (N, S, D) -> (N, Q, D)."""

    num_heads: int
    qkv_dim: int
    dtype: DType = jnp.float32

    @nn.compact
    def __call__(self, queries: Array, keys_values: Array) -> Array:
        q = LayerNorm(name="ln_q")(queries)
        kv = LayerNorm(name="ln_kv")(keys_values)
        out = attention(self.num_heads, self.qkv_dim, self.dtype, "attn")(q, kv, kv)
        return queries + out.astype(queries.dtype)
