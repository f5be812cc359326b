"""Reading PyTorch-side CLIP checkpoints into a flat {name: float32 numpy} dict.

Understands OpenAI's released TorchScript archives, plain / wrapped state_dicts (.pt/.pth/.bin, fp16 or
fp32, `{'state_dict': ...}`, `module.` prefixes), safetensors files, and Hugging Face model directories
(config.json + model.safetensors or pytorch_model.bin). torch is imported lazily: the rest of the
package works without it.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Mapping
from typing import Any

import numpy as np

from motion_clip_jax.convert.layout import CheckpointError

_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model")


def _torch():
    try:
        import torch
    except ImportError as e:  # pragma: no cover - depends on the install
        raise ImportError(
            "Reading PyTorch checkpoints needs torch: pip install -r requirements-torch.txt"
        ) from e
    return torch


def _to_numpy(value: Any, key: str, source: str) -> np.ndarray:
    torch = _torch()
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", torch.float32).numpy()
    if isinstance(value, np.ndarray | np.generic | int | float):
        return np.asarray(value, np.float32)
    raise CheckpointError(f"{source}: value of {key!r} is a {type(value).__name__}, not a tensor")


def _is_torchscript_archive(path: str) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        # TorchScript archives hold compiled code; plain torch.save zips only data.pkl + data/.
        return any(n.split("/", 2)[1:2] == ["code"] for n in zf.namelist() if "/" in n)


def _unwrap(obj: Any, source: str) -> Mapping[str, Any]:
    for _ in range(3):
        if isinstance(obj, Mapping):
            inner = next((obj[k] for k in _WRAPPER_KEYS if isinstance(obj.get(k), Mapping)), None)
            if inner is None:
                break
            obj = inner
        elif hasattr(obj, "state_dict"):
            obj = obj.state_dict()
        else:
            break
    if not isinstance(obj, Mapping) or not obj:
        raise CheckpointError(f"{source}: holds a {type(obj).__name__}, not a state_dict")
    keys = list(obj)
    if not all(isinstance(k, str) for k in keys):
        raise CheckpointError(f"{source}: state_dict keys are not all strings")
    for prefix in ("module.", "model."):
        if all(k.startswith(prefix) for k in keys):
            obj = {k[len(prefix) :]: v for k, v in obj.items()}
            break
    return obj


def _load_file(path: str) -> Any:
    torch = _torch()
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        try:
            return load_file(path, device="cpu")
        except Exception as e:  # safetensors raises its own SafetensorError
            raise CheckpointError(f"{path}: not a readable safetensors file ({e})") from e
    if _is_torchscript_archive(path):
        # OpenAI's released .pt files: torch.load(weights_only=True) refuses them.
        return torch.jit.load(path, map_location="cpu").state_dict()
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({e})") from e


def _hf_directory_files(path: str) -> tuple[list[str], dict[str, Any]]:
    config = {}
    if os.path.exists(os.path.join(path, "config.json")):
        with open(os.path.join(path, "config.json")) as f:
            config = json.load(f)
    for name in ("model.safetensors", "pytorch_model.bin"):
        if os.path.exists(os.path.join(path, name)):
            return [os.path.join(path, name)], config
    for name in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        index_path = os.path.join(path, name)
        if os.path.exists(index_path):
            with open(index_path) as f:
                shards = sorted(set(json.load(f)["weight_map"].values()))
            return [os.path.join(path, s) for s in shards], config
    raise CheckpointError(
        f"{path}: directory holds no model.safetensors / pytorch_model.bin (or their index)"
    )


def load_state_dict(
    source: str | os.PathLike | Mapping[str, Any],
) -> tuple[dict[str, np.ndarray], dict[str, Any], str]:
    """Loads a checkpoint. Returns (flat float32 numpy state_dict, HF config or {}, source name)."""
    hf_config: dict[str, Any] = {}
    if isinstance(source, Mapping):
        name = "state_dict"
        raw = _unwrap(source, name)
    else:
        name = os.fspath(source)
        if not os.path.exists(name):
            raise FileNotFoundError(f"No such checkpoint: {name}")
        if os.path.isdir(name):
            files, hf_config = _hf_directory_files(name)
            raw = {}
            for f in files:
                raw.update(_unwrap(_load_file(f), f))
        else:
            raw = _unwrap(_load_file(name), name)
    return {k: _to_numpy(v, k, name) for k, v in raw.items()}, hf_config, name
