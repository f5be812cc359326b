"""The video model's spec as plain data: every field, the named variants, validation, motion pairs.

Every ablation of the paper (Fig. 3a, Tables 1, 4, 5) is a set of switches on the same model:

  clip          mean-pooled frames, hand-crafted prompt (zero-shot CLIP; nothing trainable)
  baseline      spatial transformer only, hand-crafted prompt, no MCB (the paper's "Baseline")
  baseline_mcb  Baseline + MCB
  mmb           two-stream motion modeling block, hand-crafted prompt, no MCB
  mmb_map       MMB + motion-aware prompts, no MCB
  full          MMB + motion-aware prompts + MCB (the paper's model)

Framework-free (stdlib, NumPy, the tokenizer): the Flax model (`models/model_config.py` wraps these
defaults in a `ConfigDict`), the pure-PyTorch model and the export format all read this one
definition. Default sizes are the paper's Table 3 (ViT-B/16, D = 512: Baseline 2,106,368 = +2.1M,
full 4,289,600 = +4.29M trainable, against the paper's +2.1M / +4.2M): streams of MLP ratio 2 and an
MCB without projections whose two residuals are gated (2D = 1,024 parameters). The earlier sizes
(ratio 1, projected MCB of width 256: 4,293,696) are options. docs/model.md derives the sizes from Table 3 step by step.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

import numpy as np

from motion_clip_jax.core import clip_spec
from motion_clip_jax.core.tokenizer import get_tokenizer

PROMPT_MODES = ("handcrafted", "learned", "motion_aware")
MCB_KEYS = ("pooled", "tokens")
MCB_NORMS = ("none", "l2", "layernorm")  # models/mcb.py: of each cross-attention's inputs
TEXT_CONTEXTS = ("shortest", "full")
ADAPTER_ACTIVATIONS = ("relu", "gelu", "quick_gelu")  # gelu = exact (erf) GELU
DTYPE_NAMES = ("float32", "bfloat16", "float16")

# Every field with its default, in the order records list them. Validation rejects any other
# field, so a typo cannot pass silently.
DEFAULTS: dict[str, Any] = {
    # The named switch set of VARIANTS below. Validation refuses switches that contradict it, so a
    # record's variant always says what ran; "custom" takes the switches as they are.
    "variant": "full",
    # --- Frozen CLIP ---
    "clip_model": "vit_b16",  # preset in core/clip_spec.py PRESETS
    "clip_overrides": {},  # CLIPConfig field overrides (tests, checkpoints)
    "dtype": "float32",  # compute dtype of every tower and block; params stay float32
    "remat_text": False,  # recompute text blocks in the backward pass (memory for B*K prompts)
    # Frames per call of the frozen image tower (a sequential map over chunks): -1 = the
    # backend's measured default (models/video_clip.py), 0 = all B*T frames in one call.
    "image_chunk_frames": -1,
    # --- Video encoder: Motion Modeling Block (paper §3.2) ---
    "num_frames": 8,  # T: frames per clip (paper default 8)
    "spatial_stream": True,  # T_s over frame features + temporal embedding -> S (B, T, D)
    "motion_stream": True,  # T_m over frame differences + pair-slot embedding -> M (B, L, D)
    "motion_step": 4,  # s: largest frame gap of a difference pair, 1 <= s <= T-1 (paper 4)
    "mmb_depth": 1,  # blocks per stream
    "mmb_heads": 8,  # attention heads per block (D must divide)
    "mmb_mlp_ratio": 2.0,  # MLP hidden width = ratio * D (2: Table 3's +2.1M Baseline; was 1)
    # --- Text encoder: prompts (paper §3.3) ---
    "prompts": "motion_aware",  # handcrafted | learned (CoOp: shared ctx) | motion_aware (MAP)
    "n_ctx": 5,  # H: learned context vectors; must equal the token count of ctx_init
    "ctx_init": "a common human action of",  # H=5 phrase (paper Table 2); H=3: "human action of"
    "adapter_reduction": 8,  # r: motion adapter is Linear(D -> D/r) -> act -> Linear(D/r -> Dt)
    "adapter_activation": "relu",  # relu | gelu | quick_gelu
    "text_context": "shortest",  # shortest: context holds the last EOS (exact); full: 77 tokens
    # Exact shortcut: the K prompt rows of a video share [SOS, ctx_1..ctx_H]; the causal text
    # tower runs that prefix once per video and each class's suffix over its keys/values.
    "share_prompt_prefix": True,
    # Exact shortcut (with share_prompt_prefix and learned context): the class suffixes are
    # padded per group of similar lengths, at most this many groups, not all to the longest
    # (`class_prompts.suffix_layout`). 1: one group. Applied where the class list is known when
    # a step is built (the train step; `video_clip.for_classes`).
    "text_suffix_groups": 3,
    # --- Multimodal Communication Block (paper §3.4) ---
    "mcb": True,  # SMA (text over the video) and SAA (V over text), cross-attention + residual
    # Form of each cross-attention (models/mcb.py). False (Table 3's size): no projections;
    # queries, keys and values are the features themselves, split into mcb_heads heads of
    # D / mcb_heads, scores scaled by 1 / sqrt(D / mcb_heads). True (our earlier form): q/k/v
    # projections to mcb_qkv_dim and an output projection back to D (1,050,624 at D = 512).
    "mcb_projections": False,
    "mcb_heads": 8,  # heads of each cross-attention (must divide D, or mcb_qkv_dim if projected)
    "mcb_qkv_dim": 256,  # projected form only: query/key/value width ("light-weight": D/2)
    # Normalisation of each cross-attention's inputs (models/mcb.py): none | l2 (the block on unit
    # vectors, residual included) | layernorm (pre-LN, 4D parameters). The projected form of the
    # earlier sizes is projected + layernorm.
    "mcb_norm": "none",
    # 0: plain residual q + CA; > 0: q + g * CA with a learned per-channel gate g (D,) on each
    # attention's output, initialised to this value (2D parameters in all). 1e-4 (X-CLIP's
    # value for its text-video cross-attention): without it, the plain residual adds V itself
    # to every class feature and the class logits collapse (docs/model.md, interpretation 8).
    "mcb_scale_init": 1e-4,
    # SMA keys/values: pooled = V alone (the paper's Eq. 2 / §3.4); tokens = [S; M] (T + L tokens,
    # our extension). docs/model.md gives the reasoning.
    "mcb_keys": "pooled",
    # --- Logits and loss (paper Eq. 3) ---
    "temperature": 0.07,  # tau: logits = cosine / tau (fixed, not learned)
    "label_smoothing": 0.1,  # of the softmax cross-entropy over the K classes (docs/model.md)
}
FIELD_NAMES = tuple(DEFAULTS)

# Switches per variant; everything else keeps its default. "custom" (not listed) runs the
# switches as set. These four fields are the switches.
SWITCHES = ("spatial_stream", "motion_stream", "prompts", "mcb")
CUSTOM = "custom"
VARIANTS: dict[str, dict[str, Any]] = {
    "clip": dict(spatial_stream=False, motion_stream=False, prompts="handcrafted", mcb=False),
    "baseline": dict(spatial_stream=True, motion_stream=False, prompts="handcrafted", mcb=False),
    "baseline_mcb": dict(spatial_stream=True, motion_stream=False, prompts="handcrafted", mcb=True),
    "mmb": dict(spatial_stream=True, motion_stream=True, prompts="handcrafted", mcb=False),
    "mmb_map": dict(spatial_stream=True, motion_stream=True, prompts="motion_aware", mcb=False),
    "full": dict(spatial_stream=True, motion_stream=True, prompts="motion_aware", mcb=True),
}


def model_fields(variant: str = "full", **overrides: Any) -> dict[str, Any]:
    """The fields of `variant` (see `VARIANTS`, or "custom") with optional overrides, validated.

    A switch override that contradicts a named variant is refused (see `validate`)."""
    if variant not in VARIANTS and variant != CUSTOM:
        raise KeyError(f"Unknown model variant {variant!r}; known: {variant_names()}")
    fields = {**DEFAULTS, "clip_overrides": {}, "variant": variant, **VARIANTS.get(variant, {})}
    for key, value in overrides.items():
        if key not in fields:
            raise KeyError(f"model config: unknown field {key!r}; known: {sorted(fields)}")
        fields[key] = value
    validate(fields)
    return fields


def variant_names() -> list[str]:
    """The names `variant` takes: every entry of VARIANTS and "custom"."""
    return [*VARIANTS, CUSTOM]


def variant_mismatch(fields: Mapping[str, Any]) -> list[str]:
    """The switches of `fields` that differ from its named variant, as 'name=value (variant:
    value)'; empty for "custom" or when they agree."""
    switches = VARIANTS.get(fields["variant"])
    if switches is None:
        return []
    return [
        f"{k}={fields[k]!r} ({fields['variant']}: {v!r})"
        for k, v in switches.items()
        if fields[k] != v
    ]


def upgrade_record(fields: Mapping[str, Any]) -> dict[str, Any]:
    """A model config read from an older record (run_info.json, an export), in today's fields.

    - `mcb_pooled_keys` (bool) became `mcb_keys`: True -> "pooled", False -> "tokens" (the old
      default, so an old model keeps the keys it was trained with).
    - `mcb_projections` is absent from records written before the projection-free MCB became
      the default: every such MCB had projections, so it becomes True (the model as trained).
    - `mcb_norm` and `mcb_scale_init` are absent from records written before them: "layernorm"
      for a projected MCB, "none" for a projection-free one, and 0.0 (no gate): what ran.
    - Exact compute shortcuts added later (`share_prompt_prefix`, `image_chunk_frames`,
      `text_suffix_groups`) take their defaults: they change no result.
    - Before the variant was checked, a record could name a variant its switches contradict; the
      switches are what ran, so such a record becomes "custom".
    Today's records pass through unchanged.
    """
    out = dict(fields)
    if "mcb_pooled_keys" in out and "mcb_keys" not in out:
        out["mcb_keys"] = "pooled" if out.pop("mcb_pooled_keys") else "tokens"
    out.setdefault("mcb_projections", True)
    # `mcb_norm` / `mcb_scale_init` came later: every earlier projected MCB was pre-LN, every
    # earlier projection-free one had no normalisation; none had a gate.
    out.setdefault("mcb_norm", "layernorm" if out["mcb_projections"] else "none")
    out.setdefault("mcb_scale_init", 0.0)
    for name in ("share_prompt_prefix", "image_chunk_frames", "text_suffix_groups"):
        out.setdefault(name, DEFAULTS[name])
    if all(k in out for k in ("variant", *SWITCHES)) and variant_mismatch(out):
        out["variant"] = CUSTOM
    return out


def clip_config_of(fields: Mapping[str, Any]) -> clip_spec.CLIPConfig:
    """The frozen CLIP's architecture named by `clip_model` + `clip_overrides`."""
    return clip_spec.clip_config(fields["clip_model"], **dict(fields["clip_overrides"]))


def ctx_phrase_tokens(phrase: str) -> list[int]:
    """BPE ids of the context phrase (no SOT/EOT): the H placeholder slots of every prompt."""
    return get_tokenizer().encode(phrase)


def num_motion_pairs(num_frames: int, max_step: int) -> int:
    """L = sum_{k=1..s} (T - k)."""
    return sum(num_frames - k for k in range(1, max_step + 1))


def motion_pairs(num_frames: int, max_step: int) -> tuple[np.ndarray, np.ndarray]:
    """Frame index pairs (i, j), i < j, j - i <= s, ordered by step j - i, then by i.

    Returns (i_idx, j_idx), each int32 (L,), L = sum_{k=1..s} (T - k). Raises ValueError unless
    1 <= s <= T - 1.
    """
    if not 1 <= max_step <= num_frames - 1:
        raise ValueError(
            f"motion step s={max_step} must satisfy 1 <= s <= num_frames - 1 = {num_frames - 1}"
        )
    i_idx = np.concatenate([np.arange(num_frames - k) for k in range(1, max_step + 1)])
    steps = np.concatenate([np.full(num_frames - k, k) for k in range(1, max_step + 1)])
    return i_idx.astype(np.int32), (i_idx + steps).astype(np.int32)


def video_tokens(video: Mapping[str, Any], xp: ModuleType) -> Any:
    """The video's token sequence for the MCB, (B, S, D): [S; M] of the streams that are on
    (S = T + L with both), or the pooled vector V (B, 1, D) when neither stream is on.

    `video` holds V (B, D) and S (B, T, D) / M (B, L, D), None where a stream is off.
    """
    tokens = [video[key] for key in ("S", "M") if video[key] is not None]
    if not tokens:
        return video["V"][:, None]
    return xp.concatenate(tokens, 1) if len(tokens) > 1 else tokens[0]


def validate(fields: Mapping[str, Any]) -> None:
    """Raises ValueError naming the first field that is unknown, missing, out of range or
    inconsistent. `fields` is any mapping (a dict, an ml_collections ConfigDict)."""
    c = fields
    known = set(FIELD_NAMES)
    unknown = sorted(set(c.keys()) - known)
    missing = sorted(known - set(c.keys()))
    if unknown or missing:
        raise ValueError(f"model config: unknown fields {unknown}, missing fields {missing}")

    def bad(field: str, why: str):
        raise ValueError(f"model config field {field}={c[field]!r}: {why}")

    try:
        clip_cfg = clip_config_of(c)
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"model config clip_model/clip_overrides: {e}") from e
    dim = clip_cfg.embed_dim
    if c["dtype"] not in DTYPE_NAMES:
        bad("dtype", f"must be one of {list(DTYPE_NAMES)}")
    if not _is_int(c["num_frames"]) or c["num_frames"] < 1:
        bad("num_frames", "must be an int >= 1")
    if c["motion_stream"]:
        if c["num_frames"] < 2:
            bad("num_frames", "the motion stream needs at least 2 frames")
        if not _is_int(c["motion_step"]) or not 1 <= c["motion_step"] <= c["num_frames"] - 1:
            bad("motion_step", f"s must satisfy 1 <= s <= num_frames - 1 = {c['num_frames'] - 1}")
    if c["spatial_stream"] or c["motion_stream"]:
        if not _is_int(c["mmb_depth"]) or c["mmb_depth"] < 1:
            bad("mmb_depth", "must be an int >= 1")
        if not _is_int(c["mmb_heads"]) or c["mmb_heads"] < 1 or dim % c["mmb_heads"]:
            bad("mmb_heads", f"must divide the feature width D = {dim}")
        if not c["mmb_mlp_ratio"] > 0 or int(round(c["mmb_mlp_ratio"] * dim)) < 1:
            bad("mmb_mlp_ratio", "must be > 0 (hidden width = ratio * D >= 1)")
    if c["prompts"] not in PROMPT_MODES:
        bad("prompts", f"must be one of {PROMPT_MODES}")
    if c["prompts"] == "motion_aware":
        if not c["motion_stream"]:
            bad("prompts", "motion-aware prompts are driven by M: needs motion_stream=True")
        if not _is_int(c["adapter_reduction"]) or not 1 <= c["adapter_reduction"] <= dim:
            bad("adapter_reduction", f"r must be an int in 1..D = {dim} (hidden width D // r)")
        if c["adapter_activation"] not in ADAPTER_ACTIVATIONS:
            bad("adapter_activation", f"must be one of {ADAPTER_ACTIVATIONS}")
    if not isinstance(c["ctx_init"], str) or not c["ctx_init"].strip():
        bad("ctx_init", "must be a non-empty phrase (it initialises and places the context)")
    phrase_ids = ctx_phrase_tokens(c["ctx_init"])
    if c["n_ctx"] != len(phrase_ids):
        bad(
            "n_ctx",
            f"H must equal the token count of ctx_init={c['ctx_init']!r} ({len(phrase_ids)} tokens)",
        )
    if c["text_context"] not in TEXT_CONTEXTS:
        bad("text_context", f"must be one of {TEXT_CONTEXTS}")
    if c["mcb"]:
        _validate_mcb(c, dim, bad)
    if not c["temperature"] > 0:
        bad("temperature", "tau must be > 0")
    if not 0 <= c["label_smoothing"] < 1:
        bad("label_smoothing", "must be in [0, 1)")
    if not _is_int(c["image_chunk_frames"]) or c["image_chunk_frames"] < -1:
        bad("image_chunk_frames", "must be an int: -1 (backend default), 0 (all) or > 0")
    if not isinstance(c["share_prompt_prefix"], bool):
        bad("share_prompt_prefix", "must be True or False")
    if not _is_int(c["text_suffix_groups"]) or c["text_suffix_groups"] < 1:
        bad(
            "text_suffix_groups",
            "must be an int >= 1 (1: every class suffix padded to the longest)",
        )
    if c["variant"] not in VARIANTS and c["variant"] != CUSTOM:
        bad("variant", f"must be one of {variant_names()}")
    mismatch = variant_mismatch(c)
    if mismatch:
        bad(
            "variant",
            f"its switches disagree: {', '.join(mismatch)}. Name the variant instead of setting "
            f"switches (e.g. configs/hmdb_closed.py:1,{c['variant']}), or set "
            f"variant={CUSTOM!r} to run switches of your own",
        )


def _validate_mcb(c: Mapping[str, Any], dim: int, bad: Callable[[str, str], None]) -> None:
    """The MCB's fields (validate's part for mcb=True); D = `dim`."""
    if c["mcb_keys"] not in MCB_KEYS:
        bad("mcb_keys", f"must be one of {MCB_KEYS}")
    if not isinstance(c["mcb_projections"], bool):
        bad("mcb_projections", "must be True (projected q/k/v/o) or False (none)")
    if c["mcb_norm"] not in MCB_NORMS:
        bad("mcb_norm", f"must be one of {MCB_NORMS}")
    scale = c["mcb_scale_init"]
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not scale >= 0:
        bad("mcb_scale_init", "must be a number >= 0 (0: no gate)")
    if not _is_int(c["mcb_qkv_dim"]) or c["mcb_qkv_dim"] < 1:
        bad("mcb_qkv_dim", "must be an int >= 1")
    width, width_name = (
        (c["mcb_qkv_dim"], "mcb_qkv_dim") if c["mcb_projections"] else (dim, "the feature width D")
    )
    if not _is_int(c["mcb_heads"]) or c["mcb_heads"] < 1 or width % c["mcb_heads"]:
        bad("mcb_heads", f"must divide {width_name} = {width}")


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)
