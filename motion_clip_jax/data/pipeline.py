"""tf.data input pipelines: a dataset folder -> batches of CLIP-normalised clips as NumPy.

Both iterators take a `PipelineOptions` (clip shape, batch size, seed, output format, threading).

Training (`make_train_iterator`): process p reads its part of the split (source.split_records)
as an endless stream of epochs; epoch e visits the records in a permutation fixed by
(seed, p, e) (shuffle.stable_permutation), and the stream is cut into batches of `batch_size`
(batches run across epoch ends). A clip draws its frame offsets, crop and flip from the
stateless seed `train_clip_seed(seed, split position of its video, epoch)`: the clip of a video
in its e-th epoch is the same whatever the stream around it (process layout, few-shot draw,
batch), so its frozen image features can be cached and shared (train/train_features.py).
Records are read by position (shard file, record number), each from its byte offset
(record_offsets.py: one header and one record read, both CRCs checked), so the batch at step n
is a pure function of (data, seed, n, process layout) and `start_step=n` resumes exactly, at
once. Parallel reading keeps the order
(deterministic=True). `train_stream_rows` says, without reading anything, which (video, epoch)
each slot of a step's batch holds.

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

import dataclasses
import functools
import logging
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from motion_clip_jax.core.error_text import first_line
from motion_clip_jax.core.video_spec import NUM_TEST_CROPS, NUM_TEST_SAMPLINGS
from motion_clip_jax.data import record_offsets, sampling, shuffle, source, transforms

# The functions given to tf.data are written in graph style already (tf.cond, Python loops over
# static sizes): AutoGraph's source rewrite of them changes nothing and cost ~3 CPU-s per process.
graph_fn = tf.autograph.experimental.do_not_convert

_logger = logging.getLogger(__name__)


class BadRecordError(ValueError):
    """A record that cannot be turned into a clip; the message names shard file and record.

    where: '<shard file> record <k> (split position p, video_id v)'; reason: what failed."""

    def __init__(self, where: str, reason: str):
        super().__init__(
            f"bad record {where}: {reason} (pass on_bad_record='skip' to skip such records)"
        )
        self.where, self.reason = where, reason


def first_broken_frame(path: str) -> tuple[int, str] | None:
    """(number of the first record of a TFRecord file whose frame (length or CRC) does not
    check, the error) by reading the file through; None if every frame checks."""
    count = 0
    try:
        for _ in tf.data.TFRecordDataset(path):
            count += 1
    except tf.errors.DataLossError as error:
        return count, first_line(error)
    return None


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
        safe, the next) one by one, eagerly; failing that, the first shard of this process whose
        record frames do not check, read through file by file; the original error if neither."""
        for q in range(step * self.batch_size, (step + 2) * self.batch_size):
            i = self._locate(q)
            if i is None:
                continue
            try:
                for _ in self._element_dataset(q, i).take(1):
                    pass
            except tf.errors.OpError as element_error:
                reason = first_line(element_error)
                if isinstance(element_error, tf.errors.DataLossError):
                    path = self._records.files[self._records.file_index[i]]
                    broken = first_broken_frame(path)
                    if broken is not None and broken[0] != int(self._records.offset[i]):
                        reason += f" (the record frames of this shard break at record {broken[0]})"
                return BadRecordError(self._records.describe(i, self._video_ids), reason)
        for path in dict.fromkeys(self._records.files):
            broken = first_broken_frame(path)
            if broken is not None:
                return BadRecordError(f"{path} record {broken[0]}", broken[1])
        return error


@dataclasses.dataclass(frozen=True)
class PipelineOptions:
    """What every batch of a pipeline looks like, and how it is produced.

    num_frames: T frames per clip. crop_size: output side. batch_size: clips per batch on this
    process. seed: non-negative int; with the process layout it fixes every batch (training) or
    the 4 random samplings of multi-view (evaluation). uint8: yield video as uint8 RGB in
    [0, 255] instead of CLIP-normalised float32 (normalise on the accelerator with
    core.video_spec.normalize(x, jnp); a quarter of the bytes). on_bad_record: "raise" or "skip" (module docstring). flip: training
    random horizontal flip (turn off when left / right matters, e.g. synthetic data).
    crop_scales: training multi-scale crop, fractions of the short side. num_threads: size of a
    private tf.data thread pool (None: TF's shared pool). prefetch: batches prepared ahead.
    window: 0 resizes training clips here; W > 0 (uint8 only) leaves the resize, rounding and flip
    to the accelerator: video is then each clip's crop window, zero-padded to (T, W, W, 3), with
    window_hw (2,) its size and flip () its mirror bit; train/window_resize.finish_clips turns them
    into the same uint8 clips bit for bit (a window larger than W, or one TF would antialias, is
    resized here and sent as a crop x crop window).
    """

    num_frames: int
    crop_size: int
    batch_size: int
    seed: int = 0
    uint8: bool = False
    on_bad_record: str = "raise"
    flip: bool = True
    crop_scales: tuple[float, ...] = tuple(transforms.MULTISCALE_SCALES)
    num_threads: int | None = None
    prefetch: int = 2
    window: int = 0

    def __post_init__(self):
        if self.num_frames < 1 or self.crop_size < 1 or self.batch_size < 1:
            raise ValueError(
                f"num_frames, crop_size, batch_size must be >= 1; got {self.num_frames}, "
                f"{self.crop_size}, {self.batch_size}"
            )
        if self.on_bad_record not in ("raise", "skip"):
            raise ValueError(f"on_bad_record must be 'raise' or 'skip', got {self.on_bad_record!r}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")
        if self.window and (not self.uint8 or self.window < self.crop_size):
            raise ValueError(
                f"window={self.window} needs uint8=True and window >= crop_size ({self.crop_size})"
            )


def split_video_ids(data_dir: str, split: str) -> list[str] | None:
    """The video ids of `split` in split order (position -> id); None without a split index."""
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


# The seed tag of training clips (multi-view evaluation samplings use tag 1).
_TRAIN_SEED_TAG = 2


def train_clip_seed(seed: int, split_position: tf.Tensor, epoch: tf.Tensor) -> tf.Tensor:
    """The stateless seed (2,) of the training clip of a video (its position in the split) in its
    `epoch`-th epoch: a pure function of the three, so the clip is too."""
    base = tf.constant([seed, _TRAIN_SEED_TAG], tf.int64)
    per_video = tf.random.experimental.stateless_fold_in(base, tf.cast(split_position, tf.int64))
    return tf.random.experimental.stateless_fold_in(per_video, tf.cast(epoch, tf.int64))


def _train_clip(example, seed, *, num_frames, crop_size, crop_scales, flip, uint8, window):
    """{"video": one training clip (T, crop, crop, 3)}: uint8, or CLIP-normalised float32
    (`_finish`); with a `window`, its crop window and the fields that finish it on the device."""
    jpegs = example["video"]
    time_seed, crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 3))
    offsets = sampling.random_offsets_tf(num_frames, time_seed)
    sampled = tf.gather(jpegs, sampling.random_indices_tf(tf.size(jpegs), offsets))
    sampled = tf.ensure_shape(sampled, [num_frames])
    height, width = transforms.frame_size(sampled[0])
    box = transforms.multiscale_crop_box(height, width, crop_seed, crop_scales)
    if window:
        mirror = transforms.flip_drawn(flip_seed) if flip else tf.constant(False)
        return {**_crop_window(sampled, box, crop_size, window), "flip": mirror}
    # `_finish` is per pixel, so it commutes with the mirror: flipping its uint8 moves 4x fewer
    # bytes than flipping the float frames.
    frames = transforms.decode_crop_resize(sampled, box, crop_size, lambda f: _finish(f, uint8))
    if flip:
        frames = transforms.random_flip(frames, flip_seed)
    return {"video": frames}


def _crop_window(sampled, box, crop_size: int, window: int) -> dict[str, tf.Tensor]:
    """{"video": the T decoded crop windows zero-padded to (T, window, window, 3) uint8,
    "window_hw": their (h, w)}. A window the device resize cannot take (larger than `window`, or
    shrunk by more than 1.5x, where TF antialiases) is resized here: a crop x crop window."""
    h, w, steps = box[2], box[3], sampled.shape[0]
    fits = (tf.maximum(h, w) <= window) & (tf.maximum(h, w) * 2 <= crop_size * 3)

    def pad(frames, height, width):
        return tf.pad(frames, [[0, 0], [0, window - height], [0, window - width], [0, 0]])

    def raw():
        frames = [tf.image.decode_and_crop_jpeg(sampled[t], box, channels=3) for t in range(steps)]
        return pad(tf.stack(frames), h, w)

    def resized():
        frames = transforms.decode_crop_resize(sampled, box, crop_size, lambda f: _finish(f, True))
        return pad(frames, crop_size, crop_size)

    video = tf.cond(fits, raw, resized)
    video.set_shape([steps, window, window, 3])
    size = tf.where(fits, tf.stack([h, w]), tf.constant([crop_size, crop_size]))
    return {"video": video, "window_hw": size}


def _eval_clip(example, seed, *, num_frames, crop_size, multiview, uint8):
    """(T, crop, crop, 3), or (12, T, crop, crop, 3) for multiview: uint8 or normalised float32."""
    jpegs = example["video"]
    n = tf.size(jpegs)
    if not multiview:
        sampled = tf.gather(jpegs, sampling.centre_indices_tf(n, num_frames))
        sampled = tf.ensure_shape(sampled, [num_frames])
        height, width = transforms.frame_size(sampled[0])
        box = transforms.centre_crop_box(height, width)
        finish = lambda f: _finish(f, uint8)  # noqa: E731
        return {"video": transforms.decode_crop_resize(sampled, box, crop_size, finish)}
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
    return {"video": _finish(tf.stack(views), uint8)}


def _zeros(clip_spec: dict[str, tf.TensorSpec]) -> dict[str, tf.Tensor]:
    return {name: tf.zeros(spec.shape, spec.dtype) for name, spec in clip_spec.items()}


def _placeholder(
    clip_spec: dict[str, tf.TensorSpec], extra: dict[str, tf.Tensor]
) -> dict[str, tf.Tensor]:
    return {
        **_zeros(clip_spec),
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


def _element_factory(records, clip_fn, extras_fn, clip_spec, options: PipelineOptions):
    """-> (element_dataset, clips).

    element_dataset(q, i): a one-element dataset, the clip of record i at stream position q (also
    rebuilt eagerly to name a bad record). clips(positions): a dataset of (q, i) -> their clips in
    order (parallel, deterministic).
    """
    files = tf.constant(list(records.files), dtype=tf.string)
    file_index = tf.constant(records.file_index, dtype=tf.int64)
    offset = tf.constant(records.offset, dtype=tf.int64)
    byte_offset = tf.constant(
        record_offsets.byte_offsets(records.files, records.file_index, records.offset)
    )

    def read(i):
        return record_offsets.one_record(
            tf.gather(files, tf.gather(file_index, i)),
            tf.gather(offset, i),
            tf.gather(byte_offset, i),
        )

    def element(q, i, serialized):
        return {**clip_fn(serialized, q, i), **extras_fn(q, i)}

    def element_dataset(q, i):
        q, i = tf.cast(q, tf.int64), tf.cast(i, tf.int64)
        # Read inside flat_map (see record_offsets.one_record).
        ds = tf.data.Dataset.from_tensors(i).flat_map(graph_fn(read))
        ds = ds.map(graph_fn(lambda serialized: element(q, i, serialized)))
        if options.on_bad_record == "skip":
            fallback = _placeholder(clip_spec, extras_fn(q, i))
            ds = ds.ignore_errors().concatenate(tf.data.Dataset.from_tensors(fallback)).take(1)
        return ds

    def clips(positions: tf.data.Dataset) -> tf.data.Dataset:
        parallel = dict(
            cycle_length=tf.data.AUTOTUNE,
            block_length=1,
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
        if options.on_bad_record == "skip":
            # A bad record must turn into its placeholder in place: errors are caught per element.
            return positions.interleave(graph_fn(element_dataset), **parallel)

        # Otherwise only the reads are per element, and the clip graph is one top-level map: a
        # map inside the interleave instantiates every kernel of that graph anew for each record.
        def located_record(q, i):
            q, i = tf.cast(q, tf.int64), tf.cast(i, tf.int64)
            where = tf.data.Dataset.from_tensors((q, i))
            return tf.data.Dataset.zip(where, read(i)).map(
                graph_fn(lambda qi, s: (qi[0], qi[1], s))
            )

        serialized = positions.interleave(graph_fn(located_record), **parallel)
        return serialized.map(
            graph_fn(element), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
        )

    return element_dataset, clips


def _clip_fn(
    data_dir: str,
    options: PipelineOptions,
    make_video: Callable[[dict[str, tf.Tensor], tf.Tensor], dict[str, tf.Tensor]],
    stream: _Stream,
    clip_spec: dict[str, tf.TensorSpec],
) -> Callable[[tf.Tensor, tf.Tensor, tf.Tensor], dict[str, tf.Tensor]]:
    """(serialized record, stream position q, record index i) -> {video (+ clip_spec's other
    fields), label, mask}.

    make_video(example, seed) draws the clip's fields (`clip_spec`); stream.element_seed(q, i) its
    stateless seed. Where stream.undecoded(q, i) holds, they are zeros (nothing decoded).
    """
    spec = _parse_spec(source.open_builder(data_dir).info.features, ("video", "label"))

    def clip_fn(serialized, q, i):
        example = _parse(spec, serialized)
        draw = lambda: make_video(example, stream.element_seed(q, i))
        if stream.undecoded is None:
            fields = draw()
        else:
            fields = tf.cond(stream.undecoded(q, i), lambda: _zeros(clip_spec), draw)
        return {
            **fields,
            "label": tf.cast(example["label"], tf.int32),
            "mask": tf.constant(True),
        }

    return clip_fn


def _batches(
    positions: tf.data.Dataset,
    clips: Callable[[tf.data.Dataset], tf.data.Dataset],
    options: PipelineOptions,
    padding: tf.data.Dataset | None = None,
) -> tf.data.Dataset:
    """(q, i) pairs -> their clips in order (parallel, deterministic), [+ padding], batched."""
    ds = clips(positions)
    if padding is not None:
        ds = ds.concatenate(padding)
    ds = ds.batch(options.batch_size, drop_remainder=True).prefetch(options.prefetch)
    return ds.with_options(_options(options.num_threads))


@dataclasses.dataclass(frozen=True)
class _Stream:
    """What a training stream and an evaluation pass do differently, around one skeleton."""

    positions: tf.data.Dataset  # (stream position q, record index i) pairs, in stream order
    element_seed: Callable[[tf.Tensor, tf.Tensor], tf.Tensor]  # (q, i) -> the clip's seed
    extras: Callable[[tf.Tensor, tf.Tensor], dict[str, tf.Tensor]]  # (q, i) -> extra fields
    locate: Callable[[int], int | None]  # q -> record index (None: padding)
    first_step: int
    batches_per_epoch: float
    padding: dict[str, tf.Tensor] | None = None  # the extras of a padding element
    num_padding: int = 0
    undecoded: Callable[[tf.Tensor, tf.Tensor], tf.Tensor] | None = None  # (q, i) -> zeros?


def _local_records(data_dir, split, process_index, process_count, video_ids):
    """-> (this process's records of `split`, process index, process count)."""
    records = source.split_records(
        data_dir, split, process_index=process_index, process_count=process_count,
        video_ids=video_ids,
    )  # fmt: skip
    return (records, *source.process_layout(process_index, process_count))


def _video_batches(
    data_dir: str,
    split: str,
    options: PipelineOptions,
    records,
    make_video: Callable[[dict[str, tf.Tensor], tf.Tensor], dict[str, tf.Tensor]],
    clip_spec: dict[str, tf.TensorSpec],
    stream: _Stream,
) -> VideoBatches:
    """The shared skeleton: records -> clips (make_video(example, seed)) -> batches."""
    clip_fn = _clip_fn(data_dir, options, make_video, stream, clip_spec)
    element_dataset, clips = _element_factory(records, clip_fn, stream.extras, clip_spec, options)
    padding = None
    if stream.padding is not None:
        element = _placeholder(clip_spec, stream.padding)
        padding = tf.data.Dataset.from_tensors(element).repeat(stream.num_padding)
    return VideoBatches(
        _batches(stream.positions, clips, options, padding),
        first_step=stream.first_step,
        batch_size=options.batch_size,
        locate=stream.locate,
        records=records,
        video_ids=split_video_ids(data_dir, split),
        element_dataset=element_dataset,
        num_local_examples=len(records),
        batches_per_epoch=stream.batches_per_epoch,
    )


def make_train_iterator(
    data_dir: str,
    split: str,
    options: PipelineOptions,
    *,
    start_step: int = 0,
    process_index: int | None = None,
    process_count: int | None = None,
    video_ids: Iterable[str] | None = None,
    undecoded: Iterable[tuple[int, int]] = (),
) -> VideoBatches:
    """Endless training batches of this process (options.batch_size is per process).

    Args:
      data_dir: dataset folder `<root>/<name>/<version>` (or `<root>/<name>`).
      split: tfds split, slicing allowed ("train", "train[:10%]").
      options: clip shape (segment sampling, a random frame per segment; multi-scale crop
        `crop_scales` of the short side, then resize), batch size, seed, flip, output format.
      start_step: first batch to yield; the batches equal those an iterator from 0 yields there.
      process_index / process_count: default jax.process_index() / jax.process_count().
      video_ids: train only on these videos of `split` (e.g. a few-shot draw).
      undecoded: (split position, epoch) of clips not to decode (their features are cached):
        their video is zeros, their label and mask as read.

    Yields dicts: video float32 (B, T, crop, crop, 3) (uint8 with options.uint8), label int32
    (B,), mask bool (B,) (False only for a skipped bad record), epoch int32 (B,) (epoch of each
    clip in this process's stream), index int32 (B,) (its video's position in the split).
    """
    if start_step < 0:
        raise ValueError(f"start_step must be >= 0, got {start_step}")
    records, process_index, _ = _local_records(
        data_dir, split, process_index, process_count, video_ids
    )
    n = len(records)
    if n == 0:
        raise ValueError(f"{data_dir} split {split!r}: process {process_index} has no records")
    split_position = tf.constant(records.position, dtype=tf.int64)  # record index -> in split
    make_video = functools.partial(
        _train_clip, num_frames=options.num_frames, crop_size=options.crop_size,
        crop_scales=tuple(options.crop_scales), flip=options.flip, uint8=options.uint8,
        window=options.window,
    )  # fmt: skip
    epoch_order = functools.partial(_epoch_order, n, options.seed, process_index)

    def epoch_records(epoch):
        order = tf.numpy_function(epoch_order, [epoch], tf.int64, stateful=False)
        order = tf.ensure_shape(order, [n])
        return tf.data.Dataset.from_tensor_slices((epoch * n + tf.range(n, dtype=tf.int64), order))

    first = start_step * options.batch_size
    positions = tf.data.Dataset.range(first // n, np.iinfo(np.int64).max // (n + 1))
    stream = _Stream(
        positions=positions.flat_map(graph_fn(epoch_records)).skip(first % n),
        element_seed=lambda q, i: train_clip_seed(
            options.seed, tf.gather(split_position, i), q // n
        ),
        extras=lambda q, i: {
            "epoch": tf.cast(q // n, tf.int32),
            "index": tf.cast(tf.gather(split_position, i), tf.int32),
            "_stream_position": q,
        },
        locate=lambda q: int(epoch_order(q // n)[q % n]),
        first_step=start_step,
        batches_per_epoch=n / options.batch_size,
        undecoded=_clip_lookup(undecoded, split_position, n),
    )
    return _video_batches(
        data_dir, split, options, records, make_video, _train_spec(options), stream
    )


def _train_spec(options: PipelineOptions) -> dict[str, tf.TensorSpec]:
    """The fields of a training clip (`_train_clip`)."""
    if not options.window:
        side = options.crop_size
        dtype = tf.uint8 if options.uint8 else tf.float32
        return {"video": tf.TensorSpec((options.num_frames, side, side, 3), dtype)}
    side = options.window
    return {
        "video": tf.TensorSpec((options.num_frames, side, side, 3), tf.uint8),
        "window_hw": tf.TensorSpec((2,), tf.int32),
        "flip": tf.TensorSpec((), tf.bool),
    }


def _epoch_order(n: int, seed: int, process_index: int, epoch: int) -> np.ndarray:
    """The order (n,) in which process `process_index` visits its n records in `epoch`."""
    return shuffle.stable_permutation(n, (seed, process_index, int(epoch)))


def _clip_lookup(clips: Iterable[tuple[int, int]], split_position: tf.Tensor, n: int):
    """(q, i) -> whether (split position of record i, epoch q // n) is one of `clips`; None when
    there are none."""
    keys = [position * 2**32 + epoch for position, epoch in clips]
    if not keys:
        return None
    table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(
            tf.constant(keys, tf.int64), tf.ones(len(keys), tf.int32)
        ),
        default_value=0,
    )
    return lambda q, i: table.lookup(tf.gather(split_position, i) * 2**32 + q // n) > 0


def train_stream_rows(
    data_dir: str,
    split: str,
    options: PipelineOptions,
    steps: range,
    *,
    process_index: int | None = None,
    process_count: int | None = None,
    video_ids: Iterable[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(split positions, epochs), both (len(steps), batch_size) int64: which video, in which of
    its epochs, fills each slot of this process's batch at each step of make_train_iterator with
    the same arguments (before any bad record is refilled). Reads only the split's index."""
    records, process_index, _ = _local_records(
        data_dir, split, process_index, process_count, video_ids
    )
    n, b = len(records), options.batch_size
    q = np.arange(steps.start * b, steps.stop * b, dtype=np.int64).reshape(len(steps), b)
    epochs = q // n
    record = np.empty_like(q)
    for epoch in np.unique(epochs):
        where = epochs == epoch
        record[where] = _epoch_order(n, options.seed, process_index, int(epoch))[q[where] % n]
    return np.asarray(records.position, np.int64)[record], epochs


def make_eval_iterator(
    data_dir: str,
    split: str,
    options: PipelineOptions,
    *,
    multiview: bool = False,
    process_index: int | None = None,
    process_count: int | None = None,
    video_ids: Iterable[str] | None = None,
) -> VideoBatches:
    """One pass over this process's part of `split`, padded to a common number of batches.

    Args as make_train_iterator (flip and crop_scales unused); multiview: 4 x 3 views instead of
    the single centre view; options.seed keys the 4 random samplings of multiview (per video:
    fold_in((seed, 1), split position)).

    Yields dicts: video float32 (B, T, crop, crop, 3), or (B, 12, T, crop, crop, 3) with
    multiview (view = sampling * 3 + crop; crops left / centre / right); label int32 (B,);
    mask bool (B,) (False: padding or a skipped record: leave it out of every metric);
    index int32 (B,) (record number in the split, -1 for padding).
    """
    if video_ids is not None:
        video_ids = list(dict.fromkeys(video_ids))
    records, _, process_count = _local_records(
        data_dir, split, process_index, process_count, video_ids
    )
    if video_ids is None:
        total = source.open_builder(data_dir).info.splits[split].num_examples
    else:
        total = len(video_ids)
    if total == 0:
        raise ValueError(f"{data_dir} split {split!r} has no records")
    num_batches = math.ceil(-(-total // process_count) / options.batch_size)
    n = len(records)
    base_seed = tf.constant([options.seed, 1], tf.int64)
    split_position = tf.constant(records.position, dtype=tf.int64)  # record index -> in split
    make_video = functools.partial(
        _eval_clip, num_frames=options.num_frames, crop_size=options.crop_size,
        multiview=multiview, uint8=options.uint8,
    )  # fmt: skip
    stream = _Stream(
        positions=tf.data.Dataset.range(n).map(graph_fn(lambda q: (q, q))),
        element_seed=lambda q, i: tf.random.experimental.stateless_fold_in(
            base_seed, tf.gather(split_position, i)
        ),
        extras=lambda q, i: {
            "index": tf.cast(tf.gather(split_position, i), tf.int32),
            "_stream_position": q,
        },
        locate=lambda q: q if 0 <= q < n else None,
        first_step=0,
        batches_per_epoch=num_batches,
        padding={"index": tf.constant(-1, tf.int32), "_stream_position": tf.constant(-1, tf.int64)},
        num_padding=num_batches * options.batch_size - n,
    )
    clip_shape = (options.num_frames, options.crop_size, options.crop_size, 3)
    video_shape = (NUM_TEST_SAMPLINGS * NUM_TEST_CROPS, *clip_shape) if multiview else clip_shape
    dtype = tf.uint8 if options.uint8 else tf.float32
    clip_spec = {"video": tf.TensorSpec(video_shape, dtype)}
    return _video_batches(data_dir, split, options, records, make_video, clip_spec, stream)


def describe_dataset(data_dir: str) -> dict[str, Any]:
    """{"dataset_dir", "class_names", "split_sizes"} from the tfds metadata."""
    return {
        "dataset_dir": source.resolve_dataset_dir(data_dir),
        "class_names": source.class_names(data_dir),
        "split_sizes": source.split_sizes(data_dir),
    }
