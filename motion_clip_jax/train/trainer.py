"""The train-and-evaluate loop, top to bottom.

config -> devices (mesh, multi-host) -> data -> frozen CLIP + model -> optimizer -> resume
-> sharded train steps (log, NaN guard, checkpoints) -> evaluation (single + multi-view)
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterator
from typing import Any

import jax
import ml_collections
import numpy as np
from absl import logging
from clu import periodic_actions

from motion_clip_jax.convert.flax_file import load_clip, save_clip
from motion_clip_jax.models import config as config_lib
from motion_clip_jax.models import params as params_lib
from motion_clip_jax.models.video_clip import class_tokens_for, init_video_clip
from motion_clip_jax.train import checkpoint as checkpoint_lib
from motion_clip_jax.train import data_input
from motion_clip_jax.train import evaluate as evaluate_lib
from motion_clip_jax.train import mesh as mesh_lib
from motion_clip_jax.train import steps as steps_lib
from motion_clip_jax.train.config import validate_config
from motion_clip_jax.train.metrics import MetricWriter
from motion_clip_jax.train.optim import make_optimizer


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN / Inf; training stopped before any checkpoint of the bad state."""


def initialize_distributed(config: ml_collections.ConfigDict) -> None:
    """`jax.distributed.initialize` for multi-process runs (must precede any device use)."""
    d = config.distributed
    if d.auto:
        jax.distributed.initialize()
    elif d.num_processes > 1:
        jax.distributed.initialize(
            coordinator_address=d.coordinator_address,
            num_processes=d.num_processes,
            process_id=d.process_id,
        )


def log(message: str) -> None:
    """Console progress from process 0 only."""
    if jax.process_index() == 0:
        print(message, flush=True)
    logging.info(message)


def load_frozen_clip(
    config: ml_collections.ConfigDict,
) -> tuple[ml_collections.ConfigDict, Any, str]:
    """Loads the frozen CLIP named by the config -> (model config matching it, CLIP params or None,
    the resolved checkpoint path or '')."""
    model_config = ml_collections.ConfigDict(config.model.to_dict())
    path = config.clip_checkpoint
    if config.tiny_clip_cache_dir and not path:
        from motion_clip_jax.train.pretrain_clip import get_or_pretrain_tiny_clip

        settings = {"size": config.data.crop_size}
        if config.tiny_clip_pretrain_steps > 0:
            settings["steps"] = config.tiny_clip_pretrain_steps
        path = get_or_pretrain_tiny_clip(
            config.tiny_clip_cache_dir, seed=config.seed, log_fn=log, **settings
        )
    if not path:
        log("WARNING: no clip_checkpoint: the frozen CLIP has RANDOM weights (allow_random_clip)")
        return model_config, None, ""
    module, variables = load_clip(path)
    log(f"Frozen CLIP from {path}: {module.config}")
    # The checkpoint decides the architecture; the preset name only supplies defaults.
    model_config.clip_overrides = ml_collections.ConfigDict(module.config.to_dict())
    return model_config, variables["params"], os.path.abspath(path)


def global_batch(local: dict[str, np.ndarray], sharding) -> dict[str, jax.Array]:
    """Process-local numpy batch -> global jax.Arrays (batch axis split over `data`)."""
    return {k: jax.make_array_from_process_local_data(sharding, v) for k, v in local.items()}


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """Trains (resuming from the latest checkpoint in `workdir`), then evaluates. Returns results."""
    validate_config(config)
    workdir = os.path.abspath(workdir)
    os.makedirs(workdir, exist_ok=True)
    if jax.process_index() == 0:
        with open(os.path.join(workdir, "config.json"), "w") as f:
            f.write(config.to_json_best_effort(indent=2))
    writer = MetricWriter(workdir)
    mesh = mesh_lib.make_mesh(config.mesh.data, config.mesh.model)
    num_processes = jax.process_count()
    log(
        f"Devices: {jax.device_count()} ({jax.devices()[0].platform}), {num_processes} process(es), "
        f"mesh {dict(mesh.shape)}"
    )
    for field in ("train.batch_size", "eval.batch_size"):
        size = config[field.split(".")[0]].batch_size
        if size % mesh.shape["data"] or size % num_processes:
            raise ValueError(
                f"config.{field}={size} must divide over the data axis ({mesh.shape['data']}) "
                f"and the processes ({num_processes})"
            )

    # --- Data ---
    dataset = data_input.prepare_dataset(config, workdir)
    class_names = dataset.class_names
    log(
        f"Data: {dataset.dataset_dir}: {dataset.num_train} train videos ({config.data.train_split}"
        f"{f', {config.data.few_shot_k}-shot' if config.data.few_shot_k else ''}), "
        f"{len(class_names)} classes"
    )

    # --- Model ---
    model_config, clip_params, clip_path = load_frozen_clip(config)
    model, trainable, frozen = init_video_clip(
        model_config, rng=config.seed, clip_params=clip_params
    )
    if clip_params is None and jax.process_index() == 0:
        # Keep the random frozen CLIP with the run, so export / predict load exactly these weights.
        clip_path = os.path.join(workdir, "random_clip.msgpack")
        save_clip(clip_path, config_lib.clip_config_of(model_config), frozen["clip"])
    log("Trainable parameters:\n" + params_lib.overview(trainable))
    log(f"Frozen CLIP parameters: {params_lib.count_params(frozen):,}")
    class_tokens, eos = class_tokens_for(model_config, class_names)
    if jax.process_index() == 0:
        # What export / predict need to rebuild the model without the training config's context.
        run_info = {
            "model_config": model_config.to_dict(),
            "clip_checkpoint": clip_path,
            "class_names": class_names,
            "dataset_dir": dataset.dataset_dir,
            "crop_size": config.data.crop_size,
            "seed": config.seed,
        }
        with open(os.path.join(workdir, "run_info.json"), "w") as f:
            json.dump(run_info, f, indent=1)

    # --- Optimizer and state ---
    steps_per_epoch = max(1, math.ceil(dataset.num_train / config.train.batch_size))
    total_steps = (
        config.train.num_steps
        if config.train.num_steps > 0
        else max(1, round(config.train.num_epochs * steps_per_epoch))
    )
    tx, schedule = make_optimizer(config.optim, total_steps)
    state = steps_lib.TrainState.create(trainable, tx, config.seed)
    replicated = mesh_lib.replicated(mesh)
    state_shardings = jax.tree_util.tree_map(lambda _: replicated, state)
    frozen_shardings = mesh_lib.param_shardings(frozen, mesh)
    state = jax.device_put(state, state_shardings)
    frozen = jax.device_put(frozen, frozen_shardings)
    class_tokens, eos = jax.device_put((class_tokens, eos), replicated)

    checkpointer = checkpoint_lib.Checkpointer(workdir, config.train.keep_checkpoints)
    start_step = 0
    latest = checkpointer.latest_step()
    if latest is not None:
        state, position = checkpointer.restore(latest, state)
        start_step = int(state.step)
        if position.get("step") != start_step or position.get("seed") != config.seed:
            raise ValueError(
                f"checkpoint {latest}: data position {position} does not match "
                f"step {start_step} / seed {config.seed}"
            )
        log(f"Resumed from step {start_step} ({checkpointer.directory})")

    train_step = steps_lib.make_train_step(
        model, tx, schedule, mesh, state_shardings, frozen_shardings
    )
    eval_step = steps_lib.make_eval_step(model, mesh, frozen_shardings)
    batch_sharding = mesh_lib.batch_sharding(mesh)

    # --- Train ---
    train_iter = data_input.train_iterator(config, dataset, start_step)
    report = periodic_actions.ReportProgress(
        num_train_steps=total_steps, writer=writer.writer, every_steps=config.train.log_every_steps
    )
    log(
        f"Training steps {start_step} -> {total_steps} ({steps_per_epoch} steps/epoch, "
        f"global batch {config.train.batch_size})"
    )
    pending: list[tuple[int, dict]] = []
    window: list[dict] = []
    window_start = time.time()
    for step in range(start_step, total_steps):
        with jax.profiler.StepTraceAnnotation("train", step_num=step):
            batch = global_batch(next(train_iter), batch_sharding)
            state, metrics = train_step(state, frozen, batch, class_tokens, eos)
        done = step + 1
        pending.append((done, metrics))
        is_log = done % config.train.log_every_steps == 0 or done == total_steps
        is_ckpt = done % config.train.checkpoint_every_steps == 0 or done == total_steps
        # Fetch at least every 8 steps: keeps fake-device CPU collectives from piling up (DESIGN
        # §7) and bounds how far past a NaN the loop can run.
        if is_log or is_ckpt or len(pending) >= 8:
            for at, values in jax.device_get(pending):
                if not np.isfinite(values["loss"]):
                    checkpointer.wait()
                    raise NonFiniteLossError(
                        f"loss is {values['loss']} at step {at}: training stopped. The last good "
                        f"checkpoint (step {checkpointer.latest_step()}) in "
                        f"{checkpointer.directory} is intact."
                    )
                window.append(values)
            pending = []
        if is_log and window:
            elapsed = time.time() - window_start
            scalars = {k: float(np.mean([w[k] for w in window])) for k in window[0]}
            scalars["steps_per_second"] = len(window) / max(elapsed, 1e-9)
            writer.write(done, scalars)
            log(
                f"step {done}/{total_steps}: loss {scalars['loss']:.4f}, "
                f"acc {scalars['accuracy']:.3f}, lr {scalars['learning_rate']:.2e}, "
                f"{scalars['steps_per_second']:.2f} steps/s"
            )
            window, window_start = [], time.time()
        report(done)
        if is_ckpt:
            checkpointer.save(
                done, state, {"step": done, "seed": config.seed, "epoch": done // steps_per_epoch}
            )
        if (
            config.train.eval_every_steps > 0
            and done % config.train.eval_every_steps == 0
            and done != total_steps
        ):
            quick = run_evaluation(
                config,
                dataset,
                eval_step,
                state.trainable,
                frozen,
                class_tokens,
                eos,
                batch_sharding,
                multiview=False,
            )
            writer.write(done, {"top1": quick["top1"], "top5": quick["top5"]}, kind="eval")
    checkpointer.wait()
    writer.flush()

    # --- Evaluate ---
    results: dict[str, Any] = {"step": int(state.step), "num_train_steps": total_steps}
    sets = [("main", dataset, class_tokens, eos)]
    for name, extra in config.eval.extra.items():
        other = data_input.prepare_eval_dataset(config, extra)
        ids, other_eos = jax.device_put(
            class_tokens_for(model_config, other.class_names), replicated
        )
        sets.append((name, other, ids, other_eos))
    for name, ds, ids, ids_eos in sets:
        for view, enabled in (
            ("single_view", config.eval.single_view),
            ("multiview", config.eval.multiview),
        ):
            if not enabled:
                continue
            start = time.time()
            metrics = run_evaluation(
                config,
                ds,
                eval_step,
                state.trainable,
                frozen,
                ids,
                ids_eos,
                batch_sharding,
                multiview=view == "multiview",
            )
            key = f"{name}/{view}"
            results[key] = metrics
            writer.write(
                int(state.step),
                {"top1": metrics["top1"], "top5": metrics["top5"]},
                kind=f"eval/{key}",
            )
            log(
                f"eval {key}: top1 {metrics['top1']:.4f}, top5 {metrics['top5']:.4f}, "
                f"mean class acc {metrics['mean_class_accuracy']:.4f} "
                f"({metrics['num_videos']} videos, {time.time() - start:.1f} s)"
            )
            if config.eval.confusion_png and jax.process_index() == 0:
                evaluate_lib.save_confusion_png(
                    np.asarray(metrics["confusion_matrix"]),
                    ds.class_names,
                    os.path.join(workdir, f"confusion_{name}_{view}.png"),
                    f"{name} {view}",
                )
    if jax.process_index() == 0:
        with open(os.path.join(workdir, "eval_results.json"), "w") as f:
            json.dump(results, f, indent=1)
        table = evaluate_lib.results_table(results, {name: ds.class_names for name, ds, *_ in sets})
        log(f"\nResults after {int(state.step)} steps ({workdir}/eval_results.json):\n{table}")
    checkpointer.close()
    writer.flush()
    return results


def run_evaluation(
    config: ml_collections.ConfigDict,
    dataset: data_input.Dataset,
    eval_step,
    trainable: Any,
    frozen: Any,
    class_tokens: jax.Array,
    eos: jax.Array,
    batch_sharding,
    multiview: bool,
) -> dict[str, Any]:
    """Every video of the eval split exactly once (padded batches masked out) -> metrics."""
    scores, labels = [], []
    batches: Iterator[dict[str, np.ndarray]] = data_input.eval_iterator(config, dataset, multiview)
    for local in batches:
        video = jax.make_array_from_process_local_data(batch_sharding, local["video"])
        out = eval_step(trainable, frozen, video, class_tokens, eos)
        # Labels and masks are gathered from every process; scores come back replicated.
        gathered = data_input.allgather({"label": local["label"], "mask": local["mask"]})
        keep = gathered["mask"].astype(bool)
        scores.append(np.asarray(out)[keep])
        labels.append(gathered["label"][keep])
    scores_np = np.concatenate(scores) if scores else np.zeros((0, len(dataset.class_names)))
    labels_np = np.concatenate(labels) if labels else np.zeros((0,), np.int64)
    metrics = evaluate_lib.classification_metrics(scores_np, labels_np, dataset.class_names)
    if dataset.class_pairs:
        metrics["pair_accuracy"] = evaluate_lib.pair_accuracy(
            scores_np, labels_np, dataset.class_pairs
        )
    return metrics
