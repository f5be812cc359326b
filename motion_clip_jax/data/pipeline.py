"""tf.data input pipelines: a dataset folder -> batches of CLIP-normalised clips as NumPy.

Training (`make_train_iterator`): process p reads its part of the split (source.split_records)
as an endless stream of epochs; epoch e visits the records in a permutation fixed by
(seed, p, e) (shuffle.stable_permutation), and the stream is cut into batches of `batch_size`
(batches run across epoch ends). Element q of the stream (q = step * batch_size + b) draws its
frame offsets, crop and flip from a stateless seed fold_in((seed, p), q). Records are read by
position (shard file, record number; TFRecord skips seek over records without reading them),
so the batch at step n is a pure function of (data, seed, n, process layout) and
`start_step=n` resumes exactly, at once. Parallel reading keeps the order (deterministic=True).

Evaluation (`make_eval_iterator`): each process reads its part in split order; centre sampling and
centre crop, or 4 x 3 views (4 seeded random samplings x left / centre / right crops). The last
batch is padded (mask False, label -1, index -1) and every process yields the same number of
batches, so counting `mask` counts each video exactly once.

Only the T sampled JPEGs of a video are decoded (and for training, only the crop window).
Bad records (undecodable JPEG, malformed record, no frames): on_bad_record="raise" raises
BadRecordError naming the shard file, record number and video id; "skip" replaces the clip by a
masked placeholder (mask False, label -1), logs it by name and counts it in `.skipped`, which keeps
every later batch where it would have been.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from motion_clip_jax.data import sampling, shuffle, source, transforms

NUM_TEST_SAMPLINGS = 4  # multi-view test: 4 temporal samplings ...
NUM_TEST_CROPS = 3  # ... x 3 spatial crops = 12 views, view index = sampling * 3 + crop

_logger = logging.getLogger(__name__)


class BadRecordError(RuntimeError):
    """A record that cannot be turned into a clip; the message names shard file and record."""


class VideoBatches(Iterator[dict[str, np.ndarray]]):
    """Iterator of batch dicts (see make_train_iterator / make_eval_iterator).

    Attributes: next_step (index of the batch `next()` returns), num_local_examples (videos this
    process reads per epoch), batches_per_epoch (num_local_examples / batch_size for training,
    the exact count for evaluation), skipped (descriptions of records skipped so far).
    """

    def __init__(
        self,
        dataset,
        *,
        first_step,
        batch_size,
        locate,
        records,
        video_ids,
        element_dataset,
        num_local_examples,
        batches_per_epoch,
    ):
        self._iterator = iter(tfds.as_numpy(dataset))
        self._locate = locate  # stream position -> index into `records` (or None for padding)
        self._records = records
        self._video_ids = video_ids
        self._element_dataset = element_dataset
        self.batch_size = batch_size
        self.next_step = first_step
        self.num_local_examples = num_local_examples
        self.batches_per_epoch = batches_per_epoch
        self.skipped: list[str] = []

    def __next__(self) -> dict[str, np.ndarray]:
        step = self.next_step
        try:
            batch = next(self._iterator)
        except tf.errors.OpError as error:
            raise self._diagnose(step, error) from error
        self.next_step += 1
        stream_positions = batch.pop("_stream_position")
        bad = ~batch["mask"] & (stream_positions >= 0)
        for q in stream_positions[bad]:
            i = self._locate(int(q))
            text = self._records.describe(i, self._video_ids)
            self.skipped.append(text)
            _logger.warning("skipped a bad record (on_bad_record='skip'): %s", text)
        return batch

    def _diagnose(self, step: int, error: Exception) -> Exception:
        """Finds the element that failed by rebuilding the elements of batch `step` (and, to be
        safe, the next) one by one, eagerly; the original error if none fails alone."""
        for q in range(step * self.batch_size, (step + 2) * self.batch_size):
            i = self._locate(q)
            if i is None:
                continue
            try:
                for _ in self._element_dataset(q, i).take(1):
                    pass
            except tf.errors.OpError as element_error:
                message = element_error.message.strip().splitlines()[0]
                return BadRecordError(
                    f"bad record {self._records.describe(i, self._video_ids)}: "
                    f"{type(element_error).__name__}: {message} (pass on_bad_record='skip' to "
                    "skip such records)"
                )
        return error


def _check_common(num_frames: int, crop_size: int, batch_size: int, on_bad_record: str) -> None:
    if num_frames < 1 or crop_size < 1 or batch_size < 1:
        raise ValueError(
            f"num_frames, crop_size, batch_size must be >= 1; got {num_frames}, "
            f"{crop_size}, {batch_size}"
        )
    if on_bad_record not in ("raise", "skip"):
        raise ValueError(f"on_bad_record must be 'raise' or 'skip', got {on_bad_record!r}")


def _video_ids_or_none(data_dir: str, split: str) -> list[str] | None:
    base_split = split.split("[")[0]
    if "+" in split:
        return None
    try:
        return [video_id for video_id, _, _ in source.read_split_index(data_dir, base_split)]
    except (OSError, ValueError):
        return None


def _parse_spec(features, keys: Sequence[str]) -> dict[str, Any]:
    """tf.io parsing spec for some keys of the tfds record, from tfds' own serialized info.

    Parsing only what a clip needs (encoded frames, label) costs ~0.1 ms per 1.5 MB record, where
    the full tfds `deserialize_example` (every feature, then decoders) costs ~1.5 ms.
    """
    info = features.get_serialized_info()
    spec = {}
    for key in keys:
        tensor_info = info[key]
        if tuple(tensor_info.shape) == (None,):
            spec[key] = tf.io.FixedLenSequenceFeature([], tensor_info.tf_dtype, allow_missing=True)
        elif tuple(tensor_info.shape) == ():
            spec[key] = tf.io.FixedLenFeature([], tensor_info.tf_dtype)
        else:
            raise ValueError(f"unexpected serialized shape {tensor_info.shape} of feature {key!r}")
    return spec


def _parse(spec, serialized: tf.Tensor) -> dict[str, tf.Tensor]:
    """The record's features in `spec`; 'video' stays encoded: (N,) JPEG strings, N >= 1."""
    example = tf.io.parse_single_example(serialized, spec)
    tf.debugging.assert_positive(tf.size(example["video"]), message="record holds no frames")
    return example


def _finish(frames: tf.Tensor, uint8: bool) -> tf.Tensor:
    """[0, 255] float frames -> uint8 (rounded), or CLIP-normalised float32."""
    if uint8:
        # Bilinear resizing of [0, 255] values stays in [0, 255]: +0.5 and truncation round.
        return tf.cast(frames + 0.5, tf.uint8)
    return transforms.normalize(frames)


def _train_clip(example, seed, *, num_frames, crop_size, crop_scales, flip):
    """One training clip (T, crop, crop, 3) float32 in [0, 255]."""
    jpegs = example["video"]
    time_seed, crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 3))
    offsets = sampling.random_offsets_tf(num_frames, time_seed)
    sampled = tf.gather(jpegs, sampling.random_indices_tf(tf.size(jpegs), offsets))
    sampled = tf.ensure_shape(sampled, [num_frames])
    height, width = transforms.frame_size(sampled[0])
    box = transforms.multiscale_crop_box(height, width, crop_seed, crop_scales)
    frames = transforms.decode_crop_resize(sampled, box, crop_size)
    if flip:
        frames = transforms.random_flip(frames, flip_seed)
    return frames


def _eval_clip(example, seed, *, num_frames, crop_size, multiview):
    """(T, crop, crop, 3), or (12, T, crop, crop, 3) for multiview, float32 in [0, 255]."""
    jpegs = example["video"]
    n = tf.size(jpegs)
    if not multiview:
        sampled = tf.gather(jpegs, sampling.centre_indices_tf(n, num_frames))
        sampled = tf.ensure_shape(sampled, [num_frames])
        height, width = transforms.frame_size(sampled[0])
        box = transforms.centre_crop_box(height, width)
        return transforms.decode_crop_resize(sampled, box, crop_size)
    view_seeds = tf.unstack(tf.random.experimental.stateless_split(seed, NUM_TEST_SAMPLINGS))
    indices = tf.concat(
        [
            sampling.random_indices_tf(n, sampling.random_offsets_tf(num_frames, s))
            for s in view_seeds
        ],
        axis=0,
    )
    sampled = tf.gather(jpegs, indices)
    frames = tf.stack(
        [tf.io.decode_jpeg(sampled[k], channels=3) for k in range(NUM_TEST_SAMPLINGS * num_frames)]
    )  # (4T, H, W, 3)
    shape = tf.shape(frames)
    boxes = transforms.side_crop_boxes(shape[1], shape[2])
    views = []
    for sampling_index in range(NUM_TEST_SAMPLINGS):
        clip = frames[sampling_index * num_frames : (sampling_index + 1) * num_frames]
        for crop_index in range(NUM_TEST_CROPS):
            y, x, h, w = tf.unstack(boxes[crop_index])
            views.append(transforms.resize(clip[:, y : y + h, x : x + w], crop_size))
    return tf.stack(views)


def _placeholder(video_shape, uint8: bool, extra: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
    return {
        "video": tf.zeros(video_shape, tf.uint8 if uint8 else tf.float32),
        "label": tf.constant(-1, tf.int32),
        "mask": tf.constant(False),
        **extra,
    }


def _options(num_threads: int | None) -> tf.data.Options:
    options = tf.data.Options()
    options.deterministic = True
    if num_threads:
        options.threading.private_threadpool_size = num_threads
        options.threading.max_intra_op_parallelism = 1
    return options


def _element_factory(records, clip_fn, extras_fn, video_shape, uint8, skip_bad):
    """(stream position q, record index i) -> a one-element dataset: the clip of record i."""
    files = tf.constant(list(records.files), dtype=tf.string)
    file_index = tf.constant(records.file_index, dtype=tf.int64)
    offset = tf.constant(records.offset, dtype=tf.int64)

    def element_dataset(q, i):
        q, i = tf.cast(q, tf.int64), tf.cast(i, tf.int64)
        # Unbuffered: one read per record; skipping seeks over records by their length headers
        # (a read buffer would be refilled at every seek: ~2x the per-record cost here).
        ds = tf.data.TFRecordDataset(tf.gather(files, tf.gather(file_index, i)), buffer_size=0)
        ds = ds.skip(tf.gather(offset, i)).take(1)
        ds = ds.map(lambda serialized: {**clip_fn(serialized, q, i), **extras_fn(q, i)})
        if skip_bad:
            fallback = _placeholder(video_shape, uint8, extras_fn(q, i))
            ds = ds.ignore_errors().concatenate(tf.data.Dataset.from_tensors(fallback)).take(1)
        return ds

    return element_dataset


def make_train_iterator(
    data_dir: str,
    split: str = "train",
    *,
    num_frames: int,
    crop_size: int,
    batch_size: int,
    seed: int,
    start_step: int = 0,
    process_index: int | None = None,
    process_count: int | None = None,
    video_ids: Iterable[str] | None = None,
    crop_scales: Sequence[float] = transforms.MULTISCALE_SCALES,
    flip: bool = True,
    on_bad_record: str = "raise",
    uint8: bool = False,
    num_threads: int | None = None,
    prefetch: int = 2,
) -> VideoBatches:
    """Endless training batches of this process (batch_size is per process).

    Args:
      data_dir: dataset folder `<root>/<name>/<version>` (or `<root>/<name>`).
      split: tfds split, slicing allowed ("train", "train[:10%]").
      num_frames: T frames per clip (segment sampling, a random frame per segment).
      crop_size: output side; multi-scale crop `crop_scales` of the short side, then resize.
      batch_size: clips per batch on this process.
      seed: non-negative int; with the process layout it fixes every batch.
      start_step: first batch to yield; the batches equal those an iterator from 0 yields there.
      process_index / process_count: default jax.process_index() / jax.process_count().
      video_ids: train only on these videos of `split` (e.g. a few-shot draw).
      flip: random horizontal flip (turn off when left / right matters, e.g. synthetic data).
      on_bad_record: "raise" or "skip" (see module docstring).
      uint8: yield video as uint8 RGB in [0, 255] instead of CLIP-normalised float32; normalise
        on the accelerator (device.normalize). A quarter of the bytes to copy and transfer.
      num_threads: size of a private tf.data thread pool (None: TF's shared pool).
      prefetch: batches prepared ahead.

    Yields dicts: video float32 (B, T, crop, crop, 3), label int32 (B,), mask bool (B,) (False only
    for a skipped bad record), epoch int32 (B,) (epoch of each clip in this process's stream).
    """
    _check_common(num_frames, crop_size, batch_size, on_bad_record)
    if seed < 0 or start_step < 0:
        raise ValueError(f"seed and start_step must be >= 0, got {seed}, {start_step}")
    records = source.split_records(
        data_dir,
        split,
        process_index=process_index,
        process_count=process_count,
        video_ids=video_ids,
    )
    process_index, _ = source.process_layout(process_index, process_count)
    n = len(records)
    if n == 0:
        raise ValueError(f"{data_dir} split {split!r}: process {process_index} has no records")
    spec = _parse_spec(source.open_builder(data_dir).info.features, ("video", "label"))
    base_seed = tf.constant([seed, process_index], tf.int64)

    def clip_fn(serialized, q, i):
        example = _parse(spec, serialized)
        element_seed = tf.random.experimental.stateless_fold_in(base_seed, q)
        video = _train_clip(
            example,
            element_seed,
            num_frames=num_frames,
            crop_size=crop_size,
            crop_scales=tuple(crop_scales),
            flip=flip,
        )
        video = _finish(video, uint8)
        return {
            "video": video,
            "label": tf.cast(example["label"], tf.int32),
            "mask": tf.constant(True),
        }

    def extras_fn(q, i):
        return {"epoch": tf.cast(q // n, tf.int32), "_stream_position": q}

    video_shape = (num_frames, crop_size, crop_size, 3)
    element_dataset = _element_factory(
        records, clip_fn, extras_fn, video_shape, uint8, on_bad_record == "skip"
    )

    def epoch_order(epoch):
        return shuffle.stable_permutation(n, (seed, process_index, int(epoch)))

    def locate(q: int) -> int:
        return int(epoch_order(q // n)[q % n])

    def epoch_records(epoch):
        order = tf.numpy_function(epoch_order, [epoch], tf.int64, stateful=False)
        order = tf.ensure_shape(order, [n])
        return tf.data.Dataset.from_tensor_slices((epoch * n + tf.range(n, dtype=tf.int64), order))

    first = start_step * batch_size
    positions = tf.data.Dataset.range(first // n, np.iinfo(np.int64).max // (n + 1))
    positions = positions.flat_map(epoch_records).skip(first % n)
    ds = positions.interleave(
        element_dataset,
        cycle_length=tf.data.AUTOTUNE,
        block_length=1,
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    ds = ds.batch(batch_size, drop_remainder=True).prefetch(prefetch)
    ds = ds.with_options(_options(num_threads))
    video_ids_list = _video_ids_or_none(data_dir, split)
    return VideoBatches(
        ds,
        first_step=start_step,
        batch_size=batch_size,
        locate=locate,
        records=records,
        video_ids=video_ids_list,
        element_dataset=element_dataset,
        num_local_examples=n,
        batches_per_epoch=n / batch_size,
    )


def make_eval_iterator(
    data_dir: str,
    split: str = "test",
    *,
    num_frames: int,
    crop_size: int,
    batch_size: int,
    multiview: bool = False,
    seed: int = 0,
    process_index: int | None = None,
    process_count: int | None = None,
    video_ids: Iterable[str] | None = None,
    on_bad_record: str = "raise",
    uint8: bool = False,
    num_threads: int | None = None,
    prefetch: int = 2,
) -> VideoBatches:
    """One pass over this process's part of `split`, padded to a common number of batches.

    Args as make_train_iterator (uint8 included); multiview: 4 x 3 views instead of the single
    centre view; seed keys the 4 random samplings of multiview (per video: fold_in((seed, 1),
    split position)).

    Yields dicts: video float32 (B, T, crop, crop, 3), or (B, 12, T, crop, crop, 3) with
    multiview (view = sampling * 3 + crop; crops left / centre / right); label int32 (B,);
    mask bool (B,) (False: padding or a skipped record: leave it out of every metric);
    index int32 (B,) (record number in the split, -1 for padding).
    """
    _check_common(num_frames, crop_size, batch_size, on_bad_record)
    if video_ids is not None:
        video_ids = list(dict.fromkeys(video_ids))
    records = source.split_records(
        data_dir,
        split,
        process_index=process_index,
        process_count=process_count,
        video_ids=video_ids,
    )
    process_index, process_count = source.process_layout(process_index, process_count)
    if video_ids is None:
        total = source.open_builder(data_dir).info.splits[split].num_examples
    else:
        total = len(video_ids)
    if total == 0:
        raise ValueError(f"{data_dir} split {split!r} has no records")
    most_per_process = -(-total // process_count)
    num_batches = math.ceil(most_per_process / batch_size)
    n = len(records)
    spec = _parse_spec(source.open_builder(data_dir).info.features, ("video", "label"))
    base_seed = tf.constant([seed, 1], tf.int64)
    positions_table = tf.constant(records.position, dtype=tf.int64)

    def clip_fn(serialized, q, i):
        example = _parse(spec, serialized)
        element_seed = tf.random.experimental.stateless_fold_in(
            base_seed, tf.gather(positions_table, i)
        )
        video = _eval_clip(
            example, element_seed, num_frames=num_frames, crop_size=crop_size, multiview=multiview
        )
        video = _finish(video, uint8)
        return {
            "video": video,
            "label": tf.cast(example["label"], tf.int32),
            "mask": tf.constant(True),
        }

    def extras_fn(q, i):
        return {"index": tf.cast(tf.gather(positions_table, i), tf.int32), "_stream_position": q}

    if multiview:
        video_shape = (NUM_TEST_SAMPLINGS * NUM_TEST_CROPS, num_frames, crop_size, crop_size, 3)
    else:
        video_shape = (num_frames, crop_size, crop_size, 3)
    element_dataset = _element_factory(
        records, clip_fn, extras_fn, video_shape, uint8, on_bad_record == "skip"
    )
    ds = tf.data.Dataset.range(n).map(lambda q: (q, q))
    ds = ds.interleave(
        element_dataset,
        cycle_length=tf.data.AUTOTUNE,
        block_length=1,
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    padding = _placeholder(
        video_shape,
        uint8,
        {"index": tf.constant(-1, tf.int32), "_stream_position": tf.constant(-1, tf.int64)},
    )
    ds = ds.concatenate(tf.data.Dataset.from_tensors(padding).repeat(num_batches * batch_size - n))
    ds = ds.batch(batch_size, drop_remainder=True).prefetch(prefetch)
    ds = ds.with_options(_options(num_threads))
    return VideoBatches(
        ds,
        first_step=0,
        batch_size=batch_size,
        locate=lambda q: q if 0 <= q < n else None,
        records=records,
        video_ids=_video_ids_or_none(data_dir, split),
        element_dataset=element_dataset,
        num_local_examples=n,
        batches_per_epoch=num_batches,
    )


def describe_dataset(data_dir: str) -> dict[str, Any]:
    """{"dataset_dir", "class_names", "split_sizes"} from the tfds metadata."""
    return {
        "dataset_dir": source.resolve_dataset_dir(data_dir),
        "class_names": source.class_names(data_dir),
        "split_sizes": source.split_sizes(data_dir),
    }
