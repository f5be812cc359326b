"""Predict the action in a video file with a trained run (JAX).

  python -m motion_clip_jax.predict --workdir DIR --video FILE \\
      [--labels hmdb51|ucf101|kinetics400|FILE] [--top 5] [--json] [--multiview] [--step N]

Prints the top classes with their probabilities: softmax over the K classes, and for
`--multiview` the mean of the 12 views' softmax. `--labels` defaults to the run's own class list;
any list works (zero-shot use). Frames are read by `video_io` (PyAV), exactly as
`python -m motion_clip_jax.predict_torch` reads them for an exported model, so the two can be
compared on the same video.

This module also holds the command-line half both predict commands share (flags, label lists,
scores, output). JAX is imported only inside the functions that run the JAX model, so that
`predict_torch` can reuse the rest without importing JAX.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from motion_clip_jax import video_io
from motion_clip_jax.data import classnames

DATASET_LABELS = ("hmdb51", "ucf101", "kinetics400")


class PredictError(ValueError):
    """A user-facing problem with the inputs of a predict / export command (names what is wrong)."""


# ----------------------------------------------------------------------------- shared CLI half


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
    frames, indices, _ = video_io.read_sampled_frames(path, num_frames, multiview, seed)
    return video_io.frames_to_views(frames, crop_size, multiview), indices


def run_cli(
    argv: Sequence[str] | None,
    prog: str,
    add_model_args: Callable[[argparse.ArgumentParser], None],
    predict_fn: Callable[[argparse.Namespace], Prediction],
    description: str,
    errors: tuple[type[BaseException], ...] = (),
) -> int:
    """Parses flags, runs `predict_fn`, prints the prediction. Known errors: message, exit 1."""
    parser = argparse.ArgumentParser(
        prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_model_args(parser)
    add_common_args(parser)
    args = parser.parse_args(argv)
    try:
        prediction = predict_fn(args)
    except (PredictError, video_io.VideoError, FileNotFoundError, ValueError, *errors) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(dataclasses.asdict(prediction), indent=1))
    else:
        print(prediction.to_text())
    return 0


# ----------------------------------------------------------------------------- the JAX side


@dataclasses.dataclass
class TrainedRun:
    """A trained workdir, ready to apply: model, params and what the run recorded."""

    model: Any  # models.video_clip.VideoCLIP
    model_config: Any  # ml_collections.ConfigDict
    trainable: dict
    frozen: dict
    class_names: list[str]
    crop_size: int
    step: int
    workdir: str
    clip_source: str  # the frozen CLIP's .msgpack, or a note that it was re-drawn from the seed


def checkpoint_steps(workdir: str) -> list[int]:
    """Steps of the complete checkpoints in `workdir`/checkpoints (orbax writes a step's
    directory under a temporary name and renames it when complete), ascending."""
    directory = os.path.join(workdir, "checkpoints")
    if not os.path.isdir(directory):
        return []
    return sorted(
        int(name)
        for name in os.listdir(directory)
        if name.isdigit() and os.path.isdir(os.path.join(directory, name, "state"))
    )


def _restore_trainable(path: str) -> dict:
    """The 'trainable' subtree of a saved TrainState, on this process's first device, whatever
    mesh or process count wrote it."""
    import jax
    import orbax.checkpoint as ocp
    from absl import logging

    checkpointer = ocp.StandardCheckpointer()
    # orbax warns that the step's own metadata file is not inside the item directory: it is one
    # level up (CheckpointManager layout), and nothing here needs it.
    verbosity = logging.get_verbosity()
    logging.set_verbosity(logging.ERROR)
    try:
        metadata = checkpointer.metadata(path)
    finally:
        logging.set_verbosity(verbosity)
    tree = getattr(metadata, "item_metadata", metadata)
    device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    target = jax.tree_util.tree_map(
        lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device), dict(tree)
    )
    state = checkpointer.restore(path, target)
    if "trainable" not in state:
        raise PredictError(f"{path}: no 'trainable' params in the saved state ({sorted(state)})")
    return jax.tree_util.tree_map(np.asarray, state["trainable"])


def _check_same_tree(restored: dict, expected: dict, what: str) -> None:
    import jax

    shapes = lambda tree: {
        jax.tree_util.keystr(p): tuple(np.shape(x))
        for p, x in jax.tree_util.tree_leaves_with_path(tree)
    }
    got, want = shapes(restored), shapes(expected)
    if got != want:
        diff = sorted(set(got.items()) ^ set(want.items()))[:6]
        raise PredictError(f"{what} does not fit the run's model config: differing leaves {diff}")


def load_trained_run(workdir: str | os.PathLike, step: int | None = None) -> TrainedRun:
    """Rebuilds a trained model from a trainer workdir (run_info.json + checkpoints/<step>).

    The frozen CLIP is read from the run's `clip_checkpoint`; a run without one (random frozen
    CLIP, `allow_random_clip`) gets the same random CLIP back from the run's seed. `step`:
    default the latest complete checkpoint.
    """
    import ml_collections

    from motion_clip_jax.convert.flax_file import load_clip
    from motion_clip_jax.models import config as config_lib
    from motion_clip_jax.models.video_clip import init_video_clip

    workdir = os.path.abspath(os.fspath(workdir))
    if not os.path.isdir(workdir):
        raise PredictError(f"workdir {workdir} does not exist")
    info_path = os.path.join(workdir, "run_info.json")
    if not os.path.isfile(info_path):
        raise PredictError(
            f"{info_path} not found: not a training workdir (the trainer writes it at start)"
        )
    with open(info_path) as f:
        run_info = json.load(f)
    missing = [k for k in ("model_config", "clip_checkpoint", "class_names", "crop_size", "seed")
               if k not in run_info]  # fmt: skip
    if missing:
        raise PredictError(f"{info_path} lacks the fields {missing}")
    steps = checkpoint_steps(workdir)
    if not steps:
        raise PredictError(f"workdir {workdir} has no checkpoint (no {workdir}/checkpoints/<step>)")
    if step is None:
        step = steps[-1]
    elif step not in steps:
        raise PredictError(f"workdir {workdir} has no checkpoint of step {step}; it has {steps}")

    model_config = ml_collections.ConfigDict(run_info["model_config"])
    config_lib.validate_model_config(model_config)
    clip_path = run_info["clip_checkpoint"]
    if clip_path:
        clip_params = load_clip(clip_path)[1]["params"]
        clip_source = clip_path
    else:
        clip_params = None
        clip_source = f"random frozen CLIP re-drawn from the run's seed {run_info['seed']}"
    # Same call as the trainer's, so a random frozen CLIP comes back bit for bit.
    model, init_trainable, frozen = init_video_clip(
        model_config, rng=int(run_info["seed"]), clip_params=clip_params
    )
    state_path = os.path.join(workdir, "checkpoints", str(step), "state")
    trainable = _restore_trainable(state_path)
    _check_same_tree(trainable, init_trainable, f"checkpoint {state_path}")
    return TrainedRun(
        model=model,
        model_config=model_config,
        trainable=trainable,
        frozen=frozen,
        class_names=list(run_info["class_names"]),
        crop_size=int(run_info["crop_size"]),
        step=step,
        workdir=workdir,
        clip_source=clip_source,
    )


def jax_logits(run: TrainedRun, views: np.ndarray, labels: Sequence[str]) -> np.ndarray:
    """views (V, T, H, W, 3) float32 -> logits (V, K) float32 of the JAX model."""
    import jax

    from motion_clip_jax.models.video_clip import class_tokens_for

    ids, eos = class_tokens_for(run.model_config, labels)
    params = {**run.frozen, **run.trainable}
    apply = jax.jit(lambda p, v, i, e: run.model.apply({"params": p}, v, i, e))
    return np.asarray(apply(params, views, ids, eos), np.float32)


def _model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workdir", required=True, help="training workdir (run_info.json)")
    parser.add_argument("--step", type=int, default=None, help="checkpoint step (latest)")


def _predict(args: argparse.Namespace) -> Prediction:
    if not os.path.isfile(args.video):  # before the (slow) model load
        raise video_io.VideoError(f"Video file not found: {args.video}")
    run = load_trained_run(args.workdir, args.step)
    labels = resolve_labels(args.labels, run.class_names)
    views, indices = read_video(
        args.video, run.model_config.num_frames, run.crop_size, args.multiview, args.seed
    )
    probabilities = mean_softmax(jax_logits(run, views, labels))
    return Prediction(
        video=args.video,
        model=f"{run.workdir} step {run.step}",
        backend="jax",
        num_views=len(views),
        frame_indices=indices.tolist(),
        num_classes=len(labels),
        top=top_classes(probabilities, labels, args.top),
    )


def main(argv: Sequence[str] | None = None) -> int:
    from motion_clip_jax.convert.layout import CheckpointError

    return run_cli(argv, "python -m motion_clip_jax.predict", _model_args, _predict, __doc__,
                   (CheckpointError,))  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
