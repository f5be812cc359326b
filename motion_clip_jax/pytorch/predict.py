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
    labels = cli.resolve_labels(args.labels, info.get("class_names") or [])
    views, indices = cli.read_video(
        args.video, info["num_frames"], info["crop_size"], args.multiview, args.seed
    )
    probabilities = cli.mean_softmax(torch_logits(model, views, labels))
    return cli.Prediction(
        video=args.video,
        model=args.model,
        backend="torch",
        num_views=len(views),
        frame_indices=indices.tolist(),
        num_classes=len(labels),
        top=cli.top_classes(probabilities, labels, args.top),
    )


def main(argv: Sequence[str] | None = None) -> int:
    return cli.run_cli(
        argv, "python -m motion_clip_jax.pytorch.predict", _model_args, _predict, __doc__
    )


if __name__ == "__main__":
    sys.exit(main())
