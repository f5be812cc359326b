"""Checkpoints (orbax): train state + data position, saved every N steps, keep-last-N, exact resume.

A checkpoint is written to a temporary directory and renamed when complete (orbax's commit), so a
process killed mid-save leaves the previous checkpoint as the latest complete one.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import orbax.checkpoint as ocp
from absl import logging


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
                f"than this code's; start a fresh workdir. ({e})"
            ) from e
        logging.info("Restored checkpoint %d from %s", step, self.directory)
        return restored["state"], restored["data"]

    def wait(self) -> None:
        self.manager.wait_until_finished()

    def close(self) -> None:
        self.manager.wait_until_finished()
        self.manager.close()
