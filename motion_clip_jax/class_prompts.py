"""Host-side token rows of the class prompts: numpy and the tokenizer only (no JAX, no torch).

Every class becomes [SOT] p_1..p_H [class tokens] [.] [EOT], p_1..p_H the tokens of the context
phrase; the JAX model (models/prompts.py) and the PyTorch model (torch_model.py) both use these rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from motion_clip_jax.tokenizer import CONTEXT_LENGTH, EOT_TOKEN, get_tokenizer, tokenize


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
