"""The tf.data pipelines on probe datasets whose pixels say which record and frame they came from.

Every frame of record r is one flat colour: R = 8 r, G = 8 * frame index, B = 128. Crops, resizes
and flips keep a flat colour, so a decoded clip tells which record it is and which frames were
sampled, and those are checked against the sampling rules and the per-epoch orders.
"""

from __future__ import annotations

import dataclasses
import io
import os
import shutil

import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image

from motion_clip_jax.core import video_spec
from motion_clip_jax.data import pipeline, record_offsets, records, sampling, shuffle, source

from . import damaged_data

CLASSES = ["a", "b", "c", "d"]
NUM_TRAIN, NUM_TEST = 26, 10
T, CROP = 4, 16


def _jpeg(frame: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="JPEG", quality=95, subsampling=0)
    return buffer.getvalue()


def _flat_frames(record: int, num_frames: int, height: int = 30, width: int = 40) -> list[bytes]:
    return [
        _jpeg(np.broadcast_to(np.uint8([8 * record, 8 * f, 128]), (height, width, 3)).copy())
        for f in range(num_frames)
    ]


def num_frames_of(record: int) -> int:
    return 1 + (record * 7) % 20  # 1 .. 20 frames, including 1 and 3 (N < T)


def write_dataset(root: str, name: str, splits: dict[str, list], shards: int = 3) -> str:
    """splits: split -> [(video_id, label, frames_jpeg or raw serialized record)]."""
    dataset_dir = os.path.join(root, name, records.VERSION)
    os.makedirs(dataset_dir)
    features = records.video_features(CLASSES)
    shard_lengths = {}
    for split, rows in splits.items():
        bounds = [len(rows) * i // shards for i in range(shards + 1)]
        shard_lengths[split] = []
        for i in range(shards):
            part = rows[bounds[i] : bounds[i + 1]]
            serialized = [
                frames if isinstance(frames, bytes) else records.serialize_video(
                    features, video_id=video_id, label=label, frames_jpeg=frames, fps=25.0)
                for video_id, label, frames in part
            ]  # fmt: skip
            path = os.path.join(dataset_dir, records.shard_filename(name, split, i, shards))
            records.write_tfrecord(path, serialized)
            shard_lengths[split].append(len(part))
        index = [(v, label, 0 if isinstance(f, bytes) else len(f)) for v, label, f in rows]
        records.write_index(os.path.join(dataset_dir, split + records.INDEX_SUFFIX), index)
    records.write_metadata(dataset_dir, class_names=CLASSES, shard_lengths=shard_lengths)
    return dataset_dir


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("probe"))
    train = [(f"r{r:02d}", r % 4, _flat_frames(r, num_frames_of(r))) for r in range(NUM_TRAIN)]
    test = [(f"t{r:02d}", r % 4, _flat_frames(r, num_frames_of(r))) for r in range(NUM_TEST)]
    return write_dataset(root, "probe", {"train": train, "test": test})


def decode_ids(video: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CLIP-normalised (..., T, H, W, 3) flat clips -> record ids (...) and frame indices (..., T)."""
    rgb = (video * np.array(video_spec.CLIP_STD) + np.array(video_spec.CLIP_MEAN)) * 255
    means = rgb.mean(axis=(-3, -2))  # (..., T, 3)
    assert np.all(rgb.std(axis=(-3, -2)) < 3)  # flat frames stay flat
    records_per_frame = np.rint(means[..., 0] / 8).astype(int)
    assert np.all(records_per_frame == records_per_frame[..., :1])
    return records_per_frame[..., 0], np.rint(means[..., 1] / 8).astype(int)


def take(iterator, n: int) -> list[dict]:
    return [next(iterator) for _ in range(n)]


OPTION_NAMES = {f.name for f in dataclasses.fields(pipeline.PipelineOptions)}


def _split_kwargs(defaults: dict, kwargs: dict) -> tuple[pipeline.PipelineOptions, dict]:
    """Test shorthand: PipelineOptions fields and the iterator's own keyword arguments, mixed."""
    merged = {**defaults, **kwargs}
    options = {k: v for k, v in merged.items() if k in OPTION_NAMES}
    rest = {k: v for k, v in merged.items() if k not in OPTION_NAMES}
    return pipeline.PipelineOptions(**options), {"process_index": 0, "process_count": 1, **rest}


def train_iterator(data_dir, split="train", **kwargs):
    defaults = dict(num_frames=T, crop_size=CROP, batch_size=4, seed=3)
    options, rest = _split_kwargs(defaults, kwargs)
    return pipeline.make_train_iterator(data_dir, split, options, **rest)


def test_train_batches_visit_every_record_once_per_epoch(probe):
    batches = take(train_iterator(probe), 13)  # 52 clips = 2 epochs of 26
    video = np.concatenate([b["video"] for b in batches])
    assert batches[0]["video"].shape == (4, T, CROP, CROP, 3)
    assert batches[0]["video"].dtype == np.float32 and batches[0]["label"].dtype == np.int32
    ids, frames = decode_ids(video)
    labels = np.concatenate([b["label"] for b in batches])
    epochs = np.concatenate([b["epoch"] for b in batches])
    assert all(b["mask"].all() for b in batches)
    np.testing.assert_array_equal(labels, ids % 4)
    np.testing.assert_array_equal(epochs, np.arange(52) // NUM_TRAIN)
    assert sorted(ids[:26]) == list(range(26)) and sorted(ids[26:]) == list(range(26))
    assert not np.array_equal(ids[:26], ids[26:])  # a new order each epoch
    # The order is the documented one: stable_permutation keyed by (seed, process, epoch).
    for epoch in range(2):
        order = shuffle.stable_permutation(NUM_TRAIN, (3, 0, epoch))
        np.testing.assert_array_equal(ids[26 * epoch : 26 * (epoch + 1)], order)
    # Frames: the clip of video v (split position) in its epoch e samples with offsets from the
    # stateless seed fold_in(fold_in((seed, 2), v), e), whatever its place in the stream.
    np.testing.assert_array_equal(np.concatenate([b["index"] for b in batches]), ids)
    for q in range(52):
        n = num_frames_of(ids[q])
        seed = tf.random.experimental.stateless_fold_in(
            tf.constant([3, 2], tf.int64), tf.constant(ids[q], tf.int64)
        )
        seed = tf.random.experimental.stateless_fold_in(seed, tf.constant(q // 26, tf.int64))
        time_seed = tf.random.experimental.stateless_split(seed, 3)[0]
        offsets = sampling.random_offsets_tf(T, time_seed).numpy()
        np.testing.assert_array_equal(frames[q], video_spec.random_indices(n, offsets))


def test_a_clip_depends_on_its_video_and_epoch_not_on_the_stream(probe):
    """Two processes and a one-process run (other orders, other batches) draw the same clip of a
    video in the same epoch; train_stream_rows says where each lands; undecoded clips are zeros
    with their labels."""
    one = take(train_iterator(probe), 13)
    by_clip = {
        (int(v), int(e)): c
        for b in one
        for v, e, c in zip(b["index"], b["epoch"], b["video"])
    }  # fmt: skip
    for process in (0, 1):
        rows = dict(process_index=process, process_count=2)
        batches = take(train_iterator(probe, **rows), 6)  # 24 clips: 13 per epoch
        options = pipeline.PipelineOptions(num_frames=T, crop_size=CROP, batch_size=4, seed=3)
        positions, epochs = pipeline.train_stream_rows(probe, "train", options, range(1, 6), **rows)
        for step, b in enumerate(batches[1:]):
            np.testing.assert_array_equal(b["index"], positions[step])
            np.testing.assert_array_equal(b["epoch"], epochs[step])
        for b in batches:
            for v, e, clip in zip(b["index"], b["epoch"], b["video"]):
                np.testing.assert_array_equal(clip, by_clip[(int(v), int(e))])
    skipped = {(int(v), int(e)) for v, e in zip(one[1]["index"][:2], one[1]["epoch"][:2])}
    again = take(train_iterator(probe, undecoded=skipped), 2)[1]
    assert not again["video"][:2].any()
    np.testing.assert_array_equal(again["video"][2:], one[1]["video"][2:])
    np.testing.assert_array_equal(again["label"], one[1]["label"])
    assert again["mask"].all()


def test_resume_is_bitwise_exact_across_epoch_ends(probe):
    reference = take(train_iterator(probe), 15)
    resumed = train_iterator(probe, start_step=5)
    assert resumed.next_step == 5
    for step in range(5, 15):
        batch = next(resumed)
        for key in reference[step]:
            np.testing.assert_array_equal(batch[key], reference[step][key], err_msg=key)
    assert resumed.next_step == 15


def test_deterministic_with_any_threading_and_seed_matters(probe):
    a = take(train_iterator(probe), 4)
    b = take(train_iterator(probe, num_threads=1), 4)
    c = take(train_iterator(probe, seed=4), 4)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x["video"], y["video"])
    assert not all(np.array_equal(x["video"], z["video"]) for x, z in zip(a, c))


def test_uint8_output_matches_normalised_output(probe):
    floats = next(train_iterator(probe))["video"]
    raw = next(train_iterator(probe, uint8=True))["video"]
    assert raw.dtype == np.uint8
    np.testing.assert_allclose(np.asarray(video_spec.normalize(raw, jnp)), floats, atol=0.01)


def _red_ramp(batches) -> np.ndarray:
    """Red of the first and last output column per clip: (clips, 2), frames averaged."""
    video = np.concatenate([b["video"] for b in batches])
    red = (video[..., 0] * video_spec.CLIP_STD[0] + video_spec.CLIP_MEAN[0]) * 255
    return np.stack([red[:, :, :, 0].mean(axis=(1, 2)), red[:, :, :, -1].mean(axis=(1, 2))], -1)


def test_flip_and_crop_scales_are_options(wide):
    # Full short-side squares (32 px of 64, red span 240 * 31 / 63) and no flip: left < right.
    ramp = _red_ramp(take(train_iterator(wide, crop_scales=(1.0,), flip=False, batch_size=8), 3))
    span = ramp[:, 1] - ramp[:, 0]
    np.testing.assert_allclose(span, 240 * 31 / 63 * (CROP - 1) / CROP, atol=12)
    assert len(set(np.round(ramp[:, 0]).tolist())) > 5  # the square moves along the frame
    flipped = _red_ramp(take(train_iterator(wide, crop_scales=(1.0,), flip=True, batch_size=8), 3))
    spans = flipped[:, 1] - flipped[:, 0]
    assert np.all(np.abs(np.abs(spans) - span.mean()) < 12)
    assert (spans < 0).sum() >= 4 and (spans > 0).sum() >= 4  # flipped about half the time
    # Multi-scale crops: widths 32 * {1, .875, .75, .66} give several spans.
    scaled = _red_ramp(take(train_iterator(wide, flip=False, batch_size=8), 3))
    assert len(set(np.round(scaled[:, 1] - scaled[:, 0], -1).tolist())) >= 3


def test_split_records_for_two_processes_match_tfds(probe):
    builder = tfds.builder_from_directory(probe)
    parts = [source.split_records(probe, "train", process_index=i, process_count=2) for i in (0, 1)]
    positions = [p.position.tolist() for p in parts]
    assert positions == [list(range(13)), list(range(13, 26))]
    for i, part in enumerate(parts):
        subsplit = tfds.split_for_jax_process("train", process_index=i, process_count=2)
        tfds_ids = [
            e["video_id"].decode() for e in tfds.as_numpy(builder.as_dataset(split=subsplit))
        ]
        assert tfds_ids == [f"r{p:02d}" for p in part.position]
    for count in (2, 3, 5):
        for i in range(count):
            sub = tfds.split_for_jax_process("train", process_index=i, process_count=count)
            start, end = source.even_range(NUM_TRAIN, i, count)
            assert builder.info.splits[sub].num_examples == end - start


def test_two_training_processes_are_disjoint_and_cover(probe):
    seen = []
    for i in (0, 1):
        iterator = train_iterator(probe, process_index=i, process_count=2, batch_size=13)
        ids, _ = decode_ids(next(iterator)["video"])
        assert sorted(ids) == list(range(13 * i, 13 * (i + 1)))
        seen += ids.tolist()
    assert sorted(seen) == list(range(NUM_TRAIN))


def test_training_on_a_video_id_subset(probe):
    wanted = ["r03", "r17", "r00", "r25", "r11", "r08"]
    iterator = train_iterator(probe, video_ids=wanted, batch_size=3)
    ids, _ = decode_ids(np.concatenate([b["video"] for b in take(iterator, 4)]))
    expected = sorted(int(v[1:]) for v in wanted)
    assert sorted(ids[:6]) == expected and sorted(ids[6:]) == expected
    halves = [
        decode_ids(next(train_iterator(probe, video_ids=wanted, batch_size=3, process_index=i,
                                       process_count=2))["video"])[0].tolist()
        for i in (0, 1)
    ]  # fmt: skip
    assert sorted(halves[0]) == [0, 3, 8] and sorted(halves[1]) == [11, 17, 25]
    with pytest.raises(ValueError, match="not in .* split 'train'.*r99"):
        train_iterator(probe, video_ids=["r01", "r99"])


def test_split_slicing(probe):
    iterator = train_iterator(probe, split="train[:50%]", batch_size=13)
    ids, _ = decode_ids(next(iterator)["video"])
    assert sorted(ids) == list(range(13))


def _eval(data_dir, **kwargs):
    options, rest = _split_kwargs(dict(num_frames=T, crop_size=CROP, batch_size=4), kwargs)
    return pipeline.make_eval_iterator(data_dir, "test", options, **rest)


def test_eval_single_view_centre_frames_and_padding(probe):
    iterator = _eval(probe)
    batches = list(iterator)
    assert len(batches) == 3 == iterator.batches_per_epoch
    mask = np.concatenate([b["mask"] for b in batches])
    index = np.concatenate([b["index"] for b in batches])
    labels = np.concatenate([b["label"] for b in batches])
    video = np.concatenate([b["video"] for b in batches])
    assert mask.tolist() == [True] * 10 + [False] * 2
    assert index.tolist() == list(range(10)) + [-1, -1]
    assert labels[10:].tolist() == [-1, -1] and np.all(video[10:] == 0)
    ids, frames = decode_ids(video[:10])
    assert ids.tolist() == list(range(10))
    np.testing.assert_array_equal(labels[:10], ids % 4)
    for record, sampled in zip(ids, frames):
        np.testing.assert_array_equal(sampled, video_spec.centre_indices(num_frames_of(record), T))
    assert num_frames_of(0) == 1 and num_frames_of(5) == 16 and num_frames_of(6) == 3


def test_eval_processes_yield_equal_batch_counts_and_count_each_video_once(probe):
    seen = []
    for i in range(3):
        batches = list(_eval(probe, batch_size=2, process_index=i, process_count=3))
        assert len(batches) == 2  # 10 videos over 3 processes: at most 4 each
        for batch in batches:
            seen += batch["index"][batch["mask"]].tolist()
    assert sorted(seen) == list(range(10))


@pytest.fixture(scope="module")
def wide(tmp_path_factory):
    """64x32 frames, red rising from 0 to 240 left to right, G = 8 * frame index."""
    red = np.broadcast_to(np.linspace(0, 240, 64).astype(np.uint8), (32, 64))
    frames = [
        _jpeg(np.stack([red, np.full_like(red, 8 * f), np.full_like(red, 128)], -1))
        for f in range(11)
    ]
    rows = [("w0", 2, frames)]
    return write_dataset(
        str(tmp_path_factory.mktemp("wide")), "wide", {"test": rows, "train": rows}, shards=1
    )


def test_eval_process_without_records_still_yields_padding(wide):
    batches = [list(_eval(wide, batch_size=2, process_index=i, process_count=2)) for i in (0, 1)]
    assert [len(b) for b in batches] == [1, 1]
    assert batches[0][0]["mask"].tolist() == [True, False]
    assert batches[1][0]["mask"].tolist() == [False, False]


def test_multiview_shapes_views_and_crops(wide):
    data_dir = wide
    batch = next(_eval(data_dir, multiview=True, batch_size=2, seed=5))
    video = batch["video"]
    assert video.shape == (2, 12, T, CROP, CROP, 3) and batch["mask"].tolist() == [True, False]
    rgb = (video[0] * np.array(video_spec.CLIP_STD) + np.array(video_spec.CLIP_MEAN)) * 255
    red = rgb[..., 0].mean(axis=(1, 2, 3)).reshape(4, 3)  # (sampling, crop)
    assert np.all(red[:, 0] < red[:, 1] - 20) and np.all(red[:, 1] < red[:, 2] - 20)
    # Left crop covers x in [0, 32): mean red ~ 60; right crop [32, 64): ~ 180.
    np.testing.assert_allclose(red[:, 0], 240 * 15.5 / 63, atol=6)
    np.testing.assert_allclose(red[:, 2], 240 * 47.5 / 63, atol=6)
    frame_index = np.rint(rgb[..., 1].mean(axis=(2, 3)) / 8).astype(int).reshape(4, 3, T)
    base_seed = tf.random.experimental.stateless_fold_in(
        tf.constant([5, 1], tf.int64), tf.constant(0, tf.int64)
    )
    view_seeds = tf.random.experimental.stateless_split(base_seed, 4)
    for s in range(4):
        offsets = sampling.random_offsets_tf(T, view_seeds[s]).numpy()
        for c in range(3):  # the 3 crops of a sampling share its frames
            np.testing.assert_array_equal(frame_index[s, c], video_spec.random_indices(11, offsets))
    assert len({tuple(frame_index[s, 0]) for s in range(4)}) > 1


# ----------------------------------------------------------------------------- bad records


@pytest.fixture(scope="module")
def damaged(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("damaged"))
    corrupt = b"\xff\xd8\xff\xe0 definitely not a JPEG"
    one_bad_frame = _flat_frames(1, 9)
    one_bad_frame[2] = corrupt  # centre sampling of 9 frames at T=4 uses frames 1, 3, 5, 7
    no_video = tf.train.Example(
        features=tf.train.Features(
            feature={"label": tf.train.Feature(int64_list=tf.train.Int64List(value=[0]))}
        )
    ).SerializeToString()
    rows = [
        ("ok0", 0, _flat_frames(0, 5)),
        ("bad_frame2", 1, one_bad_frame),
        ("all_bad", 2, [corrupt] * 4),
        ("ok3", 3, _flat_frames(3, 6)),
        ("no_video", 0, no_video),
        ("ok5", 1, _flat_frames(5, 7)),
    ]
    return write_dataset(root, "damaged", {"test": rows, "train": rows}, shards=2)


def test_bad_record_error_names_shard_record_and_video(damaged):
    iterator = _eval(damaged, batch_size=6)
    with pytest.raises(pipeline.BadRecordError) as error:
        next(iterator)
    message = str(error.value)
    assert "damaged-test.tfrecord-00000-of-00002 record 2" in message
    assert "video_id 'all_bad'" in message and "on_bad_record='skip'" in message


@pytest.fixture(scope="module")
def unframed(tmp_path_factory):
    """Train shard 1 of 3 (records 4..7 of 12): record 2's payload CRC broken, and a copy whose
    record 2 length field is broken (records 2 and 3 of that shard cannot be read)."""
    rows = [(f"v{r}", r % 4, _flat_frames(r, 5)) for r in range(12)]
    made = {}
    for kind in ("crc", "length"):
        root = str(tmp_path_factory.mktemp(kind))
        dataset_dir = write_dataset(root, "unframed", {"train": rows, "test": rows}, shards=3)
        path = os.path.join(dataset_dir, records.shard_filename("unframed", "train", 1, 3))
        if kind == "crc":
            damaged_data.break_frame(path, 2)
        else:
            data = bytearray(open(path, "rb").read())
            data[record_offsets.frames(path)[2][0] + 1] ^= 0xFF
            open(path, "wb").write(bytes(data))
        made[kind] = (dataset_dir, path)
    return made


@pytest.mark.parametrize("kind", ["crc", "length"])
def test_a_broken_record_frame_is_named(unframed, kind):
    dataset_dir, path = unframed[kind]
    assert pipeline.first_broken_frame(path)[0] == 2
    with pytest.raises(pipeline.BadRecordError) as error:
        take(train_iterator(dataset_dir, batch_size=4, seed=0), 3)
    message = str(error.value)
    assert f"{path} record " in message and "DataLossError: corrupted record" in message, message
    if kind == "crc":
        assert "record 2 (split 'train' position 6, video_id 'v6')" in message
    else:  # the first read that fails may be record 3, behind the broken length of record 2
        assert "record 2 (split 'train' position 6" in message or "break at record 2" in message
    skipping = train_iterator(dataset_dir, batch_size=4, seed=0, on_bad_record="skip")
    batches = take(skipping, 6)  # two epochs go on
    bad = 1 if kind == "crc" else 2
    assert sum((~b["mask"]).sum() for b in batches) == 2 * bad
    assert len(skipping.skipped) == 2 * bad and all(path in s for s in skipping.skipped)


def test_only_sampled_frames_are_decoded(damaged):
    # Record bad_frame2 alone: its corrupt frame 2 is not among the centre frames 1, 3, 5, 7.
    batch = next(_eval(damaged, video_ids=["bad_frame2"], batch_size=1))
    ids, frames = decode_ids(batch["video"])
    assert ids.tolist() == [1] and frames.tolist() == [[1, 3, 5, 7]]


def test_skip_mode_masks_counts_and_names_bad_records(damaged, caplog):
    iterator = _eval(damaged, batch_size=3, on_bad_record="skip")
    batches = list(iterator)
    mask = np.concatenate([b["mask"] for b in batches])
    assert mask.tolist() == [True, True, False, True, False, True]
    assert np.concatenate([b["index"] for b in batches]).tolist() == list(range(6))
    assert np.concatenate([b["label"] for b in batches])[~mask].tolist() == [-1, -1]
    assert len(iterator.skipped) == 2
    assert "record 2" in iterator.skipped[0] and "'all_bad'" in iterator.skipped[0]
    assert "-00001-of-00002 record 1" in iterator.skipped[1] and "'no_video'" in iterator.skipped[1]
    assert "skipped a bad record" in caplog.text


def test_skip_mode_keeps_training_positions(damaged):
    iterator = train_iterator(damaged, on_bad_record="skip", batch_size=6, seed=0)
    for epoch, batch in enumerate(take(iterator, 3)):  # one batch = one epoch of the 6 records
        order = shuffle.stable_permutation(6, (0, 0, epoch))
        for row, keep, video in zip(order, batch["mask"], batch["video"]):
            if row in (2, 4):  # all_bad, no_video: placeholders where they would have been
                assert not keep and np.all(video == 0)
            elif row in (0, 3, 5):
                assert keep and decode_ids(video[None])[0][0] == row
    assert any("'all_bad'" in s for s in iterator.skipped)
    assert any("'no_video'" in s for s in iterator.skipped)


def test_missing_shard_is_named(probe, tmp_path):
    copy = str(tmp_path / "probe" / "1.0.0")
    shutil.copytree(probe, copy)
    os.remove(os.path.join(copy, "probe-train.tfrecord-00001-of-00003"))
    source.open_builder.cache_clear()
    with pytest.raises(FileNotFoundError, match="probe-train.tfrecord-00001-of-00003"):
        train_iterator(copy)


def test_dataset_description(probe):
    described = pipeline.describe_dataset(os.path.dirname(probe))  # <root>/<name> works too
    assert described == {
        "dataset_dir": probe,
        "class_names": CLASSES,
        "split_sizes": {"train": NUM_TRAIN, "test": NUM_TEST},
    }
    with pytest.raises(FileNotFoundError, match="not a tfds dataset folder"):
        source.resolve_dataset_dir(os.path.dirname(os.path.dirname(probe)))


def test_options_are_checked_by_name():
    with pytest.raises(ValueError, match="num_frames, crop_size, batch_size must be >= 1"):
        pipeline.PipelineOptions(num_frames=0, crop_size=CROP, batch_size=1)
    with pytest.raises(ValueError, match="on_bad_record must be 'raise' or 'skip'"):
        pipeline.PipelineOptions(num_frames=T, crop_size=CROP, batch_size=1, on_bad_record="x")
    with pytest.raises(ValueError, match="seed must be >= 0"):
        pipeline.PipelineOptions(num_frames=T, crop_size=CROP, batch_size=1, seed=-1)


def test_parse_spec_reads_what_tfds_reads(probe):
    features = source.open_builder(probe).info.features
    spec = pipeline._parse_spec(features, ("video", "label"))
    path = os.path.join(probe, "probe-train.tfrecord-00000-of-00003")
    serialized = next(iter(tf.data.TFRecordDataset(path)))
    ours = pipeline._parse(spec, serialized)
    theirs = features.deserialize_example(
        serialized, decoders={"video": tfds.decode.SkipDecoding()}
    )
    np.testing.assert_array_equal(ours["video"].numpy(), theirs["video"].numpy())
    assert int(ours["label"]) == int(theirs["label"])
