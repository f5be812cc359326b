"""The (motion-aware) prompt learner of paper §3.3, Eq. 7.

Every class becomes the token row [SOT] p_1..p_H [class tokens] [.] [EOT] (`core/class_prompts.py`),
where p_1..p_H are the tokens of the context phrase (e.g. "a common human action of", H = 5).
Hand-crafted prompts use the row as it is, so they are exactly CLIP's zero-shot prompt
"<phrase> <class>.". Learned prompts
overwrite the H slots with learned vectors ctx (H, Dt), initialised from the phrase's token
embeddings (so at initialisation a learned prompt equals the hand-crafted one); motion-aware prompts
add adapter(mean_L(M)) (B, Dt) to every ctx vector, giving each video its own prompts.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from motion_clip_jax.core.model_spec import ADAPTER_ACTIVATIONS
from motion_clip_jax.models.blocks import INIT_STD
from motion_clip_jax.models.clip import quick_gelu

Array = jax.Array
DType = Any

_IMPLEMENTATIONS = {
    "relu": nn.relu,
    "gelu": lambda x: nn.gelu(x, approximate=False),
    "quick_gelu": quick_gelu,
}
# Keyed by the spec's names: a name the spec adds without an implementation fails at import.
ACTIVATIONS = {name: _IMPLEMENTATIONS[name] for name in ADAPTER_ACTIVATIONS}


class PromptLearner(nn.Module):
    """Learned context vectors, optionally shifted per video by the motion adapter.

    __call__(phrase_embeddings (H, Dt), motion (B, D) | None) -> ctx (H, Dt) or (B, H, Dt).
    `phrase_embeddings` (the frozen token embeddings in the H slots) only initialise ctx.
    """

    motion_aware: bool
    adapter_reduction: int = 8
    adapter_activation: str = "relu"
    dtype: DType = jnp.float32

    @nn.compact
    def __call__(self, phrase_embeddings: Array, motion: Array | None = None) -> Array:
        ctx = self.param("ctx", lambda _: jnp.asarray(phrase_embeddings, jnp.float32))
        if not self.motion_aware:
            return ctx
        if motion is None:
            raise ValueError("motion-aware prompts need the motion summary mean_L(M) (B, D)")
        hidden = max(1, motion.shape[-1] // self.adapter_reduction)
        init = nn.initializers.normal(INIT_STD)
        h = nn.Dense(hidden, dtype=self.dtype, kernel_init=init, name="adapter_down")(motion)
        h = ACTIVATIONS[self.adapter_activation](h)
        shift = nn.Dense(ctx.shape[-1], dtype=self.dtype, kernel_init=init, name="adapter_up")(h)
        return ctx[None] + shift.astype(jnp.float32)[:, None, :]  # (B, H, Dt)
