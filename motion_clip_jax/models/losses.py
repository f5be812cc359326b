"""Logits (paper Eq. 3) and the classification loss."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

Array = jax.Array


def l2_normalize(x: Array, eps: float = 1e-12) -> Array:
    return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), eps)


def cosine_logits(video: Array, text: Array, temperature: float) -> Array:
    """cosine(T_k, V) / tau. video (B, D); text (K, D) shared or (B, K, D) per video -> (B, K)."""
    v = l2_normalize(video.astype(jnp.float32))
    t = l2_normalize(text.astype(jnp.float32))
    if t.ndim == 2:
        return v @ t.T / temperature
    return jnp.einsum("bd,bkd->bk", v, t) / temperature


def per_clip_cross_entropy(logits: Array, labels: Array, label_smoothing: float = 0.0) -> Array:
    """(B,) cross-entropy of (B, K) logits against int labels (B,), with smoothed one-hot targets.

    Smoothing eps puts 1 - eps + eps / K on the label and eps / K elsewhere (optax convention).
    """
    num_classes = logits.shape[-1]
    targets = jax.nn.one_hot(labels, num_classes, dtype=jnp.float32)
    if label_smoothing:
        targets = optax.smooth_labels(targets, label_smoothing)
    return optax.softmax_cross_entropy(logits.astype(jnp.float32), targets)


def softmax_cross_entropy(logits: Array, labels: Array, label_smoothing: float = 0.0) -> Array:
    """Mean over the batch of `per_clip_cross_entropy`."""
    return per_clip_cross_entropy(logits, labels, label_smoothing).mean()
