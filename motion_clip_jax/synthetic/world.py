"""A synthetic world whose classes only a model that sees frame ORDER can tell apart.

Every clip shows one shape (square / circle / triangle / arrow, a named colour with jitter) on a
noisy random background. 8 classes in 4 pairs, see CLASS_NAMES: a clip of the second class of a
pair is drawn like one of the first and then played backwards, so a clip and its partner hold the
same multiset of frames and differ only in order (mean pooling over frames cannot tell them apart).
Rotating clips turn a clock hand: an arrow (the one shape without rotational symmetry) pivoting on
its tail near the frame's centre, by 18-30 degrees a frame, far below half its 360-degree period,
so the turning direction is plain in any two frames. Pivoting on its tail, the hand's body sweeps
across the tiny CLIP's 8 px patches: its angle is WHERE it is, which a 2-layer patch-8 tower learns
(it never learned a small shape's tilt inside a patch, see docs/pretrain_clip.md). Arrows are
always such hands, in static frames too, and appear in no other class.
Everything is a pure function of the seed; WORLD_VERSION names the world a dataset was drawn from.

`render_static_frames` draws single frames from the same renderer with their attributes and a
caption, for pretraining a small image tower (shape, colour, position, size, angle).
`write_synthetic_dataset` stores train / test clips in the project's record format
(motion_clip_jax/data/records.py), so the pipeline reads them like any real dataset; its
manifest.json records the order pairs (`class_pairs`), from which the trainer reports within-pair
accuracy. `provide_dataset` is the engine's data source "synthetic_motion" (train/providers.py).
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import time
from typing import Any

import numpy as np

from motion_clip_jax.train.providers import provider

CLASS_NAMES = (
    "moving left",
    "moving right",
    "moving up",
    "moving down",
    "rotating clockwise",
    "rotating anticlockwise",
    "growing",
    "shrinking",
)
# (first, second) label of every order pair: the second class is the first played backwards.
CLASS_PAIRS = tuple((i, i + 1) for i in range(0, len(CLASS_NAMES), 2))
# Bump when clips or static frames change for the same seed: a dataset of another world is stale.
# 1: squares / triangles turning 8-15 deg a frame. 2: clock hands turning 18-30 deg a frame.
WORLD_VERSION = 2
SHAPES = ("square", "circle", "triangle", "arrow")
# Rotational symmetry order k of each shape: a turn of 360/k degrees looks the same, so what a
# frame shows of its angle is k * angle mod 360 (a circle, k = 0, shows none).
SYMMETRY_ORDER = {"square": 4, "circle": 0, "triangle": 3, "arrow": 1}
# Degrees per frame of a rotating clip: far below 180 (half the arrow's period), so the direction
# of the turn between two frames is never ambiguous.
ROTATION_SPEED = (18.0, 30.0)
# Named object colours (captions use the names); each draw adds +-20 jitter per channel.
COLOURS = {
    "red": (220, 40, 40),
    "green": (40, 190, 60),
    "blue": (50, 90, 230),
    "yellow": (235, 215, 40),
    "cyan": (40, 205, 215),
    "magenta": (215, 50, 205),
    "orange": (245, 140, 30),
    "white": (245, 245, 245),
}
_SUPERSAMPLE = 3  # sub-pixels per pixel side, for anti-aliased edges
_CHUNK = 256  # frames rendered at a time
_TRIANGLE_SCALE = 1.25  # circumradius / (size / 2): a triangle of "size" s looks as big as a square
# Arrow of length "size", pointing up at angle 0, in units of half its length (local v down): a
# head from the tip v = -1 to v = -0.1, 0.65 wide each side at its base, on a shaft 0.3 wide each
# side down to v = 1. Not symmetric under any turn, so its angle is visible modulo 360.
_ARROW_NECK, _ARROW_HEAD_HALF_WIDTH, _ARROW_SHAFT_HALF_WIDTH = -0.1, 0.65, 0.3
# Clock hands: length and pivot offset from the frame's centre (each axis), relative to the side;
# the tip stays inside the frame (0.42 + 0.06 < 0.5).
_HAND_LENGTH = (0.32, 0.42)
_HAND_PIVOT_JITTER = 0.06
_COLOUR_JITTER = 20
_MIN_CONTRAST = 110.0  # minimum RGB distance between object colour and background base colour


def render_frames(
    size: int,
    shape: np.ndarray,
    cx: np.ndarray,
    cy: np.ndarray,
    extent: np.ndarray,
    angle_deg: np.ndarray,
    colour: np.ndarray,
    background: np.ndarray,
) -> np.ndarray:
    """Draws one shape per frame over its background.

    shape (F,) int index into SHAPES; cx, cy, extent (F,) in pixels (centre, side / diameter);
    angle_deg (F,) clockwise on screen; colour (F, 3) RGB; background (F, H, W, 3) float.
    Returns (F, H, W, 3) uint8.
    """
    frames = np.empty(background.shape, dtype=np.uint8)
    for start in range(0, len(cx), _CHUNK):  # chunks keep the (F, H*ss, W*ss) temporaries small
        part = slice(start, start + _CHUNK)
        cover = _coverage(size, shape[part], cx[part], cy[part], extent[part], angle_deg[part])
        mixed = background[part] * (1 - cover) + colour[part, None, None, :] * cover
        frames[part] = np.clip(np.round(mixed), 0, 255).astype(np.uint8)
    return frames


def _coverage(
    size: int,
    shape: np.ndarray,
    cx: np.ndarray,
    cy: np.ndarray,
    extent: np.ndarray,
    angle_deg: np.ndarray,
) -> np.ndarray:
    """Fraction (F, H, W, 1) of each pixel the shape covers, from sub-pixel inside tests."""
    ss = _SUPERSAMPLE
    coords = (np.arange(size * ss, dtype=np.float32) + 0.5) / ss  # sub-pixel centres in pixels
    dx = coords[None, None, :] - cx[:, None, None].astype(np.float32)
    dy = coords[None, :, None] - cy[:, None, None].astype(np.float32)
    theta = np.deg2rad(angle_deg).astype(np.float32)[:, None, None]
    # Shape-local coordinates: undo the clockwise (y-down) rotation of the shape.
    u = np.cos(theta) * dx + np.sin(theta) * dy
    v = -np.sin(theta) * dx + np.cos(theta) * dy
    half = (extent.astype(np.float32) / 2)[:, None, None]
    inside = np.empty(u.shape, dtype=bool)
    for index, name in enumerate(SHAPES):
        pick = shape == index
        if not pick.any():
            continue
        pu, pv, ph = u[pick], v[pick], half[pick]
        if name == "square":
            inside[pick] = np.maximum(np.abs(pu), np.abs(pv)) <= ph
        elif name == "circle":
            inside[pick] = pu * pu + pv * pv <= ph * ph
        elif name == "arrow":
            a, b = pu / ph, pv / ph  # in half lengths
            head = (b >= -1) & (b <= _ARROW_NECK)
            head &= np.abs(a) <= _ARROW_HEAD_HALF_WIDTH * (b + 1) / (_ARROW_NECK + 1)
            shaft = (np.abs(a) <= _ARROW_SHAFT_HALF_WIDTH) & (b >= _ARROW_NECK) & (b <= 1)
            inside[pick] = head | shaft
        else:  # equilateral triangle, apex up: circumradius r, inradius r / 2
            r = ph * _TRIANGLE_SCALE
            inside[pick] = (
                (pv <= r / 2)
                & (-0.8660254 * pu - 0.5 * pv <= r / 2)
                & (0.8660254 * pu - 0.5 * pv <= r / 2)
            )
    cover = inside.reshape(len(cx), size, ss, size, ss).mean(axis=(2, 4), dtype=np.float32)
    return cover[..., None]


def _draw_colours(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Object colour index (n,), object RGB (n, 3) and a contrasting background base RGB (n, 3)."""
    palette = np.array(list(COLOURS.values()), dtype=np.float32)
    index = rng.integers(0, len(palette), size=n)
    rgb = np.clip(palette[index] + rng.uniform(-_COLOUR_JITTER, _COLOUR_JITTER, (n, 3)), 0, 255)
    base = rng.uniform(20, 200, size=(n, 3)).astype(np.float32)
    for _ in range(100):  # redraw backgrounds too close to their object's colour
        close = np.linalg.norm(base - rgb, axis=1) < _MIN_CONTRAST
        if not close.any():
            break
        base[close] = rng.uniform(20, 200, size=(int(close.sum()), 3))
    else:
        base[close] = 255 - rgb[close]
    return index, rgb.astype(np.float32), base


def _backgrounds(rng: np.random.Generator, base: np.ndarray, size: int) -> np.ndarray:
    """Static noisy backgrounds (n, H, W, 3) float: base colour + per-pixel noise (sigma 14)."""
    noise = rng.normal(0, 14, size=(len(base), size, size, 3)).astype(np.float32)
    return base[:, None, None, :] + noise


def _hand(rng: np.random.Generator, n: int, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n clock hands: length (n,) and pivot x, y (n,) in pixels."""
    length = rng.uniform(*_HAND_LENGTH, size=n) * size
    pivot = size / 2 + rng.uniform(-_HAND_PIVOT_JITTER, _HAND_PIVOT_JITTER, size=(2, n)) * size
    return length, pivot[0], pivot[1]


def hand_centre(
    pivot_x: np.ndarray, pivot_y: np.ndarray, length: np.ndarray, angle_deg: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Centre (x, y) of an arrow of `length` whose tail is at the pivot, pointing `angle_deg`
    clockwise from up (y down). Shapes broadcast."""
    theta = np.deg2rad(angle_deg)
    return pivot_x + length / 2 * np.sin(theta), pivot_y - length / 2 * np.cos(theta)


def make_motion_clips(
    num_clips: int,
    *,
    seed: int,
    num_frames: int = 8,
    size: int = 32,
    labels: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Clips (N, T, H, W, 3) uint8 and labels (N,) int32, classes balanced (label = i % 8, shuffled).

    Every pair (2p, 2p + 1) of CLASS_NAMES: clip drawn for class 2p, then reversed in time for
    class 2p + 1 (e.g. "moving left" reversed is "moving right"). The draws depend on the pair
    only, so with `labels` given (N,) in place of the shuffled ones, flipping a label within its
    pair plays the same clip backwards.
    """
    if num_clips < 1 or num_frames < 2 or size < 8:
        raise ValueError(
            f"need num_clips >= 1, num_frames >= 2, size >= 8; got {num_clips}, "
            f"{num_frames}, {size}"
        )
    rng = np.random.default_rng([int(seed), 0x5EED])
    shuffled = rng.permutation(np.arange(num_clips) % len(CLASS_NAMES)).astype(np.int32)
    labels = shuffled if labels is None else np.asarray(labels, np.int32)
    if labels.shape != (num_clips,) or not np.all((labels >= 0) & (labels < len(CLASS_NAMES))):
        raise ValueError(f"labels must be ({num_clips},) ints in [0, {len(CLASS_NAMES)})")
    pair = labels // 2
    n, t_count = num_clips, num_frames
    t = np.linspace(0.0, 1.0, t_count, dtype=np.float64)[None, :]  # (1, T) progress in the clip

    arrow = SHAPES.index("arrow")
    shape = rng.integers(0, arrow, size=n)  # square, circle, triangle
    shape = np.where(pair == 2, arrow, shape)  # rotating: a clock hand
    extent0 = rng.uniform(0.22, 0.34, size=n) * size
    hand_length, pivot_x, pivot_y = _hand(rng, n, size)
    extent0 = np.where(pair == 2, hand_length, extent0)
    angle0 = rng.uniform(0, 360, size=n)
    _, colour, base = _draw_colours(rng, n)

    margin = 0.62 * extent0  # keeps every shape inside the frame (triangle circumradius 0.625 s)
    free = size - 2 * margin
    cx0 = margin + rng.uniform(0, 1, n) * free
    cy0 = margin + rng.uniform(0, 1, n) * free
    travel = rng.uniform(0.30, 0.45, size=n) * size
    start = margin + rng.uniform(0, 1, n) * (free - travel)  # moving-pair start coordinate
    speed = rng.uniform(*ROTATION_SPEED, size=n)  # degrees per frame
    grow = rng.uniform(1.7, 2.3, size=n)
    small = rng.uniform(0.15, 0.22, size=n) * size

    cx = np.repeat(cx0[:, None], t_count, 1)
    cy = np.repeat(cy0[:, None], t_count, 1)
    extent = np.repeat(extent0[:, None], t_count, 1)
    angle = np.repeat(angle0[:, None], t_count, 1)
    path = (start + travel)[:, None] - travel[:, None] * t  # decreasing: left / up
    cx = np.where((pair == 0)[:, None], path, cx)
    cy = np.where((pair == 1)[:, None], path, cy)
    steps = np.arange(t_count)[None, :]
    turning = angle0[:, None] + speed[:, None] * steps
    hand_x, hand_y = hand_centre(pivot_x[:, None], pivot_y[:, None], hand_length[:, None], turning)
    angle = np.where((pair == 2)[:, None], turning, angle)
    cx = np.where((pair == 2)[:, None], hand_x, cx)
    cy = np.where((pair == 2)[:, None], hand_y, cy)
    extent = np.where((pair == 3)[:, None], small[:, None] * grow[:, None] ** t, extent)

    background = _backgrounds(rng, base, size)
    background = np.repeat(background[:, None], t_count, 1)
    background = background + rng.normal(0, 3, size=background.shape).astype(np.float32)
    frames = render_frames(
        size,
        np.repeat(shape, t_count),
        cx.reshape(-1),
        cy.reshape(-1),
        extent.reshape(-1),
        angle.reshape(-1),
        np.repeat(colour, t_count, axis=0),
        background.reshape(n * t_count, size, size, 3),
    ).reshape(n, t_count, size, size, 3)
    reverse = labels % 2 == 1
    frames[reverse] = frames[reverse, ::-1]
    return frames, labels


def _words(x: float, names: tuple[str, str, str]) -> str:
    return names[0] if x < 1 / 3 else names[2] if x > 2 / 3 else names[1]


def caption(shape: str, colour: str, x: float, y: float, extent: float) -> str:
    """ "a small red square at the top left": x, y, extent relative to the frame side."""
    size_word = "small" if extent < 0.25 else "large" if extent > 0.38 else "medium"
    vertical = _words(y, ("top", "middle", "bottom"))
    horizontal = _words(x, ("left", "centre", "right"))
    where = (
        "in the centre"
        if (vertical, horizontal) == ("middle", "centre")
        else (f"at the {vertical} {horizontal}")
    )
    return f"a {size_word} {colour} {shape} {where}"


def render_static_frames(
    n: int, seed: int, size: int = 32
) -> tuple[np.ndarray, list[str], dict[str, np.ndarray]]:
    """n single frames with one shape each, their captions and attributes.

    Returns frames (N, H, W, 3) uint8, captions, and attributes: shape (N,) int (SHAPES index),
    colour (N,) int (COLOURS index), x, y (N,) centre relative to the side in [0, 1], size (N,)
    extent relative to the side, angle (N,) degrees clockwise in [0, 360).
    """
    rng = np.random.default_rng([int(seed), 0x57A7])
    shape = rng.integers(0, len(SHAPES), size=n)
    extent = rng.uniform(0.15, 0.5, size=n) * size
    angle = rng.uniform(0, 360, size=n)
    colour_index, colour, base = _draw_colours(rng, n)
    margin = 0.62 * extent
    cx = margin + rng.uniform(0, 1, n) * (size - 2 * margin)
    cy = margin + rng.uniform(0, 1, n) * (size - 2 * margin)
    # Arrows are clock hands, as in the rotating clips: their angle is where they lie.
    arrow = shape == SHAPES.index("arrow")
    hand_length, pivot_x, pivot_y = _hand(rng, n, size)
    hand_x, hand_y = hand_centre(pivot_x, pivot_y, hand_length, angle)
    extent, cx, cy = (
        np.where(arrow, a, b) for a, b in ((hand_length, extent), (hand_x, cx), (hand_y, cy))
    )
    frames = render_frames(
        size, shape, cx, cy, extent, angle, colour, _backgrounds(rng, base, size)
    )
    attributes = {
        "shape": shape.astype(np.int32),
        "colour": colour_index.astype(np.int32),
        "x": (cx / size).astype(np.float32),
        "y": (cy / size).astype(np.float32),
        "size": (extent / size).astype(np.float32),
        "angle": angle.astype(np.float32),
    }
    colour_names = list(COLOURS)
    captions = [
        caption(SHAPES[s], colour_names[c], x, y, e)
        for s, c, x, y, e in zip(
            shape, colour_index, attributes["x"], attributes["y"], attributes["size"]
        )
    ]
    return frames, captions, attributes


def visible_angle(shape: np.ndarray, angle_deg: np.ndarray) -> np.ndarray:
    """What a frame shows of its shape's angle: (N, 2) cos, sin of k * angle, k = the shape's
    SYMMETRY_ORDER (0, 0 for a circle, which shows none). shape (N,) SHAPES index, angle (N,)."""
    order = np.array([SYMMETRY_ORDER[name] for name in SHAPES], np.float64)[shape]
    theta = np.deg2rad(np.asarray(angle_deg, np.float64)) * order
    return (np.stack([np.cos(theta), np.sin(theta)], axis=1) * (order > 0)[:, None]).astype(
        np.float32
    )


def _jpeg(frame: np.ndarray, quality: int) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    # 4:4:4 chroma: at 32 px, 4:2:0 subsampling would smear the object's colour.
    Image.fromarray(frame).save(buffer, format="JPEG", quality=quality, subsampling=0)
    return buffer.getvalue()


def _written_before(dataset_dir: str, options: dict[str, Any]) -> bool:
    """True if `dataset_dir` holds this dataset (same options); another one is an error."""
    from motion_clip_jax.data import manifest as manifest_lib

    if not os.path.exists(os.path.join(dataset_dir, manifest_lib.MANIFEST_FILENAME)):
        return False
    existing = manifest_lib.read_manifest(dataset_dir).get("options")
    if existing != options:
        raise ValueError(
            f"{dataset_dir} holds a synthetic dataset written with options {existing}, not "
            f"{options}; pass overwrite=True or another root / name"
        )
    return True


def _write_split(
    dataset_dir: str, name: str, split: str, count: int, seed: int, options: dict[str, Any]
) -> dict[str, Any]:
    """Renders `count` clips of `split` with `seed`, writes its shards and index ->
    {shard_lengths, num_bytes, summary} (summary: the manifest's record of the split)."""
    from motion_clip_jax.data import manifest as manifest_lib
    from motion_clip_jax.data import records

    num_frames = options["num_frames"]
    features = records.video_features(CLASS_NAMES)
    clips, labels = make_motion_clips(count, seed=seed, num_frames=num_frames, size=options["size"])
    serialized = [
        records.serialize_video(
            features,
            video_id=f"{split}_{i:05d}",
            label=int(label),
            frames_jpeg=[_jpeg(frame, options["jpeg_quality"]) for frame in clip],
            fps=float(num_frames),
        )
        for i, (clip, label) in enumerate(zip(clips, labels))
    ]
    shards = min(options["num_shards"], count)
    bounds = [count * i // shards for i in range(shards + 1)]
    num_bytes = sum(
        records.write_tfrecord(
            os.path.join(dataset_dir, records.shard_filename(name, split, i, shards)),
            serialized[bounds[i] : bounds[i + 1]],
        )
        for i in range(shards)
    )
    index_rows = [(f"{split}_{i:05d}", int(label), num_frames) for i, label in enumerate(labels)]
    records.write_index(os.path.join(dataset_dir, split + records.INDEX_SUFFIX), index_rows)
    summary = manifest_lib.summarize_split(index_rows, CLASS_NAMES)
    summary.update(num_shards=shards, num_bytes=num_bytes)
    return {
        "shard_lengths": [bounds[i + 1] - bounds[i] for i in range(shards)],
        "num_bytes": num_bytes,
        "summary": summary,
    }


def _write_description(
    dataset_dir: str,
    name: str,
    options: dict[str, Any],
    written: dict[str, dict[str, Any]],
    seconds: float,
) -> None:
    """The tfds metadata and the manifest of the splits `_write_split` wrote."""
    from motion_clip_jax.data import manifest as manifest_lib
    from motion_clip_jax.data import records

    records.write_metadata(
        dataset_dir,
        class_names=CLASS_NAMES,
        shard_lengths={split: w["shard_lengths"] for split, w in written.items()},
        shard_bytes={split: w["num_bytes"] for split, w in written.items()},
        description="Synthetic motion clips (motion_clip_jax.synthetic.world).",
    )
    manifest_lib.write_manifest(
        dataset_dir,
        {
            "name": name,
            "version": records.VERSION,
            "layout": "synthetic",
            "source": "motion_clip_jax.synthetic.world.make_motion_clips",
            "options": options,
            "class_names": list(CLASS_NAMES),
            "class_pairs": [list(pair) for pair in CLASS_PAIRS],
            "splits": {split: w["summary"] for split, w in written.items()},
            "skipped": [],
            "partial": [],
            "seconds": round(seconds, 2),
        },
    )


def write_synthetic_dataset(
    root: str,
    *,
    num_train: int = 800,
    num_test: int = 400,
    seed: int = 0,
    size: int = 32,
    num_frames: int = 8,
    name: str = "synthetic_motion",
    num_shards: int = 4,
    jpeg_quality: int = 95,
    overwrite: bool = False,
) -> str:
    """Writes the motion dataset to `<root>/<name>/1.0.0/`; returns that folder.

    An existing complete dataset written with the same options is reused (nothing is written)
    unless `overwrite`; one written with other options is an error naming the difference. The
    folder is written beside its place and renamed into it, so a reader never meets a half-written
    dataset, and processes that write the same dataset at once keep the first one renamed.
    """
    from motion_clip_jax.data import records

    options = {
        "world_version": WORLD_VERSION,
        "num_train": num_train,
        "num_test": num_test,
        "seed": seed,
        "size": size,
        "num_frames": num_frames,
        "num_shards": num_shards,
        "jpeg_quality": jpeg_quality,
    }
    dataset_dir = os.path.join(root, name, records.VERSION)
    if not overwrite and _written_before(dataset_dir, options):
        return dataset_dir
    start = time.time()
    final_dir = dataset_dir
    # tfds reads the name and version from the path: write <scratch>/<name>/<version>.
    os.makedirs(root, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix=f".{name}-writing-", dir=root)
    dataset_dir = os.path.join(scratch, name, records.VERSION)
    os.makedirs(dataset_dir)
    written = {
        split: _write_split(dataset_dir, name, split, count, split_seed, options)
        for split, count, split_seed in (
            ("train", num_train, 2 * seed),
            ("test", num_test, 2 * seed + 1),
        )
    }
    _write_description(dataset_dir, name, options, written, time.time() - start)
    return _move_into_place(dataset_dir, final_dir, scratch, overwrite, options)


def _move_into_place(
    written: str, final_dir: str, scratch: str, overwrite: bool, options: dict
) -> str:
    """Renames the written folder to `final_dir` (replacing it if `overwrite`); if another
    process renamed a dataset there first, keeps it when its options are ours and raises when not.
    Removes `scratch` either way."""
    from motion_clip_jax.data import manifest as manifest_lib

    try:
        os.makedirs(os.path.dirname(final_dir), exist_ok=True)
        manifest_path = os.path.join(final_dir, manifest_lib.MANIFEST_FILENAME)
        if os.path.exists(final_dir) and (overwrite or not os.path.exists(manifest_path)):
            shutil.rmtree(final_dir)  # replaced, or a partial folder an older writer left
        try:
            os.rename(written, final_dir)
        except OSError:
            if not os.path.exists(manifest_path):
                raise
            existing = manifest_lib.read_manifest(final_dir).get("options")
            if existing != options:
                raise ValueError(
                    f"{final_dir} was written meanwhile with options {existing}, not {options}"
                ) from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return final_dir


@provider(num_train=800, num_test=400, seed=0)
def provide_dataset(settings: dict, *, dataset_dir: str, frame_size: int, num_frames: int) -> None:
    """Data source "synthetic_motion": writes the dataset into `dataset_dir` (<root>/<name>) when
    that folder holds no dataset, frames of `frame_size` px and `num_frames` long.

    An existing folder is used as it is, unless its manifest says it is a synthetic dataset of
    another world (WORLD_VERSION; none recorded: version 1): that is an error naming the folder,
    since its clips would not be the classes the run reports.
    """
    from motion_clip_jax.data import manifest as manifest_lib
    from motion_clip_jax.data import source

    try:
        existing = source.resolve_dataset_dir(dataset_dir)
    except (FileNotFoundError, ValueError):
        existing = None
    if existing is not None:
        try:
            manifest = manifest_lib.read_manifest(existing)
        except FileNotFoundError:
            return
        if manifest.get("layout") == "synthetic":
            version = manifest.get("options", {}).get("world_version", 1)
            if version != WORLD_VERSION:
                raise ValueError(
                    f"{existing} holds a synthetic dataset of world_version {version}, this code "
                    f"draws world_version {WORLD_VERSION}; delete the folder to write it again"
                )
        return
    print(f"Writing the synthetic motion dataset to {dataset_dir} ...", flush=True)
    write_synthetic_dataset(
        os.path.dirname(os.path.abspath(dataset_dir)) or ".",
        name=os.path.basename(os.path.normpath(dataset_dir)),
        num_train=settings["num_train"],
        num_test=settings["num_test"],
        seed=settings["seed"],
        size=frame_size,
        num_frames=num_frames,
    )


provide_dataset.class_names = CLASS_NAMES  # the classes its datasets hold (Table 3 counts prompts)
