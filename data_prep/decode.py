"""Video file -> JPEG frames with PyAV, for the worker processes of data_prep.

No TensorFlow here: workers are started fresh (spawn) and only decode, resize and JPEG-encode.
Frames are resized so the short side is `short_side` (0 keeps the size), optionally capped in
frame rate (keep the first frame of every 1/fps_cap-second bucket) and in count (max_frames
evenly spaced frames: the centre of each of max_frames equal segments).
"""

from __future__ import annotations

import dataclasses
import io
import math

import numpy as np
from PIL import Image

from motion_clip_jax.data.video_file import VideoError, decoded_frames


@dataclasses.dataclass(frozen=True)
class DecodeOptions:
    short_side: int = 256
    jpeg_quality: int = 90
    fps_cap: float = 0.0  # 0: keep every frame
    max_frames: int = 0  # 0: no limit


@dataclasses.dataclass
class DecodedVideo:
    frames_jpeg: list[bytes]
    fps: float  # of the stored frames
    width: int  # stored frame size
    height: int
    source_width: int
    source_height: int
    note: str = ""  # set when decoding stopped early: the frames before the error are kept


def output_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """(width, height) with the short side scaled to `short_side` (0: unchanged)."""
    if short_side <= 0:
        return width, height
    scale = short_side / min(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def evenly_spaced(count: int, keep: int) -> list[int]:
    """`keep` indices out of range(count): the centre of each of `keep` equal segments."""
    if keep <= 0 or count <= keep:
        return list(range(count))
    return [(2 * k + 1) * count // (2 * keep) for k in range(keep)]


def _encode_jpeg(rgb: np.ndarray, quality: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def decode_video(path: str, options: DecodeOptions) -> DecodedVideo:
    """Decodes the first video stream of `path`; raises VideoError (its `.reason` is what the
    manifest records) if nothing is usable."""
    frames = decoded_frames(path)
    frames_jpeg, last_bucket, source_fps = [], -1, 0.0
    size = source_size = None
    for index, frame in enumerate(frames):
        if size is None:
            rate = frames.stream.average_rate or frames.stream.guessed_rate
            rate = rate or frames.stream.base_rate
            source_fps = float(rate) if rate else 0.0
        if options.fps_cap > 0:
            seconds = frame.time if frame.time is not None else index / (source_fps or 1)
            bucket = math.floor(seconds * options.fps_cap + 1e-6)
            if bucket <= last_bucket:
                continue
            last_bucket = bucket
        if size is None:
            source_size = (frame.width, frame.height)
            size = output_size(frame.width, frame.height, options.short_side)
        rgb = frame.to_ndarray(width=size[0], height=size[1], format="rgb24", interpolation="AREA")
        frames_jpeg.append(_encode_jpeg(rgb, options.jpeg_quality))
    note = ""
    if frames.stopped_early:
        note = f"decoding stopped after {len(frames_jpeg)} frames: {frames.stopped_early}"
    decoded_count = len(frames_jpeg)
    keep = evenly_spaced(decoded_count, options.max_frames)
    frames_jpeg = [frames_jpeg[i] for i in keep]
    fps = source_fps
    if options.fps_cap > 0 and fps > 0:
        fps = min(fps, options.fps_cap)
    if fps > 0 and len(frames_jpeg) < decoded_count:
        fps *= len(frames_jpeg) / decoded_count
    return DecodedVideo(
        frames_jpeg=frames_jpeg,
        fps=fps,
        width=size[0],
        height=size[1],
        source_width=source_size[0],
        source_height=source_size[1],
        note=note,
    )


def decode_task(args: tuple[str, DecodeOptions]) -> tuple[bool, DecodedVideo | str]:
    """Worker entry: (True, DecodedVideo) or (False, reason). Never raises: one bad video must not
    stop the job."""
    path, options = args
    try:
        return True, decode_video(path, options)
    except VideoError as error:
        return False, error.reason
    except Exception as error:  # anything else in one video's decoding is that video's problem
        return False, f"unreadable: {type(error).__name__}: {error}"
