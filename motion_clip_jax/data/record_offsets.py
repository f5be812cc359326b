"""Where each record of a TFRecord file starts, read from the records' length headers.

A TFRecord frame is: length (uint64 LE), masked CRC32C of those 8 bytes (uint32 LE), the data,
masked CRC32C of the data. Reading record k by skipping k records reads k headers first (one
small read each, and on a remote file system one request each); knowing its byte offset, the
reader starts there and reads one header and one record, checking both CRCs as before.

The scan reads only headers (12 bytes per record, then a seek past the data) and checks each
header's CRC, so a damaged length cannot send later offsets astray: from the first header that
is missing or fails its check, offsets are -1 (unknown), and the reader falls back to skipping,
which meets the damage where it always did.
"""

from __future__ import annotations

import concurrent.futures
import functools
import struct

import numpy as np
import tensorflow as tf

_HEADER = 12  # length (8 bytes) + its masked CRC (4)
_FOOTER = 4  # masked CRC of the data
_MASK_DELTA = 0xA282EAD8
_CASTAGNOLI = 0x82F63B78  # CRC32C polynomial, bit-reflected


def _crc32c_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ (_CASTAGNOLI if crc & 1 else 0)
        table.append(crc)
    return tuple(table)


_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC32C (Castagnoli) of `data`; table-driven, meant for the 8-byte headers only."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    """TFRecord's masked CRC32C of `data`."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def frames(path: str, count: int | None = None) -> list[tuple[int, int]]:
    """(byte offset, payload length) of the first `count` records (all: None) of the TFRecord
    file `path`, up to the first record whose header is missing, short, fails its CRC or
    announces more bytes than the file holds."""
    out, position = [], 0
    with tf.io.gfile.GFile(path, "rb") as f:
        size = f.size()
        while count is None or len(out) < count:
            f.seek(position)
            header = f.read(_HEADER)
            if len(header) < _HEADER:
                break
            length_bytes, (length_crc,) = header[:8], struct.unpack("<I", header[8:])
            (length,) = struct.unpack("<Q", length_bytes)
            end = position + _HEADER + length + _FOOTER
            if masked_crc32c(length_bytes) != length_crc or end > size:
                break
            out.append((position, length))
            position = end
    return out


def scan(path: str, count: int) -> np.ndarray:
    """Byte offsets (count,) int64 of the first `count` records of the TFRecord file `path`;
    -1 from the first record `frames` stops at."""
    offsets = np.full(count, -1, np.int64)
    found = [offset for offset, _ in frames(path, count)]
    offsets[: len(found)] = found
    return offsets


@functools.lru_cache(maxsize=1024)
def _cached_scan(path: str, count: int, size: int, mtime_ns: int) -> np.ndarray:
    del size, mtime_ns  # part of the cache key only: a rewritten file is scanned again
    offsets = scan(path, count)
    offsets.flags.writeable = False
    return offsets


def byte_offsets(
    files: tuple[str, ...], file_index: np.ndarray, record_number: np.ndarray
) -> np.ndarray:
    """Byte offsets (n,) int64 of records given as (file_index, record number in that file);
    -1 where unknown (see `scan`). Each file's headers are read once per process (cached while
    the file's size and modification time stay the same)."""
    out = np.full(len(record_number), -1, np.int64)

    def scan_file(f: int) -> None:
        rows = np.flatnonzero(file_index == f)
        if len(rows):
            path, count = files[f], int(record_number[rows].max()) + 1
            stat = tf.io.gfile.stat(path)
            offsets = _cached_scan(path, count, stat.length, stat.mtime_nsec)
            out[rows] = offsets[record_number[rows]]

    # Files in parallel: on a remote file system each header read waits for its request.
    with concurrent.futures.ThreadPoolExecutor(min(16, max(1, len(files)))) as pool:
        list(pool.map(scan_file, range(len(files))))
    return out


def one_record(path: tf.Tensor, number: tf.Tensor, byte_offset: tf.Tensor) -> tf.data.Dataset:
    """A dataset of the one serialized record `number` of the TFRecord file `path` (scalars),
    read from `byte_offset` (one header and one record, both CRCs checked) or, where that is
    -1, by skipping `number` records from the start. Unbuffered: one read per record (a read
    buffer would be refilled at every seek).

    Build it inside a dataset function (interleave, flat_map): TF 2.21 cannot serialise a
    TFRecordDatasetV2 with byte offsets (its graph form drops them), which an eagerly built
    dataset needs for its iterator.
    """
    byte_offset = tf.cast(byte_offset, tf.int64)
    variant = tf.raw_ops.TFRecordDatasetV2(
        filenames=tf.reshape(path, [1]),
        compression_type="",
        buffer_size=tf.constant(0, tf.int64),
        byte_offsets=tf.reshape(tf.maximum(byte_offset, 0), [1]),
    )
    records = tf.data.experimental.from_variant(variant, tf.TensorSpec([], tf.string))
    skip = tf.where(byte_offset >= 0, tf.constant(0, tf.int64), tf.cast(number, tf.int64))
    return records.skip(skip).take(1)
