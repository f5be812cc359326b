"""Class tokens, prompt learner, and the exact short-context shortcut (docs/model.md)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from motion_clip_jax.core.class_prompts import class_prompt_tokens
from motion_clip_jax.core.tokenizer import EOT_TOKEN, SOT_TOKEN, get_tokenizer, tokenize
from motion_clip_jax.models import clip as clip_lib
from motion_clip_jax.models import video_clip as video_lib
from motion_clip_jax.models.params import merge_params

from . import conftest
from .conftest import tiny_video_config

# Short and long names: the rows' EOTs sit at different positions.
CLASSES = ["run", "brush hair", "apply eye makeup", "ride a horse in the park at dusk", "jump"]
PHRASE5 = "a common human action of"


def prompt_rows(class_names, ctx_init, n_ctx, text_context="shortest"):
    """`class_prompt_tokens` with the prompt fields given one by one."""
    fields = dict(ctx_init=ctx_init, n_ctx=n_ctx, text_context=text_context)
    return class_prompt_tokens(fields, class_names)


# One-layer towers keep XLA compile times (the cost of these tests) low.
TINY_CLIP = dict(vision_layers=1, transformer_layers=1)


def tiny_config(variant="full", **overrides):
    return tiny_video_config(TINY_CLIP, variant, **overrides)


tiny_clip_params = functools.partial(conftest.tiny_clip_params, **TINY_CLIP)


@functools.cache
def tiny_model(variant="full", **overrides):
    """(config, params, run) with run(frames, ids, eos) -> intermediates, jitted once."""
    config = tiny_config(variant, **overrides)
    model, trainable, frozen = video_lib.init_video_clip(config, 1, tiny_clip_params())
    params = merge_params(trainable, frozen)
    run = jax.jit(functools.partial(model.apply, method=video_lib.VideoCLIP.intermediates))
    return config, params, lambda p, *args: run({"params": p}, *args)


# Reference computations on the bare CLIP, jitted (eager Flax is slow on these CPUs).
CLIP_MODULE = clip_lib.CLIP(clip_lib.clip_config("tiny", **TINY_CLIP))
encode_text = jax.jit(functools.partial(CLIP_MODULE.apply, method=clip_lib.CLIP.encode_text))
encode_text_embeddings = jax.jit(
    functools.partial(CLIP_MODULE.apply, method=clip_lib.CLIP.encode_text_embeddings)
)


def frame_features(batch=3, seed=0):
    return jax.random.normal(jax.random.PRNGKey(seed), (batch, 8, 64))


def test_class_tokens_are_the_handcrafted_prompts():
    ids, eos = prompt_rows(CLASSES, PHRASE5, 5)
    ref = tokenize([f"{PHRASE5} {name}." for name in CLASSES])
    assert ids.dtype == eos.dtype == np.int32
    assert ids.shape == (len(CLASSES), int(eos.max()) + 1)  # shortest context holding every EOT
    np.testing.assert_array_equal(ids, ref[:, : ids.shape[1]])
    assert not ref[:, ids.shape[1] :].any()  # only padding was cut
    np.testing.assert_array_equal(ids[np.arange(len(CLASSES)), eos], EOT_TOKEN)
    assert (ids[:, 0] == SOT_TOKEN).all()
    phrase = get_tokenizer().encode(PHRASE5)
    assert (ids[:, 1:6] == phrase).all()
    assert len(set(eos.tolist())) > 2  # the names really have different lengths

    full_ids, full_eos = prompt_rows(CLASSES, PHRASE5, 5, text_context="full")
    np.testing.assert_array_equal(full_ids, ref)
    np.testing.assert_array_equal(full_eos, eos)


@pytest.mark.parametrize(
    "args,match",
    [
        ((CLASSES, PHRASE5, 3), "n_ctx=3"),
        ((CLASSES, "human action of", 5), "n_ctx=5"),
        (([], PHRASE5, 5), "non-empty"),
        (("run", PHRASE5, 5), "non-empty sequence"),
        ((["run", ""], PHRASE5, 5), r"class_names\[1\]"),
        ((["run", 3], PHRASE5, 5), r"class_names\[1\]"),
        ((["run", "jump " * 80], PHRASE5, 5), "does not fit 77"),
        ((["run <|endoftext|> x"], PHRASE5, 5), "more than one EOT"),
    ],
)
def test_class_tokens_refuse_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        prompt_rows(*args)


def test_bad_text_context_is_refused():
    with pytest.raises(ValueError, match="text_context='half'"):
        prompt_rows(CLASSES, PHRASE5, 5, text_context="half")


def test_handcrafted_text_features_equal_clip_zero_shot():
    """The hand-crafted path is CLIP.encode_text on the 77-token prompt, computed independently.

    Text features do not depend on the video: one (K, D) row per class, not B * K.
    """
    config, params, run = tiny_model("clip")
    ids, eos = class_prompt_tokens(config, CLASSES)
    ours = run(params, frame_features(), ids, eos)["T"]
    ref = encode_text(
        {"params": tiny_clip_params()}, jnp.asarray(tokenize([f"{PHRASE5} {c}." for c in CLASSES]))
    )
    assert ours.shape == (len(CLASSES), 64)
    np.testing.assert_allclose(ours, ref, rtol=2e-5, atol=2e-6)


def test_learned_ctx_starts_as_the_phrase():
    """ctx = frozen token embeddings of the phrase, so learned prompts start hand-crafted."""
    config, params, run = tiny_model("custom", prompts="learned", mcb=False)
    table = tiny_clip_params()["token_embedding"]["embedding"]
    phrase = get_tokenizer().encode(PHRASE5)
    np.testing.assert_array_equal(params["prompt"]["ctx"], table[np.asarray(phrase)])
    ids, eos = class_prompt_tokens(config, CLASSES)
    out = run(params, frame_features(), ids, eos)
    assert out["T"].shape == (len(CLASSES), 64)  # video-independent: K rows, not B * K
    _, clip_params, run_clip = tiny_model("clip")
    hand = run_clip(clip_params, frame_features(), ids, eos)["T"]
    np.testing.assert_allclose(out["T"], hand, rtol=1e-5, atol=1e-6)

    # Changing ctx changes every class's feature (the slots really are read). A uniform shift
    # would not do: LayerNorm removes it.
    noise = 0.05 * jax.random.normal(jax.random.PRNGKey(3), params["prompt"]["ctx"].shape)
    shifted = {**params, "prompt": {"ctx": params["prompt"]["ctx"] + noise}}
    moved = run(shifted, frame_features(), ids, eos)["T"]
    assert (np.abs(np.asarray(moved - out["T"])).max(axis=1) > 1e-3).all()


def test_motion_aware_prompts_against_a_hand_built_reference():
    """ctx_b = ctx + W2 relu(W1 mean(M_b) + b1) + b2 in slots 1..H of every class row."""
    config, params, run = tiny_model("full")
    ids, eos = class_prompt_tokens(config, CLASSES)
    out = run(params, frame_features(), ids, eos)
    assert out["T"].shape == (3, len(CLASSES), 64)

    p = jax.tree_util.tree_map(np.asarray, params["prompt"])
    motion = np.asarray(out["M"]).mean(axis=1)
    hidden = np.maximum(motion @ p["adapter_down"]["kernel"] + p["adapter_down"]["bias"], 0)
    ctx = p["ctx"][None] + (hidden @ p["adapter_up"]["kernel"] + p["adapter_up"]["bias"])[:, None]
    table = np.asarray(tiny_clip_params()["token_embedding"]["embedding"])
    rows = np.repeat(table[ids][None], 3, axis=0)  # (B, K, L, Wt)
    rows[:, :, 1:6] = ctx[:, None]
    ref = encode_text_embeddings(
        {"params": tiny_clip_params()},
        jnp.asarray(rows.reshape(15, *rows.shape[2:])),
        jnp.tile(eos, 3),
    )
    np.testing.assert_allclose(out["T"], ref.reshape(3, 5, -1), rtol=2e-5, atol=2e-6)
    # Prompts differ per video.
    assert np.abs(np.asarray(out["T"][0] - out["T"][1])).max() > 1e-4


@pytest.mark.parametrize("variant", ["full", "clip"])
def test_shortest_context_gives_the_full_77_token_logits(variant):
    config, params, run = tiny_model(variant)
    results = {}
    for context in ("shortest", "full"):
        ids, eos = prompt_rows(CLASSES, config.ctx_init, config.n_ctx, context)
        assert ids.shape[1] == (77 if context == "full" else 16)
        results[context] = np.asarray(run(params, frame_features(), ids, eos)["logits"])
    short, full = results["shortest"], results["full"]
    rel = np.abs(short - full).max() / np.abs(full).max()
    assert rel < 1e-5, rel
    assert np.abs(full).max() > 0.1  # the comparison is not between zeros
