"""Starting a training run: the one path `main` and the paper driver take into the trainer."""

from __future__ import annotations

import os
from typing import Any

import ml_collections

_PROCESS_READY = False  # TF kept off the accelerators and multi-process JAX initialised


def start(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """Validates `config` (the only place a run's config is validated), then, once per process,
    hides the accelerators from TensorFlow (tf.data only: JAX owns them) and initialises
    multi-process JAX; then trains (resuming from `workdir`) and evaluates -> eval results."""
    global _PROCESS_READY
    from motion_clip_jax.train.config import validate_config

    validate_config(config)  # before TensorFlow and JAX load: a bad field fails in seconds
    if os.path.exists(workdir) and not os.path.isdir(workdir):
        raise NotADirectoryError(f"--workdir {workdir} is a file, not a folder")
    from motion_clip_jax.train import trainer

    if not _PROCESS_READY:
        import tensorflow as tf

        tf.config.set_visible_devices([], "GPU")
        trainer.initialize_distributed(config)
        _PROCESS_READY = True
    return trainer.train_and_evaluate(config, workdir)
