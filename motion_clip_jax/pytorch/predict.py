"""Predict the action in a video file with an exported PyTorch model (no JAX, no TensorFlow).

  python -m motion_clip_jax.pytorch.predict --model model.pt --video FILE \\
      [--labels hmdb51|ucf101|kinetics400|FILE] [--top 5] [--json] [--multiview]

The same flags, frame sampling (`inference/video.py`) and output as
`python -m motion_clip_jax.inference.predict`, for a file written by
`python -m motion_clip_jax.pytorch.export`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import numpy as np
import torch

from motion_clip_jax.inference import cli
from motion_clip_jax.pytorch import model as torch_model


def torch_logits(
    model: torch_model.VideoCLIP, views: np.ndarray, labels: Sequence[str]
) -> np.ndarray:
    """views (V, T, H, W, 3) float32 (inference.video's layout) -> logits (V, K) float32."""
    video = torch.from_numpy(np.ascontiguousarray(views)).permute(0, 1, 4, 2, 3)
    with torch.no_grad():
        tokens = model.class_tokens(labels)
        return model(video, tokens).numpy().astype(np.float32)


def _model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model", required=True, help="file written by motion_clip_jax.pytorch.export (.pt)"
    )


def _predict(args: argparse.Namespace) -> cli.Prediction:
    model, info = torch_model.load_exported(args.model)
    return cli.predict(
        args,
        class_names=info.get("class_names") or [],
        num_frames=info["num_frames"],
        crop_size=info["crop_size"],
        model=args.model,
        backend="torch",
        logits_fn=lambda views, labels: torch_logits(model, views, labels),
    )


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run_cli(
        argv, "python -m motion_clip_jax.pytorch.predict", _model_args, _predict, __doc__
    )


if __name__ == "__main__":
    sys.exit(main())
