"""The training feature cache: the frozen image tower's features of training clips, computed once.

A training clip is a pure function of (seed, video, epoch of that video) (data/pipeline.py,
`train_clip_seed`), so the frozen tower's features of it are a pure function of (CLIP weights,
dataset, video, epoch, seed, T, crop settings, dtype). With `config.train.feature_cache_dir` set,
the first run that trains on a clip stores its features (T, D) there, and every later run that
trains on the same clip (another variant, another k of the same few-shot draw: the draws are
nested) reads them: the pipeline does not decode that clip and the train step takes the features
in place of pixels (train/steps.py).

Layout: `<dir>/train/<hash of the shared key>/<split position>_<epoch>.npz`, one file per clip.
The shared key (`shared_key`) records the CLIP weights digest and config, the dtype, the dataset
fingerprint (metadata hashes, the split's shard files), the seed, T, the crop size and scales, the
flip and the output format, and CLIPS_VERSION (bumped when data/pipeline.py's training clips
change for the same options); each file records it with its video (split position, id) and epoch,
and a checksum (train/feature_cache.py: atomic writes, verified loads). A damaged or mismatched
file is refused in one line naming it, and the clip is recomputed and the file rewritten.

Multi-process runs: each process loads and writes the entries of its own rows only; whether a
step runs the tower is agreed once, at the start (one collective): a step runs it when any process
misses any of its clips, and the rows that were cached keep their cached features.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Callable
from typing import Any

import jax
import ml_collections
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding

from motion_clip_jax.data import pipeline
from motion_clip_jax.train import data_input
from motion_clip_jax.train import feature_cache as feature_cache_lib
from motion_clip_jax.train import mesh as mesh_lib

# Bump when data/pipeline.py's training clips change for the same options: old entries then stop
# matching instead of silently serving features of other clips.
CLIPS_VERSION = 1
WHAT = "train feature cache"


@dataclasses.dataclass
class TrainFeatureCache:
    """One run's view of the cache: the entries of the clips it trains on, from `first_step`."""

    directory: str  # <feature_cache_dir>/train/<hash of the shared key>
    shared_key: dict[str, Any]
    video_ids: list[str] | None  # split position -> video id (None: the split has no index)
    encode_step: Callable[..., jax.Array]  # (frozen, video) -> (B, T, D), batch-sharded
    batch_sharding: NamedSharding
    first_step: int
    needs_tower: np.ndarray  # (steps,) bool, the same on every process
    features: dict[tuple[int, int], np.ndarray]  # (split position, epoch) -> (T, D)
    counts: dict[str, int]  # read / written / refused entries, tower_clips (rows through it)

    def cached_clips(self) -> list[tuple[int, int]]:
        """(split position, epoch) of the clips read from the cache: the pipeline skips them."""
        return list(self.features)


def shared_key(
    *,
    clip_weights: str,
    clip_config: dict[str, Any],
    dtype: str,
    dataset: dict[str, Any],
    options: pipeline.PipelineOptions,
) -> dict[str, Any]:
    """What every entry of one folder shares (module docstring); JSON-able."""
    return {
        "format": feature_cache_lib.FORMAT_VERSION,
        "clips_version": CLIPS_VERSION,
        "clip_weights": clip_weights,
        "clip_config": clip_config,
        "dtype": dtype,
        "dataset": dataset,
        "seed": options.seed,
        "num_frames": options.num_frames,
        "crop_size": options.crop_size,
        "crop_scales": list(options.crop_scales),
        "flip": options.flip,
        "uint8": options.uint8,
    }


def entry_key(cache: TrainFeatureCache, position: int, epoch: int) -> dict[str, Any]:
    """The key one clip's file records: the shared key, the video and its epoch."""
    video_id = None if cache.video_ids is None else cache.video_ids[position]
    return {**cache.shared_key, "split_position": position, "video_id": video_id, "epoch": epoch}


def entry_path(cache: TrainFeatureCache, position: int, epoch: int) -> str:
    return os.path.join(cache.directory, f"{position}_{epoch}.npz")


def open_cache(
    config: ml_collections.ConfigDict,
    dataset: data_input.Dataset,
    identity: dict[str, Any],
    encode_step: Callable[..., jax.Array],
    batch_sharding: NamedSharding,
    steps: range,
    log: Callable[[str], None],
) -> TrainFeatureCache:
    """Loads the entries of this process's clips of `steps` and agrees with the other processes
    on the steps that run the image tower. `identity`: clip_weights, clip_config, dtype."""
    count = jax.process_count()
    options = data_input.pipeline_options(config, config.train.batch_size // count)
    split = dataset.train_split
    key = shared_key(
        **identity,
        dataset=feature_cache_lib.dataset_fingerprint(dataset.dataset_dir, split, 0, 1),
        options=options,
    )
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]
    positions, epochs = pipeline.train_stream_rows(
        dataset.dataset_dir, split, options, steps, video_ids=dataset.train_video_ids
    )
    cache = TrainFeatureCache(
        directory=os.path.join(os.path.abspath(config.train.feature_cache_dir), "train", digest),
        shared_key=key,
        video_ids=pipeline.split_video_ids(dataset.dataset_dir, split),
        encode_step=encode_step,
        batch_sharding=batch_sharding,
        first_step=steps.start,
        needs_tower=np.zeros(len(steps), bool),
        features={},
        counts={"read": 0, "written": 0, "refused": 0, "tower_clips": 0},
    )
    clips = list(dict.fromkeys(zip(positions.ravel().tolist(), epochs.ravel().tolist())))
    for clip in clips:
        features = _load(cache, *clip, log)
        if features is not None:
            cache.features[clip] = features
    missing = np.asarray(
        [[clip not in cache.features for clip in zip(p, e)] for p, e in zip(positions, epochs)],
        bool,
    ).reshape(positions.shape)  # (steps, rows); no steps left: a finished run evaluated again
    local = missing.any(axis=1).astype(np.uint8)
    every = data_input.allgather({"needs": local})["needs"].reshape(count, len(steps))
    cache.needs_tower = every.any(axis=0)
    log(
        f"{WHAT} {cache.directory}: {len(cache.features)} of this process's {len(clips)} clips "
        f"cached; the image tower runs at {int(cache.needs_tower.sum())} of {len(steps)} steps"
    )
    return cache


def _load(cache: TrainFeatureCache, position: int, epoch: int, log) -> np.ndarray | None:
    """The clip's features, or None when its file is missing or refused (then logged)."""
    path = entry_path(cache, position, epoch)
    if not os.path.exists(path):
        return None
    try:
        arrays = feature_cache_lib.load_arrays(
            path, entry_key(cache, position, epoch), ("features",), WHAT
        )
    except feature_cache_lib.FeatureCacheError as error:
        cache.counts["refused"] += 1
        log(f"{error}: recomputing it")
        return None
    return arrays["features"]


def local_frames(
    cache: TrainFeatureCache, frozen: Any, local: dict[str, np.ndarray], step: int
) -> np.ndarray:
    """This process's rows of the batch at `step` as frame features (B, T, D): cached rows read,
    the others through the image tower (a collective step, run by every process at the same
    steps) and written. `local` is the train iterator's dict (video, label, mask, index, epoch)."""
    clips = list(zip(local["index"].tolist(), local["epoch"].tolist()))
    if not cache.needs_tower[step - cache.first_step]:
        cache.counts["read"] += int(local["mask"].sum())
        return np.stack([cache.features[clip] for clip in clips])
    out = cache.encode_step(frozen, mesh_lib.global_batch(local["video"], cache.batch_sharding))
    frames = np.array(
        multihost_utils.global_array_to_host_local_array(
            out, cache.batch_sharding.mesh, cache.batch_sharding.spec
        )
    )
    cache.counts["tower_clips"] += len(clips)
    for row, clip in enumerate(clips):
        if clip in cache.features:
            frames[row] = cache.features[clip]
            cache.counts["read"] += int(local["mask"][row])
        elif local["mask"][row]:  # a refilled slot (mask False) holds another row's clip
            path = entry_path(cache, *clip)
            arrays = {"features": frames[row]}
            # No fsync: a file a machine crash cuts short is refused and recomputed next time.
            feature_cache_lib.save_arrays(path, entry_key(cache, *clip), arrays, durable=False)
            cache.features[clip] = frames[row]
            cache.counts["written"] += 1
    return frames


def totals(cache: TrainFeatureCache) -> dict[str, Any]:
    """The counts summed over processes (a collective), with the folder: for the run records."""
    names = sorted(cache.counts)
    local = np.asarray([[cache.counts[n] for n in names]], np.int64)
    summed = data_input.allgather({"c": local})["c"].sum(axis=0)
    return {"directory": cache.directory, **{n: int(v) for n, v in zip(names, summed)}}
