"""The video model's config: one `ConfigDict`, named variants, and validation.

Every ablation of the paper (Fig. 3a, Tables 1, 4, 5) is a set of switches on the same model:

  clip          mean-pooled frames, hand-crafted prompt (zero-shot CLIP; nothing trainable)
  baseline      spatial transformer only, hand-crafted prompt, no MCB (the paper's "Baseline")
  baseline_mcb  Baseline + MCB
  mmb           two-stream motion modeling block, hand-crafted prompt, no MCB
  mmb_map       MMB + motion-aware prompts, no MCB
  full          MMB + motion-aware prompts + MCB (the paper's model)

Default sizes (ViT-B/16, D = 512) give 4,295,232 trainable parameters; docs/model.md has the count
per module and why these sizes.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import ml_collections

from motion_clip_jax.models import clip as clip_lib
from motion_clip_jax.models.prompts import ACTIVATIONS
from motion_clip_jax.tokenizer import get_tokenizer

PROMPT_MODES = ("handcrafted", "learned", "motion_aware")
TEXT_CONTEXTS = ("shortest", "full")
ADAPTER_ACTIVATIONS = tuple(ACTIVATIONS)
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}

# Every field of the config (validation rejects others, so a typo cannot pass silently).
FIELD_NAMES = (
    "variant",
    "clip_model",
    "clip_overrides",
    "dtype",
    "remat_text",
    "num_frames",
    "spatial_stream",
    "motion_stream",
    "motion_step",
    "mmb_depth",
    "mmb_heads",
    "mmb_mlp_ratio",
    "prompts",
    "n_ctx",
    "ctx_init",
    "adapter_reduction",
    "adapter_activation",
    "text_context",
    "mcb",
    "mcb_heads",
    "mcb_qkv_dim",
    "mcb_pooled_keys",
    "temperature",
    "label_smoothing",
)

# Switches per variant; everything else keeps its default.
VARIANTS: dict[str, dict[str, Any]] = {
    "clip": dict(spatial_stream=False, motion_stream=False, prompts="handcrafted", mcb=False),
    "baseline": dict(spatial_stream=True, motion_stream=False, prompts="handcrafted", mcb=False),
    "baseline_mcb": dict(spatial_stream=True, motion_stream=False, prompts="handcrafted", mcb=True),
    "mmb": dict(spatial_stream=True, motion_stream=True, prompts="handcrafted", mcb=False),
    "mmb_map": dict(spatial_stream=True, motion_stream=True, prompts="motion_aware", mcb=False),
    "full": dict(spatial_stream=True, motion_stream=True, prompts="motion_aware", mcb=True),
}


def model_config(variant: str = "full", **overrides: Any) -> ml_collections.ConfigDict:
    """The model config of `variant` (see `VARIANTS`), with optional field overrides, validated."""
    if variant not in VARIANTS:
        raise KeyError(f"Unknown model variant {variant!r}; known: {sorted(VARIANTS)}")
    c = ml_collections.ConfigDict()
    c.variant = variant  # informational: the switches below are what the model reads

    # --- Frozen CLIP ---
    c.clip_model = "vit_b16"  # preset in models/clip.py PRESETS
    c.clip_overrides = (
        ml_collections.ConfigDict()
    )  # CLIPConfig field overrides (tests, checkpoints)
    c.dtype = "float32"  # compute dtype of every tower and block; params stay float32
    c.remat_text = False  # recompute text blocks in the backward pass (memory for B*K prompts)

    # --- Video encoder: Motion Modeling Block (paper §3.2) ---
    c.num_frames = 8  # T: frames per clip (paper default 8)
    c.spatial_stream = True  # T_s over frame features + temporal embedding -> S (B, T, D)
    c.motion_stream = True  # T_m over frame differences + pair-slot embedding -> M (B, L, D)
    c.motion_step = 4  # s: largest frame gap of a difference pair, 1 <= s <= T-1 (paper 4)
    c.mmb_depth = 1  # blocks per stream
    c.mmb_heads = 8  # attention heads per block (D must divide)
    c.mmb_mlp_ratio = 1.0  # MLP hidden width = ratio * D

    # --- Text encoder: prompts (paper §3.3) ---
    c.prompts = "motion_aware"  # handcrafted | learned (CoOp: shared ctx) | motion_aware (MAP)
    c.n_ctx = 5  # H: learned context vectors; must equal the token count of ctx_init
    c.ctx_init = "a common human action of"  # H=5 phrase (paper Table 2); H=3: "human action of"
    c.adapter_reduction = 8  # r: motion adapter is Linear(D -> D/r) -> act -> Linear(D/r -> Dt)
    c.adapter_activation = "relu"  # relu | gelu | quick_gelu
    c.text_context = "shortest"  # shortest: context holds the last EOS (exact); full: 77 tokens

    # --- Multimodal Communication Block (paper §3.4) ---
    c.mcb = True  # SMA (text over [S; M]) and SAA (V over text), cross-attention + residual
    c.mcb_heads = 8  # heads of each cross-attention (mcb_qkv_dim must divide)
    c.mcb_qkv_dim = 256  # query/key/value width of each cross-attention ("light-weight": D/2)
    c.mcb_pooled_keys = False  # ablation: SMA keys = pooled V (1 token) instead of [S; M]

    # --- Logits and loss (paper Eq. 3) ---
    c.temperature = 0.07  # tau: logits = cosine / tau (fixed, not learned)
    c.label_smoothing = 0.1  # of the softmax cross-entropy over the K classes (DESIGN §4)

    c.update(VARIANTS[variant])
    for key, value in overrides.items():
        if key not in c:
            raise KeyError(f"model_config: unknown field {key!r}; known: {sorted(c.keys())}")
        setattr(c, key, value)
    validate_model_config(c)
    return c


def clip_config_of(config: ml_collections.ConfigDict) -> clip_lib.CLIPConfig:
    """The frozen CLIP's architecture named by `config.clip_model` + `config.clip_overrides`."""
    return clip_lib.clip_config(config.clip_model, **dict(config.clip_overrides))


def ctx_phrase_tokens(phrase: str) -> list[int]:
    """BPE ids of the context phrase (no SOT/EOT): the H placeholder slots of every prompt."""
    return get_tokenizer().encode(phrase)


def validate_model_config(config: ml_collections.ConfigDict) -> None:
    """Raises ValueError naming the first field that is out of range or inconsistent."""
    c = config
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
    if c.dtype not in DTYPES:
        bad("dtype", f"must be one of {sorted(DTYPES)}")
    if not isinstance(c.num_frames, int) or c.num_frames < 1:
        bad("num_frames", "must be an int >= 1")
    if c.motion_stream:
        if c.num_frames < 2:
            bad("num_frames", "the motion stream needs at least 2 frames")
        if not isinstance(c.motion_step, int) or not 1 <= c.motion_step <= c.num_frames - 1:
            bad("motion_step", f"s must satisfy 1 <= s <= num_frames - 1 = {c.num_frames - 1}")
    if c.spatial_stream or c.motion_stream:
        if not isinstance(c.mmb_depth, int) or c.mmb_depth < 1:
            bad("mmb_depth", "must be an int >= 1")
        if not isinstance(c.mmb_heads, int) or c.mmb_heads < 1 or dim % c.mmb_heads:
            bad("mmb_heads", f"must divide the feature width D = {dim}")
        if not c.mmb_mlp_ratio > 0 or int(round(c.mmb_mlp_ratio * dim)) < 1:
            bad("mmb_mlp_ratio", "must be > 0 (hidden width = ratio * D >= 1)")
    if c.prompts not in PROMPT_MODES:
        bad("prompts", f"must be one of {PROMPT_MODES}")
    if c.prompts == "motion_aware":
        if not c.motion_stream:
            bad("prompts", "motion-aware prompts are driven by M: needs motion_stream=True")
        if not isinstance(c.adapter_reduction, int) or not 1 <= c.adapter_reduction <= dim:
            bad("adapter_reduction", f"r must be an int in 1..D = {dim} (hidden width D // r)")
        if c.adapter_activation not in ADAPTER_ACTIVATIONS:
            bad("adapter_activation", f"must be one of {ADAPTER_ACTIVATIONS}")
    if not isinstance(c.ctx_init, str) or not c.ctx_init.strip():
        bad("ctx_init", "must be a non-empty phrase (it initialises and places the context)")
    phrase_ids = ctx_phrase_tokens(c.ctx_init)
    if c.n_ctx != len(phrase_ids):
        bad(
            "n_ctx",
            f"H must equal the token count of ctx_init={c.ctx_init!r} ({len(phrase_ids)} tokens)",
        )
    if c.text_context not in TEXT_CONTEXTS:
        bad("text_context", f"must be one of {TEXT_CONTEXTS}")
    if c.mcb:
        if not isinstance(c.mcb_qkv_dim, int) or c.mcb_qkv_dim < 1:
            bad("mcb_qkv_dim", "must be an int >= 1")
        if not isinstance(c.mcb_heads, int) or c.mcb_heads < 1 or c.mcb_qkv_dim % c.mcb_heads:
            bad("mcb_heads", f"must divide mcb_qkv_dim = {c.mcb_qkv_dim}")
    if not c.temperature > 0:
        bad("temperature", "tau must be > 0")
    if not 0 <= c.label_smoothing < 1:
        bad("label_smoothing", "must be in [0, 1)")
    if c.variant not in VARIANTS:
        bad("variant", f"must be one of {sorted(VARIANTS)}")
