"""Checkpoints (orbax): train state + data position, saved every N steps, keep-last-N, exact resume.

A checkpoint is written to a temporary directory and renamed when complete (orbax's commit), so a
process killed mid-save leaves the previous checkpoint as the latest complete one. A complete
checkpoint that does not restore (damaged files) is moved aside to `checkpoints_damaged/` (never
deleted) and the newest one that restores is used (`restore_latest`).
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from typing import Any

import jax
import orbax.checkpoint as ocp
from absl import logging
from jax.experimental import multihost_utils


class CheckpointRestoreError(ValueError):
    """No checkpoint of the workdir restores; names them and the first error."""


def _is_structure_mismatch(error: Exception) -> bool:
    return isinstance(error, ValueError) and "tree structures do not match" in str(error)


def first_line(error: Exception, limit: int = 200) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    text = text if len(text) <= limit else text[:limit] + "..."
    return f"{type(error).__name__}: {text}"


_QUIET_READS = False  # the hooks below are installed once per process


def quiet_read_noise() -> None:
    """Drops the tracebacks that a failed read leaves behind.

    When orbax gives up on a damaged checkpoint, tensorstore's other pending reads still finish on
    its own threads and report to the asyncio loop orbax has already closed: each prints a
    RuntimeError('Event loop is closed') or an ignored coroutine exception, hundreds of lines in
    all, after the one-line message that said what failed. Only those two kinds are dropped.
    """
    global _QUIET_READS
    if _QUIET_READS:
        return
    noisy = lambda e: (
        (isinstance(e, RuntimeError) and "Event loop is closed" in str(e))
        or ("Encountered error while reading array index" in str(e))
    )
    excepthook, unraisablehook = sys.excepthook, sys.unraisablehook
    sys.excepthook = lambda t, v, tb: None if noisy(v) else excepthook(t, v, tb)
    sys.unraisablehook = lambda u: None if noisy(u.exc_value) else unraisablehook(u)
    _QUIET_READS = True


class Checkpointer:
    """Thin wrapper over `ocp.CheckpointManager` with items 'state' (pytree) and 'data' (JSON)."""

    def __init__(self, workdir: str, max_to_keep: int = 3, async_save: bool = True):
        self.directory = os.path.join(os.path.abspath(workdir), "checkpoints")
        self.manager = ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(
                max_to_keep=max_to_keep,
                create=True,
                enable_async_checkpointing=async_save,
                cleanup_tmp_directories=True,
            ),
        )

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def save(self, step: int, state: Any, data_position: dict[str, Any]) -> None:
        self.manager.save(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(state), data=ocp.args.JsonSave(data_position)
            ),
            force=True,
        )

    def restore_latest(
        self, abstract_state: Any, log: Callable[[str], None] = print
    ) -> tuple[int, Any, dict[str, Any]] | None:
        """The newest checkpoint that restores -> (step, state, data position); None if the
        workdir has none. Newer ones that fail to restore are logged in one line each and moved
        aside to `checkpoints_damaged/<step>` once an older one has restored (so a rerun
        never trains from scratch silently); if none restores, CheckpointRestoreError and
        nothing is moved. A checkpoint of another train state structure is an error at once."""
        quiet_read_noise()  # before the first read: the noise starts as soon as one fails
        failed: list[tuple[int, Exception]] = []
        for step in sorted(self.manager.all_steps(), reverse=True):
            try:
                state, position = self.restore(step, abstract_state)
            except Exception as error:
                if _is_structure_mismatch(error.__cause__ or error):
                    raise
                log(
                    f"WARNING: checkpoint {step} in {self.directory} does not restore "
                    f"({first_line(error)})"
                )
                failed.append((step, error))
                continue
            self._move_aside([s for s, _ in failed], log)
            return step, state, position
        if failed:
            steps = [s for s, _ in failed]
            raise CheckpointRestoreError(
                f"no checkpoint in {self.directory} restores (steps {steps}); the newest failed "
                f"with {first_line(failed[0][1])}. Nothing was moved; use a new workdir or "
                "remove the damaged steps."
            )
        return None

    def _move_aside(self, steps: list[int], log: Callable[[str], None]) -> None:
        """Moves damaged step directories to <workdir>/checkpoints_damaged/ (process 0)."""
        if not steps:
            return
        damaged = f"{self.directory}_damaged"
        if jax.process_index() == 0:
            os.makedirs(damaged, exist_ok=True)
            for step in steps:
                target = os.path.join(damaged, str(step))
                suffix = 1
                while os.path.exists(target):
                    target, suffix = os.path.join(damaged, f"{step}.{suffix}"), suffix + 1
                shutil.move(os.path.join(self.directory, str(step)), target)
                log(f"moved damaged checkpoint {step} to {target}")
        if jax.process_count() > 1:
            multihost_utils.sync_global_devices("damaged checkpoints moved aside")
        self.manager.reload()

    def restore(self, step: int, abstract_state: Any) -> tuple[Any, dict[str, Any]]:
        """Restores onto `abstract_state`'s structure and shardings (any mesh shape)."""
        target = jax.tree_util.tree_map(
            lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), abstract_state
        )
        try:
            restored = self.manager.restore(
                step,
                args=ocp.args.Composite(
                    state=ocp.args.StandardRestore(target), data=ocp.args.JsonRestore()
                ),
            )
        except ValueError as e:
            if "tree structures do not match" not in str(e):
                raise
            # E.g. a checkpoint of an older TrainState (it held an unused PRNG key).
            raise ValueError(
                f"checkpoint {step} in {self.directory} holds another train state structure "
                f"than this code's; start a fresh workdir. ({first_line(e)})"
            ) from e
        logging.info("Restored checkpoint %d from %s", step, self.directory)
        return restored["state"], restored["data"]

    def wait(self) -> None:
        self.manager.wait_until_finished()

    def close(self) -> None:
        self.manager.wait_until_finished()
        self.manager.close()
