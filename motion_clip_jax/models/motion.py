"""Motion Modeling Block (paper §3.2, Eqs. 4-6): a motion and a spatial stream over frame features.

Motion stream: differences I_j - I_i for all pairs i < j, j - i <= s (ordered by step, then i), plus
a learned embedding per pair slot, through transformer T_m -> M (B, L, D).
Spatial stream: frame features plus a learned temporal embedding, through T_s -> S (B, T, D).
V = mean_L(M) + mean_T(S). With a stream switched off its term is dropped; with both off V is the
mean of the frame features (plain CLIP).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from motion_clip_jax.core.model_spec import motion_pairs
from motion_clip_jax.models.blocks import INIT_STD, TransformerStack

Array = jax.Array
DType = Any


class MotionModelingBlock(nn.Module):
    """Frame features (B, T, D) -> dict of V (B, D), S (B, T, D) | None, M (B, L, D) | None."""

    num_frames: int
    spatial_stream: bool
    motion_stream: bool
    motion_step: int
    depth: int
    num_heads: int
    mlp_ratio: float
    dtype: DType = jnp.float32

    @nn.compact
    def __call__(self, frames: Array) -> dict[str, Array | None]:
        b, t, d = frames.shape
        if t != self.num_frames:
            raise ValueError(
                f"MotionModelingBlock built for num_frames={self.num_frames}, got "
                f"frame features of shape {frames.shape}"
            )
        frames = frames.astype(jnp.float32)
        embed_init = nn.initializers.normal(INIT_STD)
        stack = lambda name: TransformerStack(
            self.depth, self.num_heads, self.mlp_ratio, self.dtype, name=name
        )
        pooled, spatial, motion = [], None, None
        if self.spatial_stream:
            temporal = self.param("temporal_embedding", embed_init, (t, d))
            spatial = stack("spatial")(frames + temporal)
            pooled.append(spatial.mean(axis=1))
        if self.motion_stream:
            i_idx, j_idx = motion_pairs(t, self.motion_step)
            diffs = frames[:, j_idx] - frames[:, i_idx]  # (B, L, D)
            slots = self.param("pair_embedding", embed_init, (len(i_idx), d))
            motion = stack("motion")(diffs + slots)
            pooled.append(motion.mean(axis=1))
        video = sum(pooled) if pooled else frames.mean(axis=1)
        return {"V": video, "S": spatial, "M": motion}
