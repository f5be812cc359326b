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

Multi-process runs: each process loads and writes the entries of its own rows only; how many rows
the tower runs on at each step is agreed once, at the start (one collective): the most new clips
any process has there, rounded up to a few shapes (`tower_rows`); cached clips are never
recomputed, and a step where every clip is cached runs no tower at all.
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
    tower_rows: np.ndarray  # (steps,) local rows the tower runs on (0: none), on every process
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
        tower_rows=np.zeros(len(steps), np.int64),
        features={},
        counts={"read": 0, "written": 0, "refused": 0, "tower_clips": 0},
    )
    clips = list(dict.fromkeys(zip(positions.ravel().tolist(), epochs.ravel().tolist())))
    for clip in clips:
        features = _load(cache, *clip, log)
        if features is not None:
            cache.features[clip] = features
    missing = np.asarray(
        [len({c for c in zip(p, e) if c not in cache.features}) for p, e in zip(positions, epochs)],
        np.int64,
    ).reshape(len(steps))  # empty when no step is left (a finished run evaluated again)
    every = data_input.allgather({"missing": missing})["missing"].reshape(count, len(steps))
    cache.tower_rows = tower_rows(every.max(axis=0), options.batch_size, batch_sharding)
    log(
        f"{WHAT} {cache.directory}: {len(cache.features)} of this process's {len(clips)} clips "
        f"cached; the image tower runs at {int((cache.tower_rows > 0).sum())} of {len(steps)} "
        f"steps, on {int(cache.tower_rows.sum())} rows"
    )
    return cache


def tower_rows(missing: np.ndarray, local_batch: int, batch_sharding: NamedSharding) -> np.ndarray:
    """Rows per process the tower runs on at each step: the most new clips any process has there,
    rounded up to a power of two times the process's data shards (few shapes to compile; the rows
    split evenly over the data axis), at most the local batch; 0 where every clip is cached."""
    shards = max(1, batch_sharding.mesh.shape[mesh_lib.DATA] // jax.process_count())
    blocks = np.ceil(np.maximum(missing, 1) / shards)
    rows = shards * 2 ** np.ceil(np.log2(blocks)).astype(np.int64)
    return np.where(missing > 0, np.minimum(rows, local_batch), 0)


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
    cache: TrainFeatureCache, frozen: Any, local: dict[str, np.ndarray], step: int, crop_size: int
) -> np.ndarray:
    """This process's rows of the batch at `step` as frame features (B, T, D): cached clips read,
    the new ones through the image tower (a collective step every process runs at the same steps,
    on `tower_rows` rows: the new clips, zero-padded) and written. `local` is the train
    iterator's dict (video, label, mask, index, epoch)."""
    clips = list(zip(local["index"].tolist(), local["epoch"].tolist()))
    computed = {}
    rows = int(cache.tower_rows[step - cache.first_step])
    if rows:
        new = [c for c in dict.fromkeys(clips) if c not in cache.features]
        if len(new) > rows:
            raise RuntimeError(f"{WHAT}: {len(new)} new clips at step {step}, planned {rows}")
        # The new clips' rows of every pixel field (video, and crop windows' window_hw / flip).
        fields = {k: local[k] for k in data_input.PIXEL_FIELDS if k in local}
        rows_of = {k: np.zeros((rows, *v.shape[1:]), v.dtype) for k, v in fields.items()}
        for j, clip in enumerate(new):
            for k, v in fields.items():
                rows_of[k][j] = v[clips.index(clip)]
        video = data_input.device_clips(rows_of, cache.batch_sharding, crop_size)
        out = cache.encode_step(frozen, video)
        features = np.asarray(
            multihost_utils.global_array_to_host_local_array(
                out, cache.batch_sharding.mesh, cache.batch_sharding.spec
            )
        )
        cache.counts["tower_clips"] += rows
        for j, clip in enumerate(new):
            computed[clip] = features[j]
            if any(local["mask"][r] for r, c in enumerate(clips) if c == clip):
                # A refilled slot (mask False) holds another row's clip: only real ones are kept.
                # No fsync: a file a machine crash cuts short is refused and recomputed next time.
                key = entry_key(cache, *clip)
                arrays = {"features": features[j]}
                feature_cache_lib.save_arrays(entry_path(cache, *clip), key, arrays, durable=False)
                cache.features[clip] = features[j]
                cache.counts["written"] += 1
    cache.counts["read"] += sum(int(m) for m, c in zip(local["mask"], clips) if c not in computed)
    return np.stack([computed[c] if c in computed else cache.features[c] for c in clips])


def totals(cache: TrainFeatureCache) -> dict[str, Any]:
    """The counts summed over processes (a collective), with the folder: for the run records."""
    names = sorted(cache.counts)
    local = np.asarray([[cache.counts[n] for n in names]], np.int64)
    summed = data_input.allgather({"c": local})["c"].sum(axis=0)
    return {"directory": cache.directory, **{n: int(v) for n, v in zip(names, summed)}}
