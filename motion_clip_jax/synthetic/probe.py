"""What a frozen CLIP image tower's per-frame feature knows about the synthetic world.

`frame_probe`: linear probes (ridge, closed form) on the projected class token of static frames:
R^2 of x, y, size and the visible angle, accuracy of shape and colour. `motion_probe`: heads on the frozen
per-frame features of motion clips, order-blind (mean over frames) vs ordered (frames
concatenated in order) vs frame differences; within-pair accuracy tells order apart (chance 50%).

    python -m motion_clip_jax.synthetic.probe --cache_dir /tmp/tiny_clip   # pretrained vs random

prints both probes of the cached (pretrained if missing) tiny CLIP and of a random-init CLIP of
the same config, as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from motion_clip_jax import cli_errors
from motion_clip_jax.convert import flax_file
from motion_clip_jax.models.clip import CLIP, init_clip
from motion_clip_jax.synthetic import pretrain_clip, world

RIDGE_PENALTIES = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1e3, 1e4, 1e5)


def encode_frames(
    module: CLIP, variables: dict[str, Any], frames: np.ndarray, batch_size: int = 1024
) -> np.ndarray:
    """uint8 frames (N, H, W, 3) -> float32 features (N, D) (projected class token)."""
    encode = jax.jit(
        lambda v, x: module.apply(v, pretrain_clip.normalize_frames(x), method=CLIP.encode_image)
    )
    n = len(frames)
    out = []
    for start in range(0, n, batch_size):
        chunk = frames[start : start + batch_size]
        pad = batch_size - len(chunk) if n > batch_size else 0  # one compiled shape
        if pad:
            chunk = np.concatenate([chunk, np.zeros((pad, *chunk.shape[1:]), chunk.dtype)])
        out.append(np.asarray(encode(variables, chunk))[: len(chunk) - pad])
    return np.concatenate(out).astype(np.float32)


def _standardize(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean, std = train.mean(0), train.std(0) + 1e-6
    return (train - mean) / std, (test - mean) / std


def _ridge_fit(x: np.ndarray, y: np.ndarray, penalty: float) -> np.ndarray:
    """Weights (D + 1, K) of ridge regression with an unpenalised bias; x (N, D), y (N, K)."""
    xb = np.concatenate([x, np.ones((len(x), 1))], axis=1).astype(np.float64)
    reg = penalty * np.eye(xb.shape[1])
    reg[-1, -1] = 0.0
    return np.linalg.solve(xb.T @ xb + reg, xb.T @ y.astype(np.float64))


def _ridge_predict(x: np.ndarray, weights: np.ndarray) -> np.ndarray:
    return np.concatenate([x, np.ones((len(x), 1))], axis=1) @ weights


def ridge_probe(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    score: Any,
) -> tuple[np.ndarray, float]:
    """Ridge fit on train, penalty chosen by `score` on the last 20% of train (then refit on all).

    x (N, D); y (N, K); `score(y_true, y_pred) -> float`, higher is better.
    Returns (test predictions (N_test, K), chosen penalty).
    """
    x_train, x_test = _standardize(x_train, x_test)
    cut = int(0.8 * len(x_train))
    best = max(
        RIDGE_PENALTIES,
        key=lambda p: score(
            y_train[cut:],
            _ridge_predict(x_train[cut:], _ridge_fit(x_train[:cut], y_train[:cut], p)),
        ),
    )
    return _ridge_predict(x_test, _ridge_fit(x_train, y_train, best)), best


def r2_score(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Coefficient of determination, averaged over the columns of (N, K) targets."""
    y_true, y_pred = np.asarray(y_true, np.float64), np.asarray(y_pred, np.float64)
    residual = ((y_true - y_pred) ** 2).sum(0)
    total = ((y_true - y_true.mean(0)) ** 2).sum(0)
    return float(np.mean(1.0 - residual / total))


def _one_hot_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.mean(np.argmax(y_true, 1) == np.argmax(y_pred, 1)))


def frame_probe(
    module: CLIP,
    variables: dict[str, Any],
    *,
    n: int = 6000,
    seed: int = 1000,
    test_fraction: float = 0.25,
) -> dict[str, float]:
    """Linear-probe scores of the frozen frame feature on n static frames (`render_static_frames`).

    Held-out split: the last `test_fraction` of the frames. Returns {x_r2, y_r2, size_r2,
    angle_r2, arrow_angle_r2, shape_acc, colour_acc, n_train, n_test}. angle_r2: R^2 of
    `world.visible_angle` (cos, sin of k * angle, k the shape's symmetry order) over every shape
    but circles, one probe for all; arrow_angle_r2: a probe of arrows alone (k = 1), the angle
    the rotating classes turn.
    """
    if n < 100 or not 0 < test_fraction < 1:
        raise ValueError(
            f"frame_probe needs n >= 100 and 0 < test_fraction < 1; got {n}, {test_fraction}"
        )
    size = module.config.image_resolution
    frames, _, attributes = world.render_static_frames(n, seed=seed, size=size)
    features = encode_frames(module, variables, frames)
    n_train = n - int(round(test_fraction * n))
    train, test = slice(0, n_train), slice(n_train, n)
    results: dict[str, float] = {"n_train": n_train, "n_test": n - n_train}

    for name in ("x", "y", "size"):
        target = attributes[name][:, None]
        pred, _ = ridge_probe(features[train], target[train], features[test], r2_score)
        results[f"{name}_r2"] = r2_score(target[test], pred)
    for name, classes in (("shape", len(world.SHAPES)), ("colour", len(world.COLOURS))):
        target = np.eye(classes)[attributes[name]]
        pred, _ = ridge_probe(features[train], target[train], features[test], _one_hot_accuracy)
        results[f"{name}_acc"] = _one_hot_accuracy(target[test], pred)

    angle = world.visible_angle(attributes["shape"], attributes["angle"])
    orders = np.array([world.SYMMETRY_ORDER[name] for name in world.SHAPES])[attributes["shape"]]
    is_train = np.arange(n) < n_train
    for key, pick in (("angle_r2", orders > 0), ("arrow_angle_r2", orders == 1)):
        tr, te = pick & is_train, pick & ~is_train
        pred, _ = ridge_probe(features[tr], angle[tr], features[te], r2_score)
        results[key] = r2_score(angle[te], pred)
    return results


def clip_views(features: np.ndarray) -> dict[str, np.ndarray]:
    """Per-clip inputs of the heads from frame features (N, T, D).

    mean (N, D) is blind to order; concat (N, T*D) keeps it; diff (N, (T-1)*D) holds the
    consecutive differences in order.
    """
    n = len(features)
    return {
        "mean": features.mean(axis=1),
        "concat": features.reshape(n, -1),
        "diff": (features[:, 1:] - features[:, :-1]).reshape(n, -1),
    }


def within_pair_accuracy(scores: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Per order-pair accuracy of choosing between the pair's two classes only (chance 50%).

    scores (N, 8) class scores; labels (N,). Keys: CLASS_NAMES[2p] + '/' + CLASS_NAMES[2p+1];
    NaN for a pair with no clip.
    """
    pair = labels // 2
    first = np.take_along_axis(scores, (2 * pair)[:, None], 1)[:, 0]
    second = np.take_along_axis(scores, (2 * pair + 1)[:, None], 1)[:, 0]
    correct = np.where(labels % 2 == 0, first > second, second > first)
    names = world.CLASS_NAMES
    return {
        f"{names[2 * p]}/{names[2 * p + 1]}": (
            float(correct[pair == p].mean()) if (pair == p).any() else float("nan")
        )
        for p in range(len(names) // 2)
    }


def motion_probe(
    module: CLIP,
    variables: dict[str, Any],
    *,
    n_train: int = 800,
    n_test: int = 400,
    seed: int = 0,
    num_frames: int = 8,
) -> dict[str, dict[str, Any]]:
    """Ridge-classifier heads on frozen frame features of motion clips (`make_motion_clips`).

    Train clips use seed 2*seed and test clips 2*seed + 1 (as `write_synthetic_dataset`).
    Returns {view: {accuracy, within_pair, within_pair_mean}} for view in mean / concat / diff.
    """
    size = module.config.image_resolution
    splits = {}
    for split, count, split_seed in (("train", n_train, 2 * seed), ("test", n_test, 2 * seed + 1)):
        clips, labels = world.make_motion_clips(
            count, seed=split_seed, num_frames=num_frames, size=size
        )
        flat = encode_frames(module, variables, clips.reshape(-1, *clips.shape[2:]))
        splits[split] = (clip_views(flat.reshape(count, num_frames, -1)), labels)
    (train_views, y_train), (test_views, y_test) = splits["train"], splits["test"]
    classes = len(world.CLASS_NAMES)
    results = {}
    for view in train_views:
        scores, penalty = ridge_probe(
            train_views[view], np.eye(classes)[y_train], test_views[view], _one_hot_accuracy
        )
        pairs = within_pair_accuracy(scores, y_test)
        results[view] = {
            "accuracy": float(np.mean(np.argmax(scores, 1) == y_test)),
            "within_pair": pairs,
            "within_pair_mean": float(np.mean(list(pairs.values()))),
            "ridge_penalty": penalty,
        }
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache_dir", required=True, help="folder of the cached msgpack")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=pretrain_clip.DEFAULT_STEPS)
    args = parser.parse_args(argv)
    if os.path.exists(args.cache_dir) and not os.path.isdir(args.cache_dir):
        parser.error(f"--cache_dir {args.cache_dir} is a file, not a folder")
    if args.steps < 1:
        parser.error(f"--steps must be >= 1, got {args.steps}")
    return cli_errors.run_main(_probe, args)


def _probe(args: argparse.Namespace) -> int:
    """Both probes of the cached (pretrained if missing) and of a random tiny CLIP, as JSON."""
    path = pretrain_clip.get_or_pretrain_tiny_clip(args.cache_dir, seed=args.seed, steps=args.steps)
    pretrained = flax_file.load_clip(path)
    towers = {"pretrained": pretrained, "random": init_clip(pretrained[0].config, args.seed)}
    results = {
        name: {
            "frame_probe": frame_probe(module, variables),
            "motion_probe": motion_probe(module, variables),
        }
        for name, (module, variables) in towers.items()
    }
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
