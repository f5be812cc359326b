"""The exact prompt-prefix-sharing shortcut of the text tower (`share_prompt_prefix`, docs/model.md)
against the plain path that runs every prompt row in full: features, logits, gradients, FLOPs."""

import functools
import itertools
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from motion_clip_jax.core.class_prompts import class_prompt_tokens, prompt_features, suffix_layout
from motion_clip_jax.models import clip as clip_lib
from motion_clip_jax.models import cost
from motion_clip_jax.models import model_config as config_lib
from motion_clip_jax.models import video_clip as video_lib

from .conftest import REPO_ROOT, xla_env

# Two text blocks, so a wrong pairing of blocks and prefix keys/values shows; one vision block
# (the image tower is not used: the model runs on frame features).
TINY_CLIP = dict(vision_layers=1, transformer_layers=2)
# Names of different lengths: the EOTs sit at different positions of the suffix.
CLASSES = ["run", "brush hair", "apply eye makeup", "ride a horse in the park at dusk", "jump"]
BATCH = 3
PREFIX = 1 + 5  # SOT + H context slots of the default phrase
# Both kinds of learned context: per-video motion-aware prompts (the full model's MAP; mmb_map
# differs from it only after the text tower, in the MCB) and one learned context for every video
# ("custom" is how a combination no variant names is set).
PROMPT_VARIANTS = {
    "full": ("full", {}),
    "learned": ("custom", {"prompts": "learned"}),
}


@functools.cache
def tiny_clip_params():
    return clip_lib.init_clip(clip_lib.clip_config("tiny", **TINY_CLIP), 7)[1]["params"]


def tiny_config(variant, **overrides):
    base = dict(
        clip_model="tiny", clip_overrides=TINY_CLIP, mmb_heads=4, mcb_heads=4, mcb_qkv_dim=32
    )
    return config_lib.model_config(variant, **base, **overrides)


@functools.cache
def initial_params(name: str) -> tuple[dict, dict]:
    """(trainable, frozen) of a variant; neither depends on the text path, context or dtype."""
    variant, fields = PROMPT_VARIANTS[name]
    config = tiny_config(variant, **fields)
    return video_lib.init_video_clip(config, 1, tiny_clip_params())[1:]


@functools.cache
def logits_and_grads(
    name: str, share: bool, layout_for: tuple[str, ...] | None = None, **overrides
):
    """(logits (B, K), gradients of the training loss w.r.t. every trainable leaf) of one model;
    with `layout_for`, the module `for_classes` of those class names (given CLASSES' tokens)."""
    variant, fields = PROMPT_VARIANTS[name]
    config = tiny_config(variant, share_prompt_prefix=share, **fields, **overrides)
    model = video_lib.build_model(config)
    if layout_for is not None:
        model = video_lib.for_classes(model, class_prompt_tokens(config, layout_for)[1])
    trainable, frozen = initial_params(name)
    ids, eos = class_prompt_tokens(config, CLASSES)
    frames = jax.random.normal(jax.random.PRNGKey(0), (BATCH, config.num_frames, 64))
    labels = jnp.arange(BATCH) % len(CLASSES)
    step = jax.value_and_grad(video_lib.loss_from_features, argnums=1, has_aux=True)
    step = jax.jit(step, static_argnums=0)
    (_, logits), grads = step(model, trainable, frozen, frames, ids, eos, labels)
    return np.asarray(logits, np.float64), jax.tree_util.tree_map(np.asarray, grads)


def assert_close_leaves(got, want, rtol: float, what: str) -> None:
    """Per leaf, max |got - want| <= rtol * max |want| (a leaf whose true value is exactly zero,
    such as the key kernel of a one-key attention, must come out zero in both)."""
    got = dict(jax.tree_util.tree_leaves_with_path(got))
    want = dict(jax.tree_util.tree_leaves_with_path(want))
    assert got.keys() == want.keys()
    for path, ref in want.items():
        ref = np.asarray(ref, np.float64)
        err = np.abs(np.asarray(got[path], np.float64) - ref).max()
        assert err <= rtol * np.abs(ref).max(), (what, jax.tree_util.keystr(path), err, ref.max())


def assert_prompt_gradients_nonzero(grads) -> None:
    """ctx reaches the loss only through the prefix: a shortcut whose suffixes ignored the
    prefix would give ctx a zero gradient (and other logits), which the comparison then catches."""
    for path, leaf in jax.tree_util.tree_leaves_with_path(grads["prompt"]):
        assert np.abs(leaf).max() > 0, jax.tree_util.keystr(path)


@pytest.mark.parametrize("text_context", ["shortest", "full"])
@pytest.mark.parametrize("name", sorted(PROMPT_VARIANTS))
def test_shortcut_logits_and_gradients_equal_the_plain_path(name, text_context):
    shared = logits_and_grads(name, True, text_context=text_context)
    plain = logits_and_grads(name, False, text_context=text_context)
    # Float32 rounding of a reordered computation: measured <= 7e-7 (logits), 3.4e-6
    # (gradients) relative to each leaf's largest value.
    assert_close_leaves(shared[0], plain[0], 2e-5, f"{name} {text_context} logits")
    assert_close_leaves(shared[1], plain[1], 2e-5, f"{name} {text_context} gradients")
    assert_prompt_gradients_nonzero(plain[1])


def padded_positions(lengths, layout) -> int:
    return sum(len(rows) * size for rows, size in layout)


def fewest_padded_positions(lengths, max_groups: int) -> int:
    """Brute force: every split of the sorted distinct lengths into at most max_groups runs."""
    values = sorted(set(lengths))
    best = None
    for g in range(1, min(max_groups, len(values)) + 1):
        for cuts in itertools.combinations(range(1, len(values)), g - 1):
            edges = [0, *cuts, len(values)]
            total = sum(
                sum(1 for x in lengths if values[a] <= x <= values[b - 1]) * values[b - 1]
                for a, b in zip(edges, edges[1:])
            )
            best = total if best is None else min(best, total)
    return best


@pytest.mark.parametrize("max_groups", [1, 2, 3, 4])
def test_suffix_layout_covers_every_row_once_with_the_fewest_padded_positions(max_groups):
    rng = np.random.default_rng(max_groups)
    for _ in range(20):
        eos = 5 + rng.choice([3, 3, 4, 4, 4, 5, 6, 9], size=rng.integers(1, 30))
        layout = suffix_layout(eos, 5, max_groups)
        assert 1 <= len(layout) <= max_groups
        assert sorted(r for rows, _ in layout for r in rows) == list(range(len(eos)))
        lengths = eos - 5
        for rows, size in layout:
            assert list(rows) == sorted(rows) and size == max(lengths[list(rows)])
        assert padded_positions(lengths, layout) == fewest_padded_positions(lengths, max_groups)
    # HMDB-51 at the default phrase: 30 suffixes of 3, 20 of 4, 1 of 6.
    hmdb = 5 + np.array([3] * 30 + [4] * 20 + [6])
    want = {1: [51], 2: [50, 1], 3: [30, 20, 1], 4: [30, 20, 1]}[max_groups]
    assert [len(rows) for rows, _ in suffix_layout(hmdb, 5, max_groups)] == want


@pytest.mark.parametrize("name", sorted(PROMPT_VARIANTS))
def test_grouped_suffixes_equal_the_plain_path(name):
    """The train step's module (`for_classes`: suffixes padded per group) against the plain
    path: logits and every gradient."""
    config = tiny_config(*PROMPT_VARIANTS[name][:1], **PROMPT_VARIANTS[name][1])
    layout = video_lib.for_classes(
        video_lib.build_model(config), class_prompt_tokens(config, CLASSES)[1]
    ).suffix_layout
    assert layout is not None and len(layout) == 3  # CLASSES' suffixes: 3, 3, 4, 5 and 10 long
    grouped = logits_and_grads(name, True, layout_for=tuple(CLASSES))
    plain = logits_and_grads(name, False)
    assert_close_leaves(grouped[0], plain[0], 2e-5, f"{name} grouped logits")
    assert_close_leaves(grouped[1], plain[1], 2e-5, f"{name} grouped gradients")
    assert_prompt_gradients_nonzero(grouped[1])


def test_a_suffix_layout_of_other_classes_is_not_used_silently():
    # Same K, but the 10-token suffix's row was laid out for a 3-token one: NaN, not a cut row.
    other = ("run", "ride a horse in the park at dusk", "apply eye makeup", "jump", "brush hair")
    logits, _ = logits_and_grads("full", True, layout_for=other)
    assert np.isnan(logits).all()
    with pytest.raises(ValueError, match="does not fit 5 prompt rows"):
        logits_and_grads("full", True, layout_for=tuple(CLASSES[:3]) + ("jump",))


def test_shortcut_with_remat_equals_the_plain_path():
    shared = logits_and_grads("full", True, text_context="shortest", remat_text=True)
    plain = logits_and_grads("full", False, text_context="shortest")
    assert_close_leaves(shared[0], plain[0], 2e-5, "remat logits")
    assert_close_leaves(shared[1], plain[1], 2e-5, "remat gradients")


def test_shortcut_in_bfloat16_is_close_to_the_plain_path():
    shared = logits_and_grads("full", True, text_context="shortest", dtype="bfloat16")
    plain = logits_and_grads("full", False, text_context="shortest", dtype="bfloat16")
    exact = logits_and_grads("full", False, text_context="shortest")  # float32 plain path
    # bfloat16 keeps 8 significant bits; the two paths round a differently ordered computation.
    # Measured: logits 2.9e-3 apart; per gradient leaf up to 4.4e-2 apart, while the plain path
    # alone is up to 6.3e-2 from float32. A suffix blind to its prefix would be 100% off in ctx.
    assert_close_leaves(shared[0], plain[0], 1e-2, "bfloat16 logits")
    assert_close_leaves(shared[1], plain[1], 1e-1, "bfloat16 gradients")
    # ... and the shortcut is about as far from float32 as the plain path (measured 6.7e-2
    # against 6.3e-2).
    assert worst_error(shared[1], exact[1]) <= 1.5 * worst_error(plain[1], exact[1])
    assert worst_error(plain[0], exact[0]) > 1e-4  # it did run in bfloat16


def worst_error(got, want) -> float:
    """Largest per-leaf max |got - want| / max |want| over the non-zero leaves of `want`."""
    pairs = zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True)
    return max(
        np.abs(np.asarray(g, np.float64) - w).max() / np.abs(w).max()
        for g, w in pairs
        if np.abs(w).max() > 0
    )


def test_encode_text_with_prefix_is_the_tower_on_the_concatenated_rows():
    module = clip_lib.CLIP(clip_lib.clip_config("tiny", **TINY_CLIP))
    params = {"params": tiny_clip_params()}
    n, k, p, s, width = 2, 3, 4, 6, 64
    rng = np.random.default_rng(0)
    prefix = jnp.asarray(rng.normal(size=(n, p, width)) * 0.1, jnp.float32)
    suffix = jnp.asarray(rng.normal(size=(n, k, s, width)) * 0.1, jnp.float32)
    eos = jnp.asarray([5, 0, 3], jnp.int32)  # positions within the suffix
    shared = jax.jit(functools.partial(module.apply, method=clip_lib.CLIP.encode_text_with_prefix))
    plain = jax.jit(functools.partial(module.apply, method=clip_lib.CLIP.encode_text_embeddings))

    got = shared(params, prefix, suffix, eos)
    rows = jnp.concatenate([jnp.broadcast_to(prefix[:, None], (n, k, p, width)), suffix], axis=2)
    want = plain(params, rows.reshape(n * k, p + s, width), jnp.tile(eos, n) + p)
    want = want.reshape(n, k, -1)
    assert got.shape == (n, k, 64)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    # The tolerance catches a suffix that ignores its prefix: alone, the suffix gives other
    # features, far outside it.
    alone = plain(params, suffix.reshape(n * k, s, width), jnp.tile(eos, n)).reshape(n, k, -1)
    assert np.abs(alone - want).max() > 1e3 * np.abs(got - want).max() + 1e-3

    with pytest.raises(ValueError, match="context_length"):
        shared(params, prefix, jnp.zeros((n, k, 77, width)), eos)


def text_side_flops(share: bool, text_context: str) -> tuple[float, int]:
    """XLA FLOPs of the text side, forward + backward into per-video ctx (B, H, Wt), and L."""
    fields = dict(ctx_init="a common human action of", n_ctx=5, text_context=text_context)
    ids, eos = class_prompt_tokens(fields, CLASSES)
    module = clip_lib.CLIP(clip_lib.clip_config("tiny", **TINY_CLIP))
    params = {"params": tiny_clip_params()}
    encode = functools.partial(module.apply, params, method=clip_lib.CLIP.encode_text_embeddings)
    with_prefix = functools.partial(
        module.apply, params, method=clip_lib.CLIP.encode_text_with_prefix
    )
    embeddings = module.apply(params, ids, method=clip_lib.CLIP.embed_tokens)

    def text_sum(ctx):
        feats = prompt_features(embeddings, eos, ctx, encode, jnp, with_prefix if share else None)
        return jnp.sum(feats**2)

    ctx = jax.ShapeDtypeStruct((BATCH, 5, 64), jnp.float32)
    return cost.xla_flops(jax.value_and_grad(text_sum), ctx), ids.shape[1]


@pytest.mark.parametrize("text_context", ["shortest", "full"])
def test_shortcut_computes_fewer_flops(text_context):
    shared, length = text_side_flops(True, text_context)
    plain, _ = text_side_flops(False, text_context)
    k, suffix = len(CLASSES), length - PREFIX
    # Per video the shortcut puts PREFIX + K * suffix positions through every projection and MLP
    # where the plain path puts K * L, and scores PREFIX^2 + K * suffix * L attention pairs
    # instead of K * L^2, which is no larger a fraction; the EOS readout (K rows) is the same in
    # both and small. So the text side costs at most that fraction of the plain path's.
    bound = (PREFIX + k * suffix) / (k * length)
    assert shared / plain <= bound, (shared / plain, bound)
    assert bound < 1


def test_shortcut_on_frozen_weights_sharded_over_a_model_axis(tmp_path):
    """4 fake CPU devices: sharded shortcut vs one-device plain path (tests/scripts)."""
    env = xla_env(fake_devices=4)
    out = subprocess.run(
        [sys.executable, "tests/scripts/prefix_sharing_sharded.py"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    assert "sharded leaves:" in out.stdout and "match" in out.stdout, out.stdout
