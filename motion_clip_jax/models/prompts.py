"""Prompts (paper §3.3, Eq. 7): host-side class tokens and the (motion-aware) prompt learner.

Every class becomes the token row [SOT] p_1..p_H [class tokens] [.] [EOT], where p_1..p_H are the
tokens of the context phrase (e.g. "a common human action of", H = 5). Hand-crafted prompts use the
row as it is, so they are exactly CLIP's zero-shot prompt "<phrase> <class>.". Learned prompts
overwrite the H slots with learned vectors ctx (H, Dt), initialised from the phrase's token
embeddings (so at initialisation a learned prompt equals the hand-crafted one); motion-aware prompts
add adapter(mean_L(M)) (B, Dt) to every ctx vector, giving each video its own prompts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from motion_clip_jax.models.blocks import INIT_STD
from motion_clip_jax.models.clip import quick_gelu
from motion_clip_jax.tokenizer import CONTEXT_LENGTH, EOT_TOKEN, get_tokenizer, tokenize

Array = jax.Array
DType = Any

ACTIVATIONS = {
    "relu": nn.relu,
    "gelu": lambda x: nn.gelu(x, approximate=False),
    "quick_gelu": quick_gelu,
}


def prompt_text(ctx_init: str, class_name: str) -> str:
    """The hand-crafted prompt of one class: "<phrase> <class>."."""
    return f"{ctx_init} {class_name}."


def prepare_class_tokens(
    class_names: Sequence[str],
    ctx_init: str,
    n_ctx: int,
    text_context: str = "shortest",
    context_length: int = CONTEXT_LENGTH,
) -> tuple[np.ndarray, np.ndarray]:
    """Token rows of the K class prompts, computed once per class list on the host.

    Args:
      class_names: K readable class names ("brush hair").
      ctx_init: the context phrase; its tokens fill slots 1..H.
      n_ctx: H; must equal the phrase's token count.
      text_context: "shortest" cuts every row after the last EOT of the K rows (exact: the text
        tower is causal and read at EOT); "full" keeps `context_length` tokens.
    Returns:
      ids (K, L) int32 and eos (K,) int32, the EOT position of each row.
    """
    if isinstance(class_names, str) or not len(class_names):
        raise ValueError(f"class_names must be a non-empty sequence of str, got {class_names!r}")
    for k, name in enumerate(class_names):
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"class_names[{k}] = {name!r} is not a non-empty string")
    phrase = get_tokenizer().encode(ctx_init)
    if len(phrase) != n_ctx:
        raise ValueError(
            f"n_ctx={n_ctx} does not match ctx_init={ctx_init!r}, which has "
            f"{len(phrase)} tokens {phrase}"
        )
    if text_context not in ("shortest", "full"):
        raise ValueError(f"text_context={text_context!r}: must be 'shortest' or 'full'")
    texts = [prompt_text(ctx_init, name) for name in class_names]
    try:
        ids = tokenize(texts, context_length=context_length)
    except RuntimeError as e:
        raise ValueError(f"A class prompt does not fit {context_length} tokens: {e}") from e
    # The text tower reads the feature at the EOT, which must be the row's one and only.
    several = [class_names[k] for k in np.flatnonzero((ids == EOT_TOKEN).sum(axis=1) != 1)]
    if several:
        raise ValueError(f"class names {several[:5]} put more than one EOT token in the prompt")
    eos = np.argmax(ids, axis=1).astype(np.int32)
    # Slots 1..H must hold the phrase in every row; BPE could in principle merge across the
    # phrase/class boundary, which would misplace the learned context.
    misplaced = [class_names[k] for k in range(len(ids)) if list(ids[k, 1 : 1 + n_ctx]) != phrase]
    if misplaced:
        raise ValueError(
            f"ctx_init={ctx_init!r} does not tokenize to the same {n_ctx} tokens "
            f"in front of the class names {misplaced[:5]}"
        )
    if text_context == "shortest":
        ids = ids[:, : int(eos.max()) + 1]
    return np.ascontiguousarray(ids), eos


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
