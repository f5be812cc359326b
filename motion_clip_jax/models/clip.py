"""OpenAI CLIP (ViT image tower + causal text tower) in Flax.

Parameter names mirror OpenAI's `clip/model.py` module names (`visual.conv1`, `transformer.resblocks_0`,
`ln_final`, ...) so that conversion in `motion_clip_jax.convert` is a mechanical rename + transpose.

Shapes: N images or prompts, P patches, L tokens, W tower width, D joint embedding width.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from motion_clip_jax.core.clip_spec import PRESETS, CLIPConfig, clip_config  # noqa: F401

Array = jax.Array
DType = Any
KV = tuple[Array, Array]  # attention keys, values (..., S, heads, head_dim)


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
    """Self-attention with one fused qkv projection (`in_proj`), as torch.nn.MultiheadAttention.

    __call__(x (N, S, W)) -> (out (N, S, W), kv), kv = (keys, values) each (N, S, heads, W/heads).
    With `query_rows` R, out is (N, R, W): the outputs of the first R positions only.
    With `prefix_kv` (the kv (N, P, heads, W/heads) of a causal prefix), x is (N, K, S, W): K
    continuations of each of the N prefixes, each query attending to all P prefix positions and,
    causally, to its own row's positions (`attend_after_prefix`).
    """

    num_heads: int
    causal: bool = False
    dtype: DType = jnp.float32
    init_std: tuple[float, float] = (0.02, 0.02)  # (in_proj, out_proj)

    @nn.compact
    def __call__(
        self, x: Array, prefix_kv: KV | None = None, query_rows: int | None = None
    ) -> tuple[Array, KV]:
        width = x.shape[-1]
        head_dim = width // self.num_heads
        qkv = nn.Dense(
            3 * width, dtype=self.dtype, kernel_init=_normal(self.init_std[0]), name="in_proj"
        )(x)
        qkv = qkv.reshape(*x.shape[:-1], 3, self.num_heads, head_dim)
        q, k, v = qkv[..., 0, :, :], qkv[..., 1, :, :], qkv[..., 2, :, :]
        if query_rows is not None:  # outputs for the first rows only; keys/values of all
            q = q[..., :query_rows, :, :]
        scale = 1.0 / math.sqrt(head_dim)
        if prefix_kv is None:
            out = jax.nn.dot_product_attention(q, k, v, is_causal=self.causal, scale=scale)
        elif not self.causal:
            raise ValueError("prefix_kv needs causal attention: the prefix must not see its rows")
        else:
            out = attend_after_prefix(q, k, v, prefix_kv, scale)
        out = nn.Dense(
            width, dtype=self.dtype, kernel_init=_normal(self.init_std[1]), name="out_proj"
        )(out.reshape(*q.shape[:-2], width))
        return out, (k, v)


def attend_after_prefix(q: Array, k: Array, v: Array, prefix_kv: KV, scale: float) -> Array:
    """Causal attention of K rows that all continue one prefix, without recomputing the prefix.

    Args:
      q, k, v: (N, K, S, h, d) the rows' own queries, keys, values (positions P..P+S-1).
      prefix_kv: keys and values (N, P, h, d) of the N prefixes (positions 0..P-1).
      scale: the logit scale, 1 / sqrt(d).
    Returns:
      (N, K, S, h, d), what causal attention over the full rows [prefix; row] gives at the rows'
      positions: every prefix position is in the past of every row position.
    """
    n, rows, s = q.shape[:3]
    prefix_k, prefix_v = prefix_kv
    p = prefix_k.shape[1]
    # Broadcasting the prefix kv to the K rows costs memory of N*K*P*W, no FLOPs; the gradient of
    # the broadcast sums the K rows' contributions into the one prefix.
    join = lambda prefix, own: jnp.concatenate(
        [jnp.broadcast_to(prefix[:, None], (n, rows, *prefix.shape[1:])), own], axis=2
    ).reshape(n * rows, p + s, *own.shape[3:])
    mask = jnp.concatenate([jnp.ones((s, p), bool), jnp.tril(jnp.ones((s, s), bool))], axis=1)
    out = jax.nn.dot_product_attention(
        q.reshape(n * rows, *q.shape[2:]),
        join(prefix_k, k),
        join(prefix_v, v),
        mask=mask[None, None],
        scale=scale,
    )
    return out.reshape(q.shape)


class ResidualAttentionBlock(nn.Module):
    """Pre-LN block: x + attn(ln_1(x)); x + mlp(ln_2(x)), QuickGELU MLP of ratio 4.

    __call__(x, prefix_kv=None, query_rows=None) -> (x, kv): the block's output and its attention
    keys/values, so a causal prefix can be run once and its kv handed to the rows that continue it
    (see `MultiHeadAttention`; x is then (N, K, S, W)). With query_rows R the output holds the first
    R positions only (their attention still reads every position).
    """

    num_heads: int
    num_layers: int  # of the whole tower; only sets OpenAI's init scale
    causal: bool = False
    dtype: DType = jnp.float32

    @nn.compact
    def __call__(
        self, x: Array, prefix_kv: KV | None = None, query_rows: int | None = None
    ) -> tuple[Array, KV]:
        width = x.shape[-1]
        attn_std = width**-0.5
        proj_std = attn_std * (2 * self.num_layers) ** -0.5
        fc_std = (2 * width) ** -0.5
        attn, kv = MultiHeadAttention(
            self.num_heads, self.causal, self.dtype, (attn_std, proj_std), name="attn"
        )(LayerNorm(name="ln_1")(x), prefix_kv, query_rows)
        x = x[..., : attn.shape[-2], :] + attn
        return x + MLP(fc_std, proj_std, self.dtype, name="mlp")(LayerNorm(name="ln_2")(x)), kv


class Transformer(nn.Module):
    """A stack of residual blocks. `remat` recomputes each block's activations in the backward pass.

    __call__(x, prefix_kv=None, last_query_rows=None) -> (x, kvs): kvs holds each block's
    keys/values; `prefix_kv` (one per block, from a call on the prefix) makes x rows that continue
    that prefix; `last_query_rows` R returns only the first R positions of the last block.
    """

    num_layers: int
    num_heads: int
    causal: bool = False
    dtype: DType = jnp.float32
    remat: bool = False

    @nn.compact
    def __call__(
        self, x: Array, prefix_kv: Sequence[KV] | None = None, last_query_rows: int | None = None
    ) -> tuple[Array, tuple[KV, ...]]:
        block_cls = nn.remat(ResidualAttentionBlock) if self.remat else ResidualAttentionBlock
        kvs = []
        for i in range(self.num_layers):
            # last_query_rows: the last block computes only its first rows (the image tower reads
            # the class token alone). Vision only, which never remats (nn.remat traces ints).
            last = i == self.num_layers - 1
            rows = {"query_rows": last_query_rows} if last and last_query_rows else {}
            x, kv = block_cls(
                self.num_heads, self.num_layers, self.causal, self.dtype, name=f"resblocks_{i}"
            )(x, None if prefix_kv is None else prefix_kv[i], **rows)
            kvs.append(kv)
        return x, tuple(kvs)


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
        # Only the class token is read: the last block computes its row alone (exact; attention
        # still reads every position's keys/values), ~6% of the tower's FLOPs at ViT-B/16.
        x, _ = Transformer(
            cfg.vision_layers, cfg.num_vision_heads, dtype=self.dtype, name="transformer"
        )(x, last_query_rows=1)
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
      encode_text_with_prefix(prefix (N, P, Wt), suffix (N, K, S, Wt), eos (K,)) -> (N, K, D)
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
        x, _ = self.transformer(x)
        # ln_final is per token: gather the EOS rows first and normalise N rows, not N * L.
        x = x[jnp.arange(n), eos_index]
        x = self.ln_final(x)
        return (x @ self.text_projection.astype(x.dtype)).astype(jnp.float32)

    def encode_text_with_prefix(self, prefix: Array, suffix: Array, eos_in_suffix: Array) -> Array:
        """The text tower on N * K rows [prefix_n; suffix_nk], running each prefix once.

        The tower is causal, so positions 0..P-1 of every row continuing prefix n hold the same
        activations: they are computed once per prefix and each block's keys/values handed to the
        K suffixes, which attend to them and, causally, to themselves. The features equal
        `encode_text_embeddings` on the concatenated rows (tested), for P + N*K*S positions of
        work instead of N*K*(P + S).

        Args:
          prefix: (N, P, Wt) token embeddings of positions 0..P-1 (for prompts: SOT + context).
          suffix: (N, K, S, Wt) token embeddings of positions P..P+S-1, P + S <= context_length.
          eos_in_suffix: (K,) int EOS position of each row *within the suffix* (row position - P);
            the feature is read there, so every EOS must lie in the suffix.
        Returns:
          (N, K, D) text features (not L2-normalised).
        """
        n, p, _ = prefix.shape
        rows, s = suffix.shape[1:3]
        if suffix.shape[0] != n or suffix.shape[-1] != prefix.shape[-1]:
            raise ValueError(
                f"prefix (N, P, Wt) and suffix (N, K, S, Wt) expected, got "
                f"{prefix.shape} and {suffix.shape}"
            )
        if p + s > self.config.context_length:
            raise ValueError(f"text length {p} + {s} > context_length {self.config.context_length}")
        pos = self.positional_embedding.astype(self.dtype)
        _, prefix_kv = self.transformer(prefix.astype(self.dtype) + pos[:p])
        x, _ = self.transformer(suffix.astype(self.dtype) + pos[p : p + s], prefix_kv)
        x = self.ln_final(x[:, jnp.arange(rows), eos_in_suffix])  # (N, K, Wt): EOS rows only
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
