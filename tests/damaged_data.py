"""A small synthetic dataset with two kinds of bad records, for the bad-record tests:
- a broken record frame: one byte of a training record's payload flipped (its CRC no longer checks);
- a damaged payload: every frame of a test record replaced by bytes that are not a JPEG (the record
  itself is well framed and parses)."""

from __future__ import annotations

import os

import tensorflow as tf

from motion_clip_jax.data import record_offsets, records, source
from motion_clip_jax.synthetic import world

NOT_A_JPEG = b"\xff\xd8\xff\xe0 not a JPEG at all"


def break_frame(path: str, record: int) -> None:
    """Flips one payload byte of `record`: reading it fails its CRC check (DataLossError)."""
    data = bytearray(open(path, "rb").read())
    pos, length = record_offsets.frames(path)[record]
    data[pos + 12 + length // 2] ^= 0xFF  # past the 12-byte header: inside the payload
    open(path, "wb").write(bytes(data))


def spoil_frames(path: str, record: int) -> str:
    """Replaces every frame of `record` by non-JPEG bytes (rewritten in place, framing intact);
    returns its video id."""
    serialized = [r.numpy() for r in tf.data.TFRecordDataset(path)]
    example = tf.train.Example.FromString(serialized[record])
    frames = example.features.feature["video"].bytes_list.value
    count = len(frames)
    del frames[:]
    frames.extend([NOT_A_JPEG] * count)
    serialized[record] = example.SerializeToString(deterministic=True)
    records.write_tfrecord(path, serialized)
    return example.features.feature["video_id"].bytes_list.value[0].decode()


def write_damaged_dataset(root: str) -> dict:
    """<root>/synthetic_motion/1.0.0 (16 train, 8 test videos, 2 shards each), with record 1 of
    train shard 1 unframed and record 0 of test shard 0 undecodable -> what was damaged."""
    dataset_dir = world.write_synthetic_dataset(
        root, num_train=16, num_test=8, num_frames=8, num_shards=2
    )
    name = os.path.basename(os.path.dirname(dataset_dir))
    train_shard = records.shard_filename(name, "train", 1, 2)
    test_shard = records.shard_filename(name, "test", 0, 2)
    train_ids = [v for v, _, _ in source.read_split_index(dataset_dir, "train")]
    break_frame(os.path.join(dataset_dir, train_shard), 1)
    bad_test_id = spoil_frames(os.path.join(dataset_dir, test_shard), 0)
    return {
        "root": os.path.dirname(dataset_dir),
        "dataset_dir": dataset_dir,
        "train_shard": train_shard,
        "train_video_id": train_ids[8 + 1],  # shard 1 of 2 starts at record 8 of 16
        "test_shard": test_shard,
        "test_video_id": bad_test_id,
    }
