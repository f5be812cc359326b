"""CLIP checkpoint conversion between PyTorch (OpenAI / Hugging Face layouts) and Flax.

module, variables = clip_from_torch("ViT-B-16.pt")     # OpenAI release, state_dict, HF dir, ...
state_dict = clip_to_torch(variables)                   # OpenAI layout, for clip.model.build_model
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from motion_clip_jax.convert.flax_file import load_clip, save_clip
from motion_clip_jax.convert.hf_layout import hf_to_openai_state_dict, is_hf_layout
from motion_clip_jax.convert.layout import (
    CheckpointError,
    config_from_params,
    infer_config,
    openai_state_dict_to_params,
    params_to_openai_state_dict,
)
from motion_clip_jax.convert.torch_files import load_state_dict
from motion_clip_jax.models.clip import CLIP

__all__ = [
    "CheckpointError",
    "clip_from_torch",
    "clip_to_torch",
    "load_clip",
    "save_clip",
]


def clip_from_torch(source: str | os.PathLike | Mapping[str, Any]) -> tuple[CLIP, dict[str, Any]]:
    """PyTorch CLIP checkpoint (path or state_dict) -> (Flax CLIP module, {'params': ...}).

    The architecture is inferred from the tensor shapes; every key must be used and every shape must
    match, or a `CheckpointError` lists what is wrong.
    """
    state_dict, hf_config, name = load_state_dict(source)
    heads: dict[str, int | None] = {"vision_heads": None, "transformer_heads": None}
    if is_hf_layout(state_dict):
        state_dict = hf_to_openai_state_dict(state_dict, name)
        heads["vision_heads"] = hf_config.get("vision_config", {}).get("num_attention_heads")
        heads["transformer_heads"] = hf_config.get("text_config", {}).get("num_attention_heads")
    config = infer_config(state_dict, **heads)
    params = openai_state_dict_to_params(state_dict, config, name)
    return CLIP(config), {"params": params}


def clip_to_torch(variables: Mapping[str, Any]) -> dict[str, Any]:
    """Flax CLIP variables (or bare params) -> {name: torch.Tensor} in OpenAI's layout (float32)."""
    import torch

    params = variables.get("params", variables)
    return {k: torch.from_numpy(v) for k, v in params_to_openai_state_dict(params).items()}


def config_of(variables: Mapping[str, Any]):
    """The `CLIPConfig` of Flax CLIP variables, from shapes."""
    return config_from_params(variables.get("params", variables))
