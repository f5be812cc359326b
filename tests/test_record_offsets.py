"""Records read at their byte offset (data/record_offsets.py): the offsets against a file whose
record lengths are known, the records against TF's own sequential reader, and the fallback to
skipping from the first damaged header on."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from motion_clip_jax.data import record_offsets


def _records(count: int) -> list[bytes]:
    rng = np.random.default_rng(0)
    return [rng.bytes(int(n)) for n in rng.integers(0, 3000, count)]


@pytest.fixture()
def shard(tmp_path):
    path = str(tmp_path / "shard.tfrecord")
    payloads = _records(9)
    with tf.io.TFRecordWriter(path) as writer:
        for payload in payloads:
            writer.write(payload)
    return path, payloads


def _read(path: str, number: int, byte_offset: int) -> list[bytes]:
    # Built inside flat_map, as the pipeline does (record_offsets.one_record's docstring).
    ds = tf.data.Dataset.from_tensors(0).flat_map(
        lambda _: record_offsets.one_record(tf.constant(path), number, byte_offset)
    )
    return [r.numpy() for r in ds]


def test_crc32c_of_the_standard_check_string():
    assert record_offsets.crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value


def test_offsets_follow_the_record_lengths(shard):
    path, payloads = shard
    # A TFRecord frame: 8-byte length, 4-byte CRC, the payload, 4-byte CRC.
    expected = np.cumsum([0] + [16 + len(p) for p in payloads[:-1]])
    np.testing.assert_array_equal(record_offsets.scan(path, len(payloads)), expected)
    np.testing.assert_array_equal(record_offsets.scan(path, 4), expected[:4])
    assert record_offsets.frames(path) == [(int(o), len(p)) for o, p in zip(expected, payloads)]
    # Asking past the end: unknown, not an error.
    assert record_offsets.scan(path, 11)[-2:].tolist() == [-1, -1]


def test_each_record_read_at_its_offset_equals_the_sequential_reader(shard):
    path, payloads = shard
    sequential = [r.numpy() for r in tf.data.TFRecordDataset(path)]
    assert sequential == payloads
    offsets = record_offsets.scan(path, len(payloads))
    for k in range(len(payloads)):
        assert _read(path, k, int(offsets[k])) == [sequential[k]]
        assert _read(path, k, -1) == [sequential[k]]  # by skipping


def test_a_damaged_length_stops_the_scan_and_reads_fall_back_to_skipping(shard):
    path, payloads = shard
    good = record_offsets.scan(path, len(payloads))
    data = bytearray(open(path, "rb").read())
    data[int(good[3]) + 1] ^= 0x01  # record 3's length no longer matches its CRC
    open(path, "wb").write(bytes(data))
    offsets = record_offsets.scan(path, len(payloads))
    np.testing.assert_array_equal(offsets[:3], good[:3])
    assert (offsets[3:] == -1).all()
    assert _read(path, 2, int(offsets[2])) == [payloads[2]]
    for k in (3, 5):  # behind the damage: TF's reader meets it and says so, as before
        with pytest.raises(tf.errors.DataLossError):
            _read(path, k, int(offsets[k]))


def test_byte_offsets_of_records_in_several_files(tmp_path):
    paths, payloads = [], []
    for f in range(3):
        paths.append(str(tmp_path / f"s{f}.tfrecord"))
        payloads.append(_records(4 + f))
        with tf.io.TFRecordWriter(paths[-1]) as writer:
            for payload in payloads[-1]:
                writer.write(payload)
    file_index = np.array([2, 0, 1, 2, 0])
    number = np.array([5, 0, 3, 1, 2])
    offsets = record_offsets.byte_offsets(tuple(paths), file_index, number)
    for f, k, o in zip(file_index, number, offsets):
        assert o == record_offsets.scan(paths[f], k + 1)[k] >= 0
        assert _read(paths[f], int(k), int(o)) == [payloads[f][k]]
