"""The experiment config: `base_config()` documents every field; `validate_config` names bad ones.

Files in `configs/` start from `base_config()` and set what their paper setting needs.
"""

from __future__ import annotations

import os
from typing import Any

import ml_collections

from motion_clip_jax.models.model_config import model_config, validate_model_config
from motion_clip_jax.train import providers

# Sub-dicts whose keys belong to someone else (eval sets, the checkpoint's CLIP, a provider).
_OPAQUE = ("extra", "clip_overrides", "source_settings", "clip_source_settings")


def base_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.seed = 0  # parameter init, data order, augmentation: a run is a pure function of config
    # A rerun in a workdir with checkpoints must train the same experiment (train/workdir.py
    # lists the fields); True trains on with changed fields and records the change.
    c.allow_config_change = False

    # --- Frozen CLIP ---
    # Converted OpenAI CLIP (`python -m motion_clip_jax.convert to-flax ...`, a .msgpack file).
    c.clip_checkpoint = ""
    # With no clip_checkpoint: a CLIP provider by name (motion_clip_jax/train/providers.py), e.g.
    # 'synthetic_tiny_clip' (the demo's pretrained tiny CLIP), given its own settings.
    c.clip_source = ""
    c.clip_source_settings = ml_collections.ConfigDict()
    c.allow_random_clip = False  # tests only: run with a random-weight CLIP when no checkpoint

    # --- Model: every switch is documented in motion_clip_jax/models/model_config.py ---
    c.model = model_config("full")

    # --- Data (tfds datasets written by data_prep; see docs/data.md) ---
    c.data = ml_collections.ConfigDict()
    c.data.dataset_dir = ""  # tfds dataset directory (tfds.builder_from_directory)
    c.data.train_split = "train"  # tfds split (slicing allowed, e.g. 'train[:10%]')
    c.data.eval_split = "test"
    # Class names for the prompts: '' = the dataset's ClassLabel names (readable form);
    # hmdb51 | ucf101 | kinetics400 = the vendored list; or a path to a one-per-line label file.
    c.data.class_names = ""
    c.data.crop_size = 224  # frames fed to CLIP (must equal the CLIP image resolution)
    c.data.flip = True  # training: random horizontal flip (off for direction-defined classes)
    # Training clips leave the host as their decoded crop windows and are resized, rounded and
    # mirrored on the accelerator (train/window_resize.py): the same clips bit for bit, ~1/5 less
    # host CPU per clip (docs/benchmarks.md section 3). False: all of it on the host.
    c.data.resize_on_device = True
    c.data.few_shot_k = 0  # > 0: train on k videos per class drawn from train_split
    c.data.few_shot_seed = 0  # seed of that draw (the drawn list is written to the workdir)
    c.data.skip_bad_records = False  # count + log undecodable records instead of failing
    # A data provider by name (motion_clip_jax/train/providers.py), e.g. 'synthetic_motion': it
    # writes its dataset into dataset_dir when missing; given its own settings.
    c.data.source = ""
    c.data.source_settings = ml_collections.ConfigDict()

    # --- Training ---
    c.train = ml_collections.ConfigDict()
    c.train.batch_size = 128  # global batch (all processes); paper closed-set 128
    # > 1: each step runs the batch as this many micro-batches (forward + backward of
    # batch_size / N clips at a time, gradients summed) and applies one update with the whole
    # batch's gradient: the paper's batch on less device memory (docs/training.md). Must divide
    # the per-shard batch (batch_size / mesh data size). May change on resume, like the mesh.
    c.train.grad_accum_steps = 1
    c.train.num_epochs = 30.0  # converted to steps with the train split's size
    c.train.num_steps = -1  # > 0: overrides num_epochs
    c.train.log_every_steps = 20
    c.train.checkpoint_every_steps = 500
    c.train.keep_checkpoints = 3
    c.train.eval_every_steps = -1  # > 0: single-view eval during training; -1: at the end only
    # '' = off. A folder (shared by the runs of a table): the frozen image tower's features of each
    # training clip (a video in one of its epochs) are computed once and stored there; runs that
    # train on the same clips (other variants, other k of a draw) read them and decode nothing
    # (float tolerance of a run without it; see train/train_features.py and docs/training.md).
    c.train.feature_cache_dir = ""

    c.optim = ml_collections.ConfigDict()
    c.optim.name = "sgd"  # sgd (paper: SGD + cosine) | adamw
    c.optim.learning_rate = 0.0025  # peak; paper closed-set 0.0025 @ batch 128
    c.optim.momentum = 0.9  # sgd
    c.optim.nesterov = False  # sgd
    c.optim.b1 = 0.9  # adamw
    c.optim.b2 = 0.999  # adamw
    c.optim.weight_decay = 0.0
    c.optim.warmup_steps = 0  # linear warm-up, then cosine to final_lr_fraction * lr
    c.optim.final_lr_fraction = 0.0
    c.optim.grad_clip_norm = 0.0  # > 0: clip gradients to this global norm

    # --- Evaluation ---
    c.eval = ml_collections.ConfigDict()
    c.eval.batch_size = 16  # global, videos per eval step
    c.eval.single_view = True  # centre frames of T segments, centre crop
    c.eval.multiview = True  # 4 segment samplings x 3 crops; mean of the views' accuracies (paper §4.1) and summed scores
    c.eval.confusion_png = True  # write confusion_<name>.png beside eval_results.json
    # > 0 with data.few_shot_k: also evaluate this many training videos per class that the draw
    # left out (few_shot.draw_validation: the same for every k of a seed), as the set
    # 'validation', to choose hyper-parameters without the test set (experiments/paper.py
    # --choose_lr). Every class needs few_shot_k + this many videos in data.train_split.
    c.eval.validation_per_class = 0
    # '' = off. A folder (shared by the runs of a table): the frozen image tower's features of the
    # evaluation views are computed once per (CLIP weights, dataset split, view settings, dtype,
    # process layout) and stored there; later evaluations run only the trainable part on them
    # (exact; see train/feature_cache.py for the key and docs/training.md).
    c.eval.feature_cache_dir = ""
    # Extra evaluation sets (zero-shot / cross-dataset): name -> {dataset_dir, split, class_names}.
    c.eval.extra = ml_collections.ConfigDict()

    # --- Devices ---
    c.mesh = ml_collections.ConfigDict()
    c.mesh.data = -1  # data-parallel size (-1: all devices left by `model`)
    c.mesh.model = 1  # model-parallel size (frozen CLIP weights split on their last axis)

    # --- Multi-host (TPU pods, multi-GPU hosts) ---
    c.distributed = ml_collections.ConfigDict()
    # '' = single process, unless running on a TPU pod / cluster jax.distributed auto-detects.
    c.distributed.coordinator_address = ""
    c.distributed.num_processes = 1
    c.distributed.process_id = 0
    c.distributed.auto = False  # call jax.distributed.initialize() with auto-detection (TPU pods)
    return c


def _flat_keys(config: Any, prefix: str = "") -> set[str]:
    keys = set()
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, ml_collections.ConfigDict) and key not in _OPAQUE:
            keys |= _flat_keys(value, name + ".")
        else:
            keys.add(name)
    return keys


def validate_config(config: ml_collections.ConfigDict, check_files: bool = True) -> None:
    """Raises ValueError naming the first unknown, missing or inconsistent field.

    `check_files=False` skips the checks that files exist (planning runs on another machine)."""
    reference = base_config()
    unknown = sorted(_flat_keys(config) - _flat_keys(reference))
    missing = sorted(_flat_keys(reference) - _flat_keys(config))
    if unknown:
        raise ValueError(
            f"config: unknown field(s) {unknown} (see motion_clip_jax/train/config.py)"
        )
    if missing:
        raise ValueError(f"config: missing field(s) {missing}")
    providers.check("data.source", config.data.source, config.data.source_settings)
    providers.check("clip_source", config.clip_source, config.clip_source_settings)
    try:
        validate_model_config(config.model)
    except ValueError as e:
        raise ValueError(f"config.model: {e}") from e

    def bad(field: str, value: Any, why: str):
        raise ValueError(f"config.{field}={value!r}: {why}")

    if not config.data.dataset_dir:
        bad("data.dataset_dir", config.data.dataset_dir, "set it to a dataset written by data_prep")
    t = config.train
    if t.batch_size < 1:
        bad("train.batch_size", t.batch_size, "must be >= 1")
    if t.grad_accum_steps < 1 or t.batch_size % t.grad_accum_steps:
        bad(
            "train.grad_accum_steps",
            t.grad_accum_steps,
            f"must be >= 1 and divide train.batch_size={t.batch_size}",
        )
    if t.num_steps <= 0 and not t.num_epochs > 0:
        bad("train.num_epochs", t.num_epochs, "must be > 0 when train.num_steps <= 0")
    for name in ("log_every_steps", "checkpoint_every_steps", "keep_checkpoints"):
        if t[name] < 1:
            bad(f"train.{name}", t[name], "must be >= 1")
    if config.optim.name not in ("sgd", "adamw"):
        bad("optim.name", config.optim.name, "must be 'sgd' or 'adamw'")
    if not config.optim.learning_rate > 0:
        bad("optim.learning_rate", config.optim.learning_rate, "must be > 0")
    if config.eval.batch_size < 1:
        bad("eval.batch_size", config.eval.batch_size, "must be >= 1")
    if config.data.few_shot_k < 0:
        bad("data.few_shot_k", config.data.few_shot_k, "must be >= 0")
    if config.eval.validation_per_class < 0:
        bad("eval.validation_per_class", config.eval.validation_per_class, "must be >= 0")
    if config.eval.validation_per_class and not config.data.few_shot_k:
        bad(
            "eval.validation_per_class",
            config.eval.validation_per_class,
            "needs data.few_shot_k > 0 (validation videos are the ones a few-shot draw leaves out)",
        )
    if (
        check_files
        and config.clip_checkpoint
        and not config.clip_source
        and not os.path.exists(config.clip_checkpoint)
    ):
        bad(
            "clip_checkpoint",
            config.clip_checkpoint,
            "no such file. Convert OpenAI's weights first: python -m motion_clip_jax.convert "
            f"to-flax --input ViT-B-16.pt --output {config.clip_checkpoint}",
        )
    if not config.clip_checkpoint and not config.clip_source and not config.allow_random_clip:
        bad("clip_checkpoint", "", "set it to a converted CLIP .msgpack (see README: Convert)")
    for name, extra in config.eval.extra.items():
        for field in ("dataset_dir", "split", "class_names"):
            if field not in extra:
                bad(f"eval.extra.{name}", dict(extra), f"needs a '{field}' field")
