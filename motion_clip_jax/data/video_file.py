"""Decoding a video file with PyAV: the one decoder behind data_prep and the predict commands.

`decoded_frames(path)` yields the frames of the first video stream. A decoding error after some
frames ends the video there (the frames before it are kept, and `.stopped_early` says why);
anything that leaves no frame is a `VideoError` naming the file and a short reason (the reason is
what data_prep records in its manifest). NumPy and PyAV only.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import av


class VideoError(ValueError):
    """A video file that is missing, unreadable or holds no frames; names the file and why."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path, self.reason = os.fspath(path), reason
        super().__init__(f"Cannot read video {self.path}: {reason}")


class DecodedFrames:
    """Iterates `av.VideoFrame`s of the first video stream of `path` (opened on first use).

    Attributes: `stream` (the PyAV stream, once open), `count` (frames yielded so far),
    `stopped_early` ('' or the error type that ended decoding after `count` frames).
    """

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        self.stream = None
        self.count = 0
        self.stopped_early = ""

    def __iter__(self) -> Iterator[av.VideoFrame]:
        with open_video(self.path) as container:
            self.stream = container.streams.video[0]
            self.stream.thread_type = "AUTO"
            try:
                for frame in container.decode(self.stream):
                    self.count += 1
                    yield frame
            except Exception as error:  # FFmpeg errors come in many types; all end the video
                if not self.count:
                    raise VideoError(
                        self.path, f"unreadable: {type(error).__name__}: {error}"
                    ) from None
                self.stopped_early = type(error).__name__
        if not self.count:
            raise VideoError(self.path, "zero frames")


def open_video(path: str | os.PathLike) -> av.container.InputContainer:
    """The opened container (a context manager) of a file with a video stream, or VideoError."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise VideoError(path, "file not found")
    try:
        container = av.open(path)
    except Exception as error:  # PyAV raises many FFmpeg error types; all mean "unreadable"
        raise VideoError(path, f"unreadable: {type(error).__name__}: {error}") from None
    if not container.streams.video:
        container.close()
        raise VideoError(path, "unreadable: no video stream")
    return container


def decoded_frames(path: str | os.PathLike) -> DecodedFrames:
    """The frames of `path`'s first video stream; see `DecodedFrames`."""
    return DecodedFrames(path)
