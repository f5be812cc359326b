"""Checkpoints (orbax): train state + data position, saved every N steps, keep-last-N, exact resume.

A checkpoint is written to a temporary directory and renamed when complete (orbax's commit), so a
process killed mid-save leaves the previous checkpoint as the latest complete one. A complete
checkpoint that does not restore (damaged files) is moved aside to `checkpoints_damaged/` (never
deleted) and the newest one that restores is used (`restore_latest`); when none restores, training
starts again from step 0. A checkpoint of another model (its stored tree, read from orbax's
metadata, differs from the expected one) is refused before anything is read or moved.
"""

from __future__ import annotations

import logging as std_logging
import os
import shutil
import sys
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from absl import logging
from jax.experimental import multihost_utils

from motion_clip_jax.core.error_text import first_line
from motion_clip_jax.train import workdir as workdir_lib


class OtherModelError(ValueError):
    """A checkpoint that holds another train state (leaf paths, shapes or dtypes) than this run's:
    another model, not damage; nothing is moved."""


def _leaf_name(entry: Any) -> str:
    """One step of a pytree key path, as the same text for a dict key, attribute or index."""
    for field in ("key", "name", "idx"):
        if hasattr(entry, field):
            return str(getattr(entry, field))
    return str(entry)


def leaf_specs(tree: Any) -> dict[str, tuple[tuple[int, ...], str]]:
    """'a/b/0' -> (shape, dtype) of each leaf of a pytree of arrays or orbax array metadata."""
    flat = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {
        "/".join(_leaf_name(e) for e in path): (tuple(leaf.shape), str(np.dtype(leaf.dtype)))
        for path, leaf in flat
    }


def tree_differences(stored: Any, expected: Any, limit: int = 3) -> list[str]:
    """How a stored tree differs from the expected one: leaves missing, extra, or of another
    shape / dtype (at most `limit` of each kind, with a count)."""
    have, want = leaf_specs(stored), leaf_specs(expected)
    kinds = {
        "missing": sorted(set(want) - set(have)),
        "not expected": sorted(set(have) - set(want)),
        "other shape/dtype": [
            f"{k} {have[k][0]} {have[k][1]} (expected {want[k][0]} {want[k][1]})"
            for k in sorted(set(have) & set(want))
            if have[k] != want[k]
        ],
    }
    return [
        f"{len(names)} leaves {kind}: {', '.join(names[:limit])}{', ...' if len(names) > limit else ''}"
        for kind, names in kinds.items()
        if names
    ]


_QUIET_READS = False  # the hooks below are installed once per process


def _innermost_frame(error: BaseException | None) -> tuple[str, str]:
    """(module, function) of the frame that raised `error`; ("", "") without a traceback."""
    tb = error.__traceback__ if error is not None else None
    if tb is None:
        return "", ""
    while tb.tb_next is not None:
        tb = tb.tb_next
    return tb.tb_frame.f_globals.get("__name__", ""), tb.tb_frame.f_code.co_name


def _is_closed_loop_noise(error: BaseException | None) -> bool:
    """Raised by asyncio because its loop is closed: decided by where it was raised (the loop's
    own closed check), not by its message."""
    module, function = _innermost_frame(error)
    return (
        isinstance(error, RuntimeError)
        and module.startswith("asyncio")
        and (function == "_check_closed")
    )


def _is_orbax_error(error: BaseException | None) -> bool:
    return _innermost_frame(error)[0].startswith(("orbax.", "tensorstore"))


def quiet_read_noise() -> None:
    """Drops the tracebacks that a failed read leaves behind.

    When orbax gives up on a damaged checkpoint, tensorstore's other pending reads still finish on
    its own threads and report to the asyncio loop orbax has already closed: each prints a
    RuntimeError from the closed loop, or an ignored exception of orbax's (an exception nobody can
    catch), hundreds of lines in all, after the one-line message that said what failed. Only
    those two kinds are dropped: the first wherever it comes from, the second once a read failed.
    """
    global _QUIET_READS
    if _QUIET_READS:
        return
    noisy = lambda e: _is_closed_loop_noise(e) or (_READ_FAILED and _is_orbax_error(e))
    excepthook, unraisablehook = sys.excepthook, sys.unraisablehook
    sys.excepthook = lambda t, v, tb: None if _is_closed_loop_noise(v) else excepthook(t, v, tb)
    sys.unraisablehook = lambda u: None if noisy(u.exc_value) else unraisablehook(u)
    _QUIET_READS = True


_READ_FAILED = False  # set once a checkpoint failed to restore: its pending reads go on failing


def note_read_failure() -> None:
    """Records that a checkpoint failed to restore (its late errors are noise from now on)."""
    global _READ_FAILED
    _READ_FAILED = True


_WRITE_FAILED = False  # set once a failed write was reported: orbax's threads go on failing


def _caused_by_os_error(error: BaseException | None) -> bool:
    """Whether `error` or an exception it was raised from/during is an OSError."""
    seen = 0
    while error is not None and seen < 16:
        if isinstance(error, OSError):
            return True
        error, seen = error.__cause__ or error.__context__, seen + 1
    return False


def _is_write_failure_noise(record: std_logging.LogRecord) -> bool:
    """A log record that orbax's writer threads (or asyncio, at exit) leave when a write fails:
    that failure also reaches `Checkpointer.wait` / `save`, which say it in one line. Decided by
    the record's origin and the error's type, never by message text."""
    if "/orbax/" not in record.pathname and record.name != "asyncio":
        return False
    if record.levelno < std_logging.ERROR:
        return False
    error = record.exc_info[1] if record.exc_info else None
    # After a reported failure, every error record is its echo; before it, the writer threads'
    # own errors (raised in orbax or tensorstore code, or any OSError) reach save/wait as well.
    return _WRITE_FAILED or _caused_by_os_error(error) or _is_orbax_error(error)


def quiet_write_noise() -> None:
    """Drops the tracebacks of a failed checkpoint write from the log (a full disk prints dozens
    of them, from every writer thread, around the one line that says what failed)."""
    quiet = std_logging.Filter()
    quiet.filter = lambda record: not _is_write_failure_noise(record)
    for name in ("absl", "asyncio"):
        logger = std_logging.getLogger(name)
        if not any(getattr(f, "drops_write_noise", False) for f in logger.filters):
            quiet.drops_write_noise = True
            logger.addFilter(quiet)


class Checkpointer:
    """Thin wrapper over `ocp.CheckpointManager` with items 'state' (pytree) and 'data' (JSON)."""

    def __init__(self, workdir: str, max_to_keep: int = 3, async_save: bool = True):
        self.directory = os.path.join(os.path.abspath(workdir), "checkpoints")
        self.manager = ocp.CheckpointManager(
            self.directory,
            item_handlers={
                "state": ocp.StandardCheckpointHandler(),
                "data": ocp.JsonCheckpointHandler(),
            },
            options=ocp.CheckpointManagerOptions(
                max_to_keep=max_to_keep,
                create=True,
                enable_async_checkpointing=async_save,
                cleanup_tmp_directories=True,
            ),
        )
        self._pending: int | None = None
        quiet_write_noise()  # the step whose asynchronous write may be in flight

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def save(self, step: int, state: Any, data_position: dict[str, Any]) -> None:
        """Starts writing the checkpoint of `step` (asynchronously); a failed write, of this one
        or of the one before, raises WriteFailedError."""
        try:
            self.manager.save(
                step,
                args=ocp.args.Composite(
                    state=ocp.args.StandardSave(state), data=ocp.args.JsonSave(data_position)
                ),
                force=True,
            )
        except Exception as error:  # orbax and tensorstore raise many kinds for a failed write
            raise self._write_failed(step, error) from error
        self._pending = step

    def _write_failed(self, step: int, error: Exception) -> workdir_lib.WriteFailedError:
        global _WRITE_FAILED
        _WRITE_FAILED = True
        complete = workdir_lib.checkpoint_steps(os.path.dirname(self.directory))
        good = [s for s in complete if s < step]
        last = f"step {good[-1]}" if good else "none yet"
        return workdir_lib.WriteFailedError(
            f"writing checkpoint {step} in {self.directory} failed ({first_line(error)}); the last "
            f"complete checkpoint ({last}) is intact: free space or fix the folder, then rerun "
            "the same command to resume from it"
        )

    def restore_latest(
        self, abstract_state: Any, log: Callable[[str], None] = print
    ) -> tuple[int, Any, dict[str, Any]] | None:
        """The newest checkpoint that restores -> (step, state, data position); None if the
        workdir has none, or none that restores.

        Checkpoints that fail to restore are logged in one line each and moved aside to
        `checkpoints_damaged/<step>` (never deleted): once an older one has restored, or, when
        none restores, all of them, with one line saying that training starts again from step 0
        (a rerun of a run killed at its first save heals instead of failing forever). A
        checkpoint of another model (OtherModelError) stops the run at once, nothing moved."""
        quiet_read_noise()  # before the first read: the noise starts as soon as one fails
        failed: list[int] = []
        for step in sorted(self.manager.all_steps(), reverse=True):
            try:
                state, position = self.restore(step, abstract_state)
            except OtherModelError:
                raise
            except Exception as error:  # damaged files: orbax and tensorstore raise many kinds
                note_read_failure()
                log(
                    f"WARNING: checkpoint {step} in {self.directory} does not restore "
                    f"({first_line(error)})"
                )
                failed.append(step)
                continue
            for moved_step, target in self._move_aside(failed):
                log(f"moved damaged checkpoint {moved_step} to {target}")
            return step, state, position
        if failed:
            self._move_aside(failed)
            log(
                f"no checkpoint in {self.directory} restores (steps {sorted(failed)}): moved "
                f"them to {self.directory}_damaged/; training starts again from step 0"
            )
        return None

    def _move_aside(self, steps: list[int]) -> list[tuple[int, str]]:
        """Moves damaged step directories to <workdir>/checkpoints_damaged/ (process 0)
        -> [(step, where it went)]."""
        if not steps:
            return []
        damaged, moved = f"{self.directory}_damaged", []
        if jax.process_index() == 0:
            os.makedirs(damaged, exist_ok=True)
            for step in steps:
                target = os.path.join(damaged, str(step))
                suffix = 1
                while os.path.exists(target):
                    target, suffix = os.path.join(damaged, f"{step}.{suffix}"), suffix + 1
                shutil.move(os.path.join(self.directory, str(step)), target)
                moved.append((step, target))
        if jax.process_count() > 1:
            multihost_utils.sync_global_devices("damaged checkpoints moved aside")
        self.manager.reload()
        return moved

    def restore(self, step: int, abstract_state: Any) -> tuple[Any, dict[str, Any]]:
        """Restores onto `abstract_state`'s structure and shardings (any mesh shape).

        The stored tree (orbax's metadata) is compared with `abstract_state` first: a checkpoint
        of another model raises OtherModelError before any array is read."""
        stored = self.manager.item_metadata(step)["state"]
        if stored is None:
            raise FileNotFoundError(f"checkpoint {step} in {self.directory}: no state metadata")
        differences = tree_differences(stored, abstract_state)
        if differences:
            # E.g. a checkpoint of an older TrainState, or of a model with other sizes.
            raise OtherModelError(
                f"checkpoint {step} in {self.directory} holds another train state than this "
                f"config and code build ({'; '.join(differences)}); use a new --workdir."
            )
        target = jax.tree_util.tree_map(
            lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), abstract_state
        )
        restored = self.manager.restore(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardRestore(target), data=ocp.args.JsonRestore()
            ),
        )
        logging.info("Restored checkpoint %d from %s", step, self.directory)
        return restored["state"], restored["data"]

    def wait(self) -> None:
        """Waits for the write in flight; WriteFailedError if it failed."""
        try:
            self.manager.wait_until_finished()
        except Exception as error:  # orbax and tensorstore raise many kinds for a failed write
            raise self._write_failed(self._pending or 0, error) from error

    def close(self) -> None:
        self.wait()
        self.manager.close()
