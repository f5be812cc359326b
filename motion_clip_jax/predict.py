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


# ----------------------------------------------------------------------------- the JAX side


@dataclasses.dataclass
class RunInfo:
    """What a trainer workdir records about its run (run_info.json) and the checkpoint to use."""

    workdir: str
    step: int
    model_config: dict  # the resolved model config (clip_overrides = the CLIP architecture)
    clip_checkpoint: str  # the frozen CLIP's .msgpack (random_clip.msgpack for a random one)
    class_names: list[str]
    crop_size: int
    seed: int

    @property
    def num_frames(self) -> int:
        return int(self.model_config["num_frames"])


@dataclasses.dataclass
class TrainedRun:
    """A trained workdir, ready to apply: model, params and what the run recorded."""

    info: RunInfo
    model: Any  # models.video_clip.VideoCLIP
    model_config: Any  # ml_collections.ConfigDict
    trainable: dict
    frozen: dict
    clip_source: str  # the frozen CLIP's .msgpack


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


def read_run(workdir: str | os.PathLike, step: int | None = None) -> RunInfo:
    """Reads run_info.json and picks the checkpoint (default: the latest complete one). Cheap
    (no JAX), so every input error surfaces before the model is loaded."""
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
    fields = ("model_config", "clip_checkpoint", "class_names", "crop_size", "seed")
    missing = [k for k in fields if k not in run_info]
    if missing:
        raise PredictError(f"{info_path} lacks the fields {missing}")
    steps = checkpoint_steps(workdir)
    if not steps:
        raise PredictError(f"workdir {workdir} has no checkpoint (no {workdir}/checkpoints/<step>)")
    if step is None:
        step = steps[-1]
    elif step not in steps:
        raise PredictError(f"workdir {workdir} has no checkpoint of step {step}; it has {steps}")
    return RunInfo(
        workdir=workdir,
        step=step,
        model_config=run_info["model_config"],
        clip_checkpoint=run_info["clip_checkpoint"],
        class_names=list(run_info["class_names"]),
        crop_size=int(run_info["crop_size"]),
        seed=int(run_info["seed"]),
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


def _check_same_tree(given: Any, expected: Any, what: str) -> None:
    """Raises PredictError naming the leaves where `given` and `expected` differ in path/shape."""
    import jax

    shapes = lambda tree: {
        jax.tree_util.keystr(p): tuple(np.shape(x))
        for p, x in jax.tree_util.tree_leaves_with_path(tree)
    }
    got, want = shapes(given), shapes(expected)
    if got != want:
        diff = sorted(set(got.items()) ^ set(want.items()))[:6]
        raise PredictError(f"{what} does not fit the run's model config: differing leaves {diff}")


def load_trained_run(run: RunInfo | str | os.PathLike, step: int | None = None) -> TrainedRun:
    """Rebuilds a trained model from a trainer workdir (or its `read_run` info).

    The frozen CLIP is read from the run's `clip_checkpoint` (for a run with a random frozen CLIP,
    `allow_random_clip`, the trainer saved it as `random_clip.msgpack` in the workdir).
    """
    import jax
    import ml_collections

    from motion_clip_jax.convert.flax_file import load_clip
    from motion_clip_jax.models import clip as clip_lib
    from motion_clip_jax.models import config as config_lib
    from motion_clip_jax.models.video_clip import build_model, init_trainable

    info = run if isinstance(run, RunInfo) else read_run(run, step)
    model_config = ml_collections.ConfigDict(info.model_config)
    config_lib.validate_model_config(model_config)
    if not info.clip_checkpoint:
        raise PredictError(f"{info.workdir}/run_info.json names no frozen CLIP checkpoint")
    clip_params = load_clip(info.clip_checkpoint)[1]["params"]
    clip_cfg = config_lib.clip_config_of(model_config)
    expected = jax.eval_shape(lambda: clip_lib.init_clip(clip_cfg, 0)[1]["params"])
    _check_same_tree(clip_params, expected, f"frozen CLIP {info.clip_checkpoint}")
    model, frozen = build_model(model_config), {"clip": clip_params}
    clip_source = info.clip_checkpoint
    state_path = os.path.join(info.workdir, "checkpoints", str(info.step), "state")
    trainable = _restore_trainable(state_path)
    expected = jax.eval_shape(lambda: init_trainable(model, jax.random.PRNGKey(0)))
    _check_same_tree(trainable, expected, f"checkpoint {state_path}")
    return TrainedRun(info, model, model_config, trainable, frozen, clip_source)


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
    if not os.path.isfile(args.video):
        raise video_io.VideoError(f"Video file not found: {args.video}")
    # Every input is checked, and the video decoded, before the (slow) model load.
    info = read_run(args.workdir, args.step)
    labels = resolve_labels(args.labels, info.class_names)
    views, indices = read_video(
        args.video, info.num_frames, info.crop_size, args.multiview, args.seed
    )
    run = load_trained_run(info)
    probabilities = mean_softmax(jax_logits(run, views, labels))
    return Prediction(
        video=args.video,
        model=f"{info.workdir} step {info.step}",
        backend="jax",
        num_views=len(views),
        frame_indices=indices.tolist(),
        num_classes=len(labels),
        top=top_classes(probabilities, labels, args.top),
    )


def main(argv: Sequence[str] | None = None) -> int:
    description = __doc__.split("\n\nThis module")[0]
    prog = "python -m motion_clip_jax.predict"
    return run_cli(argv, prog, _model_args, _predict, description)


if __name__ == "__main__":
    sys.exit(main())
