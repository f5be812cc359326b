"""From the config's `data` section to the iterators the loop consumes (motion_clip_jax.data)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Iterator
from typing import Any

import jax
import ml_collections
import numpy as np
import tensorflow as tf
from google.protobuf import message
from jax.experimental import multihost_utils

from motion_clip_jax.core import classnames as classnames_lib
from motion_clip_jax.data import few_shot_draw, pipeline, source, transforms
from motion_clip_jax.data import manifest as manifest_lib
from motion_clip_jax.train import mesh as mesh_lib
from motion_clip_jax.train import providers, window_resize


@dataclasses.dataclass
class Dataset:
    """One dataset folder as the loop sees it."""

    dataset_dir: str
    class_names: list[str]  # the prompts' class names, index = label
    num_train: int  # videos per epoch (after a few-shot draw)
    train_split: str
    eval_split: str
    train_video_ids: list[str] | None = None  # a few-shot draw, else the whole split
    eval_video_ids: list[str] | None = None  # evaluate only these videos of eval_split
    # Order-paired classes recorded in the dataset's manifest (within-pair accuracy is reported).
    class_pairs: list[tuple[int, int]] = dataclasses.field(default_factory=list)
    # Training videos a few-shot draw left out, held out for validation (eval.validation_per_class).
    validation_video_ids: list[str] | None = None
    # Bad records skipped so far (data.skip_bad_records), one entry per skip: '<shard> record <k>
    # (split position p, video_id v)'; a bad training record is skipped again every epoch.
    skipped: list[str] = dataclasses.field(default_factory=list)


SKIP_FIELD = "data.skip_bad_records"


class BadRecordError(ValueError):
    """A bad record met with data.skip_bad_records off; names the shard, record and video."""


def _named_bad_records(
    batches: pipeline.VideoBatches, dataset: Dataset, what: str
) -> Iterator[dict[str, np.ndarray]]:
    """`batches`, with the records it skips appended to `dataset.skipped`, and a bad record
    (skipping off) raised as BadRecordError naming the config field that skips it."""
    seen = 0
    try:
        for batch in batches:
            dataset.skipped.extend(batches.skipped[seen:])
            seen = len(batches.skipped)
            yield batch
    except pipeline.BadRecordError as e:
        raise BadRecordError(
            f"bad {what} record {e.where}: {e.reason}. Set --config.{SKIP_FIELD}=True to skip "
            "such records (each skip is logged, and counted in run_info.json)"
        ) from None


def _class_names(spec: str, dataset_dir: str) -> list[str]:
    """'' -> the dataset's ClassLabel names; a vendored list name; or a label file path."""
    if not spec:
        return source.class_names(dataset_dir)
    if spec in ("hmdb51", "ucf101", "kinetics400"):
        return classnames_lib.load_classnames(spec)
    return classnames_lib.read_label_file(spec)


def prepare_dataset(config: ml_collections.ConfigDict, workdir: str) -> Dataset:
    """Runs the configured data source, resolves class names, pairs and the few-shot draw."""
    d = config.data
    if d.source:
        if jax.process_index() == 0:
            providers.call(
                "data.source",
                d.source,
                d.source_settings,
                dataset_dir=d.dataset_dir,
                frame_size=d.crop_size,
                num_frames=config.model.num_frames,
            )
        multihost_utils.sync_global_devices("data source done")
    dataset_dir = source.resolve_dataset_dir(d.dataset_dir)
    stored = source.class_names(dataset_dir)
    class_names = _class_names(d.class_names, dataset_dir)
    if len(class_names) != len(stored):
        raise ValueError(
            f"config.data.class_names={d.class_names!r} gives {len(class_names)} classes, the "
            f"dataset {dataset_dir} has {len(stored)}"
        )
    sizes = source.split_sizes(dataset_dir)
    train_split = d.train_split
    num_train = _split_size(sizes, train_split, dataset_dir)
    video_ids, validation_ids = None, None
    if d.few_shot_k:
        video_ids, validation_ids = few_shot_video_ids(
            dataset_dir,
            train_split,
            d.eval_split,
            d.few_shot_k,
            d.few_shot_seed,
            workdir,
            config.eval.validation_per_class,
        )
        num_train = len(video_ids)
    pairs = manifest_lib.class_pairs(dataset_dir)
    return Dataset(
        dataset_dir,
        class_names,
        num_train,
        train_split,
        d.eval_split,
        train_video_ids=video_ids,
        class_pairs=pairs,
        validation_video_ids=validation_ids,
    )


def validation_dataset(dataset: Dataset) -> Dataset:
    """The held-out training videos of a few-shot run as an evaluation set."""
    return Dataset(
        dataset.dataset_dir,
        dataset.class_names,
        0,
        "",
        dataset.train_split,
        eval_video_ids=dataset.validation_video_ids,
        class_pairs=dataset.class_pairs,
    )


def prepare_eval_dataset(config: ml_collections.ConfigDict, extra: Any) -> Dataset:
    """An extra evaluation set (zero-shot / cross-dataset): its own folder, split, class names."""
    dataset_dir = source.resolve_dataset_dir(extra.dataset_dir)
    names = _class_names(extra.class_names, dataset_dir)
    return Dataset(dataset_dir, names, 0, "", extra.split)


def _split_size(sizes: dict[str, int], split: str, dataset_dir: str) -> int:
    base = split.split("[")[0]
    if base not in sizes:
        raise ValueError(f"{dataset_dir} has no split {base!r} (splits: {sorted(sizes)})")
    if "[" not in split:
        return sizes[base]
    return len(source.split_records(dataset_dir, split, process_index=0, process_count=1))


def few_shot_video_ids(
    dataset_dir: str,
    train_split: str,
    eval_split: str,
    k: int,
    seed: int,
    workdir: str,
    validation_per_class: int = 0,
) -> tuple[list[str], list[str] | None]:
    """(k videos per class drawn from `train_split`, the held-out validation videos or None).

    Both are pure functions of (list, k, seed); both lists are written to the workdir, and
    neither may overlap the evaluation split."""
    rows = [
        (video_id, label)
        for video_id, label, _ in source.read_split_index(dataset_dir, train_split)
    ]
    names = source.class_names(dataset_dir)
    drawn = few_shot_draw.draw_few_shot(rows, k, seed, num_classes=len(names), class_names=names)
    eval_ids = [video_id for video_id, _, _ in source.read_split_index(dataset_dir, eval_split)]
    where = f" ({dataset_dir} {eval_split})"
    few_shot_draw.check_disjoint([v for v, _ in drawn], eval_ids, where)
    held_out = None
    if validation_per_class:
        held_out = few_shot_draw.draw_validation(
            rows, validation_per_class, seed, k=k, num_classes=len(names), class_names=names
        )
        few_shot_draw.check_disjoint([v for v, _ in held_out], eval_ids, where)
    if jax.process_index() == 0:
        header = f"few-shot draw: {dataset_dir} {train_split}, k={k}, seed={seed}"
        few_shot_draw.write_video_list(
            os.path.join(workdir, few_shot_draw.list_filename("few_shot", k, seed)),
            drawn,
            f"{header}, {len(drawn)} videos\nvideo_id<TAB>label",
        )
        if held_out is not None:
            few_shot_draw.write_video_list(
                os.path.join(
                    workdir, few_shot_draw.validation_filename(validation_per_class, seed)
                ),
                held_out,
                f"validation videos held out of the {header} (the last {validation_per_class} "
                f"of each class's rank order), {len(held_out)} videos\nvideo_id<TAB>label",
            )
    ids = [video_id for video_id, _ in drawn]
    return ids, None if held_out is None else [video_id for video_id, _ in held_out]


def pipeline_options(
    config: ml_collections.ConfigDict, batch_size: int
) -> pipeline.PipelineOptions:
    """The config's clip shape and data switches for one process's batches of `batch_size`."""
    return pipeline.PipelineOptions(
        num_frames=config.model.num_frames,
        crop_size=config.data.crop_size,
        batch_size=batch_size,
        seed=config.seed,
        flip=config.data.flip,
        on_bad_record="skip" if config.data.skip_bad_records else "raise",
        uint8=True,  # a quarter of the bytes to the device; normalised inside the jitted step
    )


def train_iterator(
    config: ml_collections.ConfigDict,
    dataset: Dataset,
    start_step: int,
    process_index: int | None = None,
    process_count: int | None = None,
    undecoded: Iterable[tuple[int, int]] = (),
) -> Iterator[dict[str, np.ndarray]]:
    """This process's share of each global batch, from `start_step` on (exact resume): video,
    label, mask, and index / epoch (which video, in which of its epochs; a refilled slot holds
    its filler's). With data.resize_on_device, video holds crop windows and window_hw / flip come
    with them: `device_clips` finishes them into the clips.

    process_index / process_count default to JAX's; tests pass them to emulate a multi-host layout.
    undecoded: (split position, epoch) of clips whose video is left zeros (features cached).
    """
    process_count = jax.process_count() if process_count is None else process_count
    options = pipeline_options(config, config.train.batch_size // process_count)
    if config.data.resize_on_device:
        window = window_side(dataset.dataset_dir, dataset.train_split, options.crop_size)
        options = dataclasses.replace(options, window=window)
    batches = pipeline.make_train_iterator(
        dataset.dataset_dir,
        dataset.train_split,
        options,
        start_step=start_step,
        process_index=process_index,
        process_count=process_count,
        video_ids=dataset.train_video_ids,
        undecoded=undecoded,
    )
    for batch in _named_bad_records(batches, dataset, "training"):
        # A skipped bad record (counted and logged by the pipeline) keeps its slot with mask
        # False; the jitted step wants fixed shapes, so the slot is refilled from the same batch
        # and its mask stays False: the step leaves it out of the loss (a mean over valid clips).
        mask = batch["mask"]
        if not mask.all():
            batch = _drop_masked(batch)
        fields = (*PIXEL_FIELDS, "label", "index", "epoch")
        yield {"mask": mask, **{k: batch[k] for k in fields if k in batch}}


# What makes a training clip's pixels: the clip, or its crop window with window_hw and flip.
PIXEL_FIELDS = ("video", "window_hw", "flip")
_finish_clips = jax.jit(window_resize.finish_clips, static_argnums=3)


def window_side(dataset_dir: str, split: str, crop_size: int) -> int:
    """The side training crop windows are padded to: the short side of the split's first
    record's frames (data_prep stores every video at one short side), at least crop_size."""
    records = source.split_records(dataset_dir, split, process_index=0, process_count=1)
    first = tf.data.TFRecordDataset(records.files[0]).skip(int(records.offset[0])).take(1)
    try:
        example = tf.train.Example.FromString(next(iter(first)).numpy())
        height, width = transforms.frame_size(example.features.feature["video"].bytes_list.value[0])
    except (tf.errors.OpError, message.DecodeError, IndexError, ValueError, StopIteration):
        # A bad first record: the pipeline meets it and reports it (or skips it) where it is
        # read; until then, a crop-sized window: larger windows are resized on the host.
        return crop_size
    return max(int(min(height, width)), crop_size)


def device_clips(
    local: dict[str, np.ndarray], sharding: jax.sharding.NamedSharding, crop_size: int
) -> jax.Array:
    """This process's rows of a training batch -> the global uint8 clips (B, T, crop, crop, 3):
    `video` as it is, or with window_hw / flip, its crop windows resized, rounded and mirrored
    on the device (train/window_resize.py: the host's clips bit for bit)."""
    video = mesh_lib.global_batch(local["video"], sharding)
    if "window_hw" not in local:
        return video
    window_hw, flip = mesh_lib.global_batch((local["window_hw"], local["flip"]), sharding)
    return _finish_clips(video, window_hw, flip, crop_size, np.int32(0))


def _drop_masked(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Replaces skipped (masked) clips by valid clips of the same batch so shapes stay fixed."""
    valid = np.flatnonzero(batch["mask"])
    if valid.size == 0:
        raise ValueError("a whole training batch consists of skipped bad records")
    fill = valid[np.arange(len(batch["mask"])) % valid.size]
    take = np.where(batch["mask"], np.arange(len(batch["mask"])), fill)
    return {k: v[take] for k, v in batch.items()}


def eval_iterator(
    config: ml_collections.ConfigDict, dataset: Dataset, multiview: bool
) -> Iterator[dict[str, np.ndarray]]:
    """This process's share of each global eval batch; every process yields the same count."""
    batches = pipeline.make_eval_iterator(
        dataset.dataset_dir,
        dataset.eval_split,
        pipeline_options(config, config.eval.batch_size // jax.process_count()),
        multiview=multiview,
        video_ids=dataset.eval_video_ids,
    )
    return _named_bad_records(batches, dataset, "evaluation")


def allgather(local: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Concatenates each process's arrays in process order (identity with one process)."""
    if jax.process_count() == 1:
        return local
    return {
        k: np.asarray(multihost_utils.process_allgather(v, tiled=True)) for k, v in local.items()
    }
