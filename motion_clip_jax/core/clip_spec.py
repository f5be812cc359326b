"""CLIP architectures as plain data: `CLIPConfig` (OpenAI's `build_model` vocabulary) and presets.

Framework-free, so the Flax model, the converters and the pure-PyTorch model read one definition.
"""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True)
class CLIPConfig:
    """Architecture of a ViT CLIP, in OpenAI's `build_model` vocabulary."""

    embed_dim: int = 512
    image_resolution: int = 224
    vision_layers: int = 12
    vision_width: int = 768
    vision_patch_size: int = 16
    context_length: int = 77
    vocab_size: int = 49408
    transformer_width: int = 512
    transformer_layers: int = 12
    # OpenAI derives heads as width // 64; explicit values allow other checkpoints (e.g. HF configs).
    vision_heads: int | None = None
    transformer_heads: int | None = None

    def __post_init__(self):
        if self.image_resolution % self.vision_patch_size:
            raise ValueError(
                f"image_resolution={self.image_resolution} is not a multiple of "
                f"vision_patch_size={self.vision_patch_size}"
            )
        for name, width, heads in (
            ("vision", self.vision_width, self.num_vision_heads),
            ("transformer", self.transformer_width, self.num_text_heads),
        ):
            if heads < 1 or width % heads:
                raise ValueError(f"{name}_width={width} is not divisible into {heads} heads")

    @property
    def num_vision_heads(self) -> int:
        return self.vision_heads or max(1, self.vision_width // 64)

    @property
    def num_text_heads(self) -> int:
        return self.transformer_heads or max(1, self.transformer_width // 64)

    @property
    def grid_size(self) -> int:
        return self.image_resolution // self.vision_patch_size

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CLIPConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"Unknown CLIPConfig fields: {unknown}")
        return cls(**d)


# OpenAI's ViT-L/14; its 336 px release is the same tower at another resolution.
_VIT_L14 = CLIPConfig(
    embed_dim=768,
    vision_layers=24,
    vision_width=1024,
    vision_patch_size=14,
    transformer_width=768,
)

# Presets by name. OpenAI's released ViTs plus the tiny tower the synthetic demo pretrains.
PRESETS: dict[str, CLIPConfig] = {
    "vit_b16": CLIPConfig(),
    "vit_b32": CLIPConfig(vision_patch_size=32),
    "vit_l14": _VIT_L14,
    "vit_l14_336": dataclasses.replace(_VIT_L14, image_resolution=336),
    # 32 px frames, 4x4 grid of 8 px patches, 2 layers per tower: the synthetic world's CLIP.
    "tiny": CLIPConfig(
        embed_dim=64,
        image_resolution=32,
        vision_layers=2,
        vision_width=64,
        vision_patch_size=8,
        transformer_width=64,
        transformer_layers=2,
    ),
}


def clip_config(name: str, **overrides: Any) -> CLIPConfig:
    """Returns the preset `name` (see `PRESETS`), with optional field overrides."""
    if name not in PRESETS:
        raise KeyError(f"Unknown CLIP preset {name!r}; known: {sorted(PRESETS)}")
    return dataclasses.replace(PRESETS[name], **overrides)
