"""manifest.json beside a dataset's shards: what was written, and every video that was not.

{"name", "version", "layout", "source", "options", "class_names",
 "class_pairs": [[a, b], ...],   # optional: order-paired classes, reported as within-pair accuracy
 "splits": {split: {"num_examples", "num_shards", "num_bytes", "per_class": {name: n},
                    "frames": {"total", "min", "max", "mean"}}},
 "shards": [{"file", "split", "num_examples", "num_bytes", "sha256"}],  # hex sha256 of each file
 "skipped": [{"split", "video_id", "path", "reason"}],   # not in the shards
 "partial": [{"split", "video_id", "path", "note"}]}     # in the shards, decoding stopped early
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from typing import Any

MANIFEST_FILENAME = "manifest.json"


def summarize_split(
    index_rows: Sequence[tuple[str, int, int]], class_names: Sequence[str]
) -> dict[str, Any]:
    """Counts per class and stored-frame statistics of one split's (video_id, label, frames)."""
    per_class = {name: 0 for name in class_names}
    frames = [num_frames for _, _, num_frames in index_rows]
    for _, label, _ in index_rows:
        per_class[class_names[label]] += 1
    return {
        "num_examples": len(index_rows),
        "per_class": per_class,
        "frames": {
            "total": int(sum(frames)),
            "min": int(min(frames)) if frames else 0,
            "max": int(max(frames)) if frames else 0,
            "mean": round(sum(frames) / len(frames), 3) if frames else 0.0,
        },
    }


def file_sha256(path: str) -> str:
    """Hex sha256 of a file's bytes (read in 1 MiB blocks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(dataset_dir: str, manifest: dict[str, Any]) -> str:
    """Writes `<dataset_dir>/manifest.json` atomically; returns its path."""
    path = os.path.join(dataset_dir, MANIFEST_FILENAME)
    tmp_path = f"{path}.tmp-{os.getpid()}"
    with open(tmp_path, "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1, ensure_ascii=False)
        f.write("\n")
    os.replace(tmp_path, path)
    return path


def read_manifest(dataset_dir: str) -> dict[str, Any]:
    """The manifest of a dataset folder; FileNotFoundError names the path if there is none."""
    path = os.path.join(dataset_dir, MANIFEST_FILENAME)
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def class_pairs(dataset_dir: str) -> list[tuple[int, int]]:
    """The dataset's recorded class pairs [(a, b), ...]; [] without a manifest or the field."""
    try:
        manifest = read_manifest(dataset_dir)
    except FileNotFoundError:
        return []
    return [(int(a), int(b)) for a, b in manifest.get("class_pairs", [])]
