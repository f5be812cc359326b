"""A training workdir as inference sees it: what run_info.json records and which checkpoint to use.

Cheap and free of JAX, so every input error surfaces before a model is loaded.
"""

from __future__ import annotations

import dataclasses
import os

from motion_clip_jax.core.json_file import read_json
from motion_clip_jax.train.workdir import checkpoint_steps


class PredictError(ValueError):
    """A user-facing problem with the inputs of a predict / export command (names what is wrong)."""


@dataclasses.dataclass
class RunInfo:
    """What a trainer workdir records about its run (run_info.json) and the checkpoint to use."""

    workdir: str
    step: int
    model_config: dict  # the resolved model config (clip_overrides = the CLIP architecture)
    clip_checkpoint: str  # the frozen CLIP's .msgpack (random_clip.msgpack for a random one)
    class_names: list[str]
    crop_size: int
    seed: int

    @property
    def num_frames(self) -> int:
        return int(self.model_config["num_frames"])


def read_run(workdir: str | os.PathLike, step: int | None = None) -> RunInfo:
    """Reads run_info.json and picks the checkpoint (default: the latest complete one). Cheap
    (no JAX), so every input error surfaces before the model is loaded."""
    workdir = os.path.abspath(os.fspath(workdir))
    if os.path.exists(workdir) and not os.path.isdir(workdir):
        raise PredictError(f"workdir {workdir} is a file, not a training workdir")
    if not os.path.isdir(workdir):
        raise PredictError(f"workdir {workdir} does not exist")
    info_path = os.path.join(workdir, "run_info.json")
    if not os.path.isfile(info_path):
        raise PredictError(
            f"{info_path} not found: not a training workdir (the trainer writes it at start)"
        )
    run_info = read_json(info_path)
    fields = ("model_config", "clip_checkpoint", "class_names", "crop_size", "seed")
    missing = [k for k in fields if k not in run_info]
    if missing:
        raise PredictError(f"{info_path} lacks the fields {missing}")
    steps = checkpoint_steps(workdir)
    if not steps:
        raise PredictError(f"workdir {workdir} has no checkpoint (no {workdir}/checkpoints/<step>)")
    if step is None:
        step = steps[-1]
    elif step not in steps:
        raise PredictError(f"workdir {workdir} has no checkpoint of step {step}; it has {steps}")
    try:
        return RunInfo(
            workdir=workdir,
            step=step,
            model_config=dict(run_info["model_config"]),
            clip_checkpoint=str(run_info["clip_checkpoint"]),
            class_names=[str(name) for name in run_info["class_names"]],
            crop_size=int(run_info["crop_size"]),
            seed=int(run_info["seed"]),
        )
    except (TypeError, ValueError) as e:
        raise PredictError(f"{info_path}: a field has the wrong type ({e})") from None
