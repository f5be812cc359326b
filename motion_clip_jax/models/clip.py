"""OpenAI CLIP (ViT image tower + causal text tower) in Flax.

Parameter names mirror OpenAI's `clip/model.py` module names (`visual.conv1`, `transformer.resblocks_0`,
`ln_final`, ...) so that conversion in `motion_clip_jax.convert` is a mechanical rename + transpose.

Shapes: N images or prompts, P patches, L tokens, W tower width, D joint embedding width.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from motion_clip_jax.core.clip_spec import PRESETS, CLIPConfig, clip_config  # noqa: F401

Array = jax.Array
DType = Any


def _normal(std: float) -> Callable:
    return nn.initializers.normal(stddev=std)


def quick_gelu(x: Array) -> Array:
    return x * jax.nn.sigmoid(1.702 * x)


class LayerNorm(nn.Module):
    """LayerNorm (eps 1e-5) computed in float32 whatever the compute dtype, as OpenAI's subclass."""

    @nn.compact
    def __call__(self, x: Array) -> Array:
        width = x.shape[-1]
        scale = self.param("scale", nn.initializers.ones, (width,))
        bias = self.param("bias", nn.initializers.zeros, (width,))
        x32 = x.astype(jnp.float32)
        mean = x32.mean(-1, keepdims=True)
        var = jnp.square(x32 - mean).mean(-1, keepdims=True)
        y = (x32 - mean) * jax.lax.rsqrt(var + 1e-5) * scale + bias
        return y.astype(x.dtype)


class MLP(nn.Module):
    """Linear(W, 4W) -> QuickGELU -> Linear(4W, W)."""

    fc_std: float
    proj_std: float
    dtype: DType = jnp.float32

    @nn.compact
    def __call__(self, x: Array) -> Array:
        width = x.shape[-1]
        h = nn.Dense(4 * width, dtype=self.dtype, kernel_init=_normal(self.fc_std), name="c_fc")(x)
        return nn.Dense(width, dtype=self.dtype, kernel_init=_normal(self.proj_std), name="c_proj")(
            quick_gelu(h)
        )


class MultiHeadAttention(nn.Module):
    """Self-attention with one fused qkv projection (`in_proj`), as torch.nn.MultiheadAttention."""

    num_heads: int
    causal: bool = False
    dtype: DType = jnp.float32
    init_std: tuple[float, float] = (0.02, 0.02)  # (in_proj, out_proj)

    @nn.compact
    def __call__(self, x: Array) -> Array:
        n, length, width = x.shape
        head_dim = width // self.num_heads
        qkv = nn.Dense(
            3 * width, dtype=self.dtype, kernel_init=_normal(self.init_std[0]), name="in_proj"
        )(x)
        q, k, v = jnp.split(qkv.reshape(n, length, 3, self.num_heads, head_dim), 3, axis=2)
        out = jax.nn.dot_product_attention(
            q[:, :, 0],
            k[:, :, 0],
            v[:, :, 0],
            is_causal=self.causal,
            scale=1.0 / math.sqrt(head_dim),
        )
        return nn.Dense(
            width, dtype=self.dtype, kernel_init=_normal(self.init_std[1]), name="out_proj"
        )(out.reshape(n, length, width))


class ResidualAttentionBlock(nn.Module):
    """Pre-LN block: x + attn(ln_1(x)); x + mlp(ln_2(x)), QuickGELU MLP of ratio 4."""

    num_heads: int
    num_layers: int  # of the whole tower; only sets OpenAI's init scale
    causal: bool = False
    dtype: DType = jnp.float32

    @nn.compact
    def __call__(self, x: Array) -> Array:
        width = x.shape[-1]
        attn_std = width**-0.5
        proj_std = attn_std * (2 * self.num_layers) ** -0.5
        fc_std = (2 * width) ** -0.5
        x = x + MultiHeadAttention(
            self.num_heads, self.causal, self.dtype, (attn_std, proj_std), name="attn"
        )(LayerNorm(name="ln_1")(x))
        return x + MLP(fc_std, proj_std, self.dtype, name="mlp")(LayerNorm(name="ln_2")(x))


class Transformer(nn.Module):
    """A stack of residual blocks. `remat` recomputes each block's activations in the backward pass."""

    num_layers: int
    num_heads: int
    causal: bool = False
    dtype: DType = jnp.float32
    remat: bool = False

    @nn.compact
    def __call__(self, x: Array) -> Array:
        block_cls = nn.remat(ResidualAttentionBlock) if self.remat else ResidualAttentionBlock
        for i in range(self.num_layers):
            x = block_cls(
                self.num_heads, self.num_layers, self.causal, self.dtype, name=f"resblocks_{i}"
            )(x)
        return x


class VisionTransformer(nn.Module):
    """Image tower: (N, H, W, 3) CLIP-normalised float images -> (N, D) projected class token."""

    config: CLIPConfig
    dtype: DType = jnp.float32

    @nn.compact
    def __call__(self, images: Array) -> Array:
        cfg = self.config
        n, h, w, c = images.shape
        p, width = cfg.vision_patch_size, cfg.vision_width
        if (h, w) != (cfg.image_resolution, cfg.image_resolution) or c != 3:
            raise ValueError(
                f"encode_image expects (N, {cfg.image_resolution}, {cfg.image_resolution}, 3) "
                f"images, got {images.shape}"
            )
        scale = width**-0.5
        # The stride-p conv is a matmul over non-overlapping patches; written as one it is faster on
        # CPU and identical in value. Kernel layout (p, p, 3, W) as a flax Conv would store it.
        kernel = self.param("conv1", _normal(0.02), (p, p, 3, width)).reshape(p * p * 3, width)
        g = cfg.grid_size
        patches = images.reshape(n, g, p, g, p, c).transpose(0, 1, 3, 2, 4, 5)
        x = patches.reshape(n, g * g, p * p * c).astype(self.dtype) @ kernel.astype(self.dtype)

        cls = self.param("class_embedding", _normal(scale), (width,))
        pos = self.param("positional_embedding", _normal(scale), (g * g + 1, width))
        x = jnp.concatenate([jnp.broadcast_to(cls.astype(x.dtype), (n, 1, width)), x], axis=1)
        x = LayerNorm(name="ln_pre")(x + pos.astype(x.dtype))
        x = Transformer(
            cfg.vision_layers, cfg.num_vision_heads, dtype=self.dtype, name="transformer"
        )(x)
        x = LayerNorm(name="ln_post")(x[:, 0])
        proj = self.param("proj", _normal(scale), (width, cfg.embed_dim))
        return (x @ proj.astype(x.dtype)).astype(jnp.float32)


class CLIP(nn.Module):
    """OpenAI CLIP with ViT image tower.

    Methods (use with `module.apply(variables, ..., method=...)`):
      encode_image(images (N, H, W, 3)) -> (N, D)
      encode_text(token_ids (N, L)) -> (N, D)           # L <= context_length, EOS = argmax id
      embed_tokens(token_ids (N, L)) -> (N, L, Wt)       # token embeddings, for prompt learners
      encode_text_embeddings(x (N, L, Wt), eos (N,)) -> (N, D)
      __call__(images, token_ids) -> (logits_per_image (N, M), logits_per_text (M, N))
    """

    config: CLIPConfig
    dtype: DType = jnp.float32  # compute dtype of both towers; params stay float32
    remat_text: bool = False

    def setup(self):
        cfg = self.config
        tw = cfg.transformer_width
        self.visual = VisionTransformer(cfg, dtype=self.dtype)
        self.token_embedding = nn.Embed(cfg.vocab_size, tw, embedding_init=_normal(0.02))
        self.positional_embedding = self.param(
            "positional_embedding", _normal(0.01), (cfg.context_length, tw)
        )
        self.transformer = Transformer(
            cfg.transformer_layers,
            cfg.num_text_heads,
            causal=True,
            dtype=self.dtype,
            remat=self.remat_text,
        )
        self.ln_final = LayerNorm()
        self.text_projection = self.param("text_projection", _normal(tw**-0.5), (tw, cfg.embed_dim))
        self.logit_scale = self.param("logit_scale", nn.initializers.constant(np.log(1 / 0.07)), ())

    def encode_image(self, images: Array) -> Array:
        """(N, H, W, 3) normalised images -> (N, D) image features (not L2-normalised)."""
        return self.visual(images)

    def embed_tokens(self, token_ids: Array) -> Array:
        """(N, L) int ids -> (N, L, Wt) token embeddings (no positional embedding)."""
        return self.token_embedding(token_ids)

    def encode_text_embeddings(self, x: Array, eos_index: Array) -> Array:
        """Causal text tower on given token embeddings.

        Args:
          x: (N, L, Wt) token embeddings, L <= context_length. Because attention is causal and the
            feature is read at `eos_index`, tokens after the last EOS never matter: callers may pass
            the shortest L that holds every EOS and get the same features as with 77.
          eos_index: (N,) int position of the EOS token in each row.
        Returns:
          (N, D) text features (not L2-normalised).
        """
        n, length, _ = x.shape
        if length > self.config.context_length:
            raise ValueError(f"text length {length} > context_length {self.config.context_length}")
        x = x.astype(self.dtype) + self.positional_embedding[:length].astype(self.dtype)
        x = self.transformer(x)
        # ln_final is per token: gather the EOS rows first and normalise N rows, not N * L.
        x = x[jnp.arange(n), eos_index]
        x = self.ln_final(x)
        return (x @ self.text_projection.astype(x.dtype)).astype(jnp.float32)

    def encode_text(self, token_ids: Array) -> Array:
        """(N, L) int32 token ids -> (N, D). EOS is the highest id in each row (as OpenAI)."""
        return self.encode_text_embeddings(
            self.embed_tokens(token_ids), jnp.argmax(token_ids, axis=-1)
        )

    def __call__(self, images: Array, token_ids: Array) -> tuple[Array, Array]:
        img = self.encode_image(images)
        txt = self.encode_text(token_ids)
        img = img / jnp.linalg.norm(img, axis=-1, keepdims=True)
        txt = txt / jnp.linalg.norm(txt, axis=-1, keepdims=True)
        logits = jnp.exp(self.logit_scale) * img @ txt.T
        return logits, logits.T


def init_clip(
    config: CLIPConfig,
    rng: Array | int = 0,
    dtype: DType = jnp.float32,
) -> tuple[CLIP, dict[str, Any]]:
    """Random-init CLIP (OpenAI's init scales). Returns (module, {'params': ...})."""
    if isinstance(rng, int):
        rng = jax.random.PRNGKey(rng)
    module = CLIP(config, dtype=dtype)
    res = config.image_resolution
    images = jnp.zeros((1, res, res, 3), jnp.float32)
    tokens = jnp.zeros((1, config.context_length), jnp.int32)
    variables = jax.jit(module.init)(rng, images, tokens)
    return module, variables


def count_params(tree: Any) -> int:
    return int(sum(np.prod(x.shape) for x in jax.tree_util.tree_leaves(tree)))
