"""The synthetic motion world: geometry of the renderer, the motion of every class, the order
pairs, static frames with captions, and the dataset written in the record format."""

from __future__ import annotations

import os

import numpy as np
import pytest
import tensorflow_datasets as tfds

from data_prep import build_tfrecords
from motion_clip_jax.data import manifest, pipeline
from motion_clip_jax.synthetic import world


def _object_mask(frames: np.ndarray) -> np.ndarray:
    """(..., H, W, 3) -> (..., H, W) bool: far in colour from the frame's border median, and
    within 0.4 * side of the median object pixel (drops stray noise pixels; a rotating arrow
    reaches 0.32 * side from its centre)."""
    border = np.concatenate(
        [frames[..., 0, :, :], frames[..., -1, :, :], frames[..., :, 0, :], frames[..., :, -1, :]],
        axis=-2,
    ).astype(np.float32)
    background = np.median(border, axis=-2)[..., None, None, :]
    mask = np.linalg.norm(frames.astype(np.float32) - background, axis=-1) > 60
    size = mask.shape[-1]
    flat = mask.reshape(-1, *mask.shape[-2:])
    ys, xs = np.mgrid[0 : mask.shape[-2], 0:size]
    for m in flat:
        my, mx = np.median(ys[m]), np.median(xs[m])
        m &= (ys - my) ** 2 + (xs - mx) ** 2 < (0.4 * size) ** 2
    return flat.reshape(mask.shape)


def _centroid_area(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0 : mask.shape[-2], 0 : mask.shape[-1]]
    area = mask.sum(axis=(-2, -1))
    x = (mask * xs).sum(axis=(-2, -1)) / np.maximum(area, 1)
    y = (mask * ys).sum(axis=(-2, -1)) / np.maximum(area, 1)
    return x, y, area


def _orientation_steps(mask: np.ndarray) -> np.ndarray:
    """Per-frame rotation (T-1,) in degrees, positive = clockwise on screen (y down), of an
    arrow's long axis: the 2-fold moment sum z^2 of the mask about its centroid, turned by 2a
    when the mask turns by a; wrapped to (-90, 90], enough for steps below 90 degrees."""
    x, y, _ = _centroid_area(mask)
    ys, xs = np.mgrid[0 : mask.shape[-2], 0 : mask.shape[-1]]
    z = (xs[None] - x[:, None, None]) + 1j * (ys[None] - y[:, None, None])
    moment = (mask * z**2).sum(axis=(-2, -1))
    return np.degrees(np.angle(moment[1:] / moment[:-1]) / 2)


def test_renderer_geometry():
    size = 64
    flat = np.zeros((6, size, size, 3), np.float32)
    frames = world.render_frames(
        size,
        shape=np.array([0, 1, 2, 2, 3, 3]),
        cx=np.full(6, 32.0),
        cy=np.full(6, 30.0),
        extent=np.full(6, 20.0),
        angle_deg=np.array([0.0, 0.0, 0.0, 20.0, 0.0, 90.0]),
        colour=np.full((6, 3), 200.0),
        background=flat,
    )
    cover = frames[..., 0] / 200.0
    assert abs(cover[0].sum() - 20 * 20) < 4  # square, side 20
    assert abs(cover[1].sum() - np.pi * 10**2) < 4  # circle, diameter 20
    side = 12.5 * np.sqrt(3)  # triangle with circumradius 1.25 * 10
    assert abs(cover[2].sum() - side**2 * np.sqrt(3) / 4) < 5
    # Arrow of length 20 (h = 10): head 2 * 0.65 * 0.9 / 2 * h^2, shaft 0.6 * 1.1 * h^2.
    assert abs(cover[4].sum() - (0.585 + 0.66) * 100) < 4
    # Pointing up: the head (upper part, y < 30) is wider than the shaft; turned 90 degrees
    # clockwise it points right, so the same holds for x.
    rows, cols = cover[4].sum(1), cover[5].sum(0)  # width of each row / column
    assert rows[:20].sum() < 0.5 and rows[40:].sum() < 0.5  # tip at y = 20, tail at y = 40
    assert rows[27:29].min() > 1.7 * rows[30:40].max()  # the head's base (y 29) is wide
    assert cols[:22].sum() < 0.5 and cols[43:].sum() < 0.5  # turned: tail at x = 22, tip at 42
    assert cols[33:35].min() > 1.7 * cols[22:32].max()
    for k in range(4):
        x, y, _ = _centroid_area(cover[k])  # coverage-weighted; pixel i is centred at i + 0.5
        assert abs(x + 0.5 - 32) < 0.1 and abs(y + 0.5 - 30) < 0.1  # 3x3 supersampling
    # Orientation from the 3-fold angular moment (z = dx + i dy, y down): the apex-up triangle
    # has vertices at -90, 30, 150 degrees, so arg(M3) = 90; turning it clockwise by a adds 3a.
    ys, xs = np.mgrid[0:size, 0:size] + 0.5
    z = (xs - 32) + 1j * (ys - 30)
    for k, angle in [(2, 0.0), (3, 20.0)]:
        moment = (cover[k] * np.abs(z) ** 2 * np.exp(3j * np.angle(z))).sum()
        wrapped = (np.degrees(np.angle(moment)) - 90 - 3 * angle + 180) % 360 - 180
        assert abs(wrapped) < 3, (angle, wrapped)


def test_motion_clips_are_deterministic_and_balanced():
    clips, labels = world.make_motion_clips(40, seed=7)
    assert clips.shape == (40, 8, 32, 32, 3) and clips.dtype == np.uint8
    assert labels.dtype == np.int32 and np.bincount(labels).tolist() == [5] * 8
    again, again_labels = world.make_motion_clips(40, seed=7)
    np.testing.assert_array_equal(clips, again)
    np.testing.assert_array_equal(labels, again_labels)
    other, _ = world.make_motion_clips(40, seed=8)
    assert not np.array_equal(clips, other)
    small, _ = world.make_motion_clips(3, seed=0, num_frames=4, size=24)
    assert small.shape == (3, 4, 24, 24, 3)


def test_every_class_shows_its_motion():
    size = 64
    clips, labels = world.make_motion_clips(160, seed=11, size=size)
    mask = _object_mask(clips)
    x, y, area = _centroid_area(mask)
    names = world.CLASS_NAMES
    for label, name in enumerate(names):
        pick = labels == label
        dx, dy = (x[pick, -1] - x[pick, 0]) / size, (y[pick, -1] - y[pick, 0]) / size
        growth = area[pick, -1] / area[pick, 0]
        if name == "moving left":
            assert np.all(dx < -0.2) and np.all(np.abs(dy) < 0.05)
        elif name == "moving right":
            assert np.all(dx > 0.2) and np.all(np.abs(dy) < 0.05)
        elif name == "moving up":
            assert np.all(dy < -0.2) and np.all(np.abs(dx) < 0.05)
        elif name == "moving down":
            assert np.all(dy > 0.2) and np.all(np.abs(dx) < 0.05)
        elif name == "growing":
            assert np.all(growth > 2.0)
        elif name == "shrinking":
            assert np.all(growth < 0.5)
        else:
            steps = np.stack([_orientation_steps(m) for m in mask[pick]])
            sign = 1 if name == "rotating clockwise" else -1
            # Every step turns the drawn way; the median step is the drawn 18-30 degrees (the
            # axis measured from a noisy pixel mask is off by a few degrees a frame).
            low, high = world.ROTATION_SPEED
            assert np.all(sign * steps > 5), steps
            median = sign * np.median(steps, axis=1)
            assert np.all((median > low - 4) & (median < high + 4)), median
            np.testing.assert_allclose(growth, 1, atol=0.15)  # turning, not growing


def test_rotation_is_unambiguous():
    """Rotating clips turn an arrow (no rotational symmetry, period 360) by less than half its
    period a frame: a turn of a and one of a - 360 never look alike."""
    assert world.SYMMETRY_ORDER["arrow"] == 1
    assert (
        0 < world.ROTATION_SPEED[0] < world.ROTATION_SPEED[1] < 180 / world.SYMMETRY_ORDER["arrow"]
    )
    # An arrow turned by 180 degrees is another picture; a square turned by 90 is the same one.
    cover = world.render_frames(
        48, np.array([3, 3, 0, 0]), np.full(4, 24.0), np.full(4, 24.0), np.full(4, 24.0),
        np.array([10.0, 190.0, 10.0, 100.0]), np.full((4, 3), 200.0),
        np.zeros((4, 48, 48, 3), np.float32),
    )[..., 0] / 200.0  # fmt: skip
    assert np.abs(cover[0] - cover[1]).sum() > 0.3 * cover[0].sum()
    assert np.abs(cover[2] - cover[3]).sum() < 0.02 * cover[2].sum()


def test_pair_classes_hold_the_same_frames_in_reverse_order_exactly():
    """Flipping every label within its pair plays each clip backwards, bit for bit: the draws
    depend on the pair only, so a class and its partner hold the same multiset of frames and an
    order-blind view (the mean over frames) cannot tell them apart."""
    _, labels = world.make_motion_clips(48, seed=9)
    clips, _ = world.make_motion_clips(48, seed=9, labels=labels)
    flipped, flipped_labels = world.make_motion_clips(48, seed=9, labels=labels ^ 1)
    np.testing.assert_array_equal(flipped_labels, labels ^ 1)
    np.testing.assert_array_equal(flipped, clips[:, ::-1])
    np.testing.assert_array_equal(flipped.mean(axis=1), clips.mean(axis=1))
    # Sorted frame by frame the two are the same multiset, and the order does differ.
    for a, b in zip(clips, flipped):
        key = lambda clip: sorted(frame.tobytes() for frame in clip)
        assert key(a) == key(b) and not np.array_equal(a, b)
    with pytest.raises(ValueError, match="labels must be"):
        world.make_motion_clips(4, seed=0, labels=np.array([0, 1, 8, 2]))


def test_pair_classes_are_the_same_frames_in_reverse_order():
    """A clip of class 2p+1 played backwards is a clip of class 2p: the generator draws the
    first class and reverses it, so the two classes differ only in frame order."""
    clips, labels = world.make_motion_clips(64, seed=3, size=48)
    x, y, area = _centroid_area(_object_mask(clips))
    reversed_x, reversed_y, reversed_area = x[:, ::-1], y[:, ::-1], area[:, ::-1]
    left = labels == 0
    right = labels == 1
    assert np.all(np.diff(reversed_x[right], axis=1).sum(1) < 0)  # right, reversed: moves left
    assert np.all(np.diff(x[left], axis=1).sum(1) < 0)
    shrinking = labels == 7
    assert np.all(reversed_area[shrinking, -1] > reversed_area[shrinking, 0])
    up, down = labels == 2, labels == 3
    assert np.all(reversed_y[down, -1] < reversed_y[down, 0]) and np.all(y[up, -1] < y[up, 0])
    # That both classes of a pair hold the same frames: the exact test above.


def test_caption_words():
    assert world.caption("square", "red", 0.1, 0.1, 0.2) == "a small red square at the top left"
    assert world.caption("circle", "blue", 0.5, 0.5, 0.3) == "a medium blue circle in the centre"
    assert world.caption("triangle", "white", 0.9, 0.5, 0.45) == (
        "a large white triangle at the middle right"
    )


def test_static_frames_match_their_attributes():
    frames, captions, attributes = world.render_static_frames(300, seed=1, size=48)
    assert frames.shape == (300, 48, 48, 3) and frames.dtype == np.uint8 and len(captions) == 300
    assert set(attributes) == {"shape", "colour", "x", "y", "size", "angle"}
    assert set(attributes["shape"].tolist()) == {0, 1, 2, 3}
    inside = (0 < attributes["x"] - attributes["size"] / 2) & (attributes["x"] < 1)
    assert inside.all()
    assert np.all((attributes["angle"] >= 0) & (attributes["angle"] < 360))
    x, y, _ = _centroid_area(_object_mask(frames))
    np.testing.assert_allclose(np.median(np.abs(x / 48 - attributes["x"])), 0, atol=0.02)
    np.testing.assert_allclose(np.median(np.abs(y / 48 - attributes["y"])), 0, atol=0.02)
    colour_names = list(world.COLOURS)
    for i in range(0, 300, 37):
        expected = world.caption(
            world.SHAPES[attributes["shape"][i]], colour_names[attributes["colour"][i]],
            attributes["x"][i], attributes["y"][i], attributes["size"][i],
        )  # fmt: skip
        assert captions[i] == expected
    again = world.render_static_frames(300, seed=1, size=48)
    np.testing.assert_array_equal(frames, again[0])


def test_default_dataset_reads_through_tfds_and_its_manifest_tells_what_it_holds(tmp_path):
    dataset_dir = world.write_synthetic_dataset(str(tmp_path))
    assert dataset_dir == os.path.join(str(tmp_path), "synthetic_motion", "1.0.0")
    builder = tfds.builder_from_directory(dataset_dir)
    assert builder.info.features["label"].names == list(world.CLASS_NAMES)
    assert {k: v.num_examples for k, v in builder.info.splits.items()} == {
        "train": 800,
        "test": 400,
    }
    info = manifest.read_manifest(dataset_dir)
    assert set(info["splits"]["train"]["per_class"].values()) == {100}
    assert set(info["splits"]["test"]["per_class"].values()) == {50}
    # The order pairs, as the trainer reads them; shard counts and bytes as on disk.
    assert info["class_pairs"] == [[0, 1], [2, 3], [4, 5], [6, 7]]
    assert manifest.class_pairs(dataset_dir) == [(0, 1), (2, 3), (4, 5), (6, 7)]
    for split in ("train", "test"):
        shards = [n for n in os.listdir(dataset_dir) if f"-{split}.tfrecord-" in n]
        assert info["splits"][split]["num_shards"] == len(shards) == 4
        on_disk = sum(os.path.getsize(os.path.join(dataset_dir, n)) for n in shards)
        assert info["splits"][split]["num_bytes"] == on_disk

    clips, labels = world.make_motion_clips(800, seed=0)
    first = next(iter(tfds.as_numpy(builder.as_dataset(split="train[:1]", shuffle_files=False))))
    assert first["video_id"] == b"train_00000" and first["label"] == labels[0]
    assert first["video"].shape == (8, 32, 32, 3)
    error = np.abs(first["video"].astype(np.float32) - clips[0]).mean()
    assert error < 5  # JPEG quality 95 on pixel noise; another clip would differ by ~50

    # Reused when asked again with the same options; other options are an error.
    mtime = os.stat(os.path.join(dataset_dir, "dataset_info.json")).st_mtime_ns
    assert world.write_synthetic_dataset(str(tmp_path)) == dataset_dir
    assert os.stat(os.path.join(dataset_dir, "dataset_info.json")).st_mtime_ns == mtime
    with pytest.raises(ValueError, match="written with options"):
        world.write_synthetic_dataset(str(tmp_path), seed=1)

    options = pipeline.PipelineOptions(
        num_frames=8, crop_size=32, batch_size=16, seed=0, crop_scales=(1.0,), flip=False
    )
    batch = next(
        pipeline.make_train_iterator(
            dataset_dir, "train", options, process_index=0, process_count=1
        )
    )
    assert batch["video"].shape == (16, 8, 32, 32, 3)


def test_cli_writes_synthetic_dataset(tmp_path, capsys):
    args = ["synthetic", "--out_dir", str(tmp_path), "--num_train", "16", "--num_test", "8",
            "--size", "24", "--num_frames", "4", "--num_shards", "2"]  # fmt: skip
    assert build_tfrecords.main(args) == 0
    assert "train: 16 videos in 2 shards" in capsys.readouterr().out
    builder = tfds.builder_from_directory(str(tmp_path / "synthetic_motion" / "1.0.0"))
    example = next(iter(tfds.as_numpy(builder.as_dataset(split="test[:1]"))))
    assert example["video"].shape == (4, 24, 24, 3)


def test_visible_angle():
    shape = np.array([0, 0, 1, 2, 3, 3])
    angle = np.array([0.0, 90.0, 40.0, 120.0, 90.0, 270.0])
    expected = [[1, 0], [1, 0], [0, 0], [1, 0], [0, 1], [0, -1]]
    np.testing.assert_allclose(world.visible_angle(shape, angle), expected, atol=1e-6)


def test_provider_writes_when_missing_and_refuses_another_world(tmp_path, capsys):
    """Data source "synthetic_motion": writes into <root>/<name> once; a folder holding a
    dataset of another world version (none recorded: version 1) is an error naming it."""
    path = str(tmp_path / "motion")
    settings = {"num_train": 16, "num_test": 8, "seed": 0}
    world.provide_dataset(settings, dataset_dir=path, frame_size=24, num_frames=4)
    assert "Writing the synthetic motion dataset" in capsys.readouterr().out
    dataset_dir = os.path.join(path, "1.0.0")
    assert manifest.read_manifest(dataset_dir)["options"]["size"] == 24

    assert manifest.class_pairs(dataset_dir) == list(world.CLASS_PAIRS)
    mtime = os.stat(os.path.join(dataset_dir, "dataset_info.json")).st_mtime_ns
    world.provide_dataset(settings, dataset_dir=path, frame_size=24, num_frames=4)
    assert "Writing" not in capsys.readouterr().out
    assert os.stat(os.path.join(dataset_dir, "dataset_info.json")).st_mtime_ns == mtime

    old = manifest.read_manifest(dataset_dir)
    assert old["options"].pop("world_version") == world.WORLD_VERSION
    manifest.write_manifest(dataset_dir, old)
    with pytest.raises(ValueError, match=f"^{dataset_dir} holds a synthetic dataset of "
                                         "world_version 1, .*delete the folder"):  # fmt: skip
        world.provide_dataset(settings, dataset_dir=path, frame_size=24, num_frames=4)


def test_concurrent_writers_leave_one_complete_dataset(tmp_path):
    """Test processes share one dataset folder: writers racing on it leave exactly one complete
    dataset (the first renamed into place), no scratch folder, and the same records as one writer
    alone; a partial folder of an older writer is replaced, a different dataset is refused."""
    import concurrent.futures

    from motion_clip_jax.data import source

    root = tmp_path / "shared"
    root.mkdir()
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        paths = list(pool.map(
            lambda _: world.write_synthetic_dataset(str(root), num_train=16, num_test=8), range(3)
        ))  # fmt: skip
    assert len(set(paths)) == 1 and os.listdir(root) == ["synthetic_motion"]
    alone = world.write_synthetic_dataset(str(tmp_path / "alone"), num_train=16, num_test=8)
    for split in ("train", "test"):
        assert source.read_split_index(paths[0], split) == source.read_split_index(alone, split)
    assert sorted(os.listdir(paths[0])) == sorted(os.listdir(alone))

    partial = tmp_path / "partial" / "synthetic_motion" / "1.0.0"
    partial.mkdir(parents=True)
    (partial / "synthetic_motion-train.tfrecord-00000-of-00004").write_bytes(b"half a shard")
    written = world.write_synthetic_dataset(str(tmp_path / "partial"), num_train=16, num_test=8)
    assert source.split_sizes(written) == {"train": 16, "test": 8}
    with pytest.raises(ValueError, match="written with options"):
        world.write_synthetic_dataset(str(root), num_train=24, num_test=8)
