"""Vendored class-name lists and the UCF-101 readable-name rule."""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

import pytest

from motion_clip_jax.core import classnames as cn

COUNTS = {"hmdb51": 51, "ucf101": 101, "kinetics400": 400}


@pytest.mark.parametrize("dataset", sorted(COUNTS))
@pytest.mark.parametrize("raw", [False, True])
def test_counts_and_uniqueness(dataset, raw):
    names = cn.load_classnames(dataset, raw=raw)
    assert len(names) == COUNTS[dataset]
    assert len(set(names)) == len(names)
    assert all(name == name.strip() and name for name in names)


def test_ucf101_matches_tensorflow_datasets_list():
    # An independent copy of classInd.txt's order, read as text (no TensorFlow import).
    path = importlib.metadata.distribution("tensorflow-datasets").locate_file(
        "tensorflow_datasets/video/ucf101_labels.txt"
    )
    assert cn.load_classnames("ucf101", raw=True) == Path(path).read_text().split()


def test_known_entries():
    hmdb_raw = cn.load_classnames("hmdb51", raw=True)
    hmdb = cn.load_classnames("hmdb51")
    assert hmdb_raw == sorted(hmdb_raw)
    assert all(re.fullmatch(r"[a-z]+(_[a-z]+)*", n) for n in hmdb_raw)
    assert hmdb_raw[:3] == ["brush_hair", "cartwheel", "catch"] and hmdb_raw[-1] == "wave"
    assert hmdb[0] == "brush hair" and "sword exercise" in hmdb and "flic flac" in hmdb
    assert hmdb.index("kick") + 1 == hmdb.index("kick ball")
    for name in ("climb_stairs", "fall_floor", "pullup", "pushup", "situp", "shoot_gun"):
        assert name in hmdb_raw

    ucf_raw = cn.load_classnames("ucf101", raw=True)
    ucf = cn.load_classnames("ucf101")
    # classInd.txt: "1 ApplyEyeMakeup", "37 HandstandPushups", "101 YoYo" (index = label + 1).
    assert ucf_raw[0] == "ApplyEyeMakeup" and ucf[0] == "apply eye makeup"
    assert ucf_raw[36] == "HandstandPushups" and ucf[36] == "handstand pushups"
    assert ucf_raw[100] == "YoYo" and ucf[100] == "yoyo"
    assert ucf_raw[59] == "PlayingDaf" and ucf[59] == "playing daf"

    k400 = cn.load_classnames("kinetics400")
    assert k400[:2] == ["abseiling", "air drumming"] and k400[-1] == "zumba"
    assert k400 == sorted(k400)
    for name in (
        "passing American football (in game)",
        "skiing (not slalom or crosscountry)",
        "massaging person's head",
        "tying knot (not on a tie)",
        "dying hair",
    ):
        assert name in k400
    assert cn.load_classnames("kinetics400", raw=True) == k400


@pytest.mark.parametrize(
    "raw_name, readable",
    [
        ("ApplyEyeMakeup", "apply eye makeup"),
        ("YoYo", "yoyo"),
        ("PlayingDaf", "playing daf"),
        ("Skijet", "skijet"),
        ("JumpingJack", "jumping jack"),
        ("TaiChi", "tai chi"),
        ("CleanAndJerk", "clean and jerk"),
        ("PullUps", "pull ups"),
        ("RockClimbingIndoor", "rock climbing indoor"),
        ("Shotput", "shotput"),
        # Not UCF-101 classes: acronyms, digits, separators.
        ("TVRemote", "tv remote"),
        ("PlayingTV", "playing tv"),
        ("HTMLParser", "html parser"),
        ("ABC", "abc"),
        ("Throw3Balls", "throw 3 balls"),
        ("brush_hair", "brush hair"),
        ("Hula-Hoop Dance", "hula hoop dance"),
    ],
)
def test_ucf101_readable(raw_name, readable):
    assert cn.ucf101_readable(raw_name) == readable


def test_ucf101_readable_keeps_every_letter():
    for raw_name, readable in zip(
        cn.load_classnames("ucf101", raw=True), cn.load_classnames("ucf101")
    ):
        assert readable.replace(" ", "") == raw_name.lower()
        if raw_name not in cn.UCF101_READABLE_EXCEPTIONS:
            # No UCF-101 name has an acronym or digit: one word per capital letter.
            assert len(readable.split()) == sum(c.isupper() for c in raw_name), raw_name


@pytest.mark.parametrize("bad", ["", "   ", "Café", "a.b", "Tennis/Swing"])
def test_ucf101_readable_rejects(bad):
    with pytest.raises(ValueError, match="CamelCase"):
        cn.ucf101_readable(bad)


def test_load_classnames_names_and_errors():
    assert cn.load_classnames("HMDB-51") == cn.load_classnames("hmdb51")
    assert cn.load_classnames("ucf_101", raw=True) == cn.load_classnames("ucf101", raw=True)
    with pytest.raises(ValueError, match="'ssv2'.*hmdb51, ucf101, kinetics400"):
        cn.load_classnames("ssv2")
    # Callers get their own list; changing it does not change the next call.
    names = cn.load_classnames("hmdb51")
    names[0] = "changed"
    assert cn.load_classnames("hmdb51")[0] == "brush hair"


def test_read_label_file(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_text("# header\n\n  run  \nwalk\n# note\n\n jump\n")
    assert cn.read_label_file(path) == ["run", "walk", "jump"]


@pytest.mark.parametrize("content", ["", "\n\n", "# only a comment\n  \n"])
def test_read_label_file_empty(tmp_path, content):
    path = tmp_path / "empty.txt"
    path.write_text(content)
    with pytest.raises(ValueError, match=r"empty\.txt holds no class names"):
        cn.read_label_file(path)


def test_read_label_file_duplicate(tmp_path):
    path = tmp_path / "dup.txt"
    path.write_text("run\nwalk\n\nrun\n")
    with pytest.raises(ValueError, match=r"dup\.txt: class 'run' on line 4 repeats line 1"):
        cn.read_label_file(path)


def test_read_label_file_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        cn.read_label_file(tmp_path / "nope.txt")
