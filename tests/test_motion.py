"""Motion pairs, the model config's validation, and the MMB's streams."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from motion_clip_jax.core import model_spec
from motion_clip_jax.core.model_spec import motion_pairs, num_motion_pairs
from motion_clip_jax.models import model_config as config_lib
from motion_clip_jax.models.blocks import TransformerStack
from motion_clip_jax.models.motion import MotionModelingBlock


def brute_force_pairs(num_frames, max_step):
    pairs = [(i, j) for i, j in itertools.combinations(range(num_frames), 2) if j - i <= max_step]
    return sorted(pairs, key=lambda p: (p[1] - p[0], p[0]))


def test_pairs_match_brute_force_for_every_t_and_s():
    for t in range(2, 33):
        for s in range(1, t):
            i_idx, j_idx = motion_pairs(t, s)
            assert list(zip(i_idx.tolist(), j_idx.tolist())) == brute_force_pairs(t, s), (t, s)
            assert len(i_idx) == num_motion_pairs(t, s) == sum(t - k for k in range(1, s + 1))
            assert i_idx.dtype == j_idx.dtype == np.int32


def test_paper_default_has_22_pairs():
    i_idx, j_idx = motion_pairs(8, 4)
    assert len(i_idx) == 22
    assert (i_idx[:7].tolist(), j_idx[:7].tolist()) == (list(range(7)), list(range(1, 8)))
    assert (i_idx[-1], j_idx[-1]) == (3, 7)


@pytest.mark.parametrize("t,s", [(8, 0), (8, 8), (8, -1), (2, 2), (1, 1)])
def test_pairs_refuse_step_outside_1_to_t_minus_1(t, s):
    with pytest.raises(ValueError, match=f"s={s}"):
        motion_pairs(t, s)


def test_config_defaults_and_variants_validate():
    c = config_lib.model_config()
    assert (c.num_frames, c.motion_step, c.n_ctx, c.temperature) == (8, 4, 5, 0.07)
    assert sorted(c.keys()) == sorted(model_spec.FIELD_NAMES)
    for name in model_spec.VARIANTS:
        assert config_lib.model_config(name).variant == name


@pytest.mark.parametrize(
    "overrides,field",
    [
        (dict(motion_step=8), "motion_step"),
        (dict(motion_step=0), "motion_step"),
        (dict(num_frames=4, motion_step=4), "motion_step"),
        (dict(num_frames=1), "num_frames"),
        (dict(n_ctx=3), "n_ctx"),  # default phrase has 5 tokens
        (dict(n_ctx=5, ctx_init="human action of"), "n_ctx"),
        (dict(prompts="fancy"), "prompts"),
        (dict(text_context="half"), "text_context"),
        (dict(mmb_heads=7), "mmb_heads"),
        (dict(mcb_heads=3), "mcb_heads"),
        (dict(temperature=0.0), "temperature"),
        (dict(label_smoothing=1.0), "label_smoothing"),
        (dict(dtype="float64"), "dtype"),
        (dict(adapter_reduction=0), "adapter_reduction"),
        (dict(adapter_activation="tanh"), "adapter_activation"),
        (dict(mcb_keys="frames"), "mcb_keys"),
        (dict(image_chunk_frames=-2), "image_chunk_frames"),
    ],
)
def test_config_errors_name_the_field(overrides, field):
    with pytest.raises(ValueError, match=f"field {field}="):
        config_lib.model_config("full", **overrides)


def test_custom_switches_are_checked_too():
    # motion-aware prompts are driven by M
    with pytest.raises(ValueError, match="field prompts="):
        config_lib.model_config("custom", motion_stream=False)


@pytest.mark.parametrize("name", sorted(model_spec.VARIANTS))
def test_a_variant_name_cannot_disagree_with_its_switches(name):
    """Every switch that differs from the named variant is refused, naming both values."""
    c = config_lib.model_config(name)
    other = "full" if name != "full" else "baseline"
    for key, value in model_spec.VARIANTS[other].items():
        c[key] = value
    if model_spec.VARIANTS[other] == model_spec.VARIANTS[name]:
        return
    with pytest.raises(ValueError, match=f"field variant='{name}': its switches disagree") as e:
        config_lib.validate_model_config(c)
    for key, value in model_spec.VARIANTS[other].items():
        if value != model_spec.VARIANTS[name][key]:
            assert f"{key}={value!r} ({name}: {model_spec.VARIANTS[name][key]!r})" in str(e.value)
    c.variant = "custom"
    config_lib.validate_model_config(c)  # the same switches as "custom" are what they say


def test_a_relabelled_config_is_refused():
    """The reported bug: variant=baseline on a full-model config trained the full model."""
    c = config_lib.model_config("full")
    c.variant = "baseline"
    with pytest.raises(ValueError, match="motion_stream=True \\(baseline: False\\)"):
        config_lib.validate_model_config(c)


def test_config_rejects_unknown_names():
    with pytest.raises(KeyError, match="motion_stpe"):
        config_lib.model_config("full", motion_stpe=2)
    with pytest.raises(KeyError, match="Unknown model variant"):
        config_lib.model_config("fulll")
    c = config_lib.model_config("full")
    c.moton_step = 3  # a typo set on the ConfigDict afterwards
    with pytest.raises(ValueError, match="moton_step"):
        config_lib.validate_model_config(c)


def test_h3_phrase_and_baseline_with_two_frames_are_valid():
    config_lib.model_config("full", n_ctx=3, ctx_init="human action of")
    # s only matters to the motion stream: a Baseline with T=2 keeps the default s=4.
    config_lib.model_config("baseline", num_frames=2)


def _mmb(**kw):
    args = dict(
        num_frames=6,
        spatial_stream=True,
        motion_stream=True,
        motion_step=3,
        depth=1,
        num_heads=2,
        mlp_ratio=1.0,
    )
    args.update(kw)
    return MotionModelingBlock(**args)


def test_mmb_streams_shapes_and_pooling():
    frames = jax.random.normal(jax.random.PRNGKey(0), (2, 6, 16))
    mmb = _mmb()
    variables = mmb.init(jax.random.PRNGKey(1), frames)
    out = mmb.apply(variables, frames)
    assert out["S"].shape == (2, 6, 16) and out["M"].shape == (2, 12, 16)
    np.testing.assert_allclose(out["V"], out["M"].mean(1) + out["S"].mean(1), rtol=1e-6)
    assert variables["params"]["pair_embedding"].shape == (12, 16)

    # The motion stream sees exactly the pair differences: feed them to the stack by hand.
    i_idx, j_idx = motion_pairs(6, 3)
    p = variables["params"]
    stack = TransformerStack(1, 2, 1.0)
    m_ref = stack.apply(
        {"params": p["motion"]}, frames[:, j_idx] - frames[:, i_idx] + p["pair_embedding"]
    )
    np.testing.assert_allclose(out["M"], m_ref, rtol=1e-5, atol=1e-6)

    # Both streams off: V is the plain mean of the frames and nothing is learned.
    plain = _mmb(spatial_stream=False, motion_stream=False)
    assert plain.init(jax.random.PRNGKey(1), frames) == {}
    np.testing.assert_allclose(plain.apply({}, frames)["V"], frames.mean(1), rtol=1e-6)


def test_mmb_refuses_wrong_frame_count():
    with pytest.raises(ValueError, match="num_frames=6"):
        _mmb().init(jax.random.PRNGKey(0), jnp.zeros((1, 5, 16)))


def test_older_records_are_upgraded_to_what_ran():
    """run_info.json / exports written before mcb_keys and the variant check still load, with
    the keys they were trained with, and a contradicting variant label becomes "custom"."""
    old = model_spec.model_fields("full")
    for name in ("mcb_keys", "share_prompt_prefix", "image_chunk_frames", "mcb_projections",
                 "mcb_norm", "mcb_scale_init", "text_suffix_groups"):  # fmt: skip
        del old[name]
    old["mcb_pooled_keys"] = False  # the old default: token keys
    new = model_spec.upgrade_record(old)
    model_spec.validate(new)
    assert new["mcb_keys"] == "tokens" and new["variant"] == "full"
    assert new["mcb_projections"] is True  # every MCB before the field had projections
    # ... and was pre-LN, without a gate; a projection-free one had neither.
    assert (new["mcb_norm"], new["mcb_scale_init"]) == ("layernorm", 0.0)
    plain = {k: v for k, v in model_spec.model_fields("full").items() if k not in
             ("mcb_norm", "mcb_scale_init")}  # fmt: skip
    assert plain["mcb_projections"] is False
    upgraded = model_spec.upgrade_record(plain)
    assert (upgraded["mcb_norm"], upgraded["mcb_scale_init"]) == ("none", 0.0)
    assert model_spec.upgrade_record({**old, "mcb_pooled_keys": True})["mcb_keys"] == "pooled"
    mislabelled = model_spec.upgrade_record({**old, "variant": "baseline"})  # the old bug
    assert mislabelled["variant"] == "custom" and mislabelled["motion_stream"] is True
    model_spec.validate(mislabelled)
    today = model_spec.model_fields("mmb")
    assert model_spec.upgrade_record(today) == today
