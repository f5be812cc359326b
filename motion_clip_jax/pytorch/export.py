"""Export a trained run to one PyTorch file that `pytorch.model.load_exported` rebuilds.

  python -m motion_clip_jax.pytorch.export --workdir DIR --output model.pt [--step N]

The file is `torch.save` of a dict (docs/export_predict.md):
  format        "motion_clip_jax.torch.v1"
  clip          the frozen CLIP, OpenAI's state_dict layout (what clip.model.build_model accepts)
  head          the trained modules (MMB, prompt learner, MCB), pytorch.model's names, float32
  model_config  the run's model config (dict); clip_config: the CLIP architecture, heads resolved
  class_names, crop_size, num_frames, normalization {mean, std}, video_layout, source {...}
It holds tensors and plain Python values only, so `torch.load(..., weights_only=True)` reads it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import ml_collections
import numpy as np
import torch

from motion_clip_jax.convert import clip_to_torch
from motion_clip_jax.convert.layout import flax_leaf_to_torch
from motion_clip_jax.core.video_spec import CLIP_MEAN, CLIP_STD
from motion_clip_jax.inference.restore import load_trained_run
from motion_clip_jax.models import model_config as config_lib
from motion_clip_jax.pytorch import model as torch_model


def clip_config_dict(model_config: ml_collections.ConfigDict) -> dict[str, Any]:
    """The frozen CLIP's architecture as a dict, head counts resolved to ints."""
    cfg = config_lib.clip_config_of(model_config)
    return {
        **cfg.to_dict(),
        "vision_heads": cfg.num_vision_heads,
        "transformer_heads": cfg.num_text_heads,
    }


def head_state_dict(trainable: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Trainable Flax params {'mmb', 'prompt', 'mcb'} -> pytorch.model names, float32 tensors."""
    out = {}
    for path, leaf in jax.tree_util.tree_leaves_with_path(trainable):
        names = tuple(str(k.key) for k in path)
        name, value = flax_leaf_to_torch(names, np.asarray(leaf, np.float32))
        out[name] = torch.from_numpy(np.array(value, np.float32, order="C"))
    return out


def export_payload(
    model_config: ml_collections.ConfigDict,
    trainable: Mapping[str, Any],
    frozen: Mapping[str, Any],
    class_names: Sequence[str],
    crop_size: int,
    source: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The export dict (module docstring). Checked against `torch_model` before it is returned:
    every weight must have its slot and shape there."""
    config_lib.validate_model_config(model_config)
    payload = {
        "format": torch_model.FORMAT,
        "clip": clip_to_torch(frozen["clip"]),
        "head": head_state_dict(trainable),
        "model_config": model_config.to_dict(),
        "clip_config": clip_config_dict(model_config),
        "class_names": list(class_names),
        "crop_size": int(crop_size),
        "num_frames": int(model_config.num_frames),
        "normalization": {"mean": list(CLIP_MEAN), "std": list(CLIP_STD)},
        "video_layout": "(B, T, 3, H, W) float32, CLIP-normalised",
        "source": dict(source or {}),
    }
    model = torch_model.build_model(payload)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    given = {f"clip.{k}": tuple(v.shape) for k, v in payload["clip"].items()}
    given.update({k: tuple(v.shape) for k, v in payload["head"].items()})
    if given != expected:
        diff = sorted(set(given.items()) ^ set(expected.items()))[:6]
        raise ValueError(f"export does not fit pytorch.model.VideoCLIP: differing entries {diff}")
    return payload


def save_export(path: str | os.PathLike, payload: Mapping[str, Any]) -> None:
    """torch.save, atomically (temporary file, then rename)."""
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp"
    torch.save(dict(payload), tmp)
    os.replace(tmp, path)


def export_workdir(
    workdir: str | os.PathLike, output: str | os.PathLike, step: int | None = None
) -> dict[str, Any]:
    """Exports the run in `workdir` (latest checkpoint, or `step`) to `output`; returns the dict."""
    run = load_trained_run(workdir, step)
    payload = export_payload(
        run.model_config,
        run.trainable,
        run.frozen,
        run.info.class_names,
        run.info.crop_size,
        source={"workdir": run.info.workdir, "step": run.info.step, "clip": run.clip_source},
    )
    save_export(output, payload)
    return payload


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m motion_clip_jax.pytorch.export",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--workdir", required=True, help="training workdir (run_info.json)")
    parser.add_argument("--output", required=True, help="the .pt file to write")
    parser.add_argument("--step", type=int, default=None, help="checkpoint step (latest)")
    args = parser.parse_args(argv)
    start = time.time()
    try:
        payload = export_workdir(args.workdir, args.output, args.step)
    except (ValueError, OSError) as e:  # PredictError, CheckpointError, ...: bad inputs
        print(f"error: {e}", file=sys.stderr)
        return 1
    head = sum(v.numel() for v in payload["head"].values())
    clip = sum(v.numel() for v in payload["clip"].values())
    print(
        f"wrote {args.output}: {payload['model_config']['variant']} model, step "
        f"{payload['source']['step']}, {head:,} trained + {clip:,} CLIP parameters, "
        f"{len(payload['class_names'])} classes ({time.time() - start:.1f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
