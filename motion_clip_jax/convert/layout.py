"""Name and layout mapping between OpenAI's CLIP state_dict and our Flax params.

Both directions are driven by one rule set (`flax_path_to_torch_key` + the per-leaf transform), so that
a round trip is exact by construction and the strict key check knows every expected name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from motion_clip_jax.models.clip import CLIP, CLIPConfig


class CheckpointError(ValueError):
    """A checkpoint that is not a (supported) CLIP checkpoint, or does not match the architecture."""


# Keys OpenAI's TorchScript archives carry besides weights; `build_model` drops them too.
OPENAI_EXTRA_KEYS = ("input_resolution", "context_length", "vocab_size")

_REQUIRED_KEYS = (
    "visual.conv1.weight",
    "visual.positional_embedding",
    "positional_embedding",
    "token_embedding.weight",
    "ln_final.weight",
    "text_projection",
)


def _count_blocks(keys: Any, prefix: str) -> int:
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
    found = {int(m.group(1)) for k in keys if (m := pattern.match(k))}
    return max(found) + 1 if found else 0


def infer_config(
    state_dict: Mapping[str, Any],
    vision_heads: int | None = None,
    transformer_heads: int | None = None,
) -> CLIPConfig:
    """Infers the architecture from tensor shapes, as OpenAI's `build_model` does."""
    keys = set(state_dict)
    if "visual.layer1.0.conv1.weight" in keys or "visual.attnpool.positional_embedding" in keys:
        raise CheckpointError(
            "This is a ResNet CLIP (RN50/RN101/...): only ViT CLIPs are supported."
        )
    missing = [k for k in _REQUIRED_KEYS if k not in keys]
    if missing:
        sample = sorted(keys)[:8]
        raise CheckpointError(
            f"Not a CLIP ViT checkpoint: missing {missing} (first keys found: {sample})"
        )
    conv = state_dict["visual.conv1.weight"].shape  # (W, 3, p, p)
    if len(conv) != 4 or conv[1] != 3 or conv[2] != conv[3]:
        raise CheckpointError(f"visual.conv1.weight has shape {tuple(conv)}, expected (W, 3, p, p)")
    num_pos = state_dict["visual.positional_embedding"].shape[0]
    grid = round((num_pos - 1) ** 0.5)
    if grid * grid + 1 != num_pos:
        raise CheckpointError(
            f"visual.positional_embedding has {num_pos} rows, not (grid**2 + 1) for a square grid"
        )
    return CLIPConfig(
        embed_dim=int(state_dict["text_projection"].shape[1]),
        image_resolution=int(conv[2] * grid),
        vision_layers=_count_blocks(keys, "visual.transformer.resblocks."),
        vision_width=int(conv[0]),
        vision_patch_size=int(conv[2]),
        context_length=int(state_dict["positional_embedding"].shape[0]),
        vocab_size=int(state_dict["token_embedding.weight"].shape[0]),
        transformer_width=int(state_dict["ln_final.weight"].shape[0]),
        transformer_layers=_count_blocks(keys, "transformer.resblocks."),
        vision_heads=vision_heads,
        transformer_heads=transformer_heads,
    )


def flax_path_to_torch_key(path: tuple[str, ...]) -> str:
    """('visual', 'transformer', 'resblocks_3', 'attn', 'in_proj', 'kernel')
    -> 'visual.transformer.resblocks.3.attn.in_proj_weight'."""
    *parents, leaf = path
    parents = [re.sub(r"^resblocks_(\d+)$", r"resblocks.\1", p) for p in parents]
    if parents and parents[-1] == "in_proj":  # torch.nn.MultiheadAttention's fused parameters
        return ".".join(parents[:-1] + [f"in_proj_{'weight' if leaf == 'kernel' else 'bias'}"])
    if leaf in ("kernel", "scale", "embedding"):
        leaf = "weight"
    if leaf == "conv1":
        return ".".join(parents + ["conv1", "weight"])
    return ".".join(parents + [leaf])


def _leaf_kind(path: tuple[str, ...]) -> str:
    if path[-1] == "conv1":
        return "conv"
    if path[-1] == "kernel":
        return "linear"
    return "same"


def torch_to_flax_array(kind: str, x: np.ndarray) -> np.ndarray:
    if kind == "conv":  # torch (out, in, kh, kw) -> ours (kh, kw, in, out)
        return np.transpose(x, (2, 3, 1, 0))
    if kind == "linear":  # torch (out, in) -> flax (in, out)
        return np.transpose(x)
    return x


def flax_to_torch_array(kind: str, x: np.ndarray) -> np.ndarray:
    if kind == "conv":
        return np.transpose(x, (3, 2, 0, 1))
    if kind == "linear":
        return np.transpose(x)
    return x


def flax_leaf_to_torch(path: tuple[str, ...], value: np.ndarray) -> tuple[str, np.ndarray]:
    """One Flax leaf -> (PyTorch key, PyTorch-layout array), for CLIP and the trained modules.

    Names: `flax_path_to_torch_key`. Arrays: conv (kh, kw, in, out) -> (out, in, kh, kw); Dense
    kernels (in, out) -> Linear weights (out, in), where Flax attention kernels, (D, heads,
    head_dim) for query/key/value and (heads, head_dim, D) for out, are flattened over heads
    first and their per-head biases (heads, head_dim) flattened; everything else as it is.
    """
    kind = _leaf_kind(path)
    if kind == "linear" and value.ndim == 3:
        flat = (-1, value.shape[-1]) if path[-2] == "out" else (value.shape[0], -1)
        value = value.reshape(flat)
    elif path[-1] == "bias" and value.ndim == 2:
        value = value.reshape(-1)
    return flax_path_to_torch_key(path), flax_to_torch_array(kind, value)


def expected_param_shapes(config: CLIPConfig) -> dict[tuple[str, ...], tuple[int, ...]]:
    """Every Flax param path of `config` and its shape, without allocating anything."""
    res = config.image_resolution
    shapes = jax.eval_shape(
        CLIP(config).init,
        jax.random.PRNGKey(0),
        jnp.zeros((1, res, res, 3)),
        jnp.zeros((1, config.context_length), jnp.int32),
    )["params"]
    flat = jax.tree_util.tree_flatten_with_path(shapes)[0]
    return {tuple(k.key for k in path): tuple(leaf.shape) for path, leaf in flat}


def _unflatten(flat: dict[tuple[str, ...], Any]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for path, value in flat.items():
        node = tree
        for name in path[:-1]:
            node = node.setdefault(name, {})
        node[path[-1]] = value
    return tree


def openai_state_dict_to_params(
    state_dict: Mapping[str, np.ndarray], config: CLIPConfig, source: str = "checkpoint"
) -> dict[str, Any]:
    """Strictly converts an OpenAI-layout state_dict (numpy float arrays) to Flax params (float32)."""
    expected = expected_param_shapes(config)
    by_key = {flax_path_to_torch_key(p): p for p in expected}
    present = set(state_dict) - set(OPENAI_EXTRA_KEYS)
    missing = sorted(set(by_key) - present)
    unexpected = sorted(present - set(by_key))
    if missing or unexpected:
        raise CheckpointError(
            f"{source}: state_dict does not match CLIP {config}.\n"
            f"  missing keys ({len(missing)}): {missing[:20]}{' ...' if len(missing) > 20 else ''}\n"
            f"  unexpected keys ({len(unexpected)}): {unexpected[:20]}"
            f"{' ...' if len(unexpected) > 20 else ''}"
        )
    flat = {}
    for key, path in by_key.items():
        value = torch_to_flax_array(_leaf_kind(path), np.asarray(state_dict[key], np.float32))
        if value.shape != expected[path]:
            want = flax_to_torch_array(_leaf_kind(path), np.zeros(expected[path])).shape
            raise CheckpointError(
                f"{source}: {key} has shape {tuple(np.shape(state_dict[key]))}, expected "
                f"{tuple(want)} for CLIP {config}"
            )
        flat[path] = value
    return _unflatten(flat)


def params_to_openai_state_dict(params: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Flax params -> OpenAI-layout numpy state_dict (same dtype as the params)."""
    flat = jax.tree_util.tree_flatten_with_path(params)[0]
    out = {}
    for path, leaf in flat:
        key, value = flax_leaf_to_torch(tuple(k.key for k in path), np.asarray(leaf))
        # np.array, not ascontiguousarray: the latter turns the 0-d logit_scale into shape (1,).
        out[key] = np.array(value, order="C")
    return out


def config_from_params(
    params: Mapping[str, Any], vision_heads: int | None = None, transformer_heads: int | None = None
) -> CLIPConfig:
    """Architecture of Flax CLIP params, from shapes alone (heads default to width // 64)."""
    shapes = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        names = tuple(k.key for k in path)
        shape = np.shape(leaf)
        kind = _leaf_kind(names)
        if kind == "conv":
            shape = tuple(shape[i] for i in (3, 2, 0, 1))
        elif kind == "linear":
            shape = tuple(reversed(shape))
        shapes[flax_path_to_torch_key(names)] = np.broadcast_to(np.float32(0), shape)
    return infer_config(shapes, vision_heads, transformer_heads)
