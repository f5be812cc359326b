"""A memory plan before launch: `python -m motion_clip_jax.main --config=... --workdir=DIR --dry_run`.

Builds the mesh, the model and the train and eval steps from abstract shapes (no dataset record
and no CLIP checkpoint is read), compiles them for the devices at hand and prints, per device:
parameter and optimiser bytes, the steps' temporaries from XLA's memory analysis, a line
`memory per device: X GiB` (the train step's; the eval step's is printed beside it), the FLOPs
per step, and with --device_memory_gb the smallest number of
micro-batches (config.train.grad_accum_steps) that fits under each of: the config as given,
remat_text, remat_text + bfloat16. Writes only DIR/memory_plan.json.

A figure is XLA's plan for the compiled program on this backend: on a CPU it is an estimate of a
GPU / TPU's (docs/training.md says how far it was from measured peaks).
"""

from __future__ import annotations

import json
import os
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from motion_clip_jax.core import video_spec
from motion_clip_jax.core.class_prompts import class_prompt_tokens
from motion_clip_jax.models import clip as clip_lib
from motion_clip_jax.models import model_config as config_lib
from motion_clip_jax.models.video_clip import (
    build_model,
    for_classes,
    image_chunk_size,
    init_trainable,
)
from motion_clip_jax.train import mesh as mesh_lib
from motion_clip_jax.train import steps as steps_lib
from motion_clip_jax.train.config import validate_config
from motion_clip_jax.train.optim import make_optimizer

GIB = 2**30
PLAN_FILE = "memory_plan.json"
_VENDORED = ("hmdb51", "ucf101", "kinetics400")


def plan_class_names(data: ml_collections.ConfigDict) -> tuple[list[str], str]:
    """The class names the run's prompts would use, without reading a record -> (names, where).

    data.class_names when it names a list; else the dataset's tfds metadata when it exists; else
    the vendored list that the dataset folder's name points to; else the data source's classes."""
    from motion_clip_jax.core import classnames as classnames_lib

    if data.class_names in _VENDORED:
        return classnames_lib.load_classnames(data.class_names), f"vendored {data.class_names}"
    if data.class_names:
        return classnames_lib.read_label_file(data.class_names), data.class_names
    if os.path.isdir(data.dataset_dir):
        from motion_clip_jax.data import source

        return source.class_names(data.dataset_dir), f"{data.dataset_dir} metadata"
    folder = os.path.basename(os.path.normpath(data.dataset_dir)).lower().replace("-", "")
    for name in _VENDORED:
        if name in folder.replace("_", ""):
            return classnames_lib.load_classnames(name), f"vendored {name} (no {data.dataset_dir})"
    if data.source:  # a provider that writes the dataset declares its classes
        from motion_clip_jax.train import providers

        names = providers.resolve("data.source", data.source).class_names
        return list(names), f"data source {data.source}"
    raise ValueError(
        f"--dry_run: config.data.dataset_dir={data.dataset_dir!r} does not exist and names no "
        f"vendored class list ({', '.join(_VENDORED)}): set config.data.class_names"
    )


def _abstract(tree: Any, shardings: Any) -> Any:
    return jax.tree_util.tree_map(
        lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), tree, shardings
    )


def _device_bytes(tree: Any) -> int:
    """Bytes one device holds of an abstract tree whose leaves carry their sharding."""
    return sum(
        int(np.prod(x.sharding.shard_shape(x.shape))) * x.dtype.itemsize
        for x in jax.tree_util.tree_leaves(tree)
    )


def _memory(compiled: Any) -> dict[str, int]:
    """XLA's memory analysis of a compiled step (per device); `total` = arguments + outputs -
    donated (aliased) + temporaries + code."""
    m = compiled.memory_analysis()
    fields = {
        "arguments": m.argument_size_in_bytes,
        "outputs": m.output_size_in_bytes,
        "aliased": m.alias_size_in_bytes,
        "temporaries": m.temp_size_in_bytes,
        "code": m.generated_code_size_in_bytes,
    }
    fields = {k: int(v) for k, v in fields.items()}
    total = fields["arguments"] + fields["outputs"] - fields["aliased"]
    fields["total"] = total + fields["temporaries"] + fields["code"]
    return fields


def _flops(compiled: Any) -> float:
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return float(cost.get("flops", 0.0)) if cost else 0.0


def abstract_parts(config: ml_collections.ConfigDict, mesh: Any) -> dict[str, Any]:
    """Model, optimiser, abstract train state / frozen CLIP / class tokens on `mesh`."""
    model_config = ml_collections.ConfigDict(config.model.to_dict())
    model = build_model(model_config)
    clip_cfg = config_lib.clip_config_of(model_config)
    frozen = {"clip": jax.eval_shape(lambda: clip_lib.init_clip(clip_cfg, 0)[1]["params"])}
    trainable = jax.eval_shape(lambda: init_trainable(model, jax.random.PRNGKey(0)))
    tx, schedule = make_optimizer(config.optim, 1000)
    state = jax.eval_shape(lambda t: steps_lib.TrainState.create(t, tx), trainable)
    replicated = mesh_lib.replicated(mesh)
    state_shardings = jax.tree_util.tree_map(lambda _: replicated, state)
    frozen_shardings = mesh_lib.param_shardings(frozen, mesh)
    names, names_from = plan_class_names(config.data)
    tokens, eos = class_prompt_tokens(model_config, names)
    return {
        "model": model,
        "tx": tx,
        "schedule": schedule,
        "state": _abstract(state, state_shardings),
        "state_shardings": state_shardings,
        "frozen": _abstract(frozen, frozen_shardings),
        "frozen_shardings": frozen_shardings,
        "tokens": _abstract((np.asarray(tokens), np.asarray(eos)), (replicated, replicated)),
        "eos": eos,
        "num_classes": len(names),
        "class_names_from": names_from,
    }


def _video(config: ml_collections.ConfigDict, batch: int, mesh: Any, views: int = 0) -> Any:
    c = config.data.crop_size
    shape = (batch, *((views,) if views else ()), config.model.num_frames, c, c, 3)
    return jax.ShapeDtypeStruct(shape, jnp.uint8, sharding=mesh_lib.batch_sharding(mesh))


def abstract_train_step(
    config: ml_collections.ConfigDict, mesh: Any, parts: dict, frames: bool = False
) -> tuple:
    """(jitted train step, abstract batch of `config.train.batch_size` clips with their mask);
    with `frames`, the clips as the frozen tower's features (B, T, D) (training feature cache)."""
    step = steps_lib.make_train_step(
        for_classes(parts["model"], parts["eos"]),
        parts["tx"],
        parts["schedule"],
        mesh,
        parts["state_shardings"],
        parts["frozen_shardings"],
        config.train.grad_accum_steps,
    )
    b, batch_sharding = config.train.batch_size, mesh_lib.batch_sharding(mesh)
    if frames:
        dim = config_lib.clip_config_of(parts["model"].config).embed_dim
        dtype = config_lib.DTYPES[parts["model"].config.dtype]
        shape = (b, config.model.num_frames, dim)
        inputs = {"frames": jax.ShapeDtypeStruct(shape, dtype, sharding=batch_sharding)}
    else:
        inputs = {"video": _video(config, b, mesh)}
    batch = {
        **inputs,
        "label": jax.ShapeDtypeStruct((b,), jnp.int32, sharding=batch_sharding),
        "mask": jax.ShapeDtypeStruct((b,), jnp.bool_, sharding=batch_sharding),
    }
    return step, batch


def train_step_plan(config: ml_collections.ConfigDict, mesh: Any) -> dict[str, Any]:
    """Compiles the train step of `config` on `mesh` from abstract shapes -> its memory + FLOPs."""
    parts = abstract_parts(config, mesh)
    step, batch = abstract_train_step(config, mesh, parts)
    compiled = step.lower(parts["state"], parts["frozen"], batch, *parts["tokens"]).compile()
    trainable = parts["state"].trainable
    return {
        "parts": parts,
        "memory": _memory(compiled),
        "flops": _flops(compiled),
        "trainable_bytes": _device_bytes(trainable),
        "optimizer_bytes": _device_bytes(parts["state"].opt_state),
        "frozen_bytes": _device_bytes(parts["frozen"]),
    }


def step_flops(config: ml_collections.ConfigDict, mesh: Any, frames: bool = False) -> float:
    """FLOPs of one train step per device, from the lowered program of the whole batch at once
    with the image tower in one call: XLA's cost analysis counts a loop's body once, so the
    compiled step's figure misses the micro-batch scan and the image-tower chunks. `frames`: the
    step on cached frame features (no image tower)."""
    unrolled = _with(config, train__grad_accum_steps=1, model__image_chunk_frames=0)
    parts = abstract_parts(unrolled, mesh)
    step, batch = abstract_train_step(unrolled, mesh, parts, frames)
    lowered = step.lower(parts["state"], parts["frozen"], batch, *parts["tokens"])
    return _flops(lowered) / mesh.size


def eval_step_plan(config: ml_collections.ConfigDict, mesh: Any, parts: dict) -> dict[str, Any]:
    """The eval step (multi-view when configured: the larger one) -> its memory."""
    step = steps_lib.make_eval_step(
        for_classes(parts["model"], parts["eos"]), mesh, parts["frozen_shardings"]
    )
    views = video_spec.NUM_TEST_SAMPLINGS * video_spec.NUM_TEST_CROPS
    video = _video(config, config.eval.batch_size, mesh, views if config.eval.multiview else 0)
    trainable = parts["state"].trainable
    compiled = step.lower(trainable, parts["frozen"], video, *parts["tokens"]).compile()
    return {"memory": _memory(compiled)}


def _with(config: ml_collections.ConfigDict, **fields: Any) -> ml_collections.ConfigDict:
    """A copy of `config` with dotted fields replaced ('train.grad_accum_steps': 4)."""
    copy = ml_collections.ConfigDict(config.to_dict())
    for dotted, value in fields.items():
        section, name = dotted.split("__")
        copy[section][name] = value
    return copy


def smallest_fit(
    config: ml_collections.ConfigDict, mesh: Any, budget: float, per_shard: int
) -> tuple[int, float] | None:
    """The fewest micro-batches (a divisor of the per-shard batch) whose train step fits `budget`
    bytes -> (N, bytes); None if even one clip per micro-batch does not. Binary search: the
    figure falls as N grows."""
    divisors = [n for n in range(1, per_shard + 1) if per_shard % n == 0]
    lo, hi, best = 0, len(divisors) - 1, None
    while lo <= hi:
        mid = (lo + hi) // 2
        plan = train_step_plan(_with(config, train__grad_accum_steps=divisors[mid]), mesh)
        if plan["memory"]["total"] <= budget:
            best, hi = (divisors[mid], plan["memory"]["total"]), mid - 1
        else:
            lo = mid + 1
    return best


def choices(config: ml_collections.ConfigDict, mesh: Any, device_memory_gb: float) -> list[dict]:
    """For the config as given, with remat_text, and with remat_text + bfloat16: the fewest
    micro-batches whose train step fits `device_memory_gb` GiB."""
    per_shard = config.train.batch_size // mesh.shape[mesh_lib.DATA]
    options = [("as configured", {})]
    if not config.model.remat_text:
        options.append(("remat_text", {"model__remat_text": True}))
    if config.model.dtype != "bfloat16":
        options.append(
            ("remat_text + bfloat16", {"model__remat_text": True, "model__dtype": "bfloat16"})
        )
    found = []
    for name, fields in options:
        fit = smallest_fit(_with(config, **fields), mesh, device_memory_gb * GIB, per_shard)
        overrides = [f"--config.{k.replace('__', '.')}={v}" for k, v in fields.items()]
        found.append(
            {
                "option": name,
                "grad_accum_steps": fit[0] if fit else None,
                "memory_gib": fit[1] / GIB if fit else None,
                "overrides": overrides
                + ([f"--config.train.grad_accum_steps={fit[0]}"] if fit else []),
            }
        )
    return found


def report_lines(
    config: ml_collections.ConfigDict, mesh: Any, train: dict, evaluation: dict
) -> list[str]:
    """The plan as printed: per device, in GiB."""
    m, e = train["memory"], evaluation["memory"]
    n = config.train.grad_accum_steps
    per_shard = config.train.batch_size // mesh.shape[mesh_lib.DATA]
    return [
        f"plan: {jax.device_count()} {jax.devices()[0].platform} device(s), mesh {dict(mesh.shape)}, "
        f"batch {config.train.batch_size} ({per_shard} per data shard) in {n} micro-batch(es) "
        f"of {config.train.batch_size // n}, dtype {config.model.dtype}, remat_text "
        f"{config.model.remat_text}, {train['parts']['num_classes']} classes "
        f"({train['parts']['class_names_from']}), planned for {train['target']} (image tower "
        f"{train['chunk'] or 'all'} frames per call)",
        f"  trainable parameters: {train['trainable_bytes'] / GIB:.3f} GiB",
        f"  optimiser state: {train['optimizer_bytes'] / GIB:.3f} GiB",
        f"  frozen CLIP: {train['frozen_bytes'] / GIB:.3f} GiB",
        f"  train step: arguments {m['arguments'] / GIB:.3f} GiB, outputs {m['outputs'] / GIB:.3f} "
        f"GiB (donated {m['aliased'] / GIB:.3f}), temporaries {m['temporaries'] / GIB:.3f} GiB, "
        f"total {m['total'] / GIB:.3f} GiB",
        f"  FLOPs per train step per device: {train['flops'] / 1e9:,.1f} GFLOP (XLA cost analysis)",
        f"  eval step ({'multi-view' if config.eval.multiview else 'single view'}, batch "
        f"{config.eval.batch_size}): temporaries {e['temporaries'] / GIB:.3f} GiB, total "
        f"{e['total'] / GIB:.3f} GiB",
        f"memory per device: {m['total'] / GIB:.2f} GiB (the train step; XLA's plan on "
        f"{jax.devices()[0].platform})",
        *(
            [
                f"  the eval step needs more ({e['total'] / GIB:.2f} GiB): lower config.eval.batch_size"
            ]
            if e["total"] > m["total"]
            else []
        ),
    ]


def run_plan(
    config: ml_collections.ConfigDict,
    workdir: str,
    device_memory_gb: float = 0.0,
    target: str = "",
) -> dict[str, Any]:
    """The dry run: compiles, prints the plan, writes `workdir`/memory_plan.json -> the plan.

    `target` ('' = this backend; gpu | tpu | cpu): whose defaults the plan takes where the config
    leaves the choice to the backend (the image tower's chunk: all frames at once on GPU / TPU)."""
    from motion_clip_jax.train import trainer

    validate_config(config, check_files=False)
    target = target or jax.default_backend()
    chunk = image_chunk_size(config.model.image_chunk_frames, target)
    config = _with(config, model__image_chunk_frames=chunk)
    mesh = trainer.build_mesh(config)  # checks that the batch splits over data and micro-batches
    train = train_step_plan(config, mesh)
    train["flops"] = step_flops(config, mesh)
    train["target"], train["chunk"] = target, chunk
    evaluation = eval_step_plan(config, mesh, train["parts"])
    lines = report_lines(config, mesh, train, evaluation)
    plan = {
        "devices": jax.device_count(),
        "platform": jax.devices()[0].platform,
        "mesh": dict(mesh.shape),
        "batch_size": config.train.batch_size,
        "grad_accum_steps": config.train.grad_accum_steps,
        "dtype": config.model.dtype,
        "remat_text": config.model.remat_text,
        "target": train["target"],
        "image_chunk_frames": train["chunk"],
        "num_classes": train["parts"]["num_classes"],
        "train_step": {**train["memory"], "flops": train["flops"]},
        "eval_step": evaluation["memory"],
        "memory_per_device_gib": train["memory"]["total"] / GIB,
    }
    if device_memory_gb:
        plan["device_memory_gb"] = device_memory_gb
        plan["choices"] = choices(config, mesh, device_memory_gb)
        lines.append(f"fits in {device_memory_gb:g} GiB per device (train step):")
        for c in plan["choices"]:
            if c["grad_accum_steps"] is None:
                lines.append(f"  {c['option']}: does not fit, even one clip per micro-batch")
            else:
                lines.append(
                    f"  {c['option']}: grad_accum_steps={c['grad_accum_steps']} "
                    f"({c['memory_gib']:.2f} GiB): {' '.join(c['overrides'])}"
                )
        if evaluation["memory"]["total"] > device_memory_gb * GIB:
            lines.append("  the eval step does not fit: lower config.eval.batch_size")
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, PLAN_FILE), "w") as f:
        json.dump(plan, f, indent=1)
    if jax.process_index() == 0:
        print("\n".join(lines), flush=True)
    return plan
