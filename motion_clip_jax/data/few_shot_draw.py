"""Few-shot draws: k training videos per class, a pure function of (train list, k, seed).

Within each class the videos are ranked by BLAKE2b(seed, video_id) and the first k are drawn. The
rank does not depend on the order of the list, on Python's hash() or on NumPy's generators, so a
draw is the same on every machine and version. For one seed the draws are nested (the 2-shot
videos are among the 4-shot ones), and the last videos of each class's rank order can be held out
as a validation set (draw_validation), disjoint from every draw of that seed. The paper's
protocol: k in PAPER_SHOTS, PAPER_DRAWS draws (seeds 0, 1, ...) from split-1 train, tested on
split-1 test.
Drawn lists are written as text files so anyone can rerun or reuse them; train on one with
make_train_iterator(..., video_ids=read_video_list(p)).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

from motion_clip_jax.data import shuffle

# The paper's protocol (§4.3): the shots of Table 5 and the number of draws of every cell.
PAPER_SHOTS = (2, 4, 8, 16)
PAPER_DRAWS = 10
PAPER_SEEDS = tuple(range(PAPER_DRAWS))


def _ranked_by_class(
    train_list: Iterable[Sequence],
    seed: int,
    need: int,
    num_classes: int | None,
    class_names: Sequence[str] | None,
    what: str,
) -> dict[int, list[str]]:
    """label -> its video ids in rank order under `seed`; raises naming the first class with
    fewer than `need` videos (`what` says what they are needed for)."""
    by_class: dict[int, list[str]] = {}
    seen: set[str] = set()
    for row in train_list:
        video_id, label = str(row[0]), int(row[1])
        if video_id in seen:
            raise ValueError(f"video id {video_id!r} appears twice in the train list")
        seen.add(video_id)
        by_class.setdefault(label, []).append(video_id)
    labels = range(num_classes) if num_classes is not None else sorted(by_class)
    ranked = {}
    for label in labels:
        videos = by_class.get(label, [])
        if len(videos) < need:
            name = f" {class_names[label]!r}" if class_names is not None else ""
            raise ValueError(
                f"class {label}{name} has {len(videos)} training videos, fewer than {what}"
            )
        ranked[label] = sorted(videos, key=lambda v: (shuffle.string_rank_key(seed, v), v))
    return ranked


def draw_few_shot(
    train_list: Iterable[Sequence],
    k: int,
    seed: int,
    *,
    num_classes: int | None = None,
    class_names: Sequence[str] | None = None,
) -> list[tuple[str, int]]:
    """k (video_id, label) per class, sorted by label then rank.

    train_list: (video_id, label, ...) rows (extra fields ignored), ids unique. num_classes:
    every label in [0, num_classes) must have k videos (default: the labels present). Raises
    ValueError naming the class that has fewer than k videos.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    ranked = _ranked_by_class(train_list, seed, k, num_classes, class_names, f"k={k}")
    return [(video_id, label) for label, ids in ranked.items() for video_id in ids[:k]]


def draw_validation(
    train_list: Iterable[Sequence],
    per_class: int,
    seed: int,
    *,
    k: int,
    num_classes: int | None = None,
    class_names: Sequence[str] | None = None,
) -> list[tuple[str, int]]:
    """`per_class` training videos per class held out of the few-shot draws of `seed`, for
    choosing hyper-parameters without the test set: the LAST per_class of each class's rank
    order. They are the same for every k and disjoint from draw_few_shot(..., k, seed); every
    class needs k + per_class videos (raises naming the class that has fewer)."""
    if per_class < 1:
        raise ValueError(f"validation videos per class must be >= 1, got {per_class}")
    ranked = _ranked_by_class(
        train_list, seed, k + per_class, num_classes, class_names,
        f"k={k} + {per_class} validation videos",
    )  # fmt: skip
    return [(video_id, label) for label, ids in ranked.items() for video_id in ids[-per_class:]]


def draw_many(
    train_list: Iterable[Sequence], k: int, seeds: Iterable[int] = PAPER_SEEDS, **kwargs
) -> dict[int, list[tuple[str, int]]]:
    """draw_few_shot for every seed (the paper's 10 runs: seeds 0..9)."""
    rows = list(train_list)
    return {seed: draw_few_shot(rows, k, seed, **kwargs) for seed in seeds}


def write_video_list(path: str, videos: Sequence[tuple[str, int]], header: str = "") -> None:
    """Writes `video_id<TAB>label` lines (after `# header` comment lines), atomically."""
    tmp_path = f"{path}.tmp-{os.getpid()}"
    with open(tmp_path, "w", encoding="utf-8") as f:
        for line in header.splitlines():
            f.write(f"# {line}\n")
        for video_id, label in videos:
            if "\t" in video_id or "\n" in video_id:
                raise ValueError(f"video id {video_id!r} holds a tab or newline")
            f.write(f"{video_id}\t{int(label)}\n")
    os.replace(tmp_path, path)


def read_video_list(path: str) -> list[tuple[str, int]]:
    """Reads a list written by write_video_list: [(video_id, label)]."""
    videos = []
    with open(path, encoding="utf-8") as f:
        for line_number, line in enumerate(f, start=1):
            if line.startswith("#") or not line.strip():
                continue
            fields = line.rstrip("\n").split("\t")
            if len(fields) != 2 or not fields[1].lstrip("-").isdigit():
                raise ValueError(
                    f"{path} line {line_number}: expected 'video_id<TAB>label', got "
                    f"{line.rstrip()!r}"
                )
            videos.append((fields[0], int(fields[1])))
    return videos


def list_filename(prefix: str, k: int, seed: int) -> str:
    """The file of a drawn list: `<prefix>_<k>shot_seed<seed>.txt` (prefix: the dataset, or
    'few_shot' in a run's workdir)."""
    return f"{prefix}_{k}shot_seed{seed}.txt"


def validation_filename(per_class: int, seed: int) -> str:
    """The file of the validation videos held out of the draws of `seed` (`draw_validation`)."""
    return f"validation_{per_class}per_class_seed{seed}.txt"


def write_draws(
    out_dir: str,
    train_list: Iterable[Sequence],
    *,
    dataset: str,
    shots: Iterable[int] = PAPER_SHOTS,
    seeds: Iterable[int] = PAPER_SEEDS,
    class_names: Sequence[str] | None = None,
) -> list[str]:
    """Writes one list file per (k, seed) to out_dir; returns the paths."""
    rows = list(train_list)
    os.makedirs(out_dir, exist_ok=True)
    num_classes = len(class_names) if class_names is not None else None
    paths = []
    for k in shots:
        for seed, videos in draw_many(
            rows, k, seeds, num_classes=num_classes, class_names=class_names
        ).items():
            path = os.path.join(out_dir, list_filename(dataset, k, seed))
            header = (
                f"few-shot draw of {dataset}: k={k} per class, seed={seed}, {len(videos)} "
                "videos\nmotion_clip_jax.data.few_shot_draw.draw_few_shot (BLAKE2b rank per class)\n"
                "video_id<TAB>label"
            )
            write_video_list(path, videos, header)
            paths.append(path)
    return paths


def check_disjoint(train_ids: Iterable[str], eval_ids: Iterable[str], what: str = "") -> None:
    """Raises if a training video is also an evaluation video (a few-shot list must not overlap
    the split it is tested on)."""
    overlap = sorted(set(train_ids) & set(eval_ids))
    if overlap:
        raise ValueError(
            f"{len(overlap)} training videos are also evaluation videos{what}, e.g. {overlap[:3]}"
        )
