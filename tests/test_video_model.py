"""The full video model and its ablation variants on a tiny CLIP."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from motion_clip_jax.core import model_spec
from motion_clip_jax.core.class_prompts import class_prompt_tokens
from motion_clip_jax.models import video_clip as video_lib
from motion_clip_jax.models.losses import cosine_logits, softmax_cross_entropy
from motion_clip_jax.models.params import merge_params

from . import conftest
from .conftest import tiny_video_config

# One-layer towers keep compile times low; a vision width (96) that no other part of the model
# uses lets the backward-pass check recognise image-tower operations by shape.
VISION_WIDTH = 96
TINY_CLIP = dict(vision_layers=1, transformer_layers=1, vision_width=VISION_WIDTH)
CLASSES = ["run", "brush hair", "apply eye makeup", "jump"]
VideoCLIP = video_lib.VideoCLIP

EXPECTED_MODULES = {
    "clip": {},
    "baseline": {"mmb": {"spatial", "temporal_embedding"}},
    "baseline_mcb": {"mmb": {"spatial", "temporal_embedding"}, "mcb": {"sma", "saa"}},
    "mmb": {"mmb": {"spatial", "temporal_embedding", "motion", "pair_embedding"}},
    "mmb_map": {
        "mmb": {"spatial", "temporal_embedding", "motion", "pair_embedding"},
        "prompt": {"ctx", "adapter_down", "adapter_up"},
    },
    "full": {
        "mmb": {"spatial", "temporal_embedding", "motion", "pair_embedding"},
        "prompt": {"ctx", "adapter_down", "adapter_up"},
        "mcb": {"sma", "saa"},
    },
}


def tiny_config(variant="full", **overrides):
    # The earlier projected MCB form (pre-LN, no gate): its parameter tree is what these tests
    # inspect (the default form has only a gate; tests/test_mcb.py checks every form).
    earlier = {"mcb_projections": True, "mcb_norm": "layernorm", "mcb_scale_init": 0.0}
    return tiny_video_config(TINY_CLIP, variant, **{**earlier, **overrides})


tiny_clip_params = functools.partial(conftest.tiny_clip_params, **TINY_CLIP)


@functools.cache
def tiny_model(variant="full", **overrides):
    """(config, model, trainable, frozen, run) with run(params, frames, ids, eos) jitted."""
    config = tiny_config(variant, **overrides)
    model, trainable, frozen = video_lib.init_video_clip(config, 1, tiny_clip_params())
    run = jax.jit(functools.partial(model.apply, method=VideoCLIP.intermediates))
    return config, model, trainable, frozen, lambda p, *a: run({"params": p}, *a)


def frame_features(batch=2, seed=0):
    return jax.random.normal(jax.random.PRNGKey(seed), (batch, 8, 64))


def class_tokens(config):
    return class_prompt_tokens(config, CLASSES)


@pytest.mark.parametrize("variant", sorted(model_spec.VARIANTS))
def test_variant_builds_runs_and_holds_its_parameters(variant):
    config, model, trainable, frozen, run = tiny_model(variant)
    got = {k: set(v) for k, v in trainable.items()}
    assert got == {k: set(v) for k, v in EXPECTED_MODULES[variant].items()}
    out = run(merge_params(trainable, frozen), frame_features(), *class_tokens(config))
    assert out["logits"].shape == (2, len(CLASSES))
    assert np.isfinite(np.asarray(out["logits"])).all()
    assert out["V"].shape == (2, 64)
    assert (out["S"] is None) == (not config.spatial_stream)
    assert (out["M"] is None) == (not config.motion_stream)
    if config.motion_stream:
        assert out["M"].shape == (2, 22, 64)


def test_init_gives_separate_frozen_clip_and_trainable_trees():
    config, model, trainable, frozen, run = tiny_model("full")
    assert set(frozen) == {"clip"} and "clip" not in trainable
    assert frozen["clip"] is tiny_clip_params()  # the given CLIP, untouched
    assert set(trainable) == set(EXPECTED_MODULES["full"])


def test_call_on_video_equals_logits_from_encoded_frames():
    config, model, trainable, frozen, run = tiny_model("full")
    params = {"params": merge_params(trainable, frozen)}
    video = jax.random.normal(jax.random.PRNGKey(5), (2, 8, 32, 32, 3))
    ids, eos = class_tokens(config)

    @jax.jit
    def call_and_encode(params, video):
        frames = model.apply(params, video, method=VideoCLIP.encode_frames)
        return model.apply(params, video, ids, eos), frames

    logits, frames = call_and_encode(params, video)
    assert frames.shape == (2, 8, 64)
    np.testing.assert_allclose(
        logits, run(params["params"], frames, ids, eos)["logits"], rtol=1e-5, atol=1e-5
    )
    with pytest.raises(ValueError, match="num_frames=8"):
        run(params["params"], frames[:, :6], ids, eos)


def test_reversing_frames_changes_the_full_model_but_not_plain_clip():
    frames = frame_features()
    reversed_frames = frames[:, ::-1]
    for variant, changes in [("full", True), ("clip", False)]:
        config, model, trainable, frozen, run = tiny_model(variant)
        params = merge_params(trainable, frozen)
        ids, eos = class_tokens(config)
        fwd, bwd = run(params, frames, ids, eos), run(params, reversed_frames, ids, eos)
        dv = np.abs(np.asarray(fwd["V"] - bwd["V"])).max()
        dl = np.abs(np.asarray(fwd["logits"] - bwd["logits"])).max()
        if changes:
            assert dv > 1e-3 and dl > 1e-3, (dv, dl)
        else:
            assert dv < 1e-5 and dl < 1e-4, (dv, dl)


def test_permuting_classes_permutes_logits():
    config, model, trainable, frozen, run = tiny_model("full")
    params = merge_params(trainable, frozen)
    ids, eos = class_tokens(config)
    perm = np.array([2, 0, 3, 1])
    logits = np.asarray(run(params, frame_features(), ids, eos)["logits"])
    permuted = np.asarray(run(params, frame_features(), ids[perm], eos[perm])["logits"])
    np.testing.assert_allclose(permuted, logits[:, perm], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mcb_keys", ["pooled", "tokens"])
def test_every_trainable_leaf_gets_a_gradient(mcb_keys):
    """Every leaf learns, except SMA's query side with pooled keys: one key makes the softmax 1
    whatever the query and key are (docs/model.md), so the query/key projections and the query
    LayerNorm get an exactly zero gradient."""
    config, model, trainable, frozen, _ = tiny_model("full", mcb_keys=mcb_keys)
    ids, eos = class_tokens(config)
    grad_fn = jax.jit(
        jax.value_and_grad(video_lib.loss_from_features, argnums=1, has_aux=True),
        static_argnums=0,
    )
    (loss, logits), grads = grad_fn(
        model, trainable, frozen, frame_features(), ids, eos, jnp.array([1, 3])
    )
    assert np.isfinite(float(loss)) and logits.shape == (2, len(CLASSES))
    assert jax.tree_util.tree_structure(grads) == jax.tree_util.tree_structure(trainable)
    for path, g in jax.tree_util.tree_leaves_with_path(grads):
        name = jax.tree_util.keystr(path)
        query_side = any(f"'{part}'" in name for part in ("query", "key", "ln_q"))
        dead = mcb_keys == "pooled" and "'sma'" in name and query_side
        if dead:
            assert np.abs(np.asarray(g)).max() == 0, name
        else:
            assert np.abs(np.asarray(g)).max() > 0, name


def test_remat_text_wraps_the_text_blocks_in_checkpoints():
    _, _, trainable, frozen, _ = tiny_model("full")

    def checkpoints(**overrides):  # traced only: the same params fit both models
        config = tiny_config("full", **overrides)
        model = video_lib.build_model(config)
        ids, eos = class_tokens(config)
        loss = lambda tr: video_lib.loss_from_features(
            model, tr, frozen, frame_features(), ids, eos, jnp.array([1, 3])
        )[0]
        return count_ops(
            jax.make_jaxpr(jax.grad(loss))(trainable).jaxpr,
            lambda eqn: "checkpoint" in eqn.primitive.name or "remat" in eqn.primitive.name,
        )

    assert checkpoints() == 0
    # One text block in the tiny tower; the prompt-prefix shortcut calls it on the prefix and
    # on the suffixes, each call checkpointed.
    assert checkpoints(remat_text=True, share_prompt_prefix=False) == 1
    assert checkpoints(remat_text=True) == 2


def _sub_jaxprs(value):
    if hasattr(value, "eqns"):
        yield value
    elif hasattr(value, "jaxpr") and hasattr(value.jaxpr, "eqns"):
        yield value.jaxpr
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _sub_jaxprs(v)


def count_ops(jaxpr, predicate) -> int:
    """Equations, at any nesting depth, for which predicate(eqn) holds."""
    count = 0
    for eqn in jaxpr.eqns:
        count += bool(predicate(eqn))
        for value in eqn.params.values():
            for sub in _sub_jaxprs(value):
                count += count_ops(sub, predicate)
    return count


def count_image_tower_ops(jaxpr) -> int:
    """Equations with an output of the vision width or its MLP width."""
    vision_dims = {VISION_WIDTH, 4 * VISION_WIDTH}
    return count_ops(
        jaxpr, lambda eqn: any(vision_dims & set(getattr(v.aval, "shape", ())) for v in eqn.outvars)
    )


@pytest.mark.parametrize("chunk", [0, 3])  # one call; chunks of 3 frames (a loop, padded)
def test_image_tower_is_not_part_of_the_backward_pass(chunk):
    config, model, trainable, frozen, _ = tiny_model("full", image_chunk_frames=chunk)
    ids, eos = class_tokens(config)
    video = jnp.zeros((2, 8, 32, 32, 3))
    labels = jnp.array([0, 1])

    def loss_on_video(trainable, video, encode):
        params = {"params": merge_params(trainable, frozen)}
        frames = model.apply(params, video, method=encode)
        logits = model.apply(params, frames, ids, eos, method=VideoCLIP.logits_from_features)
        return softmax_cross_entropy(logits, labels, 0.1)

    def encode_without_stop_gradient(module, video):  # what a careless model would do
        b, t = video.shape[:2]
        return module.clip.encode_image(video.reshape(b * t, *video.shape[2:])).reshape(b, t, -1)

    # A trainable input scale in front of the towers puts the image tower on the gradient path
    # unless the frame features are cut off from it.
    def loss_scaled(trainable, encode):
        scale = trainable["mmb"]["temporal_embedding"][0, 0]
        return loss_on_video(trainable, video * scale, encode)

    def ops(fn):
        return count_image_tower_ops(jax.make_jaxpr(fn)(trainable).jaxpr)

    forward = ops(lambda tr: loss_scaled(tr, VideoCLIP.encode_frames))
    backward = ops(jax.grad(lambda tr: loss_scaled(tr, VideoCLIP.encode_frames)))
    careless_forward = ops(lambda tr: loss_scaled(tr, encode_without_stop_gradient))
    careless_backward = ops(jax.grad(lambda tr: loss_scaled(tr, encode_without_stop_gradient)))
    assert forward > 10  # the detector sees the image tower
    assert backward == forward  # ... and no image-tower op is added by differentiation
    if chunk == 0:  # the same tower ops (the chunked loop adds padding and reshapes)
        assert careless_forward == forward
    assert careless_backward > careless_forward + 10  # the check can fail
    # The trainer's path (features computed outside the differentiated function) has none.
    frames = jnp.zeros((2, 8, 64))
    grad_of_features = jax.grad(
        lambda tr: video_lib.loss_from_features(model, tr, frozen, frames, ids, eos, labels)[0]
    )
    assert ops(grad_of_features) == 0


def test_cosine_logits_and_smoothed_cross_entropy_against_numpy():
    rng = np.random.default_rng(0)
    video, text, text_b = (
        rng.normal(size=(3, 6)),
        rng.normal(size=(4, 6)),
        rng.normal(size=(3, 4, 6)),
    )
    unit = lambda x: x / np.linalg.norm(x, axis=-1, keepdims=True)
    np.testing.assert_allclose(
        cosine_logits(video, text, 0.07), unit(video) @ unit(text).T / 0.07, rtol=1e-5
    )
    np.testing.assert_allclose(
        cosine_logits(video, text_b, 0.5),
        np.einsum("bd,bkd->bk", unit(video), unit(text_b)) / 0.5,
        rtol=1e-5,
    )
    logits, labels = rng.normal(size=(3, 4)), np.array([0, 3, 1])
    for eps in (0.0, 0.1):
        target = np.full((3, 4), eps / 4)
        target[np.arange(3), labels] += 1 - eps
        log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
        ref = -(target * log_p).sum(-1).mean()
        np.testing.assert_allclose(softmax_cross_entropy(logits, labels, eps), ref, rtol=1e-5)
    np.testing.assert_allclose(
        softmax_cross_entropy(logits, labels, 0.0),
        optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean(),
        rtol=1e-5,
    )


def test_bfloat16_compute_keeps_float32_params_and_close_logits():
    config, model, trainable, frozen, run = tiny_model("full")
    model16 = video_lib.build_model(tiny_config("full", dtype="bfloat16"))
    shapes16 = jax.eval_shape(lambda r: video_lib.init_trainable(model16, r), jax.random.PRNGKey(0))
    assert all(x.dtype == jnp.float32 for x in jax.tree_util.tree_leaves(shapes16))
    params = {"params": merge_params(trainable, frozen)}
    ids, eos = class_tokens(config)
    logits = np.asarray(run(params["params"], frame_features(), ids, eos)["logits"])
    logits16 = jax.jit(model16.apply, static_argnames="method")(
        params, frame_features(), ids, eos, method=VideoCLIP.logits_from_features
    )
    assert logits16.dtype == jnp.float32
    assert np.abs(np.asarray(logits16) - logits).max() < 0.05 * np.abs(logits).max() + 0.05
