"""Evaluation metrics over a whole split: top-1, top-5, per-class accuracy, confusion matrix.

Multi-view (V views per video, paper §4.1) is aggregated two ways, both recorded by name:
  mean_over_views  the paper's words, "the average Top-1 and Top-5 accuracy of all views": each
                   view's top-1/top-5 over the split, averaged over the V views;
  summed_scores    X-CLIP's practice: one prediction per video from the per-view softmax
                   probabilities summed over the views.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np


def classification_metrics(
    scores: np.ndarray, labels: np.ndarray, class_names: Sequence[str]
) -> dict[str, Any]:
    """scores (N, K) (any monotone score: probabilities or logits), labels (N,) -> metrics.

    Per-class accuracy is reported for every class; `mean_class_accuracy` averages the classes that
    have test videos.
    """
    num_classes = len(class_names)
    if scores.ndim != 2 or scores.shape[1] != num_classes or len(labels) != len(scores):
        raise ValueError(f"scores {scores.shape} / labels {labels.shape} / {num_classes} classes")
    predictions = np.argmax(scores, axis=1)
    top5 = np.argsort(-scores, axis=1)[:, : min(5, num_classes)]
    confusion = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(confusion, (labels, predictions), 1)
    support = confusion.sum(axis=1)
    per_class = np.where(support > 0, np.diag(confusion) / np.maximum(support, 1), np.nan)
    return {
        "num_videos": int(len(labels)),
        "top1": float(np.mean(predictions == labels)) if len(labels) else float("nan"),
        "top5": float(np.mean(np.any(top5 == labels[:, None], axis=1)))
        if len(labels)
        else float("nan"),
        "mean_class_accuracy": float(np.nanmean(per_class)) if support.any() else float("nan"),
        "per_class_accuracy": {
            name: (None if np.isnan(acc) else float(acc))
            for name, acc in zip(class_names, per_class)
        },
        "confusion_matrix": confusion.tolist(),
    }


def multiview_metrics(
    probs: np.ndarray, labels: np.ndarray, class_names: Sequence[str]
) -> dict[str, Any]:
    """probs (N, V, K) per-view softmax probabilities, labels (N,) -> metrics of both aggregations.

    `top1`/`top5` are the paper's (`mean_over_views`, also given per view); the one-prediction-
    per-video metrics (per-class accuracy, confusion matrix, mean class accuracy) and the
    `summed_scores` block come from the summed probabilities (module docstring).
    """
    if probs.ndim != 3:
        raise ValueError(f"multi-view scores must be (N, V, K), got {probs.shape}")
    metrics = classification_metrics(probs.sum(axis=1), labels, class_names)
    summed = {"top1": metrics["top1"], "top5": metrics["top5"]}
    per_view = [
        classification_metrics(probs[:, v], labels, class_names) for v in range(probs.shape[1])
    ]
    mean = {
        "top1": float(np.mean([m["top1"] for m in per_view])),
        "top5": float(np.mean([m["top5"] for m in per_view])),
        "per_view_top1": [m["top1"] for m in per_view],
        "per_view_top5": [m["top5"] for m in per_view],
    }
    metrics.update(
        top1=mean["top1"],
        top5=mean["top5"],
        num_views=int(probs.shape[1]),
        mean_over_views=mean,
        summed_scores={**summed, "mean_class_accuracy": metrics["mean_class_accuracy"]},
        aggregation="top1/top5: mean_over_views (paper §4.1); per-class, confusion: summed_scores",
    )
    return metrics


def pair_accuracy(scores: np.ndarray, labels: np.ndarray, pairs: Sequence[tuple[int, int]]) -> dict:
    """Accuracy of choosing between the two classes of each pair, on that pair's videos (chance 0.5).

    For order-paired classes (same frames, opposite order) this isolates whether a model sees order.
    """
    out = {}
    for a, b in pairs:
        mask = (labels == a) | (labels == b)
        if not mask.any():
            continue
        pick = np.where(scores[mask, a] >= scores[mask, b], a, b)
        out[f"{a}-{b}"] = float(np.mean(pick == labels[mask]))
    out["mean"] = float(np.mean(list(out.values()))) if out else float("nan")
    return out


def save_confusion_png(confusion: np.ndarray, class_names: Sequence[str], path: str, title: str):
    """Row-normalised confusion matrix as a PNG (class names on the axes when they fit)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    confusion = np.asarray(confusion, np.float64)
    rows = confusion / np.maximum(confusion.sum(axis=1, keepdims=True), 1)
    k = len(class_names)
    size = min(4 + 0.18 * k, 24)
    fig, ax = plt.subplots(figsize=(size, size))
    im = ax.imshow(rows, cmap="Blues", vmin=0, vmax=1)
    if k <= 60:
        ax.set_xticks(range(k), class_names, rotation=90, fontsize=max(4, 10 - k // 10))
        ax.set_yticks(range(k), class_names, fontsize=max(4, 10 - k // 10))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def results_table(results: dict[str, Any], class_names: dict[str, Sequence[str]]) -> str:
    """A short markdown table of every evaluation set and view (+ order-pair accuracies)."""
    lines = ["| set / view | videos | top-1 | top-5 | mean class acc | order pairs (within-pair acc) |",
             "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for key, m in results.items():
        if not isinstance(m, dict) or "top1" not in m:
            continue
        names = class_names.get(key.split("/")[0], [])
        pairs = m.get("pair_accuracy", {})
        pair_text = ", ".join(
            f"{names[int(a)]} / {names[int(b)]} {v:.2f}" if names else f"{k} {v:.2f}"
            for k, v in pairs.items()
            if k != "mean"
            for a, b in [k.split("-")]
        )
        if pairs:
            pair_text += f"; mean {pairs['mean']:.2f}"
        lines.append(
            f"| {key} | {m['num_videos']} | {m['top1']:.4f} | {m['top5']:.4f} | "
            f"{m['mean_class_accuracy']:.4f} | {pair_text or '-'} |"
        )
    return "\n".join(lines)
