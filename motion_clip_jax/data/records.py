"""The on-disk video record format: a tensorflow-datasets dataset of TFRecord shards.

One record = one video, a `tf.train.Example` serialised by these tfds features:
  video       tfds.features.Video of JPEG frames, (N, H, W, 3), N >= 1, every frame the same size
  label       ClassLabel carrying the class names (index = label)
  label_text  the class name as text
  video_id    unique id within the dataset, e.g. "brush_hair/April_09_brush_hair_u_nm_np1_ba_goo_0"
  fps         frames per second of the stored frames (after any frame-rate cap), float32

Files of a dataset `name` (one folder per version, e.g. `<root>/<name>/1.0.0/`):
  <name>-<split>.tfrecord-<i:05d>-of-<n:05d>    the shards
  dataset_info.json, features.json, *.labels.txt  tfds metadata (`tfds.folder_dataset.write_metadata`)
  <split>.index.tsv                              video_id, label, num_frames per record, in order
So `tfds.builder_from_directory(<root>/<name>/1.0.0)` and `tfds.load(name, data_dir=<root>)` open it.
Used by data_prep (real videos) and the synthetic writer alike.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from tensorflow_datasets.core import example_serializer

VERSION = "1.0.0"
FILE_FORMAT = "tfrecord"
INDEX_SUFFIX = ".index.tsv"


def video_features(class_names: Sequence[str]) -> tfds.features.FeaturesDict:
    """The tfds features of one video record (see the module docstring)."""
    return tfds.features.FeaturesDict(
        {
            "video": tfds.features.Video(shape=(None, None, None, 3), encoding_format="jpeg"),
            "label": tfds.features.ClassLabel(names=list(class_names)),
            "label_text": tfds.features.Text(),
            "video_id": tfds.features.Text(),
            "fps": tfds.features.Scalar(dtype=np.float32),
        }
    )


def serialize_video(
    features: tfds.features.FeaturesDict,
    *,
    video_id: str,
    label: int,
    frames_jpeg: Sequence[bytes],
    fps: float,
) -> bytes:
    """One record: the already JPEG-encoded frames are stored as they are (no re-encoding).

    Byte-identical for equal inputs in every process: a `tf.train.Example`'s feature map is
    serialised in a per-process order unless asked for a deterministic one, which sorts it.
    """
    if not frames_jpeg:
        raise ValueError(f"video {video_id!r}: no frames to store")
    names = features["label"].names
    if not 0 <= label < len(names):
        raise ValueError(f"video {video_id!r}: label {label} outside [0, {len(names)})")
    encoded = features.encode_example(
        {
            "video": list(frames_jpeg),
            "label": label,
            "label_text": names[label],
            "video_id": video_id,
            "fps": float(fps),
        }
    )
    serializer = example_serializer.ExampleSerializer(features.get_serialized_info())
    return serializer.get_tf_example(encoded).SerializeToString(deterministic=True)


def shard_filename(name: str, split: str, index: int, count: int) -> str:
    """tfds' default file name of shard `index` of `count` of a split."""
    return f"{name}-{split}.{FILE_FORMAT}-{index:05d}-of-{count:05d}"


def write_tfrecord(path: str, records: Iterable[bytes]) -> int:
    """Writes `records` to `path` atomically (temp file, then rename); returns the byte count."""
    tmp_path = f"{path}.tmp-{os.getpid()}"
    with tf.io.TFRecordWriter(tmp_path) as writer:
        for record in records:
            writer.write(record)
    os.replace(tmp_path, path)
    return os.path.getsize(path)


def write_index(path: str, rows: Iterable[tuple[str, int, int]]) -> None:
    """Writes the per-record index (video_id, label, num_frames), tab separated, atomically."""
    tmp_path = f"{path}.tmp-{os.getpid()}"
    with open(tmp_path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, delimiter="\t", lineterminator="\n")
        writer.writerow(["video_id", "label", "num_frames"])
        for video_id, label, num_frames in rows:
            writer.writerow([video_id, int(label), int(num_frames)])
    os.replace(tmp_path, path)


def read_index(path: str) -> list[tuple[str, int, int]]:
    """Reads an index written by `write_index`: [(video_id, label, num_frames)] in record order."""
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.reader(f, delimiter="\t")
        header = next(reader, None)
        if header != ["video_id", "label", "num_frames"]:
            raise ValueError(f"{path}: not a video index (header {header!r})")
        rows = []
        for line_number, row in enumerate(reader, start=2):
            if len(row) != 3:
                raise ValueError(f"{path} line {line_number}: expected 3 fields, got {row!r}")
            rows.append((row[0], int(row[1]), int(row[2])))
    return rows


def write_metadata(
    dataset_dir: str,
    *,
    class_names: Sequence[str],
    shard_lengths: Mapping[str, Sequence[int]],
    shard_bytes: Mapping[str, int] | None = None,
    description: str = "",
) -> None:
    """Writes tfds' dataset_info.json / features.json for shards already in `dataset_dir`.

    `dataset_dir` is `<root>/<name>/<version>`; shard_lengths maps split -> records per shard.
    """
    name = os.path.basename(os.path.dirname(os.path.normpath(dataset_dir)))
    split_infos = [
        tfds.core.SplitInfo(
            name=split,
            shard_lengths=[int(n) for n in lengths],
            num_bytes=int((shard_bytes or {}).get(split, 0)),
            filename_template=tfds.core.ShardedFileTemplate(
                data_dir=dataset_dir, dataset_name=name, split=split, filetype_suffix=FILE_FORMAT
            ),
        )
        for split, lengths in sorted(shard_lengths.items())
    ]
    tfds.folder_dataset.write_metadata(
        data_dir=dataset_dir,
        features=video_features(class_names),
        split_infos=split_infos,
        check_data=False,
        description=description,
    )
