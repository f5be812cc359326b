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


# ((rows of group g, its suffix length S_g), ...): a static grouping of the K prompt rows.
SuffixLayout = tuple[tuple[tuple[int, ...], int], ...]


def suffix_layout(eos: np.ndarray, n_ctx: int, max_groups: int) -> SuffixLayout:
    """Groups the K prompt rows by suffix length, for the prefix-shared text path.

    After the shared prefix [SOT, ctx_1..ctx_H], row k's suffix is its class tokens, "." and EOT:
    positions 1 + H .. eos_k, i.e. eos_k - H long. One padded suffix for all K rows holds K times
    the longest (42% of it padding for HMDB-51's names); each group is padded only to its own
    longest. The groups are runs of the sorted lengths, chosen to minimise the padded positions;
    their number is capped because each group runs the prefix again and makes smaller matmuls.

    Args:
      eos: (K,) EOT positions from `class_prompt_tokens` (host values).
      n_ctx: H.
      max_groups: at most this many groups (1: one group, every suffix padded to the longest).
    Returns:
      ((rows, S_g), ...): every row 0..K-1 in exactly one group, rows ascending, S_g the group's
      longest suffix; groups by ascending S_g.
    """
    lengths = np.asarray(eos, np.int64) - n_ctx
    if lengths.ndim != 1 or not len(lengths) or lengths.min() < 1:
        raise ValueError(f"eos {np.asarray(eos).tolist()} must be (K,) positions past 1 + n_ctx")
    if max_groups < 1:
        raise ValueError(f"max_groups={max_groups} must be >= 1")
    values = np.unique(lengths)
    counts = np.array([(lengths == v).sum() for v in values])
    # best[g][j]: least padded positions covering values[:j] with g groups, the last ending at j.
    n = len(values)
    best = np.full((max_groups + 1, n + 1), np.inf)
    cut = np.zeros((max_groups + 1, n + 1), np.int64)
    best[0][0] = 0
    for g in range(1, max_groups + 1):
        for j in range(1, n + 1):
            for i in range(j):  # the group covers values[i:j], padded to values[j - 1]
                cost = best[g - 1][i] + counts[i:j].sum() * values[j - 1]
                if cost < best[g][j]:
                    best[g][j], cut[g][j] = cost, i
    groups_used = int(np.argmin(best[:, n]))
    bounds, j = [], n
    for g in range(groups_used, 0, -1):
        bounds.append((int(cut[g][j]), j))
        j = int(cut[g][j])
    layout = []
    for i, j in reversed(bounds):
        rows = np.flatnonzero((lengths >= values[i]) & (lengths <= values[j - 1]))
        layout.append((tuple(int(r) for r in rows), int(values[j - 1])))
    return tuple(layout)


def prompt_features(
    embeddings: Any,
    eos: Any,
    ctx: Any | None,
    encode: Callable[[Any, Any], Any],
    xp: ModuleType,
    encode_with_prefix: Callable[[Any, Any, Any], Any] | None = None,
    layout: SuffixLayout | None = None,
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
      layout: optional, with `encode_with_prefix`: the rows' `suffix_layout`, so each group's
        suffixes are padded to that group's longest only. The features are the same (the tower
        is causal and read at EOT); a row whose EOT lies past its group's suffix makes every
        feature NaN (the layout was made for other prompts), and a layout of another K raises.
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
        if layout is None:
            layout = ((tuple(range(k)), length - 1 - h),)  # one group: padded to the longest
        feats = _grouped_suffix_features(embeddings, eos, prefix, layout, encode_with_prefix, xp)
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


def _grouped_suffix_features(
    embeddings: Any,
    eos: Any,
    prefix: Any,
    layout: SuffixLayout,
    encode_with_prefix: Callable[[Any, Any, Any], Any],
    xp: ModuleType,
) -> Any:
    """(N, K, D): each group of rows' suffixes through `encode_with_prefix`, back in row order."""
    k, length, width = embeddings.shape
    n, start = prefix.shape[0], prefix.shape[1]  # the suffix starts after [SOT, ctx]
    order = [row for rows, _ in layout for row in rows]
    if sorted(order) != list(range(k)) or max(size for _, size in layout) > length - start:
        raise ValueError(
            f"suffix layout {[(len(r), size) for r, size in layout]} (rows, length) does not fit "
            f"{k} prompt rows of {length} tokens after a prefix of {start}"
        )
    if layout == ((tuple(range(k)), length - start),):  # every row whole: nothing to regroup
        suffix = xp.broadcast_to(embeddings[None, :, start:], (n, k, length - start, width))
        return encode_with_prefix(prefix, suffix, eos - start)
    parts, limit = [], np.zeros(k, np.int32)
    for rows, size in layout:
        index = np.asarray(rows)
        suffix = embeddings[index][None, :, start : start + size]
        parts.append(
            encode_with_prefix(
                prefix, xp.broadcast_to(suffix, (n, len(rows), size, width)), eos[index] - start
            )
        )
        limit[index] = start + size  # the first position past the row's group suffix
    feats = xp.concatenate(parts, 1)[:, np.argsort(order)]
    # A row is read at its EOT, which must lie in its group's suffix: the layout is static, the
    # tokens are not, so a mismatch poisons the result instead of passing.
    fits = xp.all(eos < xp.asarray(limit))
    return xp.where(fits, feats, xp.full_like(feats, float("nan")))
