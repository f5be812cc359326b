"""Hugging Face transformers `CLIPModel` state_dict -> OpenAI layout.

HF splits the fused qkv projection into q/k/v and stores projections as Linear weights; everything else
is a rename. The result goes through the same strict OpenAI -> Flax conversion as any other checkpoint.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np

from motion_clip_jax.convert.layout import CheckpointError

# Non-parameter buffers some transformers versions save.
HF_BUFFER_KEYS = ("text_model.embeddings.position_ids", "vision_model.embeddings.position_ids")

_RENAMES = {
    "text_model.embeddings.token_embedding.weight": "token_embedding.weight",
    "text_model.embeddings.position_embedding.weight": "positional_embedding",
    "text_model.final_layer_norm.weight": "ln_final.weight",
    "text_model.final_layer_norm.bias": "ln_final.bias",
    "vision_model.embeddings.class_embedding": "visual.class_embedding",
    "vision_model.embeddings.patch_embedding.weight": "visual.conv1.weight",
    "vision_model.embeddings.position_embedding.weight": "visual.positional_embedding",
    "vision_model.pre_layrnorm.weight": "visual.ln_pre.weight",  # sic: HF's spelling
    "vision_model.pre_layrnorm.bias": "visual.ln_pre.bias",
    "vision_model.post_layernorm.weight": "visual.ln_post.weight",
    "vision_model.post_layernorm.bias": "visual.ln_post.bias",
    "logit_scale": "logit_scale",
}
_TRANSPOSED = {
    "text_projection.weight": "text_projection",
    "visual_projection.weight": "visual.proj",
}
_LAYER = re.compile(r"^(text|vision)_model\.encoder\.layers\.(\d+)\.(.+)$")
_LAYER_RENAMES = {
    "self_attn.out_proj.weight": "attn.out_proj.weight",
    "self_attn.out_proj.bias": "attn.out_proj.bias",
    "layer_norm1.weight": "ln_1.weight",
    "layer_norm1.bias": "ln_1.bias",
    "layer_norm2.weight": "ln_2.weight",
    "layer_norm2.bias": "ln_2.bias",
    "mlp.fc1.weight": "mlp.c_fc.weight",
    "mlp.fc1.bias": "mlp.c_fc.bias",
    "mlp.fc2.weight": "mlp.c_proj.weight",
    "mlp.fc2.bias": "mlp.c_proj.bias",
}
_QKV = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj")


def is_hf_layout(state_dict: Mapping[str, object]) -> bool:
    return any(k.startswith(("text_model.", "vision_model.")) for k in state_dict)


def hf_to_openai_state_dict(
    state_dict: Mapping[str, np.ndarray], source: str = "checkpoint"
) -> dict[str, np.ndarray]:
    """Renames / fuses an HF CLIPModel state_dict into OpenAI's layout. Unknown keys are an error."""
    out: dict[str, np.ndarray] = {}
    qkv: dict[tuple[str, int, str], dict[str, np.ndarray]] = {}
    unexpected = []
    for key, value in state_dict.items():
        if key in HF_BUFFER_KEYS:
            continue
        if key in _RENAMES:
            out[_RENAMES[key]] = value
        elif key in _TRANSPOSED:
            out[_TRANSPOSED[key]] = np.transpose(value)
        elif m := _LAYER.match(key):
            tower, index, rest = m.group(1), int(m.group(2)), m.group(3)
            prefix = f"{'visual.' if tower == 'vision' else ''}transformer.resblocks.{index}."
            if rest in _LAYER_RENAMES:
                out[prefix + _LAYER_RENAMES[rest]] = value
            elif rest.rsplit(".", 1)[0] in _QKV:
                proj, kind = rest.rsplit(".", 1)
                qkv.setdefault((prefix, index, kind), {})[proj] = value
            else:
                unexpected.append(key)
        else:
            unexpected.append(key)
    for (prefix, _, kind), parts in qkv.items():
        missing = [p for p in _QKV if p not in parts]
        if missing:
            raise CheckpointError(f"{source}: {prefix}: missing {[f'{p}.{kind}' for p in missing]}")
        out[f"{prefix}attn.in_proj_{kind}"] = np.concatenate([parts[p] for p in _QKV], axis=0)
    if unexpected:
        raise CheckpointError(
            f"{source}: unexpected keys for a Hugging Face CLIPModel ({len(unexpected)}): "
            f"{sorted(unexpected)[:20]}"
        )
    return out
