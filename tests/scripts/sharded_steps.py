"""Runs a few train steps of a tiny model for each given optimizer and mesh; saves losses and the
final train state (npz, one file per <optimizer>_<data>x<model>[_accum<N>]).

  XLA_FLAGS=--xla_force_host_platform_device_count=8 python tests/scripts/sharded_steps.py \
      --runs sgd@1x1,sgd@4x2,adamw@4x2/2 --out runs

A mesh `DxM/N` runs each step's batch as N micro-batches (config.train.grad_accum_steps).
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))

import jax  # noqa: E402
import ml_collections  # noqa: E402
import numpy as np  # noqa: E402

from motion_clip_jax.core.class_prompts import class_prompt_tokens
from motion_clip_jax.models.video_clip import init_video_clip  # noqa: E402
from motion_clip_jax.train import mesh as mesh_lib  # noqa: E402
from motion_clip_jax.train import steps as steps_lib  # noqa: E402
from motion_clip_jax.train.optim import make_optimizer  # noqa: E402
from tests.configs.tiny_synthetic import tiny_model_config  # noqa: E402


def model_config():
    """The tiny full model with the earlier projected MCB (pre-LN, no gate): its q/k/v/o weights are leaves to shard and to
    compare (the default, projection-free MCB has none), and a few steps lower its loss (with
    pooled keys the projection-free form barely trains this tiny model: docs/results.md)."""
    return tiny_model_config(mcb_projections=True, mcb_norm="layernorm", mcb_scale_init=0.0)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", default="sgd@1x1,sgd@4x2", help="OPTIMIZER@DxM[/N], ...")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch", type=int, default=8, help="global batch")
    parser.add_argument("--out", required=True, help="directory for <data>x<model>.npz")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    parts = init_video_clip(model_config(), rng=0)  # once: every run starts from these
    for spec in args.runs.split(","):
        name, _, mesh = spec.partition("@")
        shape, _, accum = mesh.partition("/")
        data, model = (int(x) for x in shape.split("x"))
        tag = f"{name}_{shape}" + (f"_accum{accum}" if accum else "")
        out = os.path.join(args.out, f"{tag}.npz")
        run(data, model, name, args.steps, out, args.batch, int(accum or 1), parts)


def run(
    data: int,
    model_size: int,
    optimizer: str,
    num_steps: int,
    out: str,
    batch_size: int = 8,
    grad_accum_steps: int = 1,
    parts: tuple | None = None,
):
    mesh = mesh_lib.make_mesh(data, model_size, jax.devices()[: data * model_size])
    config = model_config()
    model, trainable, frozen = parts or init_video_clip(config, rng=0)
    trainable = jax.tree_util.tree_map(np.array, trainable)  # a host copy: the step donates it
    optim = ml_collections.ConfigDict(
        dict(
            name=optimizer,
            learning_rate=0.5 if optimizer == "sgd" else 1e-2,
            momentum=0.9,
            nesterov=False,
            b1=0.9,
            b2=0.999,
            weight_decay=1e-4,
            warmup_steps=1,
            final_lr_fraction=0.0,
            grad_clip_norm=1.0,
        )
    )
    tx, schedule = make_optimizer(optim, num_steps)
    state = steps_lib.TrainState.create(trainable, tx)
    replicated = mesh_lib.replicated(mesh)
    state_shardings = jax.tree_util.tree_map(lambda _: replicated, state)
    frozen_shardings = mesh_lib.param_shardings(frozen, mesh, min_size=1024)
    state = jax.device_put(state, state_shardings)
    frozen = jax.device_put(frozen, frozen_shardings)
    ids, eos = jax.device_put(
        class_prompt_tokens(
            config, ["moving left", "moving right", "growing", "rotating clockwise"]
        ),
        replicated,
    )
    step_fn = steps_lib.make_train_step(
        model, tx, schedule, mesh, state_shardings, frozen_shardings, grad_accum_steps
    )
    rng = np.random.default_rng(0)
    losses = []
    for _ in range(num_steps):
        batch = {
            "video": rng.standard_normal((batch_size, 4, 32, 32, 3), dtype=np.float32),
            "label": rng.integers(0, 4, batch_size).astype(np.int32),
        }
        batch = {k: jax.device_put(v, mesh_lib.batch_sharding(mesh)) for k, v in batch.items()}
        state, metrics = step_fn(state, frozen, batch, ids, eos)
        losses.append(float(metrics["loss"]))  # fetch every step (fake-device collectives)
    flat = {
        jax.tree_util.keystr(p): np.asarray(x)
        for p, x in jax.tree_util.tree_leaves_with_path(state.trainable)
    }
    opt_leaves = jax.tree_util.tree_leaves_with_path(state.opt_state)
    flat.update({f"opt{jax.tree_util.keystr(p)}": np.asarray(x) for p, x in opt_leaves})
    sharded = any(
        len(x.sharding.device_set) > 1 and not x.sharding.is_fully_replicated
        for x in jax.tree_util.tree_leaves(frozen)
    )
    np.savez(out, losses=np.asarray(losses), sharded=sharded, **flat)
    print(
        f"{optimizer} mesh {data}x{model_size}, {grad_accum_steps} micro-batch(es): losses {losses}, frozen sharded over model axis: "
        f"{sharded}"
    )


if __name__ == "__main__":
    main()
