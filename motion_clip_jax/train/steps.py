"""Train state and the jitted (sharded) train / eval steps.

The frozen CLIP is a separate argument: it is never differentiated and has no optimizer state. The
image tower runs outside the differentiated function, so nothing of it is kept for a backward pass.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from motion_clip_jax.core import video_spec
from motion_clip_jax.models.losses import per_clip_cross_entropy
from motion_clip_jax.models.params import merge_params
from motion_clip_jax.models.video_clip import VideoCLIP, for_classes
from motion_clip_jax.train import mesh as mesh_lib

Array = jax.Array


@flax.struct.dataclass
class TrainState:
    """Everything a resume needs besides the frozen weights and the data position.

    No PRNG key: the train step draws no randomness (data augmentation is seeded in the input
    pipeline by (seed, video, epoch), so a resume needs only `step`).
    """

    step: Array  # () int32
    trainable: Any
    opt_state: Any

    @classmethod
    def create(cls, trainable: Any, tx: optax.GradientTransformation) -> TrainState:
        return cls(step=jnp.zeros((), jnp.int32), trainable=trainable, opt_state=tx.init(trainable))


def _frames(model: VideoCLIP, frozen: Any, video: Array) -> Array:
    """(B, T, H, W, 3) uint8 RGB or normalised float -> (B, T, D) through the frozen image tower."""
    if video.dtype == jnp.uint8:
        video = video_spec.normalize(video, jnp)  # uint8 from the host: a quarter of the bytes
    return model.apply({"params": frozen}, video, method=VideoCLIP.encode_frames)


def _clip_sums(
    model: VideoCLIP,
    trainable: Any,
    frozen: Any,
    batch: dict,
    class_tokens: Array,
    eos: Array,
    count: Array,
) -> tuple[Array, Array]:
    """(sum of the batch's per-clip losses / count, number of correctly classified clips).

    Every clip weighs `batch['weight']` (1.0, or 0.0 for a slot that holds no clip of its own), so
    the sums of micro-batches add up to those of the whole batch exactly.
    """
    logits = model.apply(
        {"params": merge_params(trainable, frozen)},
        batch["frames"],
        class_tokens,
        eos,
        method=VideoCLIP.logits_from_features,
    )
    per_clip = per_clip_cross_entropy(logits, batch["label"], model.config.label_smoothing)
    correct = jnp.sum((jnp.argmax(logits, -1) == batch["label"]) * batch["weight"])
    return jnp.sum(per_clip * batch["weight"]) / count, correct


def split_micro_batches(x: Array, num_micro: int, mesh: Mesh) -> Array:
    """(B, ...) split over `data` -> (N, B / N, ...): micro-batch j takes rows j*m .. (j+1)*m - 1
    of every data shard (m = B / (N * data)), so no clip leaves its device."""
    data = mesh.shape[mesh_lib.DATA]
    per_shard = x.shape[0] // data
    if x.shape[0] % data or per_shard % num_micro:
        raise ValueError(
            f"config.train.grad_accum_steps={num_micro} must divide the per-shard batch "
            f"{x.shape[0] / data:g} (global batch {x.shape[0]} over the data axis {data})"
        )
    m = per_shard // num_micro
    x = x.reshape(data, num_micro, m, *x.shape[1:]).swapaxes(0, 1)
    x = x.reshape(num_micro, data * m, *x.shape[3:])
    spec = P(None, mesh_lib.DATA, *([None] * (x.ndim - 2)))
    return jax.lax.with_sharding_constraint(x, NamedSharding(mesh, spec))


def make_train_step(
    model: VideoCLIP,
    tx: optax.GradientTransformation,
    schedule: optax.Schedule,
    mesh: Mesh,
    state_shardings: Any,
    frozen_shardings: Any,
    grad_accum_steps: int = 1,
) -> Callable:
    """jit(train_step)(state, frozen, batch, class_tokens, eos) -> (state, metrics).

    `batch`: {'video': (B, T, H, W, 3) uint8 or float32, 'label': (B,) int32, optional 'mask':
    (B,) bool (False: a refilled slot, left out of the loss and the metrics)}, B split over
    `data`. In place of 'video', 'frames' (B, T, D): the frozen image tower's features of the
    clips (from the training feature cache, train/train_features.py); the tower then never runs. The loss is the sum of per-clip losses over the valid count. With grad_accum_steps
    N > 1 the batch runs as N micro-batches in a `lax.scan` (image tower, forward and backward of
    B / N clips at a time); their gradients add up to the whole batch's and one update follows.
    """

    def micro_sums(trainable, frozen, micro, class_tokens, eos, count):
        if "frames" not in micro:  # pixels: the frozen image tower runs here
            frames = _frames(model, frozen, micro["video"])
            micro = {"frames": frames, "label": micro["label"], "weight": micro["weight"]}
        grad_fn = jax.value_and_grad(_clip_sums, argnums=1, has_aux=True)
        return grad_fn(model, trainable, frozen, micro, class_tokens, eos, count)

    def train_step(state: TrainState, frozen: Any, batch: dict, class_tokens: Array, eos: Array):
        weight = batch.get("mask", jnp.ones(batch["label"].shape, bool)).astype(jnp.float32)
        inputs = "frames" if "frames" in batch else "video"
        batch = {inputs: batch[inputs], "label": batch["label"], "weight": weight}
        count = jnp.maximum(weight.sum(), 1.0)
        args = (state.trainable, frozen)
        if grad_accum_steps == 1:
            (loss, correct), grads = micro_sums(*args, batch, class_tokens, eos, count)
        else:
            micro = {k: split_micro_batches(v, grad_accum_steps, mesh) for k, v in batch.items()}

            def body(carry, one):
                (loss, correct), grads = micro_sums(*args, one, class_tokens, eos, count)
                (loss_sum, correct_sum), grad_sum = carry
                total = (loss_sum + loss, correct_sum + correct)
                return (total, jax.tree_util.tree_map(jnp.add, grad_sum, grads)), None

            zeros = jax.tree_util.tree_map(jnp.zeros_like, state.trainable)
            init = ((jnp.zeros(()), jnp.zeros(())), zeros)
            ((loss, correct), grads), _ = jax.lax.scan(body, init, micro)
        updates, opt_state = tx.update(grads, state.opt_state, state.trainable)
        trainable = optax.apply_updates(state.trainable, updates)
        metrics = {
            "loss": loss,
            "accuracy": correct / count,
            "grad_norm": optax.tree.norm(grads),
            "learning_rate": schedule(state.step),
        }
        new_state = state.replace(step=state.step + 1, trainable=trainable, opt_state=opt_state)
        return new_state, metrics

    replicated = mesh_lib.replicated(mesh)
    batch_sharding = mesh_lib.batch_sharding(mesh)  # every leaf of the batch dict
    return jax.jit(
        train_step,
        in_shardings=(state_shardings, frozen_shardings, batch_sharding, replicated, replicated),
        out_shardings=(state_shardings, replicated),
        donate_argnums=(0,),
    )


def per_class_list(make_step: Callable[[VideoCLIP], Callable], model: VideoCLIP) -> Callable:
    """host eos (K,) of a class list -> make_step(`for_classes(model, eos)`): that list's step,
    built once per suffix layout (lists of the same layout share one)."""
    built: dict[Any, Callable] = {}

    def step_for(eos: np.ndarray) -> Callable:
        module = for_classes(model, eos)
        if module.suffix_layout not in built:
            built[module.suffix_layout] = make_step(module)
        return built[module.suffix_layout]

    return step_for


def _view_features(model: VideoCLIP, frozen: Any, video: Array) -> Array:
    """(B, T, H, W, 3) or (B, V, T, H, W, 3) views -> (B, T, D) or (B, V, T, D) frame features."""
    lead = video.shape[:-4]
    frames = _frames(model, frozen, video.reshape(-1, *video.shape[-4:]))
    return frames.reshape(*lead, *frames.shape[1:])


def _view_scores(
    model: VideoCLIP, params: Any, frames: Array, class_tokens: Array, eos: Array
) -> Array:
    """(B, T, D) frame features -> (B, K) softmax probabilities; (B, V, T, D) (multi-view) ->
    (B, V, K), each view's own: the host aggregates them both ways (train/evaluate.py)."""
    b = frames.shape[0]
    logits = model.apply(
        {"params": params},
        frames.reshape(-1, *frames.shape[-2:]),
        class_tokens,
        eos,
        method=VideoCLIP.logits_from_features,
    )
    probs = jax.nn.softmax(logits.astype(jnp.float32), axis=-1)
    return probs.reshape(b, -1, probs.shape[-1]) if frames.ndim == 4 else probs


def _jit_scores(step: Callable, mesh: Mesh, frozen_shardings: Any) -> Callable:
    """jit of a (trainable, frozen, batch, class_tokens, eos) -> scores step: the batch split over
    `data`, the frozen CLIP on its shardings, the rest and the scores replicated."""
    replicated = mesh_lib.replicated(mesh)
    return jax.jit(
        step,
        in_shardings=(
            replicated,
            frozen_shardings,
            mesh_lib.batch_sharding(mesh),
            replicated,
            replicated,
        ),
        out_shardings=replicated,
    )


def make_eval_step(model: VideoCLIP, mesh: Mesh, frozen_shardings: Any) -> Callable:
    """jit(eval_step)(trainable, frozen, video, class_tokens, eos) -> class scores.

    `video` is (B, T, H, W, 3) (single view: (B, K) softmax probabilities) or (B, V, T, H, W, 3)
    (multi-view: (B, V, K), each view's softmax probabilities).
    """

    def eval_step(trainable: Any, frozen: Any, video: Array, class_tokens: Array, eos: Array):
        frames = _view_features(model, frozen, video)
        return _view_scores(model, {**frozen, **trainable}, frames, class_tokens, eos)

    return _jit_scores(eval_step, mesh, frozen_shardings)


def make_encode_step(model: VideoCLIP, mesh: Mesh, frozen_shardings: Any) -> Callable:
    """jit(encode_step)(frozen, video) -> frame features (the eval feature cache's first pass).

    `video` (B, T, H, W, 3) or (B, V, T, H, W, 3) -> (B, T, D) or (B, V, T, D), B split over
    `data` in and out (each process fetches its own rows).
    """
    batch = mesh_lib.batch_sharding(mesh)
    return jax.jit(
        lambda frozen, video: _view_features(model, frozen, video),
        in_shardings=(frozen_shardings, batch),
        out_shardings=batch,
    )


def make_eval_features_step(model: VideoCLIP, mesh: Mesh, frozen_shardings: Any) -> Callable:
    """jit(step)(trainable, frozen, frames, class_tokens, eos) -> (B, K) or (B, V, K) class scores
    from frame features (B, T, D) or (B, V, T, D): the eval step without the image tower."""

    def features_step(trainable, frozen, frames, class_tokens, eos):
        return _view_scores(model, {**frozen, **trainable}, frames, class_tokens, eos)

    return _jit_scores(features_step, mesh, frozen_shardings)
