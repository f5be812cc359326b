"""Where a split's records live: (shard file, record number) for every video a process reads.

The dataset is opened with `tfds.builder_from_directory`; a process's part of a split comes from
`tfds.split_for_jax_process` (contiguous, sizes differ by at most one) and its tfds file
instructions. Training reads records in a seeded order by position (pipeline.py), so it needs
this explicit list rather than tfds' sequential reader.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
from collections.abc import Iterable, Sequence

import numpy as np
import tensorflow_datasets as tfds

from motion_clip_jax.core.error_text import first_line
from motion_clip_jax.data import records

_VERSION_DIR = re.compile(r"\d+\.\d+\.\d+")


def resolve_dataset_dir(data_dir: str) -> str:
    """`<root>/<name>/<version>` for either that folder or `<root>/<name>` (newest version)."""
    data_dir = os.path.abspath(os.fspath(data_dir))
    if os.path.exists(os.path.join(data_dir, "dataset_info.json")):
        return data_dir
    versions = []
    if os.path.isdir(data_dir):
        versions = [v for v in os.listdir(data_dir) if _VERSION_DIR.fullmatch(v)]
    versions = [
        v for v in versions if os.path.exists(os.path.join(data_dir, v, "dataset_info.json"))
    ]
    if not versions:
        raise FileNotFoundError(
            f"{data_dir!r} is not a tfds dataset folder (no dataset_info.json in it or in a "
            "version subfolder such as 1.0.0); write one with `python -m data_prep.build_tfrecords`"
        )
    newest = max(versions, key=lambda v: tuple(int(p) for p in v.split(".")))
    return os.path.join(data_dir, newest)


@functools.lru_cache(maxsize=32)
def open_builder(data_dir: str) -> tfds.core.DatasetBuilder:
    """The read-only tfds builder of a dataset folder (cached)."""
    directory = resolve_dataset_dir(data_dir)
    try:
        return tfds.builder_from_directory(directory)
    except Exception as e:  # tfds and protobuf raise many kinds for a damaged dataset_info.json
        raise ValueError(
            f"{directory}/dataset_info.json: not a readable tfds dataset description "
            f"({first_line(e)})"
        ) from None


def class_names(data_dir: str) -> list[str]:
    """Class names from the ClassLabel in the tfds metadata; index = label."""
    return list(open_builder(data_dir).info.features["label"].names)


def split_sizes(data_dir: str) -> dict[str, int]:
    """Number of videos per split, from the tfds metadata."""
    return {name: info.num_examples for name, info in open_builder(data_dir).info.splits.items()}


def read_split_index(data_dir: str, split: str) -> list[tuple[str, int, int]]:
    """[(video_id, label, num_frames)] of a whole split in record order.

    From `<split>.index.tsv` (written by data_prep and the synthetic writer); for a dataset
    without one, by reading the split's records (slow: every record is read once).
    """
    dataset_dir = resolve_dataset_dir(data_dir)
    path = os.path.join(dataset_dir, split + records.INDEX_SUFFIX)
    builder = open_builder(data_dir)
    if split not in builder.info.splits:
        raise ValueError(
            f"{dataset_dir}: no split {split!r}; splits: {sorted(builder.info.splits)}"
        )
    if os.path.exists(path):
        rows = records.read_index(path)
        if len(rows) != builder.info.splits[split].num_examples:
            raise ValueError(
                f"{path}: {len(rows)} rows but the tfds metadata counts "
                f"{builder.info.splits[split].num_examples} records"
            )
        return rows
    ds = builder.as_dataset(
        split=split, shuffle_files=False, decoders={"video": tfds.decode.SkipDecoding()}
    )
    return [(e["video_id"].decode(), int(e["label"]), len(e["video"])) for e in tfds.as_numpy(ds)]


@dataclasses.dataclass(frozen=True)
class RecordList:
    """The records one process reads, in split order.

    files: shard paths; file_index, offset (n,): shard and record number inside it;
    position (n,): record number in the whole split (names a record in errors, keys eval views).
    """

    split: str
    files: tuple[str, ...]
    file_index: np.ndarray
    offset: np.ndarray
    position: np.ndarray

    def __len__(self) -> int:
        return len(self.offset)

    def describe(self, i: int, video_ids: Sequence[str] | None = None) -> str:
        """'<shard file> record <k> (split position p, video_id v)' for element i."""
        text = (
            f"{self.files[self.file_index[i]]} record {int(self.offset[i])} "
            f"(split {self.split!r} position {int(self.position[i])}"
        )
        if video_ids is not None:
            text += f", video_id {video_ids[int(self.position[i])]!r}"
        return text + ")"


def even_range(n: int, index: int, count: int) -> tuple[int, int]:
    """[start, end) of part `index` of `count` contiguous parts of range(n), as tfds.even_splits."""
    per, extra = divmod(n, count)
    return per * index + min(index, extra), per * (index + 1) + min(index + 1, extra)


def process_layout(process_index: int | None, process_count: int | None) -> tuple[int, int]:
    """(process_index, process_count), JAX's where not given; checked."""
    if process_index is None or process_count is None:
        import jax

        process_index = jax.process_index() if process_index is None else process_index
        process_count = jax.process_count() if process_count is None else process_count
    if not 0 <= process_index < process_count:
        raise ValueError(f"process_index {process_index} not in [0, {process_count})")
    return process_index, process_count


def _shard_starts(builder: tfds.core.DatasetBuilder, dataset_dir: str) -> dict[str, tuple]:
    """shard file basename -> (split, position of its first record in that split)."""
    starts = {}
    for split_name, info in builder.info.splits.items():
        first = 0
        for instruction in info.file_instructions:
            starts[os.path.basename(instruction.filename)] = (split_name, first)
            first += instruction.examples_in_shard
    return starts


def split_records(
    data_dir: str,
    split: str,
    *,
    process_index: int | None = None,
    process_count: int | None = None,
    video_ids: Iterable[str] | None = None,
) -> RecordList:
    """This process's records of `split` (tfds split syntax: "train", "train[:10%]", ...).

    process_index / process_count default to JAX's. With `video_ids` (e.g. a few-shot draw), only
    those videos of the (plain) split are kept, then divided among processes the same way.
    Raises if a shard file is missing or a requested video id is not in the split.
    """
    process_index, process_count = process_layout(process_index, process_count)
    dataset_dir = resolve_dataset_dir(data_dir)
    builder = open_builder(data_dir)
    starts = _shard_starts(builder, dataset_dir)
    if video_ids is None:
        subsplit = tfds.split_for_jax_process(
            split, process_index=process_index, process_count=process_count
        )
        try:
            instructions = builder.info.splits[subsplit].file_instructions
        except (KeyError, ValueError) as error:
            raise ValueError(
                f"{dataset_dir}: cannot read split {split!r} ({error}); splits: "
                f"{sorted(builder.info.splits)}"
            ) from None
        files, file_index, offset, position, split_names = [], [], [], [], set()
        for instruction in instructions:
            name = os.path.basename(instruction.filename)
            split_name, first = starts[name]
            split_names.add(split_name)
            files.append(os.path.join(dataset_dir, name))
            skip, take = instruction.skip, instruction.take
            if take < 0:  # tfds: -1 = to the end of the shard
                take = instruction.examples_in_shard - skip
            file_index += [len(files) - 1] * take
            offset += range(skip, skip + take)
            position += range(first + skip, first + skip + take)
        record_split = split_names.pop() if len(split_names) == 1 else split
    else:
        if split not in builder.info.splits:
            raise ValueError(
                f"{dataset_dir}: video_ids need a plain split name, got {split!r}; "
                f"splits: {sorted(builder.info.splits)}"
            )
        index = read_split_index(data_dir, split)
        where = {video_id: i for i, (video_id, _, _) in enumerate(index)}
        wanted = list(dict.fromkeys(video_ids))
        missing = [v for v in wanted if v not in where]
        if missing:
            raise ValueError(
                f"{len(missing)} video ids are not in {dataset_dir} split {split!r}, "
                f"e.g. {missing[:3]}"
            )
        chosen = sorted(where[v] for v in wanted)
        start, end = even_range(len(chosen), process_index, process_count)
        chosen = chosen[start:end]
        instructions = builder.info.splits[split].file_instructions
        files = [os.path.join(dataset_dir, os.path.basename(i.filename)) for i in instructions]
        bounds = np.cumsum([0] + [i.examples_in_shard for i in instructions])
        file_index = list(np.searchsorted(bounds, chosen, side="right") - 1)
        offset = [p - bounds[f] for p, f in zip(chosen, file_index)]
        position, record_split = chosen, split
    for path in files:
        if not os.path.exists(path):
            raise FileNotFoundError(f"shard {path!r} of {dataset_dir} is missing")
    return RecordList(
        split=record_split,
        files=tuple(files),
        file_index=np.asarray(file_index, dtype=np.int64),
        offset=np.asarray(offset, dtype=np.int64),
        position=np.asarray(position, dtype=np.int64),
    )
