"""Preemption: TPU pod maintenance and spot GPUs send SIGTERM, then kill the process a while later.

`SigtermFlag` turns SIGTERM into a flag for the train loop, which checks it at its sync points
(steps where it fetches metrics; every process reaches them at the same steps) through
`any_process`: if any process got the signal, all of them stop at that step, save a checkpoint
there and exit. Rerunning the same command resumes from it exactly.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

import jax
import numpy as np
from jax.experimental import multihost_utils


class SigtermFlag:
    """Context manager: while active, SIGTERM sets the flag instead of ending the process.

    Installed only from the main thread (Python delivers signals there); elsewhere the flag just
    stays unset.
    """

    def __init__(self):
        self._event = threading.Event()
        self._previous = None

    def is_set(self) -> bool:
        return self._event.is_set()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self._event.set()

    def __enter__(self) -> SigtermFlag:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
            self._previous = None


def any_process(flag: bool) -> bool:
    """True on every process if `flag` is True on any (a collective: call on all at once)."""
    if jax.process_count() == 1:
        return flag
    gathered = multihost_utils.process_allgather(np.asarray([int(flag)], np.int32))
    return bool(np.asarray(gathered).max())
