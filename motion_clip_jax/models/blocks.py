"""Standard pre-LN transformer pieces for the modules added on top of CLIP (MMB, MCB).

Kernels are drawn from N(0, 0.02^2), biases start at zero (the ViT / X-CLIP convention). No output
projection starts at zero: every trainable leaf must get a gradient from the first step.

The attention's key projection has no bias: a bias shared by every key adds the same number to all
of a query's scores, which the softmax removes, so its true gradient is exactly zero. Kept, it is a
parameter that only rounding noise moves, and Adam scales that noise to full-size steps (a sharded
run and a one-device run then disagree on it by 100%). Dropping it changes no output.
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


class Attention(nn.Module):
    """Multi-head attention, q/k/v projections to `qkv_dim` (None: the query width), `out` back to
    the query width; the parameter tree of Flax's MultiHeadDotProductAttention without the key
    bias (module docstring). q (N, Q, Dq), kv (N, S, Dkv) -> (N, Q, Dq)."""

    num_heads: int
    qkv_dim: int | None = None
    dtype: DType = jnp.float32

    @nn.compact
    def __call__(self, queries: Array, keys_values: Array) -> Array:
        features = self.qkv_dim or queries.shape[-1]
        if features % self.num_heads:
            raise ValueError(f"qkv width {features} is not divisible into {self.num_heads} heads")
        project = lambda name, use_bias: nn.DenseGeneral(
            (self.num_heads, features // self.num_heads),
            use_bias=use_bias,
            dtype=self.dtype,
            kernel_init=nn.initializers.normal(INIT_STD),
            name=name,
        )
        q = project("query", True)(queries)  # (N, Q, heads, head_dim)
        k = project("key", False)(keys_values)
        v = project("value", True)(keys_values)
        out = nn.dot_product_attention(q, k, v, dtype=self.dtype)
        return nn.DenseGeneral(
            queries.shape[-1],
            axis=(-2, -1),
            dtype=self.dtype,
            kernel_init=nn.initializers.normal(INIT_STD),
            name="out",
        )(out)


class TransformerBlock(nn.Module):
    """x + MHSA(LN(x)); x + MLP(LN(x)), GELU MLP of width mlp_ratio * D. (N, L, D) -> (N, L, D)."""

    num_heads: int
    mlp_ratio: float
    dtype: DType = jnp.float32

    @nn.compact
    def __call__(self, x: Array) -> Array:
        width = x.shape[-1]
        h = LayerNorm(name="ln_1")(x)
        x = x + Attention(self.num_heads, None, self.dtype, name="attn")(h, h).astype(x.dtype)
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
