"""The command-line half that both predict commands share: flags, label lists, scores, output.

No JAX or torch here: `python -m motion_clip_jax.pytorch.predict` runs with PyTorch alone.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Callable, Sequence

import numpy as np

from motion_clip_jax.core import classnames
from motion_clip_jax.inference import video as video_lib
from motion_clip_jax.inference.run import PredictError

DATASET_LABELS = ("hmdb51", "ucf101", "kinetics400")


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """--video, --labels, --top, --json, --multiview, --seed."""
    parser.add_argument("--video", required=True, help="video file (anything FFmpeg decodes)")
    parser.add_argument(
        "--labels",
        default=None,
        help="class list: hmdb51 | ucf101 | kinetics400 | a text file with one name per line "
        "(default: the class names the model was trained on)",
    )
    parser.add_argument("--top", type=int, default=5, help="how many classes to print (5)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead")
    parser.add_argument(
        "--multiview", action="store_true", help="4 samplings x 3 crops, mean of the softmax"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the multi-view samplings")


def resolve_labels(spec: str | None, default: Sequence[str]) -> list[str]:
    """None -> `default`; a dataset name -> its vendored class names; else a label file."""
    if spec is None:
        if not default:
            raise PredictError("the model carries no class names: pass --labels")
        return list(default)
    if spec.lower() in DATASET_LABELS:
        return classnames.load_classnames(spec.lower())
    if not os.path.isfile(spec):
        raise PredictError(
            f"--labels {spec!r} is neither one of {', '.join(DATASET_LABELS)} nor a file"
        )
    return classnames.read_label_file(spec)


def mean_softmax(logits: np.ndarray) -> np.ndarray:
    """(V, K) logits -> (K,) float64 class probabilities: the mean over views of the softmax."""
    logits = np.asarray(logits, np.float64)
    exp = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return (exp / exp.sum(axis=-1, keepdims=True)).mean(axis=0)


def top_classes(probabilities: np.ndarray, labels: Sequence[str], top: int) -> list[dict]:
    """The `top` most probable classes: [{'rank', 'index', 'label', 'probability'}, ...]."""
    if top < 1:
        raise PredictError(f"--top must be >= 1, got {top}")
    order = np.argsort(-probabilities, kind="stable")[: min(top, len(labels))]
    return [
        {"rank": r + 1, "index": int(k), "label": labels[k], "probability": float(probabilities[k])}
        for r, k in enumerate(order)
    ]


@dataclasses.dataclass
class Prediction:
    """What a predict command prints."""

    video: str
    model: str
    backend: str
    num_views: int
    frame_indices: list[list[int]]
    num_classes: int
    top: list[dict]

    def to_text(self) -> str:
        lines = [
            f"{self.video}: {self.num_views} view(s), frames {self.frame_indices[0]}"
            f"{' ...' if len(self.frame_indices) > 1 else ''}, {self.num_classes} classes "
            f"({self.backend}: {self.model})"
        ]
        width = max(len(t["label"]) for t in self.top)
        for t in self.top:
            lines.append(f"{t['rank']:3d}. {t['label']:<{width}}  {t['probability']:.6f}")
        return "\n".join(lines)


def read_video(path: str, num_frames: int, crop_size: int, multiview: bool, seed: int):
    """-> (views (V, T, crop, crop, 3) float32 normalised, frame indices (S, T))."""
    frames, indices, _ = video_lib.read_sampled_frames(path, num_frames, multiview, seed)
    return video_lib.frames_to_views(frames, crop_size, multiview), indices


def predict(
    args: argparse.Namespace,
    *,
    class_names: Sequence[str],
    num_frames: int,
    crop_size: int,
    model: str,
    backend: str,
    logits_fn: Callable[[np.ndarray, list[str]], np.ndarray],
) -> Prediction:
    """The steps both commands share: labels, the video's views (checked and decoded before
    `logits_fn` loads anything slow), logits_fn(views (V, T, H, W, 3), labels) -> (V, K), the
    mean softmax and its top classes."""
    labels = resolve_labels(args.labels, class_names)
    views, indices = read_video(args.video, num_frames, crop_size, args.multiview, args.seed)
    probabilities = mean_softmax(logits_fn(views, labels))
    return Prediction(
        video=args.video,
        model=model,
        backend=backend,
        num_views=len(views),
        frame_indices=indices.tolist(),
        num_classes=len(labels),
        top=top_classes(probabilities, labels, args.top),
    )


def run_cli(
    argv: Sequence[str] | None,
    prog: str,
    add_model_args: Callable[[argparse.ArgumentParser], None],
    predict_fn: Callable[[argparse.Namespace], Prediction],
    description: str,
) -> int:
    """Parses flags, runs `predict_fn`, prints the prediction.

    Bad inputs (ValueError and its kinds: PredictError, VideoError, CheckpointError, ExportError,
    and OSError) print `error: <message>` on stderr and return 1; anything else is a bug and
    raises."""
    parser = argparse.ArgumentParser(
        prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_model_args(parser)
    add_common_args(parser)
    args = parser.parse_args(argv)
    try:
        if args.top < 1:
            raise PredictError(f"--top must be >= 1, got {args.top}")
        prediction = predict_fn(args)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(dataclasses.asdict(prediction), indent=1))
    else:
        print(prediction.to_text())
    return 0
