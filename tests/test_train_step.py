"""The train step's loss is a mean over valid clips: a masked (refilled) slot weighs nothing,
with and without micro-batches."""

from __future__ import annotations

import jax
import numpy as np
import optax

from motion_clip_jax.core.class_prompts import class_prompt_tokens
from motion_clip_jax.models.video_clip import init_video_clip
from motion_clip_jax.train import mesh as mesh_lib
from motion_clip_jax.train import steps as steps_lib
from tests.configs.tiny_synthetic import tiny_model_config

CLASSES = ["moving left", "moving right", "growing", "rotating clockwise"]


def test_masked_slots_weigh_nothing():
    config = tiny_model_config()
    config.label_smoothing = 0.1
    model, trainable, frozen = init_video_clip(config, rng=0)
    ids, eos = class_prompt_tokens(config, CLASSES)
    mesh = mesh_lib.make_mesh(1, 1, jax.devices()[:1])
    tx = optax.sgd(0.1)
    replicated = mesh_lib.replicated(mesh)
    state = steps_lib.TrainState.create(trainable, tx)
    shardings = jax.tree_util.tree_map(lambda _: replicated, state)
    frozen_shardings = jax.tree_util.tree_map(lambda _: replicated, frozen)
    rng = np.random.default_rng(0)
    video = rng.integers(0, 256, (8, 4, 32, 32, 3)).astype(np.uint8)
    label = rng.integers(0, len(CLASSES), 8).astype(np.int32)
    # Slots 3 and 7 were refilled with copies of clips 0 and 1 (as data_input does).
    video[3], video[7], label[3], label[7] = video[0], video[1], label[0], label[1]
    mask = np.ones(8, bool)
    mask[[3, 7]] = False
    valid = np.flatnonzero(mask)

    def run(batch, accum):
        step = steps_lib.make_train_step(
            model, tx, optax.constant_schedule(0.1), mesh, shardings, frozen_shardings, accum
        )
        start = jax.tree_util.tree_map(np.array, state)  # a host copy: the step donates it
        new, metrics = step(start, frozen, batch, ids, eos)
        return jax.tree_util.tree_leaves(new.trainable), metrics

    reference, ref_metrics = run({"video": video[valid], "label": label[valid]}, 1)
    for accum in (1, 2):
        got, metrics = run({"video": video, "label": label, "mask": mask}, accum)
        np.testing.assert_allclose(metrics["loss"], ref_metrics["loss"], rtol=1e-5)
        np.testing.assert_allclose(metrics["accuracy"], ref_metrics["accuracy"], rtol=1e-6)
        for a, b in zip(got, reference):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
