"""Rebuilding a trained model from a workdir: the frozen CLIP it names and its checkpoint's params."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import Any

import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp
from absl import logging

from motion_clip_jax.convert.flax_file import load_clip
from motion_clip_jax.core import model_spec
from motion_clip_jax.core.class_prompts import class_prompt_tokens
from motion_clip_jax.core.error_text import first_line
from motion_clip_jax.inference.run import PredictError, RunInfo, read_run
from motion_clip_jax.models import clip as clip_lib
from motion_clip_jax.models import model_config as config_lib
from motion_clip_jax.models.video_clip import (
    build_model,
    check_tree_shapes,
    for_classes,
    init_trainable,
)
from motion_clip_jax.train.checkpoint import note_read_failure, quiet_read_noise


@dataclasses.dataclass
class TrainedRun:
    """A trained workdir, ready to apply: model, params and what the run recorded."""

    info: RunInfo
    model: Any  # models.video_clip.VideoCLIP
    model_config: Any  # ml_collections.ConfigDict
    trainable: dict
    frozen: dict
    clip_source: str  # the frozen CLIP's .msgpack


def restore_trainable(workdir: str, step: int) -> dict:
    """The 'trainable' subtree of the TrainState saved at `step` in `workdir`/checkpoints, on this
    process's first device, whatever mesh or process count wrote it.

    Read through orbax's CheckpointManager (read-only), the layout the trainer writes: items
    'state' (the TrainState pytree) and 'data' (the data position).
    """
    directory = os.path.join(workdir, "checkpoints")
    quiet_read_noise()  # a damaged checkpoint's pending reads print tracebacks after it fails
    # A read-only manager logs warnings about the options it adjusts; none concern a reader.
    verbosity = logging.get_verbosity()
    logging.set_verbosity(logging.ERROR)
    try:
        manager = ocp.CheckpointManager(
            directory,
            item_handlers={"state": ocp.StandardCheckpointHandler()},
            options=ocp.CheckpointManagerOptions(read_only=True),
        )
        tree = manager.item_metadata(step)["state"]
        device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
        target = jax.tree_util.tree_map(
            lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device), dict(tree)
        )
        args = ocp.args.Composite(state=ocp.args.StandardRestore(target))
        state = manager.restore(step, args=args)["state"]
    except Exception as error:  # damaged files: orbax and tensorstore raise many kinds
        note_read_failure()
        raise PredictError(
            f"checkpoint {directory}/{step} does not restore ({first_line(error)}); "
            "pass --step with an older one"
        ) from None
    finally:
        logging.set_verbosity(verbosity)
    if "trainable" not in state:
        raise PredictError(
            f"{directory}/{step}: no 'trainable' params in the saved state ({sorted(state)})"
        )
    return jax.tree_util.tree_map(np.asarray, state["trainable"])


def load_trained_run(run: RunInfo | str | os.PathLike, step: int | None = None) -> TrainedRun:
    """Rebuilds a trained model from a trainer workdir (or its `read_run` info).

    The frozen CLIP is read from the run's `clip_checkpoint` (for a run with a random frozen CLIP,
    `allow_random_clip`, the trainer saved it as `random_clip.msgpack` in the workdir).
    """
    info = run if isinstance(run, RunInfo) else read_run(run, step)
    model_config = ml_collections.ConfigDict(model_spec.upgrade_record(info.model_config))
    config_lib.validate_model_config(model_config)
    if not info.clip_checkpoint:
        raise PredictError(f"{info.workdir}/run_info.json names no frozen CLIP checkpoint")
    clip_params = load_clip(info.clip_checkpoint)[1]["params"]
    clip_cfg = config_lib.clip_config_of(model_config)
    expected = jax.eval_shape(lambda: clip_lib.init_clip(clip_cfg, 0)[1]["params"])
    check_tree_shapes(clip_params, expected, f"frozen CLIP {info.clip_checkpoint}")
    model, frozen = build_model(model_config), {"clip": clip_params}
    clip_source = info.clip_checkpoint
    state_path = os.path.join(info.workdir, "checkpoints", str(info.step), "state")
    trainable = restore_trainable(info.workdir, info.step)
    expected = jax.eval_shape(lambda: init_trainable(model, jax.random.PRNGKey(0)))
    check_tree_shapes(trainable, expected, f"checkpoint {state_path}")
    return TrainedRun(info, model, model_config, trainable, frozen, clip_source)


def jax_logits(run: TrainedRun, views: np.ndarray, labels: Sequence[str]) -> np.ndarray:
    """views (V, T, H, W, 3) float32 -> logits (V, K) float32 of the JAX model."""
    ids, eos = class_prompt_tokens(run.model_config, labels)
    params = {**run.frozen, **run.trainable}
    model = for_classes(run.model, eos)  # one class list: its suffixes may be grouped (exact)
    apply = jax.jit(lambda p, v, i, e: model.apply({"params": p}, v, i, e))
    return np.asarray(apply(params, views, ids, eos), np.float32)
