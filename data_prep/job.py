"""Runs a plan: decode videos in parallel, write shards, resume, write tfds metadata + manifest.

Order: within a split, videos are sorted by a seeded hash of their id (so shards and slices such as
`train[:10%]` mix classes), then cut into shards of about `shard_size` videos. A shard is written
to a temp file and renamed when complete, then a sidecar `.prep/<shard>.json` records what went in
(and what was skipped) with a key of its inputs and options. A rerun skips every shard whose file
and sidecar exist with the same key, so a killed job resumes where it stopped; shards of an older
plan are deleted. The tfds metadata, the `<split>.index.tsv` files and manifest.json are written
last, from the sidecars.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import multiprocessing
import os
import sys
import time
from collections.abc import Iterator

from data_prep import decode, layouts
from motion_clip_jax.data import manifest as manifest_lib
from motion_clip_jax.data import records, shuffle

SIDECAR_DIR = ".prep"
ORDER_SEED = 0  # seed of the within-split order; fixed so reruns plan identical shards


@dataclasses.dataclass(frozen=True)
class JobOptions:
    decode: decode.DecodeOptions = decode.DecodeOptions()
    shard_size: int = 64
    workers: int = 1
    progress: bool = True


@dataclasses.dataclass
class _Shard:
    split: str
    index: int
    count: int
    items: list[layouts.VideoItem]
    key: str = ""  # hash of the shard's inputs and options: a finished shard with it is reused
    filename: str = ""


def _plan_shards(plan: layouts.DatasetPlan, options: JobOptions) -> list[_Shard]:
    by_split: dict[str, list[layouts.VideoItem]] = {}
    for item in plan.items:
        by_split.setdefault(item.split, []).append(item)
    shards = []
    for split in sorted(by_split):
        items = sorted(
            by_split[split], key=lambda i: shuffle.string_rank_key(ORDER_SEED, i.video_id)
        )
        ids = [i.video_id for i in items]
        if len(set(ids)) != len(ids):
            repeated = sorted({v for v in ids if ids.count(v) > 1})[:5]
            raise ValueError(f"{plan.name} split {split}: video ids repeat: {repeated}")
        count = -(-len(items) // options.shard_size)
        bounds = [len(items) * i // count for i in range(count + 1)]
        for index in range(count):
            shard = _Shard(split, index, count, items[bounds[index] : bounds[index + 1]])
            key_source = {
                "class_names": plan.class_names,
                "decode": dataclasses.asdict(options.decode),
                "items": [(i.video_id, i.label, os.path.abspath(i.path)) for i in shard.items],
                "format": records.VERSION,
            }
            shard.key = hashlib.sha256(json.dumps(key_source).encode()).hexdigest()
            shard.filename = records.shard_filename(plan.name, split, index, count)
            shards.append(shard)
    return shards


def _results(tasks: list, workers: int) -> Iterator[tuple[bool, object]]:
    if workers <= 1:
        yield from map(decode.decode_task, tasks)
        return
    # spawn: the parent has TensorFlow loaded, which is not fork-safe. Workers import only
    # data_prep.decode (PyAV, PIL, NumPy), so they start in a fraction of a second.
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        yield from pool.imap(decode.decode_task, tasks, chunksize=1)


def _sidecar_path(dataset_dir: str, shard_file: str) -> str:
    return os.path.join(dataset_dir, SIDECAR_DIR, shard_file + ".json")


def _load_finished(dataset_dir: str, shard_file: str, key: str) -> dict | None:
    path = _sidecar_path(dataset_dir, shard_file)
    if not (os.path.exists(path) and os.path.exists(os.path.join(dataset_dir, shard_file))):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            sidecar = json.load(f)
    except (OSError, ValueError):
        return None
    if sidecar.get("key") != key:
        return None
    shard_path = os.path.join(dataset_dir, shard_file)
    if os.path.getsize(shard_path) != sidecar.get("num_bytes"):
        return None  # not the file the sidecar describes: write it again
    if "sha256" not in sidecar:  # a sidecar of an older version
        sidecar["sha256"] = manifest_lib.file_sha256(shard_path)
    return sidecar


def _clean_stale(dataset_dir: str, name: str, planned: set[str]) -> None:
    """Deletes temp files and shards that belong to no shard of the current plan."""
    for filename in os.listdir(dataset_dir):
        stale_shard = filename.startswith(f"{name}-") and f".{records.FILE_FORMAT}-" in filename
        if ".tmp-" in filename or (stale_shard and filename not in planned):
            os.remove(os.path.join(dataset_dir, filename))
    sidecars = os.path.join(dataset_dir, SIDECAR_DIR)
    for filename in os.listdir(sidecars):
        if filename.removesuffix(".json") not in planned:
            os.remove(os.path.join(sidecars, filename))


def _progress(total: int, enabled: bool, description: str):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="video", desc=description, file=sys.stderr, smoothing=0.05)


def build_dataset(plan: layouts.DatasetPlan, out_dir: str, options: JobOptions) -> dict:
    """Writes `plan` to `<out_dir>/<plan.name>/1.0.0/`; returns the manifest (also written)."""
    if options.shard_size < 1:
        raise ValueError(f"shard_size must be >= 1, got {options.shard_size}")
    start_time = time.time()
    dataset_dir = os.path.join(out_dir, plan.name, records.VERSION)
    os.makedirs(os.path.join(dataset_dir, SIDECAR_DIR), exist_ok=True)
    shards = _plan_shards(plan, options)
    if not shards:
        raise ValueError(
            f"{plan.name}: no videos to write ({len(plan.skipped)} skipped; see the "
            "reasons in the plan)"
        )
    _clean_stale(dataset_dir, plan.name, {shard.filename for shard in shards})
    sidecars = _finished_sidecars(dataset_dir, shards)
    todo = [shard for shard in shards if shard.filename not in sidecars]
    print(
        f"{plan.name}: {len(shards)} shards, {len(shards) - len(todo)} finished earlier "
        f"(skipped), {len(todo)} to write",
        file=sys.stderr,
    )
    sidecars.update(_write_shards(plan, dataset_dir, todo, options))
    return _finish(plan, dataset_dir, shards, sidecars, options, time.time() - start_time)


def _finished_sidecars(dataset_dir: str, shards: list[_Shard]) -> dict[str, dict]:
    """Shard filename -> sidecar, for the shards a previous run finished with the same key."""
    sidecars = {}
    for shard in shards:
        finished = _load_finished(dataset_dir, shard.filename, shard.key)
        if finished is not None:
            sidecars[shard.filename] = finished
    return sidecars


def _write_shards(
    plan: layouts.DatasetPlan, dataset_dir: str, todo: list[_Shard], options: JobOptions
) -> dict[str, dict]:
    """Decodes the videos of `todo` (in parallel) and writes each shard and its sidecar, in
    order -> {shard filename: sidecar}."""
    features = records.video_features(plan.class_names)
    tasks = [(item.path, options.decode) for shard in todo for item in shard.items]
    bar = _progress(len(tasks), options.progress and bool(tasks), plan.name)
    results = _results(tasks, options.workers)
    sidecars = {}
    try:
        for shard in todo:
            decoded = []
            for item in shard.items:
                decoded.append((item, next(results)))
                if bar is not None:
                    bar.update(1)
            serialized, sidecar = _shard_contents(shard, decoded, features)
            _commit_shard(dataset_dir, shard.filename, serialized, sidecar)
            sidecars[shard.filename] = sidecar
    finally:
        results.close()
        if bar is not None:
            bar.close()
    return sidecars


def _shard_contents(
    shard: _Shard, decoded: list[tuple[layouts.VideoItem, tuple[bool, object]]], features
) -> tuple[list[bytes], dict]:
    """The serialised records of a shard's decoded videos, and its sidecar (rows, skipped and
    partially stored videos; bytes and checksum are added when the file is written)."""
    serialized, rows, skipped, partial = [], [], [], []
    for item, (ok, value) in decoded:
        where = {"split": item.split, "video_id": item.video_id, "path": item.path}
        if not ok:
            skipped.append({**where, "reason": value})
            continue
        serialized.append(
            records.serialize_video(
                features,
                video_id=item.video_id,
                label=item.label,
                frames_jpeg=value.frames_jpeg,
                fps=value.fps,
            )
        )
        rows.append((item.video_id, item.label, len(value.frames_jpeg)))
        if value.note:
            partial.append({**where, "note": value.note})
    sidecar = {"key": shard.key, "split": shard.split, "rows": rows, "skipped": skipped}
    return serialized, {**sidecar, "partial": partial}


def _commit_shard(dataset_dir: str, shard_file: str, serialized: list[bytes], sidecar: dict):
    """Writes the shard (atomically), then its sidecar with the shard's size and sha256: a
    sidecar exists only for a complete shard."""
    path = os.path.join(dataset_dir, shard_file)
    sidecar["num_bytes"] = records.write_tfrecord(path, serialized)
    sidecar["sha256"] = manifest_lib.file_sha256(path)
    sidecar_path = _sidecar_path(dataset_dir, shard_file)
    with open(sidecar_path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(sidecar, f)
    os.replace(sidecar_path + ".tmp", sidecar_path)


def _finish(plan, dataset_dir, shards, sidecars, options, seconds) -> dict:
    shard_lengths: dict[str, list[int]] = {}
    shard_bytes: dict[str, int] = {}
    index_rows: dict[str, list] = {}
    skipped, partial = list(plan.skipped), []
    for shard in shards:
        sidecar = sidecars[shard.filename]
        shard_lengths.setdefault(shard.split, []).append(len(sidecar["rows"]))
        shard_bytes[shard.split] = shard_bytes.get(shard.split, 0) + sidecar["num_bytes"]
        index_rows.setdefault(shard.split, []).extend(tuple(r) for r in sidecar["rows"])
        skipped += sidecar["skipped"]
        partial += sidecar["partial"]
    empty = [split for split, rows in index_rows.items() if not rows]
    if empty:
        raise ValueError(
            f"{plan.name}: every video of split(s) {empty} was skipped; reasons: "
            f"{sorted({s['reason'] for s in skipped})[:5]}"
        )
    for split, rows in index_rows.items():
        records.write_index(os.path.join(dataset_dir, split + records.INDEX_SUFFIX), rows)
    records.write_metadata(
        dataset_dir,
        class_names=plan.class_names,
        shard_lengths=shard_lengths,
        shard_bytes=shard_bytes,
        description=f"{plan.layout} videos as JPEG frames (motion_clip_jax data_prep).",
    )
    splits = {}
    for split, rows in index_rows.items():
        splits[split] = manifest_lib.summarize_split(rows, plan.class_names)
        splits[split].update(num_shards=len(shard_lengths[split]), num_bytes=shard_bytes[split])
    manifest = {
        "name": plan.name,
        "version": records.VERSION,
        "layout": plan.layout,
        "source": plan.source,
        "options": {**dataclasses.asdict(options.decode), "shard_size": options.shard_size},
        "class_names": plan.class_names,
        "raw_class_names": plan.raw_class_names,
        "splits": splits,
        "shards": [
            {
                "file": shard.filename,
                "split": shard.split,
                "num_examples": len(sidecars[shard.filename]["rows"]),
                "num_bytes": sidecars[shard.filename]["num_bytes"],
                "sha256": sidecars[shard.filename]["sha256"],
            }
            for shard in shards
        ],
        "skipped": skipped,
        "partial": partial,
        "unlisted_videos": plan.unlisted_videos,
        "seconds": round(seconds, 2),
    }
    manifest_lib.write_manifest(dataset_dir, manifest)
    return manifest
