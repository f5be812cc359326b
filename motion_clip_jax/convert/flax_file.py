"""The converted-CLIP file the trainer points at: one msgpack file with the config and the params."""

from __future__ import annotations

import os
from typing import Any

import flax.serialization
import jax
import numpy as np

from motion_clip_jax.convert.layout import CheckpointError
from motion_clip_jax.models.clip import CLIP, CLIPConfig

FORMAT = "motion_clip_jax.clip.v1"


def save_clip(path: str | os.PathLike, config: CLIPConfig, params: Any) -> None:
    """Writes {'format', 'config', 'params'} as msgpack, atomically (tmp file + rename)."""
    payload = {
        "format": FORMAT,
        "config": {k: -1 if v is None else v for k, v in config.to_dict().items()},
        "params": jax.tree_util.tree_map(lambda x: np.asarray(x, np.float32), params),
    }
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(flax.serialization.msgpack_serialize(payload))
    os.replace(tmp, path)


def load_clip(path: str | os.PathLike) -> tuple[CLIP, dict[str, Any]]:
    """Reads a file written by `save_clip`. Returns (module, {'params': ...})."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"No CLIP checkpoint at {path}. Convert OpenAI weights first: python -m "
            f"motion_clip_jax.convert to-flax --input ViT-B-16.pt --output {path}"
        )
    with open(path, "rb") as f:
        data = f.read()
    try:
        payload = flax.serialization.msgpack_restore(data)
    except Exception as e:
        raise CheckpointError(f"{path}: not a msgpack file written by save_clip ({e})") from e
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(
            f"{path}: not a {FORMAT} file (format={payload.get('format')!r})"
            if isinstance(payload, dict)
            else f"{path}: not a {FORMAT} file"
        )
    config = CLIPConfig.from_dict({k: None if v == -1 else v for k, v in payload["config"].items()})
    return CLIP(config), {"params": payload["params"]}
