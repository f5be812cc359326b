"""The video model's config as an `ml_collections.ConfigDict`, built from `core/model_spec.py`.

The fields, their defaults and meaning, the variants and the validation rules are defined once, in
`motion_clip_jax.core.model_spec` (framework-free, so the PyTorch side reads the same spec); this
module wraps them for the JAX side and maps the dtype names to JAX dtypes.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import ml_collections

from motion_clip_jax.core import model_spec
from motion_clip_jax.core.model_spec import clip_config_of, ctx_phrase_tokens  # noqa: F401

DTYPES = {name: jnp.dtype(name) for name in model_spec.DTYPE_NAMES}


def model_config(variant: str = "full", **overrides: Any) -> ml_collections.ConfigDict:
    """The model config of `variant` (see `model_spec.VARIANTS`), with field overrides, validated.

    Every field and its default is documented in `motion_clip_jax/core/model_spec.py`.
    """
    fields = model_spec.model_fields(variant, **overrides)
    fields["clip_overrides"] = ml_collections.ConfigDict(dict(fields["clip_overrides"]))
    return ml_collections.ConfigDict(fields)


def validate_model_config(config: ml_collections.ConfigDict) -> None:
    """Raises ValueError naming the first field that is out of range or inconsistent."""
    model_spec.validate(config)
