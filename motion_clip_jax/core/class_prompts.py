"""The class prompts: their token rows (host side) and how learned context enters them.

Every class becomes [SOT] p_1..p_H [class tokens] [.] [EOT], p_1..p_H the tokens of the context
phrase. Hand-crafted prompts use the row as it is; learned and motion-aware prompts put their
context vectors in slots 1..H (`prompt_features`). The Flax model and the pure-PyTorch model both
run this code: the array functions take the framework's namespace (`jax.numpy` or `torch`).
NumPy and the tokenizer only; no JAX or torch import.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import ModuleType
from typing import Any

import numpy as np

from motion_clip_jax.core.tokenizer import CONTEXT_LENGTH, EOT_TOKEN, get_tokenizer, tokenize


def prompt_text(ctx_init: str, class_name: str) -> str:
    """The hand-crafted prompt of one class: "<phrase> <class>."."""
    return f"{ctx_init} {class_name}."


def class_prompt_tokens(
    fields: Mapping[str, Any],
    class_names: Sequence[str],
    context_length: int = CONTEXT_LENGTH,
) -> tuple[np.ndarray, np.ndarray]:
    """Token rows of the K class prompts, computed once per class list on the host.

    Args:
      fields: the model config (any mapping) or a dict with its prompt fields: `ctx_init` (the
        context phrase; its tokens fill slots 1..H), `n_ctx` (H; must equal the phrase's token
        count), `text_context` ("shortest" cuts every row after the last EOT of the K rows, exact
        because the text tower is causal and read at EOT; "full" keeps `context_length` tokens).
      class_names: K readable class names ("brush hair").
    Returns:
      ids (K, L) int32 and eos (K,) int32, the EOT position of each row.
    """
    ctx_init, n_ctx, text_context = fields["ctx_init"], fields["n_ctx"], fields["text_context"]
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


def prompt_features(
    embeddings: Any,
    eos: Any,
    ctx: Any | None,
    encode: Callable[[Any, Any], Any],
    xp: ModuleType,
    encode_with_prefix: Callable[[Any, Any, Any], Any] | None = None,
) -> Any:
    """Prompt features through the text tower, with learned context in slots 1..H.

    Args:
      embeddings: (K, L, Wt) frozen token embeddings of the class rows (row 0 of each is SOT).
      eos: (K,) EOT positions (all > H: a class name and "." follow the context).
      ctx: None (hand-crafted prompts), (H, Wt) shared context, or (B, H, Wt) per-video context.
      encode: the text tower, (N, L, Wt) embeddings and (N,) eos -> (N, D).
      xp: the array namespace, `jax.numpy` or `torch` (concatenate, broadcast_to, tile).
      encode_with_prefix: optional, the text tower that runs a shared prefix once, (N, P, Wt)
        prefix, (N, K, S, Wt) suffix, (K,) eos within the suffix -> (N, K, D). Given, and with ctx,
        the rows' common prefix [SOT, ctx_1..ctx_H] goes through it once per video (once in all
        for shared ctx) instead of K times: the same features, since the tower is causal.
    Returns:
      (K, D), or (B, K, D) for per-video context.
    """
    if ctx is None:
        return encode(embeddings, eos)
    k, length, width = embeddings.shape
    h = ctx.shape[-2]
    lead = tuple(ctx.shape[:-2])  # () or (B,)
    if encode_with_prefix is not None:
        n = lead[0] if lead else 1
        sot = xp.broadcast_to(embeddings[:1, :1], (n, 1, width))
        prefix = xp.concatenate([sot, ctx.reshape(n, h, width)], 1)  # (N, 1 + H, Wt)
        suffix = xp.broadcast_to(embeddings[None, :, 1 + h :], (n, k, length - 1 - h, width))
        feats = encode_with_prefix(prefix, suffix, eos - (1 + h))
        return feats if lead else feats[0]
    shape = lambda n: (*lead, k, n, width)
    rows = xp.concatenate(
        [
            xp.broadcast_to(embeddings[:, :1], shape(1)),
            xp.broadcast_to(ctx[..., None, :, :], shape(h)),
            xp.broadcast_to(embeddings[:, 1 + h :], shape(length - 1 - h)),
        ],
        -2,
    )
    if not lead:
        return encode(rows, eos)
    b = lead[0]
    feats = encode(rows.reshape(b * k, length, width), xp.tile(eos, (b,)))
    return feats.reshape(b, k, -1)
