"""An exact on-disk cache of the frozen image tower's features of the evaluation views.

The frozen CLIP image tower's output for the evaluation views depends only on the CLIP weights,
the evaluated records and how their frames are drawn, never on the trainable parameters. Every
run of a table (variants x shots x draws) evaluates the same split, so with
`config.eval.feature_cache_dir` set the first run stores the per-view frame features and the later
runs run only the trainable part (`VideoCLIP.logits_from_features`) on them.

One entry = one file `<dir>/<sha256 of the key>.npz`, for one (set, view kind, process). The key
(`entry_key`) records:
  - clip_weights: BLAKE2b of every frozen CLIP leaf (path, dtype, shape, bytes), clip_config, dtype;
  - dataset: SHA-256 of the tfds metadata (dataset_info.json, features.json, the split's index),
    the shard files the process reads with their sizes, the split and its number of examples;
  - views: single_view / multiview_4x3, num_frames, crop_size, uint8, on_bad_record, the
    multiview sampling seed, and VIEWS_VERSION (bumped when data/pipeline.py's eval frames change);
  - process_index / process_count / local_batch_size: each process stores its own padded stream.
The file stores the key, the features (N, T, D) or (N, V, T, D) with label / mask / index (N,) of
every row the eval iterator yields (padding included), and a SHA-256 of all of it. A file whose
key differs from the one asked, or whose checksum or format does not verify, raises
FeatureCacheError (one line); files are written atomically (temp file + rename), so a crash leaves
no partial entry.

The protocol the trainer runs per evaluation pass (`cached_views`) is a collective: every process
reports one status code (0 read, 1 missing, 2 refused) and all take the same branch, computing
their rows with the image tower (`compute_views`) when any entry is missing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import tempfile
from collections.abc import Callable, Sequence
from typing import Any

import jax
import ml_collections
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding

from motion_clip_jax.core.error_text import first_line
from motion_clip_jax.data import pipeline, source
from motion_clip_jax.train import data_input
from motion_clip_jax.train import mesh as mesh_lib

# 2: the checksum covers the arrays in name order (any set of arrays, training entries too).
FORMAT_VERSION = 2
# Bump when data/pipeline.py's evaluation frames change for the same options: old entries then
# stop matching instead of silently serving features of other frames.
VIEWS_VERSION = 1
_ARRAYS = ("features", "label", "mask", "index")


class FeatureCacheError(ValueError):
    """A cache file that is refused: unreadable, damaged, or recorded for another key."""


@dataclasses.dataclass(frozen=True)
class FeatureCacheSettings:
    """config.eval.feature_cache_dir, with what keys its entries besides the set and view."""

    directory: str
    clip_weights: str  # weights_digest of the frozen CLIP
    clip_config: dict[str, Any]
    dtype: str
    encode_step: Callable[..., jax.Array]  # (frozen, video) -> frame features, batch-sharded
    # host eos (K,) of a class list -> its (trainable, frozen, frames, ids, eos) -> (B, K) step
    features_step_for: Callable[[np.ndarray], Callable[..., jax.Array]]


@dataclasses.dataclass(frozen=True)
class CachedViews:
    """One process's evaluation stream: features (N, T, D) or (N, V, T, D), label / mask / index
    (N,), N = batches x local batch size (padding rows have mask False)."""

    features: np.ndarray
    label: np.ndarray
    mask: np.ndarray
    index: np.ndarray

    def batches(self, batch_size: int):
        """The stream cut into the eval iterator's batches: dicts of (batch_size, ...) arrays."""
        for start in range(0, len(self.label), batch_size):
            yield {k: getattr(self, k)[start : start + batch_size] for k in _ARRAYS}


def weights_digest(params: Any) -> str:
    """BLAKE2b hex digest of a parameter tree: every leaf's path, dtype, shape and bytes."""
    digest = hashlib.blake2b(digest_size=32)
    leaves = jax.tree_util.tree_flatten_with_path(params)[0]
    for path, leaf in sorted(leaves, key=lambda item: jax.tree_util.keystr(item[0])):
        array = np.ascontiguousarray(np.asarray(leaf))
        digest.update(f"{jax.tree_util.keystr(path)}|{array.dtype}|{array.shape}|".encode())
        digest.update(array.view(np.uint8).reshape(-1).data)
    return digest.hexdigest()


def _file_sha256(path: str) -> str | None:
    if not os.path.exists(path):
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def dataset_fingerprint(
    data_dir: str,
    split: str,
    process_index: int,
    process_count: int,
    video_ids: Sequence[str] | None = None,
) -> dict[str, Any]:
    """What identifies the records process `process_index` evaluates: tfds metadata hashes, its
    shard files (name, bytes), the split, its number of examples and of this process's records
    (with `video_ids`, only those videos of the split; their positions are hashed)."""
    dataset_dir = source.resolve_dataset_dir(data_dir)
    records = source.split_records(
        dataset_dir,
        split,
        process_index=process_index,
        process_count=process_count,
        video_ids=video_ids,
    )
    meta = ["dataset_info.json", "features.json", split.split("[")[0] + ".index.tsv"]
    return {
        "metadata_sha256": {name: _file_sha256(os.path.join(dataset_dir, name)) for name in meta},
        "shards": [[os.path.basename(f), os.path.getsize(f)] for f in records.files],
        "split": split,
        "split_num_examples": source.open_builder(dataset_dir).info.splits[split].num_examples,
        "process_records": len(records),
        "positions_sha256": hashlib.sha256(records.position.astype("<i8").tobytes()).hexdigest(),
    }


def entry_key(
    *,
    clip_weights: str,
    clip_config: dict[str, Any],
    dtype: str,
    dataset: dict[str, Any],
    options: pipeline.PipelineOptions,
    multiview: bool,
    process_index: int,
    process_count: int,
) -> dict[str, Any]:
    """The key of one entry (module docstring); JSON-able, compared field by field on load."""
    return {
        "format": FORMAT_VERSION,
        "views_version": VIEWS_VERSION,
        "clip_weights": clip_weights,
        "clip_config": clip_config,
        "dtype": dtype,
        "dataset": dataset,
        "views": "multiview_4x3" if multiview else "single_view",
        "num_frames": options.num_frames,
        "crop_size": options.crop_size,
        "uint8": options.uint8,
        "on_bad_record": options.on_bad_record,
        # Only multi-view draws random samplings; single-view entries are shared across seeds.
        "sampling_seed": options.seed if multiview else None,
        "process_index": process_index,
        "process_count": process_count,
        "local_batch_size": options.batch_size,
    }


def _canonical(key: dict[str, Any]) -> bytes:
    return json.dumps(key, sort_keys=True, separators=(",", ":")).encode()


def entry_path(cache_dir: str, key: dict[str, Any]) -> str:
    """`<cache_dir>/<sha256 of the canonical key>.npz`."""
    return os.path.join(cache_dir, hashlib.sha256(_canonical(key)).hexdigest()[:40] + ".npz")


def _checksum(key_bytes: bytes, arrays: dict[str, np.ndarray]) -> str:
    digest = hashlib.sha256(key_bytes)
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"|{name}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(array.view(np.uint8).reshape(-1).data)
    return digest.hexdigest()


def _storable(features: np.ndarray) -> tuple[np.ndarray, str]:
    """NumPy cannot save bfloat16 portably: such features travel as their bits (uint16)."""
    name = str(features.dtype)
    if features.dtype in (np.float16, np.float32, np.float64):
        return features, name
    return features.view(f"uint{8 * features.dtype.itemsize}"), name


def save(path: str, key: dict[str, Any], views: CachedViews) -> None:
    """Writes the entry of an evaluation stream atomically (`save_arrays`)."""
    save_arrays(path, key, {name: getattr(views, name) for name in _ARRAYS})


def save_arrays(
    path: str, key: dict[str, Any], arrays: dict[str, np.ndarray], durable: bool = True
) -> None:
    """Writes an entry atomically: a temp file in the same folder, fsync (unless not `durable`),
    rename. `arrays` holds 'features' (any float dtype, bfloat16 included) and any other NumPy
    arrays. Without the fsync a crash of the machine may leave a renamed file that is empty or
    cut short: its load then fails its checks, and a caller that recomputes refused entries (the
    training cache) loses nothing but the recomputation, for ~4x cheaper writes."""
    key_bytes = _canonical(key)
    features, dtype_name = _storable(arrays["features"])
    arrays = {**arrays, "features": features}
    payload = {
        **arrays,
        "key": np.frombuffer(key_bytes, np.uint8),
        "features_dtype": np.asarray(dtype_name),
        "checksum": np.asarray(_checksum(key_bytes, arrays)),
    }
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp_path = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **payload)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
        raise


def _differences(recorded: Any, asked: Any, prefix: str = "") -> list[str]:
    if isinstance(recorded, dict) and isinstance(asked, dict):
        out = []
        for name in sorted(set(recorded) | set(asked)):
            out += _differences(recorded.get(name), asked.get(name), f"{prefix}{name}.")
        return out
    return [] if recorded == asked else [f"{prefix[:-1]}: {recorded!r} -> {asked!r}"]


def load(path: str, key: dict[str, Any]) -> CachedViews:
    """The evaluation entry at `path`, verified (`load_arrays`)."""
    arrays = load_arrays(path, key, _ARRAYS, "eval feature cache")
    return CachedViews(**{name: arrays[name] for name in _ARRAYS})


def load_arrays(
    path: str, key: dict[str, Any], names: Sequence[str], what: str
) -> dict[str, np.ndarray]:
    """The arrays `names` of the entry at `path`, verified: FeatureCacheError (one line, naming
    `what` and the file) unless its format and checksum verify and its recorded key equals `key`."""

    def refuse(why: str) -> FeatureCacheError:
        return FeatureCacheError(f"{what} {path}: {why}; refused (delete the file to recompute it)")

    try:
        with open(path, "rb") as f:
            data = f.read()
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            stored = {name: npz[name] for name in npz.files}
        key_bytes = stored["key"].tobytes()
        recorded = json.loads(key_bytes)
        dtype_name = str(stored["features_dtype"])
        checksum = str(stored["checksum"])
        arrays = {name: stored[name] for name in names}
    except Exception as e:  # zipfile, npy header, JSON, missing member: all mean a damaged file
        raise refuse(f"unreadable or truncated ({first_line(e)})") from None
    if _checksum(key_bytes, arrays) != checksum:
        raise refuse("content checksum mismatch (damaged or edited)")
    differences = _differences(recorded, key)
    if differences:
        raise refuse("recorded for another key (recorded -> asked: " + "; ".join(differences) + ")")
    if str(arrays["features"].dtype) != dtype_name:
        arrays["features"] = arrays["features"].view(jax.numpy.dtype(dtype_name))
    return arrays


def cached_views(
    cache: FeatureCacheSettings,
    config: ml_collections.ConfigDict,
    frozen: Any,
    batch_sharding: NamedSharding,
    eval_set: Any,
    multiview: bool,
    log: Callable[[str], None],
) -> CachedViews:
    """This process's eval stream of `eval_set` (the trainer's EvalSet) as frame features: read
    from the cache entry, or computed with the image tower and written there. Every process takes
    the same branch (a collective): if any process's entry is missing all recompute; if any
    refuses its file, all stop."""
    dataset = eval_set.dataset
    index, count = jax.process_index(), jax.process_count()
    options = data_input.pipeline_options(config, config.eval.batch_size // count)
    key = entry_key(
        clip_weights=cache.clip_weights,
        clip_config=cache.clip_config,
        dtype=cache.dtype,
        dataset=dataset_fingerprint(
            dataset.dataset_dir, dataset.eval_split, index, count, dataset.eval_video_ids
        ),
        options=options,
        multiview=multiview,
        process_index=index,
        process_count=count,
    )
    path = entry_path(cache.directory, key)
    views, error = None, None
    if os.path.exists(path):
        try:
            views = load(path, key)
        except FeatureCacheError as e:
            error = e
    # Status codes, gathered from every process: 0 read, 1 missing (compute), 2 refused.
    status = data_input.allgather({"s": np.asarray([2 if error else int(views is None)])})["s"]
    if error is not None:
        raise error
    if status.max() == 2:
        bad = [p for p, s in enumerate(status) if s == 2]
        raise FeatureCacheError(
            f"eval feature cache {cache.directory}: process(es) {bad} refused their entry "
            "(see their log)"
        )
    what = f"eval feature cache: {eval_set.name}/{'multiview' if multiview else 'single_view'}"
    if status.max() == 0:
        log(f"{what}: read {path}")
        return views
    views = compute_views(cache, config, frozen, batch_sharding, eval_set, multiview)
    save(path, key, views)
    log(f"{what}: computed and wrote {path}")
    return views


def compute_views(
    cache: FeatureCacheSettings,
    config: ml_collections.ConfigDict,
    frozen: Any,
    batch_sharding: NamedSharding,
    eval_set: Any,
    multiview: bool,
) -> CachedViews:
    """The image tower over this process's eval stream -> its rows' features, labels, masks."""
    parts: dict[str, list[np.ndarray]] = {name: [] for name in _ARRAYS}
    for local in data_input.eval_iterator(config, eval_set.dataset, multiview):
        out = cache.encode_step(frozen, mesh_lib.global_batch(local["video"], batch_sharding))
        mine = multihost_utils.global_array_to_host_local_array(
            out, batch_sharding.mesh, batch_sharding.spec
        )
        parts["features"].append(np.asarray(mine))
        for name in ("label", "mask", "index"):
            parts[name].append(local[name])
    return CachedViews(**{k: np.concatenate(v) for k, v in parts.items()})
