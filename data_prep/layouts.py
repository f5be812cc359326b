"""Dataset layouts on disk -> plans: which video goes to which split with which label.

Understood layouts (see docs/data.md):
  hmdb51       <videos>/<class>/<video>.avi + <splits>/<class>_test_split{1,2,3}.txt ("v.avi 1")
  ucf101       <videos>/<Class>/v_*.avi + <splits>/classInd.txt, trainlist0N.txt, testlist0N.txt
  kinetics400  CSV annotations label,youtube_id,time_start,time_end,split + clips named
               <youtube_id>_<start:06d>_<end:06d>.<ext> anywhere under <videos>
  folder       <videos>/<class>/<video> (all "train"), or <videos>/<split>/<class>/<video>
A video that cannot be planned (missing file, unknown class, no label) goes to `skipped` with the
reason; it is never dropped silently. HMDB-51 and UCF-101 give one plan per official split
(datasets hmdb51_split1, ...), since their splits share videos.
"""

from __future__ import annotations

import csv
import dataclasses
import glob
import os
import re
from collections.abc import Sequence

from motion_clip_jax.core import classnames

VIDEO_EXTENSIONS = (
    ".avi",
    ".mp4",
    ".mkv",
    ".webm",
    ".mov",
    ".m4v",
    ".mpg",
    ".mpeg",
    ".flv",
    ".wmv",
    ".3gp",
    ".ogv",
    ".ts",
)
SPLIT_FOLDERS = {"train": "train", "val": "validation", "validation": "validation", "test": "test"}
KINETICS_SPLITS = {
    "train": "train",
    "val": "validation",
    "validate": "validation",
    "validation": "validation",
    "test": "test",
}
_NAME = re.compile(r"[a-z][a-z0-9_]*")


@dataclasses.dataclass(frozen=True)
class VideoItem:
    video_id: str
    path: str
    label: int
    split: str


@dataclasses.dataclass
class DatasetPlan:
    name: str  # tfds dataset name, the output folder <out>/<name>/1.0.0
    layout: str
    class_names: list[str]  # readable, stored in the ClassLabel
    raw_class_names: list[str]  # as the dataset spells them (folder names)
    items: list[VideoItem]
    skipped: list[dict]  # {"split", "video_id", "path", "reason"}
    source: dict  # where the plan came from (folders, split files), for the manifest
    unlisted_videos: int = 0  # video files on disk that no split file names


def is_video_file(name: str) -> bool:
    return name.lower().endswith(VIDEO_EXTENSIONS)


def _strip_extension(path: str) -> str:
    return os.path.splitext(path)[0]


class _PathResolver:
    """Finds `<root>/<relative>`; falls back to a case-insensitive match (UCF-101's lists and
    folders disagree on case in places, and file systems differ)."""

    def __init__(self, root: str):
        self.root = root
        self._lower: dict[str, str] | None = None

    def all_videos(self) -> dict[str, str]:
        if self._lower is None:
            self._lower = {}
            for folder, _, files in sorted(os.walk(self.root)):
                for name in sorted(files):
                    if is_video_file(name):
                        path = os.path.join(folder, name)
                        relative = os.path.relpath(path, self.root).replace(os.sep, "/")
                        self._lower.setdefault(relative.lower(), path)
        return self._lower

    def find(self, relative: str) -> str | None:
        path = os.path.join(self.root, relative)
        if os.path.isfile(path):
            return path
        return self.all_videos().get(relative.replace(os.sep, "/").lower())


def _text_lines(path: str) -> list[str]:
    """The lines of a split / class-list file; a file that is not UTF-8 text is an error naming
    it."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path!r} is not a file")
    try:
        with open(path, encoding="utf-8") as f:
            return f.readlines()
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not a UTF-8 text file ({e.reason} at byte {e.start})") from None


def _require_dir(path: str, what: str) -> None:
    if not os.path.isdir(path):
        raise FileNotFoundError(f"{what} {path!r} is not a folder")


def hmdb51_plans(videos_dir: str, splits_dir: str, split_ids: Sequence[int]) -> list[DatasetPlan]:
    """HMDB-51: one plan per official split id; mark 1 = train, 2 = test, 0 = unused."""
    _require_dir(videos_dir, "HMDB-51 videos folder")
    _require_dir(splits_dir, "HMDB-51 split-file folder")
    raw_names = classnames.load_classnames("hmdb51", raw=True)
    readable = classnames.load_classnames("hmdb51")
    label_of = {name: i for i, name in enumerate(raw_names)}
    resolver = _PathResolver(videos_dir)
    plans, listed = [], set()
    for split_id in split_ids:
        files = sorted(glob.glob(os.path.join(splits_dir, f"*_test_split{split_id}.txt")))
        if not files:
            raise FileNotFoundError(
                f"no HMDB-51 split files *_test_split{split_id}.txt in {splits_dir!r}"
            )
        items, skipped = [], []
        for split_file in files:
            raw_class = os.path.basename(split_file)[: -len(f"_test_split{split_id}.txt")]
            for line_number, line in enumerate(_text_lines(split_file), start=1):
                fields = line.split()
                if not fields:
                    continue
                if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
                    raise ValueError(
                        f"{split_file} line {line_number}: expected '<video> 0|1|2', "
                        f"got {line.rstrip()!r}"
                    )
                relative = f"{raw_class}/{fields[0]}"
                path = resolver.find(relative)
                if path:
                    listed.add(os.path.normcase(path))
                if fields[1] == "0":  # not used by this split
                    continue
                split = "train" if fields[1] == "1" else "test"
                video_id = _strip_extension(relative)
                expected = os.path.join(videos_dir, relative)
                _keep_or_skip(items, skipped, split, video_id, path, expected, raw_class, label_of)
        plans.append(
            _official_split_plan(
                "hmdb51", split_id, readable, raw_names, items, skipped, videos_dir, files
            )
        )
    return _with_unlisted(plans, resolver, listed)


def _official_split_plan(layout, split_id, readable, raw_names, items, skipped, videos_dir, files):
    """The DatasetPlan of one official split (HMDB-51 / UCF-101: one dataset per split)."""
    name = f"{layout}_split{split_id}"
    return _plan(name, layout, readable, raw_names, items, skipped, videos_dir, split_files=files)


def _plan(name, layout, class_names, raw_names, items, skipped, videos_dir, **lists) -> DatasetPlan:
    """A DatasetPlan whose source records the videos folder and the list files read, each kind
    by its name (`lists`, e.g. split_files=[...]), as absolute paths."""
    source = {"videos_dir": os.path.abspath(videos_dir)}
    source.update({kind: [os.path.abspath(f) for f in files] for kind, files in lists.items()})
    return DatasetPlan(name, layout, class_names, raw_names, items, skipped, source)


def _with_unlisted(plans: list, resolver: _PathResolver, listed: set[str]) -> list:
    """Every plan records how many videos on disk no split file lists."""
    unlisted = _count_unlisted(resolver, listed)
    for plan in plans:
        plan.unlisted_videos = unlisted
    return plans


def _count_unlisted(resolver: _PathResolver, listed: set[str]) -> int:
    return sum(os.path.normcase(p) not in listed for p in resolver.all_videos().values())


def _keep_or_skip(
    items: list,
    skipped: list,
    split: str,
    video_id: str,
    path: str | None,
    expected_path: str,
    label_text: str,
    label_of: dict,
) -> None:
    """Appends the video to `items`, or to `skipped` with why: an unknown class, a missing file
    (`path` None; `expected_path` is where it was looked for)."""
    if label_text not in label_of:
        skipped.append(_skip(split, video_id, path, f"unknown class {label_text!r}"))
    elif path is None:
        skipped.append(_skip(split, video_id, expected_path, "missing file"))
    else:
        items.append(VideoItem(video_id, path, label_of[label_text], split))


def _skip(split: str, video_id: str, path: str | None, reason: str) -> dict:
    return {"split": split, "video_id": video_id, "path": path, "reason": reason}


def _read_class_index(path: str) -> list[str]:
    names = []
    for line_number, line in enumerate(_text_lines(path), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2 or not fields[0].isdigit() or int(fields[0]) != len(names) + 1:
            raise ValueError(
                f"{path} line {line_number}: expected '{len(names) + 1} <ClassName>', "
                f"got {line.rstrip()!r}"
            )
        names.append(fields[1])
    return names


def ucf101_plans(videos_dir: str, splits_dir: str, split_ids: Sequence[int]) -> list[DatasetPlan]:
    """UCF-101: one plan per official split id (trainlist0N.txt / testlist0N.txt)."""
    _require_dir(videos_dir, "UCF-101 videos folder")
    _require_dir(splits_dir, "UCF-101 split-file folder")
    raw_names = classnames.load_classnames("ucf101", raw=True)
    readable = classnames.load_classnames("ucf101")
    class_index = os.path.join(splits_dir, "classInd.txt")
    if os.path.exists(class_index):
        found = _read_class_index(class_index)
        if found != raw_names:
            diff = [(i + 1, a, b) for i, (a, b) in enumerate(zip(found, raw_names)) if a != b]
            raise ValueError(
                f"{class_index} disagrees with the vendored UCF-101 class list "
                f"({len(found)} vs {len(raw_names)} names; first differences "
                f"(index, file, vendored): {diff[:3]})"
            )
    label_of = {name.lower(): i for i, name in enumerate(raw_names)}
    resolver = _PathResolver(videos_dir)
    plans, listed = [], set()
    for split_id in split_ids:
        items, skipped, files = [], [], []
        for split, filename in (
            ("train", f"trainlist{split_id:02d}.txt"),
            ("test", f"testlist{split_id:02d}.txt"),
        ):
            split_file = os.path.join(splits_dir, filename)
            if not os.path.exists(split_file):
                raise FileNotFoundError(f"UCF-101 split file {split_file!r} does not exist")
            files.append(split_file)
            for line_number, line in enumerate(_text_lines(split_file), start=1):
                fields = line.split()
                if not fields:
                    continue
                relative = fields[0].replace("\\", "/")
                if "/" not in relative or len(fields) > 2:
                    raise ValueError(
                        f"{split_file} line {line_number}: expected "
                        f"'<Class>/<video>.avi [label]', got {line.rstrip()!r}"
                    )
                raw_class = relative.split("/")[0]
                video_id = _strip_extension(relative)
                path = resolver.find(relative)
                if path:
                    listed.add(os.path.normcase(path))
                label = label_of.get(raw_class.lower())
                if label is None:
                    skipped.append(_skip(split, video_id, path, f"unknown class {raw_class!r}"))
                elif len(fields) == 2 and fields[1] != str(label + 1):
                    raise ValueError(
                        f"{split_file} line {line_number}: label {fields[1]} but "
                        f"class {raw_class!r} is {label + 1} in classInd.txt"
                    )
                elif path is None:
                    skipped.append(
                        _skip(split, video_id, os.path.join(videos_dir, relative), "missing file")
                    )
                else:
                    items.append(VideoItem(video_id, path, label, split))
        plans.append(
            _official_split_plan(
                "ucf101", split_id, readable, raw_names, items, skipped, videos_dir, files
            )
        )
    return _with_unlisted(plans, resolver, listed)


def kinetics400_plan(videos_dir: str, annotation_files: Sequence[str]) -> DatasetPlan:
    """Kinetics-400 from its CSV annotations; splits train / validation / test."""
    _require_dir(videos_dir, "Kinetics-400 videos folder")
    names = classnames.load_classnames("kinetics400")
    label_of = {name: i for i, name in enumerate(names)}
    by_stem: dict[str, str] = {}
    for folder, _, files in sorted(os.walk(videos_dir)):
        for name in sorted(files):
            if is_video_file(name):
                by_stem.setdefault(_strip_extension(name), os.path.join(folder, name))
    items, skipped, seen = [], [], set()
    for csv_path in annotation_files:
        lines = _text_lines(csv_path)
        reader = csv.DictReader(lines)
        needed = {"youtube_id", "time_start", "time_end", "split"}
        if not reader.fieldnames or not needed <= set(reader.fieldnames):
            raise ValueError(
                f"{csv_path}: expected CSV columns label,youtube_id,time_start,"
                f"time_end,split; got {reader.fieldnames}"
            )
        for line_number, row in enumerate(reader, start=2):
            try:
                start, end = int(float(row["time_start"])), int(float(row["time_end"]))
            except ValueError:
                raise ValueError(
                    f"{csv_path} line {line_number}: bad time_start / time_end "
                    f"{row['time_start']!r}, {row['time_end']!r}"
                ) from None
            split = KINETICS_SPLITS.get(row["split"].strip().lower())
            if split is None:
                raise ValueError(
                    f"{csv_path} line {line_number}: unknown split "
                    f"{row['split']!r}; known: {sorted(KINETICS_SPLITS)}"
                )
            video_id = f"{row['youtube_id']}_{start:06d}_{end:06d}"
            if video_id in seen:
                raise ValueError(f"{csv_path} line {line_number}: clip {video_id} is listed twice")
            seen.add(video_id)
            path = by_stem.get(video_id)
            label_text = (row.get("label") or "").strip()
            if not label_text:
                skipped.append(_skip(split, video_id, path, "no label"))
            else:
                expected = os.path.join(videos_dir, video_id)
                _keep_or_skip(items, skipped, split, video_id, path, expected, label_text, label_of)
    listed = {os.path.normcase(by_stem[v]) for v in seen if v in by_stem}
    plan = _plan(
        "kinetics400",
        "kinetics400",
        names,
        names,
        items,
        skipped,
        videos_dir,
        annotations=annotation_files,
    )
    plan.unlisted_videos = sum(os.path.normcase(p) not in listed for p in by_stem.values())
    return plan


def folder_plan(videos_dir: str, name: str) -> DatasetPlan:
    """A generic <class>/<video> folder (split "train"), or <split>/<class>/<video> with split
    folders train / val / validation / test. Readable class name: the folder name, '_' -> ' '."""
    _require_dir(videos_dir, "videos folder")
    if not _NAME.fullmatch(name):
        raise ValueError(f"dataset name {name!r}: use lower-case letters, digits and '_'")
    top = sorted(e.name for e in os.scandir(videos_dir) if e.is_dir())
    if not top:
        raise ValueError(f"{videos_dir!r} has no class folders")
    if all(folder.lower() in SPLIT_FOLDERS for folder in top):
        split_dirs = [(SPLIT_FOLDERS[f.lower()], os.path.join(videos_dir, f)) for f in top]
    else:
        split_dirs = [("train", videos_dir)]
    raw_names = sorted({e.name for _, d in split_dirs for e in os.scandir(d) if e.is_dir()})
    readable = [raw.replace("_", " ").strip() for raw in raw_names]
    if len(set(readable)) != len(readable):
        raise ValueError(f"class folders of {videos_dir!r} give repeated names: {readable}")
    items, skipped = [], []
    for split, split_dir in split_dirs:
        for label, raw in enumerate(raw_names):
            class_dir = os.path.join(split_dir, raw)
            if not os.path.isdir(class_dir):
                continue
            for folder, _, files in sorted(os.walk(class_dir)):
                for filename in sorted(files):
                    path = os.path.join(folder, filename)
                    relative = os.path.relpath(path, split_dir).replace(os.sep, "/")
                    if is_video_file(filename):
                        items.append(VideoItem(_strip_extension(relative), path, label, split))
                    else:
                        skipped.append(_skip(split, relative, path, "not a video file extension"))
        for entry in sorted(os.scandir(split_dir), key=lambda e: e.name):
            if entry.is_file():
                skipped.append(_skip(split, entry.name, entry.path, "not inside a class folder"))
    return _plan(name, "folder", readable, raw_names, items, skipped, videos_dir)
