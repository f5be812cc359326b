"""A workdir belongs to one experiment: the config it trains is recorded, and kept.

- config.json: the config of the experiment this workdir trains. Written by the first start, by
  any start before the first checkpoint exists (nothing was trained yet), and by a start that was
  allowed to change a training field. Never overwritten otherwise.
- config_history.jsonl: one line per start: UTC time, the training fields that changed
  ('field: old -> new'), the whole config.

On a start in a workdir that holds a checkpoint, the fields that change what is trained
(`TRAINING_FIELDS`: the model, the data, the optimiser and its schedule, the seed, the batch, the
length of training, the frozen CLIP) must equal config.json's; the others (evaluation, logging and
checkpoint cadence, mesh, processes) may change. A difference is refused, every differing field
listed, unless the config sets `allow_config_change=True`: then training resumes with the new
values and both files record the change.

Stdlib only at import: inference reads workdirs through `checkpoint_steps` without importing JAX.
A recorded model config is read in today's fields (`model_spec.upgrade_record`, NumPy only), so a
record written before a field existed compares as the model it trained: a workdir of the earlier
sizes (no `mcb_projections`: its MCB was projected) is refused by a start of today's defaults,
naming `model.mmb_mlp_ratio` and `model.mcb_projections`, and resumed by a config of its sizes.
"""

from __future__ import annotations

import datetime
import json
import os
from collections.abc import Mapping
from typing import Any

# Dotted prefixes of the fields that change what a run trains.
TRAINING_FIELDS = (
    "seed",
    "clip_checkpoint",
    "clip_source",
    "clip_source_settings",
    "allow_random_clip",
    "model",
    "data",
    "optim",
    "train.batch_size",
    "train.num_epochs",
    "train.num_steps",
)
# Fields under those prefixes that say where work runs, not what is trained: they may change on
# resume, and a record written before they existed compares equal. resize_on_device: the device
# makes the host's clips bit for bit (train/window_resize.py).
PLACEMENT_FIELDS = ("data.resize_on_device",)
CONFIG_FILE = "config.json"
HISTORY_FILE = "config_history.jsonl"


class WorkdirConfigError(ValueError):
    """A start whose config would train another experiment than the workdir's."""


class WriteFailedError(OSError):
    """A checkpoint, metrics or results write into the workdir failed (a full disk, say); the
    message names what and where, and what is still intact."""


def checkpoint_steps(workdir: str) -> list[int]:
    """Steps of the complete checkpoints in `workdir`/checkpoints (orbax writes a step's
    directory under a temporary name and renames it when complete), ascending."""
    directory = os.path.join(workdir, "checkpoints")
    if not os.path.isdir(directory):
        return []
    return sorted(
        int(name)
        for name in os.listdir(directory)
        if name.isdigit() and os.path.isdir(os.path.join(directory, name, "state"))
    )


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1}; an empty dict stays a leaf."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def is_training_field(name: str) -> bool:
    if name in PLACEMENT_FIELDS:
        return False
    return any(name == p or name.startswith(p + ".") for p in TRAINING_FIELDS)


def training_changes(recorded: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """'field: old -> new' for every training field that differs between two config dicts."""
    old, new = flatten(recorded), flatten(current)
    changes = []
    for name in sorted(set(old) | set(new)):
        if not is_training_field(name) or (name in old and name in new and old[name] == new[name]):
            continue
        before = json.dumps(old[name]) if name in old else "(absent)"
        after = json.dumps(new[name]) if name in new else "(absent)"
        changes.append(f"{name}: {before} -> {after}")
    return changes


def check_config(config: Any, workdir: str) -> list[str]:
    """The training fields this start changes against the workdir's experiment ([] for a new one).

    `config` is an ml_collections ConfigDict. Raises WorkdirConfigError, listing each differing
    field as old -> new, when the workdir holds a checkpoint and `config.allow_config_change` is
    False. Every process may call it (it only reads).
    """
    path = os.path.join(workdir, CONFIG_FILE)
    if not checkpoint_steps(workdir) or not os.path.exists(path):
        return []
    try:
        with open(path) as f:
            recorded = json.load(f)
        if not isinstance(recorded, dict):
            raise ValueError(f"holds a {type(recorded).__name__}, not a config")
        if isinstance(recorded.get("model"), dict):
            from motion_clip_jax.core import model_spec  # NumPy, not JAX: imported when needed

            recorded["model"] = model_spec.upgrade_record(recorded["model"])
    except (OSError, ValueError) as e:
        raise WorkdirConfigError(f"{path}: not a readable config record ({e})") from None
    changes = training_changes(recorded, json.loads(config.to_json_best_effort()))
    if changes and not config.allow_config_change:
        raise WorkdirConfigError(
            f"workdir {workdir} holds checkpoints of another experiment; training fields differ "
            f"from its {CONFIG_FILE} (recorded -> now): {'; '.join(changes)}. Use a new "
            "--workdir, or rerun with --config.allow_config_change=True to train on with the new "
            f"values (recorded in {CONFIG_FILE} and {HISTORY_FILE})."
        )
    return changes


def record_start(config: Any, workdir: str, changes: list[str]) -> None:
    """Writes config.json when it should change (module docstring) and appends the history line.
    Process 0 only; call after `check_config`."""
    path = os.path.join(workdir, CONFIG_FILE)
    if changes or not checkpoint_steps(workdir) or not os.path.exists(path):
        tmp = f"{path}.tmp"
        with open(tmp, "w") as f:
            f.write(config.to_json_best_effort(indent=2))
        os.replace(tmp, path)
    entry = {
        "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "changed_training_fields": changes,
        "config": json.loads(config.to_json_best_effort()),
    }
    with open(os.path.join(workdir, HISTORY_FILE), "a") as f:
        f.write(json.dumps(entry) + "\n")
