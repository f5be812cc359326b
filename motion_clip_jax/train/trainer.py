"""The train-and-evaluate loop, top to bottom.

config -> devices (mesh, multi-host) -> data -> frozen CLIP + model -> optimizer -> resume
-> sharded train steps (log, NaN guard, checkpoints) -> evaluation (single + multi-view)
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import json
import math
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import jax
import ml_collections
import numpy as np
import optax
from absl import logging
from clu import periodic_actions
from jax.sharding import Mesh

from motion_clip_jax.convert.flax_file import load_clip, save_clip
from motion_clip_jax.core import model_spec
from motion_clip_jax.core.class_prompts import class_prompt_tokens
from motion_clip_jax.models import model_config as config_lib
from motion_clip_jax.models import params as params_lib
from motion_clip_jax.models.video_clip import VideoCLIP, for_classes, init_video_clip
from motion_clip_jax.train import checkpoint as checkpoint_lib
from motion_clip_jax.train import data_input, preemption, providers, train_features, workdir_lock
from motion_clip_jax.train import evaluate as evaluate_lib
from motion_clip_jax.train import feature_cache as feature_cache_lib
from motion_clip_jax.train import mesh as mesh_lib
from motion_clip_jax.train import metrics as metrics_lib
from motion_clip_jax.train import steps as steps_lib
from motion_clip_jax.train import workdir as workdir_lib
from motion_clip_jax.train.metrics import MetricWriter
from motion_clip_jax.train.optim import make_optimizer

# Fetch train metrics at least this often: bounds how far past a NaN the loop runs, and keeps
# the asynchronous dispatch queue (of fake-device CPU collectives in tests) short.
MAX_PENDING_STEPS = 8


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN / Inf; training stopped before any checkpoint of the bad state."""


class Preempted(SystemExit):
    """SIGTERM (TPU pod maintenance, spot GPUs): a checkpoint was saved at an agreed step and the
    process exits with status 143 (128 + SIGTERM); rerunning the same command resumes there."""

    def __init__(self, step: int):
        super().__init__(143)
        self.step = step


@dataclasses.dataclass(frozen=True)
class ModelParts:
    """The model and its parameters as initialised (host arrays)."""

    module: VideoCLIP
    model_config: ml_collections.ConfigDict  # the config's, with the checkpoint's CLIP
    trainable: Any
    frozen: Any


@dataclasses.dataclass(frozen=True)
class Placed:
    """Train state and frozen weights on the mesh, with their shardings."""

    state: steps_lib.TrainState
    frozen: Any
    state_shardings: Any
    frozen_shardings: Any


@dataclasses.dataclass(frozen=True)
class EvalSet:
    """One evaluation set: its dataset and the class prompt tokens (K, L) / EOS index (K,) on the
    mesh, and the EOS index on the host (it picks the set's steps: `steps.per_class_list`)."""

    name: str
    dataset: data_input.Dataset
    class_tokens: jax.Array
    eos: jax.Array
    host_eos: np.ndarray


@dataclasses.dataclass(frozen=True)
class EvalContext:
    """What every evaluation pass needs besides the trainable parameters and the set."""

    config: ml_collections.ConfigDict
    eval_step_for: Callable[[np.ndarray], Callable[..., jax.Array]]  # host eos -> its eval step
    frozen: Any
    batch_sharding: Any
    feature_cache: feature_cache_lib.FeatureCacheSettings | None = (
        None  # None: the image tower runs every pass
    )


@dataclasses.dataclass(frozen=True)
class TrainContext:
    """What the train loop needs besides the state."""

    config: ml_collections.ConfigDict
    train_step: Callable[..., tuple[steps_lib.TrainState, dict]]
    writer: MetricWriter
    checkpointer: checkpoint_lib.Checkpointer
    total_steps: int
    steps_per_epoch: int
    # config.train.feature_cache_dir: the clips' frozen features, read or written per step.
    train_cache: train_features.TrainFeatureCache | None = None


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


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """Trains (resuming from the latest checkpoint in `workdir`), then evaluates. Returns results.

    The run holds the workdir's lock throughout (train/workdir_lock.py): a second trainer on the
    same workdir is refused. The config is validated by train/launch.start."""
    workdir = os.path.abspath(workdir)
    with workdir_lock.hold_for_run(workdir, log):
        return _train_and_evaluate(config, workdir)


def _train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    writer = prepare_workdir(config, workdir)
    mesh = build_mesh(config)
    dataset = prepare_data(config, workdir)
    parts = build_model(config, workdir, dataset)
    total_steps, steps_per_epoch = train_length(config, dataset)
    tx, schedule = make_optimizer(config.optim, total_steps)
    placed = place_on_mesh(parts, tx, mesh)
    checkpointer = checkpoint_lib.Checkpointer(workdir, config.train.keep_checkpoints)
    state = restore(checkpointer, placed.state, config)
    main_set = make_eval_set("main", dataset, parts.model_config, mesh)
    # The train step always gets the training classes: it may group their suffixes (exact).
    train_module = for_classes(parts.module, main_set.host_eos)
    train_step = steps_lib.make_train_step(
        train_module,
        tx,
        schedule,
        mesh,
        placed.state_shardings,
        placed.frozen_shardings,
        config.train.grad_accum_steps,
    )
    eval_ctx = make_eval_context(config, parts, placed, mesh)
    start_step = int(state.step)
    train_cache = open_train_cache(config, dataset, parts, placed, mesh, start_step, total_steps)
    train_ctx = TrainContext(
        config, train_step, writer, checkpointer, total_steps, steps_per_epoch, train_cache
    )
    state = train_loop(train_ctx, eval_ctx, main_set, state)
    record_skipped([dataset], workdir)
    eval_sets = [main_set] + extra_eval_sets(config, dataset, parts.model_config, mesh)
    step = int(state.step)
    results: dict[str, Any] = {
        "step": step,
        "num_train_steps": total_steps,
        "model": model_record(parts),
        "train_suffix_groups": suffix_groups_record(train_module),
        **tower_record(train_ctx, total_steps - start_step, workdir),
    }
    results.update(evaluate_all(eval_ctx, state.trainable, eval_sets, writer, workdir, step))
    record_skipped([dataset] + [s.dataset for s in eval_sets], workdir)
    write_results(results, eval_sets, workdir)
    checkpointer.close()
    writer.flush()
    return results


def prepare_workdir(config: ml_collections.ConfigDict, workdir: str) -> MetricWriter:
    """Checks the config (validated by train/launch.start) against the experiment the (absolute)
    workdir already holds (see train/workdir.py), records this start -> the metric writer."""
    os.makedirs(workdir, exist_ok=True)
    changes = workdir_lib.check_config(config, workdir)
    if changes:
        log("allow_config_change: training on with changed fields:\n  " + "\n  ".join(changes))
    if jax.process_index() == 0:
        workdir_lib.record_start(config, workdir, changes)
    return MetricWriter(workdir)


def build_mesh(config: ml_collections.ConfigDict) -> Mesh:
    """The (data, model) mesh; both global batch sizes must split over data axis and processes."""
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
    per_shard, micro = config.train.batch_size // mesh.shape["data"], config.train.grad_accum_steps
    if per_shard % micro:
        raise ValueError(
            f"config.train.grad_accum_steps={micro} must divide the per-shard batch {per_shard} "
            f"(config.train.batch_size={config.train.batch_size} over the data axis "
            f"{mesh.shape['data']})"
        )
    return mesh


def prepare_data(config: ml_collections.ConfigDict, workdir: str) -> data_input.Dataset:
    """The training dataset (its data source run first, if one is configured)."""
    dataset = data_input.prepare_dataset(config, workdir)
    log(
        f"Data: {dataset.dataset_dir}: {dataset.num_train} train videos ({config.data.train_split}"
        f"{f', {config.data.few_shot_k}-shot' if config.data.few_shot_k else ''}), "
        f"{len(dataset.class_names)} classes"
    )
    return dataset


def load_frozen_clip(
    config: ml_collections.ConfigDict,
) -> tuple[ml_collections.ConfigDict, Any, str]:
    """Loads the frozen CLIP named by the config -> (model config matching it, CLIP params or None,
    the resolved checkpoint path or '')."""
    model_config = ml_collections.ConfigDict(config.model.to_dict())
    path = config.clip_checkpoint
    if config.clip_source and not path:
        path = providers.call(
            "clip_source",
            config.clip_source,
            config.clip_source_settings,
            image_size=config.data.crop_size,
            log=log,
        )
    if not path:
        log("WARNING: no clip_checkpoint: the frozen CLIP has RANDOM weights (allow_random_clip)")
        return model_config, None, ""
    module, variables = load_clip(path)
    log(f"Frozen CLIP from {path}: {module.config}")
    # The checkpoint decides the architecture; the preset name only supplies defaults.
    model_config.clip_overrides = ml_collections.ConfigDict(module.config.to_dict())
    return model_config, variables["params"], os.path.abspath(path)


def build_model(
    config: ml_collections.ConfigDict, workdir: str, dataset: data_input.Dataset
) -> ModelParts:
    """Frozen CLIP + initialised model; writes run_info.json (what export / predict need)."""
    model_config, clip_params, clip_path = load_frozen_clip(config)
    module, trainable, frozen = init_video_clip(
        model_config, rng=config.seed, clip_params=clip_params
    )
    if clip_params is None and jax.process_index() == 0:
        # Keep the random frozen CLIP with the run, so export / predict load exactly these weights.
        clip_path = os.path.join(workdir, "random_clip.msgpack")
        try:
            save_clip(clip_path, config_lib.clip_config_of(model_config), frozen["clip"])
        except OSError as error:
            raise workdir_lib.WriteFailedError(
                f"writing {clip_path} failed ({error.strerror or error}): free space, then rerun"
            ) from error
    log("Trainable parameters:\n" + params_lib.overview(trainable))
    log(f"Frozen CLIP parameters: {params_lib.count_params(frozen):,}")
    if jax.process_index() == 0:
        # What export / predict need to rebuild the model without the training config's context.
        run_info = {
            "model_config": model_config.to_dict(),
            "trainable_parameters": params_lib.trainable_record(trainable),
            "clip_checkpoint": clip_path,
            "class_names": dataset.class_names,
            "dataset_dir": dataset.dataset_dir,
            "crop_size": config.data.crop_size,
            "seed": config.seed,
            "train_batch": batch_record(config),
        }
        write_json_atomically(os.path.join(workdir, "run_info.json"), run_info)
    return ModelParts(module, model_config, trainable, frozen)


def batch_record(config: ml_collections.ConfigDict) -> dict[str, int]:
    """The global batch, how many micro-batches each step runs it as, and their size."""
    n = config.train.grad_accum_steps
    return {
        "batch_size": config.train.batch_size,
        "grad_accum_steps": n,
        "micro_batch_size": config.train.batch_size // n,
    }


def record_skipped(datasets: list[data_input.Dataset], workdir: str) -> None:
    """Counts and names the bad records this process skipped so far (data.skip_bad_records) in
    run_info.json ("skipped_bad_records": count and {record: times}), and says so in one line."""
    unique = list({id(d): d for d in datasets}.values())
    skipped = collections.Counter(entry for d in unique for entry in d.skipped)
    if not skipped or jax.process_index() != 0:
        return
    total = sum(skipped.values())
    examples = "; ".join(list(skipped)[:3]) + ("; ..." if len(skipped) > 3 else "")
    log(
        f"skipped {total} bad record reads, {len(skipped)} distinct records "
        f"({data_input.SKIP_FIELD}=True; listed in run_info.json): {examples}"
    )
    path = os.path.join(workdir, "run_info.json")
    with open(path) as f:
        run_info = json.load(f)
    run_info["skipped_bad_records"] = {
        "count": total,
        "records": dict(sorted(skipped.items())),
        "process": 0,  # each process skips in its own part of the data; this is process 0's
    }
    write_json_atomically(path, run_info)


def write_json_atomically(path: str, data: Any) -> None:
    """Writes a JSON file whole or not at all (temp file, then rename): a write that fails (a
    full disk, say) leaves the previous file, and raises one line naming it."""
    tmp = f"{path}.tmp"
    try:
        with open(tmp, "w") as f:
            json.dump(data, f, indent=1)
        os.replace(tmp, path)
    except OSError as error:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise workdir_lib.WriteFailedError(
            f"writing {path} failed ({error.strerror or error}); the checkpoints are intact: "
            "free space, then rerun the same command (it resumes from the last checkpoint)"
        ) from error


def model_record(parts: ModelParts) -> dict[str, Any]:
    """What ran, for eval_results.json: the variant, its switches, the fields the paper's tables
    vary, and the trainable parameter count per module (counted on the model that was built)."""
    c = parts.model_config
    fields = ("variant", *model_spec.SWITCHES, "mcb_keys", "num_frames", "motion_step", "n_ctx")
    record = {name: c[name] for name in fields}
    record["ctx_init"] = c.ctx_init
    record["trainable_parameters"] = params_lib.trainable_record(parts.trainable)
    return record


def suffix_groups_record(module: VideoCLIP) -> list[list[int]] | None:
    """[[classes, padded suffix length], ...] of the module's text suffix groups (None: one
    padded suffix for all, or no learned context)."""
    layout = module.suffix_layout
    return None if layout is None else [[len(rows), size] for rows, size in layout]


def train_length(config: ml_collections.ConfigDict, dataset: data_input.Dataset) -> tuple[int, int]:
    """(total train steps, steps per epoch) from train.num_steps or train.num_epochs."""
    steps_per_epoch = max(1, math.ceil(dataset.num_train / config.train.batch_size))
    if config.train.num_steps > 0:
        return config.train.num_steps, steps_per_epoch
    return max(1, round(config.train.num_epochs * steps_per_epoch)), steps_per_epoch


def place_on_mesh(parts: ModelParts, tx: optax.GradientTransformation, mesh: Mesh) -> Placed:
    """A fresh train state (replicated) and the frozen weights (split on `model`) on the mesh."""
    state = steps_lib.TrainState.create(parts.trainable, tx)
    replicated = mesh_lib.replicated(mesh)
    state_shardings = jax.tree_util.tree_map(lambda _: replicated, state)
    frozen_shardings = mesh_lib.param_shardings(parts.frozen, mesh)
    return Placed(
        mesh_lib.put_on_mesh(state, state_shardings),
        mesh_lib.put_on_mesh(parts.frozen, frozen_shardings),
        state_shardings,
        frozen_shardings,
    )


def restore(
    checkpointer: checkpoint_lib.Checkpointer,
    state: steps_lib.TrainState,
    config: ml_collections.ConfigDict,
) -> steps_lib.TrainState:
    """The newest checkpoint that restores, onto `state`'s shardings; `state` when there is none.

    Damaged newer checkpoints are logged and moved aside (train/checkpoint.py)."""
    found = checkpointer.restore_latest(state, log)
    if found is None:
        return state
    step, state, position = found
    start_step = int(state.step)
    if position.get("step") != start_step or position.get("seed") != config.seed:
        raise ValueError(
            f"checkpoint {step}: data position {position} does not match "
            f"step {start_step} / seed {config.seed}"
        )
    log(f"Resumed from step {start_step} ({checkpointer.directory})")
    return state


def clip_identity(parts: ModelParts) -> dict[str, Any]:
    """What the feature caches key the frozen CLIP by: its weights' digest, config and dtype."""
    return {
        "clip_weights": feature_cache_lib.weights_digest(parts.frozen),
        "clip_config": dataclasses.asdict(config_lib.clip_config_of(parts.model_config)),
        "dtype": str(parts.model_config.dtype),
    }


def open_train_cache(
    config: ml_collections.ConfigDict,
    dataset: data_input.Dataset,
    parts: ModelParts,
    placed: Placed,
    mesh: Mesh,
    start_step: int,
    total_steps: int,
) -> train_features.TrainFeatureCache | None:
    """The training feature cache of steps start_step .. total_steps - 1 when
    config.train.feature_cache_dir is set (train/train_features.py), else None."""
    if not config.train.feature_cache_dir:
        return None
    return train_features.open_cache(
        config,
        dataset,
        clip_identity(parts),
        steps_lib.make_encode_step(parts.module, mesh, placed.frozen_shardings),
        mesh_lib.batch_sharding(mesh),
        range(start_step, total_steps),
        log,
    )


def tower_record(ctx: TrainContext, steps_run: int, workdir: str) -> dict[str, Any]:
    """How many training clips this start ran through the image tower and, with the training
    feature cache, its counts (summed over processes); also written into run_info.json."""
    if ctx.train_cache is None:
        record = {"train_tower_clips": steps_run * ctx.config.train.batch_size}
    else:
        totals = train_features.totals(ctx.train_cache)
        record = {"train_tower_clips": totals["tower_clips"], "train_feature_cache": totals}
    if jax.process_index() == 0:
        path = os.path.join(workdir, "run_info.json")
        with open(path) as f:
            run_info = json.load(f)
        write_json_atomically(path, {**run_info, **record})
    return record


def make_eval_context(
    config: ml_collections.ConfigDict, parts: ModelParts, placed: Placed, mesh: Mesh
) -> EvalContext:
    """The eval steps on the mesh, and the feature cache when config.eval.feature_cache_dir is set
    (its key needs the host copy of the frozen CLIP: hashed here, once per run)."""
    cache = None
    if config.eval.feature_cache_dir:
        cache = feature_cache_lib.FeatureCacheSettings(
            directory=os.path.abspath(config.eval.feature_cache_dir),
            **clip_identity(parts),
            encode_step=steps_lib.make_encode_step(parts.module, mesh, placed.frozen_shardings),
            features_step_for=steps_lib.per_class_list(
                lambda module: steps_lib.make_eval_features_step(
                    module, mesh, placed.frozen_shardings
                ),
                parts.module,
            ),
        )
    return EvalContext(
        config,
        steps_lib.per_class_list(
            lambda module: steps_lib.make_eval_step(module, mesh, placed.frozen_shardings),
            parts.module,
        ),
        placed.frozen,
        mesh_lib.batch_sharding(mesh),
        cache,
    )


def make_eval_set(
    name: str, dataset: data_input.Dataset, model_config: ml_collections.ConfigDict, mesh: Mesh
) -> EvalSet:
    """The set with its class prompt tokens, replicated on the mesh."""
    replicated = mesh_lib.replicated(mesh)
    host = class_prompt_tokens(model_config, dataset.class_names)
    tokens, eos = mesh_lib.put_on_mesh(host, (replicated, replicated))
    return EvalSet(name, dataset, tokens, eos, host[1])


def extra_eval_sets(
    config: ml_collections.ConfigDict,
    dataset: data_input.Dataset,
    model_config: ml_collections.ConfigDict,
    mesh: Mesh,
) -> list[EvalSet]:
    """The few-shot validation set (eval.validation_per_class), then config.eval.extra:
    zero-shot / cross-dataset sets, each with its own class names."""
    sets = []
    if dataset.validation_video_ids is not None:
        validation = data_input.validation_dataset(dataset)
        sets.append(make_eval_set("validation", validation, model_config, mesh))
    return sets + [
        make_eval_set(name, data_input.prepare_eval_dataset(config, extra), model_config, mesh)
        for name, extra in config.eval.extra.items()
    ]


def train_loop(
    ctx: TrainContext, eval_ctx: EvalContext, main: EvalSet, state: steps_lib.TrainState
) -> steps_lib.TrainState:
    """Steps from state.step to ctx.total_steps: logs, NaN guard, checkpoints, optional evals,
    preemption (SIGTERM)."""
    config, start_step = ctx.config, int(state.step)
    cached = () if ctx.train_cache is None else ctx.train_cache.cached_clips()
    train_iter = data_input.train_iterator(config, main.dataset, start_step, undecoded=cached)
    report = periodic_actions.ReportProgress(
        num_train_steps=ctx.total_steps,
        writer=ctx.writer.writer,
        every_steps=config.train.log_every_steps,
    )
    log(
        f"Training steps {start_step} -> {ctx.total_steps} ({ctx.steps_per_epoch} steps/epoch, "
        f"global batch {config.train.batch_size}{micro_batches_text(config)})"
    )
    with preemption.SigtermFlag() as sigterm:
        return run_steps(ctx, eval_ctx, main, state, train_iter, report, sigterm)


def run_steps(
    ctx: TrainContext,
    eval_ctx: EvalContext,
    main: EvalSet,
    state: steps_lib.TrainState,
    train_iter: Iterator[dict[str, np.ndarray]],
    report: Callable[[int], Any],
    sigterm: preemption.SigtermFlag,
) -> steps_lib.TrainState:
    """The steps of `train_loop`. After SIGTERM, every process stops at the same step, saves a
    checkpoint there and raises Preempted."""
    config, start_step = ctx.config, int(state.step)
    pending: list[tuple[int, dict]] = []
    window: list[dict] = []
    window_start = time.time()
    for step in range(start_step, ctx.total_steps):
        with jax.profiler.StepTraceAnnotation("train", step_num=step):
            batch = train_batch(ctx, eval_ctx, next(train_iter), step)
            state, metrics = ctx.train_step(
                state, eval_ctx.frozen, batch, main.class_tokens, main.eos
            )
        done = step + 1
        pending.append((done, metrics))
        is_log = done % config.train.log_every_steps == 0 or done == ctx.total_steps
        is_ckpt = done % config.train.checkpoint_every_steps == 0 or done == ctx.total_steps
        stop = False
        if is_log or is_ckpt or len(pending) >= MAX_PENDING_STEPS:
            window += fetch_finite(pending, ctx.checkpointer)
            pending = []
            # Every process reaches this point at the same steps, so they agree on where to stop.
            stop = preemption.any_process(sigterm.is_set())
        if is_log and window:
            log_window(ctx, done, window, time.time() - window_start)
            window, window_start = [], time.time()
        report(done)
        if is_ckpt or stop:
            position = {"step": done, "seed": config.seed, "epoch": done // ctx.steps_per_epoch}
            ctx.checkpointer.save(done, state, position)
        if stop:
            ctx.checkpointer.wait()
            ctx.writer.flush()
            log(
                f"Preempted (SIGTERM): checkpoint saved at step {done} in "
                f"{ctx.checkpointer.directory}; rerun the same command to resume."
            )
            raise Preempted(done)
        every = config.train.eval_every_steps
        if every > 0 and done % every == 0 and done != ctx.total_steps:
            quick = run_evaluation(eval_ctx, state.trainable, main, multiview=False)
            ctx.writer.write(done, {"top1": quick["top1"], "top5": quick["top5"]}, kind="eval")
    ctx.checkpointer.wait()
    ctx.writer.flush()
    return state


def train_batch(
    ctx: TrainContext, eval_ctx: EvalContext, local: dict[str, np.ndarray], step: int
) -> dict[str, jax.Array]:
    """This process's rows of the batch at `step` -> the global batch the train step takes:
    pixels, or with the training feature cache the clips' frame features (B, T, D)."""
    inputs = {"label": local["label"], "mask": local["mask"]}
    if ctx.train_cache is not None:
        inputs["frames"] = train_features.local_frames(
            ctx.train_cache, eval_ctx.frozen, local, step, ctx.config.data.crop_size
        )
    batch = mesh_lib.global_batch(inputs, eval_ctx.batch_sharding)
    if ctx.train_cache is None:
        crop_size = ctx.config.data.crop_size
        batch["video"] = data_input.device_clips(local, eval_ctx.batch_sharding, crop_size)
    return batch


def fetch_finite(
    pending: list[tuple[int, dict]], checkpointer: checkpoint_lib.Checkpointer
) -> list[dict]:
    """The pending steps' metrics on the host; NonFiniteLossError at the first NaN / Inf loss."""

    def stop(step: int, loss: float) -> NonFiniteLossError:
        checkpointer.wait()
        return NonFiniteLossError(
            f"loss is {loss} at step {step}: training stopped. The last good checkpoint (step "
            f"{checkpointer.latest_step()}) in {checkpointer.directory} is intact."
        )

    return metrics_lib.finite_metrics(pending, stop)


def log_window(ctx: TrainContext, done: int, window: list[dict], elapsed: float) -> None:
    """Means of the window's train metrics (+ steps/s) to metrics.jsonl and the console."""
    scalars = metrics_lib.window_means(window)
    scalars["steps_per_second"] = len(window) / max(elapsed, 1e-9)
    ctx.writer.write(done, scalars)
    log(
        f"step {done}/{ctx.total_steps}: loss {scalars['loss']:.4f}, "
        f"acc {scalars['accuracy']:.3f}, lr {scalars['learning_rate']:.2e}, "
        f"{scalars['steps_per_second']:.2f} steps/s{micro_batches_text(ctx.config)}"
    )


def micro_batches_text(config: ml_collections.ConfigDict) -> str:
    """', N micro-batches of M' for the log lines when gradients are accumulated."""
    record = batch_record(config)
    if record["grad_accum_steps"] == 1:
        return ""
    return f", {record['grad_accum_steps']} micro-batches of {record['micro_batch_size']}"


def evaluate_all(
    ctx: EvalContext,
    trainable: Any,
    eval_sets: list[EvalSet],
    writer: MetricWriter,
    workdir: str,
    step: int,
) -> dict[str, Any]:
    """Every set x enabled view -> {'<set>/<view>': metrics}; metrics at `step`, logs, PNGs."""
    config = ctx.config
    results: dict[str, Any] = {}
    views = [("single_view", config.eval.single_view), ("multiview", config.eval.multiview)]
    for eval_set in eval_sets:
        for view in (v for v, enabled in views if enabled):
            start = time.time()
            metrics = run_evaluation(ctx, trainable, eval_set, multiview=view == "multiview")
            key = f"{eval_set.name}/{view}"
            results[key] = metrics
            scalars = {"top1": metrics["top1"], "top5": metrics["top5"]}
            writer.write(step, scalars, kind=f"eval/{key}")
            log(_eval_line(key, metrics, time.time() - start))
            if config.eval.confusion_png and jax.process_index() == 0:
                evaluate_lib.save_confusion_png(
                    np.asarray(metrics["confusion_matrix"]),
                    eval_set.dataset.class_names,
                    os.path.join(workdir, f"confusion_{eval_set.name}_{view}.png"),
                    f"{eval_set.name} {view}",
                )
    return results


def _eval_line(key: str, metrics: dict[str, Any], seconds: float) -> str:
    """The log line of one evaluation; multi-view names both aggregations (train/evaluate.py)."""
    summed = metrics.get("summed_scores")
    views = (
        f" (mean over {metrics['num_views']} views; summed scores: top1 {summed['top1']:.4f}, "
        f"top5 {summed['top5']:.4f})"
        if summed
        else ""
    )
    return (
        f"eval {key}: top1 {metrics['top1']:.4f}, top5 {metrics['top5']:.4f}{views}, "
        f"mean class acc {metrics['mean_class_accuracy']:.4f} "
        f"({metrics['num_videos']} videos, {seconds:.1f} s)"
    )


def write_results(results: dict[str, Any], eval_sets: list[EvalSet], workdir: str) -> None:
    """eval_results.json, and the results table on the console (process 0)."""
    if jax.process_index() != 0:
        return
    write_json_atomically(os.path.join(workdir, "eval_results.json"), results)
    names = {s.name: s.dataset.class_names for s in eval_sets}
    table = evaluate_lib.results_table(results, names)
    log(f"\nResults after {results['step']} steps ({workdir}/eval_results.json):\n{table}")


def run_evaluation(
    ctx: EvalContext, trainable: Any, eval_set: EvalSet, multiview: bool
) -> dict[str, Any]:
    """Every video of the set's eval split exactly once (padded batches masked out) -> metrics."""
    dataset = eval_set.dataset
    scores_np, labels_np = eval_scores(ctx, trainable, eval_set, multiview)
    if multiview:  # (N, V, K): both aggregations, the paper's as top1/top5 (train/evaluate.py)
        metrics = evaluate_lib.multiview_metrics(scores_np, labels_np, dataset.class_names)
        scores_np = scores_np.sum(axis=1)  # order pairs: one prediction per video
    else:
        metrics = evaluate_lib.classification_metrics(scores_np, labels_np, dataset.class_names)
    if dataset.class_pairs:
        metrics["pair_accuracy"] = evaluate_lib.pair_accuracy(
            scores_np, labels_np, dataset.class_pairs
        )
    return metrics


def eval_scores(
    ctx: EvalContext, trainable: Any, eval_set: EvalSet, multiview: bool
) -> tuple[np.ndarray, np.ndarray]:
    """(scores, labels (N,)) of the N videos of the set's eval split, in process order; scores
    (N, K) softmax probabilities, or (N, V, K) per view when `multiview`.

    Without a feature cache every batch runs the whole eval step; with one, the frame features
    come from the cache (computed and stored on a miss) and only the trainable part runs.
    """
    tokens, eos = eval_set.class_tokens, eval_set.eos
    if ctx.feature_cache is None:
        step, inputs = ctx.eval_step_for(eval_set.host_eos), "video"
        batches = data_input.eval_iterator(ctx.config, eval_set.dataset, multiview)
    else:
        step, inputs = ctx.feature_cache.features_step_for(eval_set.host_eos), "features"
        local_batch = ctx.config.eval.batch_size // jax.process_count()
        views = feature_cache_lib.cached_views(
            ctx.feature_cache, ctx.config, ctx.frozen, ctx.batch_sharding, eval_set, multiview, log
        )
        batches = views.batches(local_batch)
    scores, labels = [], []
    for local in batches:
        out = step(
            trainable,
            ctx.frozen,
            mesh_lib.global_batch(local[inputs], ctx.batch_sharding),
            tokens,
            eos,
        )
        # Labels and masks are gathered from every process; scores come back replicated.
        gathered = data_input.allgather({"label": local["label"], "mask": local["mask"]})
        keep = gathered["mask"].astype(bool)
        scores.append(np.asarray(out)[keep])
        labels.append(gathered["label"][keep])
    num_classes = len(eval_set.dataset.class_names)
    empty = np.zeros((0, 1, num_classes) if multiview else (0, num_classes))
    scores_np = np.concatenate(scores) if scores else empty
    labels_np = np.concatenate(labels) if labels else np.zeros((0,), np.int64)
    return scores_np, labels_np
