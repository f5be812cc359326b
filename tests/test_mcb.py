"""MCB against a NumPy cross-attention written from the formulas, and its symmetries."""

import functools

import jax
import numpy as np
import pytest

from motion_clip_jax.models.mcb import MultimodalCommunicationBlock, plain_cross_attention

B, K, N, D, HEADS, QKV = 2, 5, 7, 16, 4, 8


def np_layer_norm(x, p):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + 1e-5) * p["scale"] + p["bias"]


def np_cross_attention(queries, kv, p, key_bias=None):
    """queries + softmax(q k^T / sqrt(d)) v W_o, per head, pre-LN on both inputs. The key
    projection has no bias; `key_bias` (heads, head_dim) adds one, which must change nothing."""
    a = p["attn"]
    assert "bias" not in a["key"], "the key projection has no bias"
    q_in, kv_in = np_layer_norm(queries, p["ln_q"]), np_layer_norm(kv, p["ln_kv"])
    biases = {"query": a["query"]["bias"], "key": 0.0 if key_bias is None else key_bias}
    biases["value"] = a["value"]["bias"]
    proj = lambda x, name: np.einsum("bnd,dhe->bnhe", x, a[name]["kernel"]) + biases[name]
    q, k, v = proj(q_in, "query"), proj(kv_in, "key"), proj(kv_in, "value")
    scores = np.einsum("bqhe,bkhe->bhqk", q, k) / np.sqrt(q.shape[-1])
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    heads = np.einsum("bhqk,bkhe->bqhe", weights, v)
    return queries + np.einsum("bqhe,hed->bqd", heads, a["out"]["kernel"]) + a["out"]["bias"]


@functools.cache
def block_and_params(keys="tokens"):
    mcb = MultimodalCommunicationBlock(HEADS, QKV, keys, projections=True, norm="layernorm")
    text, video, tokens = inputs()
    params = jax.jit(mcb.init)(jax.random.PRNGKey(0), text, video, tokens)["params"]

    # Non-trivial LayerNorm params, so the reference checks that they are applied, and query/key
    # kernels large enough that the softmax is far from uniform (at init it nearly is).
    def perturb(path, x):
        name = jax.tree_util.keystr(path)
        if "ln_" in name:
            return x + 0.1 * jax.random.normal(jax.random.PRNGKey(len(name)), x.shape)
        return x * 20.0 if "query" in name or "key" in name else x

    params = jax.tree_util.tree_map_with_path(perturb, params)
    return mcb, params, jax.jit(mcb.apply)


def inputs(seed=1):
    keys = jax.random.split(jax.random.PRNGKey(seed), 3)
    return (
        jax.random.normal(keys[0], (K, D)),
        jax.random.normal(keys[1], (B, D)),
        jax.random.normal(keys[2], (B, N, D)),
    )


def test_sma_and_saa_match_the_numpy_reference():
    mcb, params, apply = block_and_params()
    text, video, tokens = inputs()
    text_out, video_out = apply({"params": params}, text, video, tokens)
    p = jax.tree_util.tree_map(np.asarray, params)
    text_b = np.broadcast_to(np.asarray(text), (B, K, D))
    ref_text = np_cross_attention(text_b, np.asarray(tokens), p["sma"])
    ref_video = np_cross_attention(np.asarray(video)[:, None], text_b, p["saa"])[:, 0]
    assert text_out.shape == (B, K, D) and video_out.shape == (B, D)
    np.testing.assert_allclose(text_out, ref_text, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(video_out, ref_video, rtol=1e-4, atol=1e-5)

    # Per-video text (motion-aware prompts) goes through the same path.
    text_per_video = text_b + 0.1
    text_out2, video_out2 = apply({"params": params}, text_per_video, video, tokens)
    np.testing.assert_allclose(
        text_out2,
        np_cross_attention(np.asarray(text_per_video), np.asarray(tokens), p["sma"]),
        rtol=1e-4,
        atol=1e-5,
    )
    np.testing.assert_allclose(
        video_out2,
        np_cross_attention(np.asarray(video)[:, None], np.asarray(text_per_video), p["saa"])[:, 0],
        rtol=1e-4,
        atol=1e-5,
    )


def test_a_key_bias_would_change_nothing():
    """Why the key projection has no bias: one shared by every key shifts all of a query's scores
    equally, and the softmax removes the shift (so its gradient is zero and only noise moves it)."""
    _, params, apply = block_and_params()
    text, video, tokens = inputs()
    p = jax.tree_util.tree_map(np.asarray, params)["sma"]
    text_b = np.broadcast_to(np.asarray(text), (B, K, D))
    heads, head_dim = p["attn"]["query"]["bias"].shape
    bias = np.random.default_rng(3).normal(0, 5.0, (heads, head_dim)).astype(np.float32)
    without = np_cross_attention(text_b, np.asarray(tokens), p)
    with_bias = np_cross_attention(text_b, np.asarray(tokens), p, key_bias=bias)
    np.testing.assert_allclose(with_bias, without, rtol=1e-4, atol=1e-5)
    # The check can fail: the same size of bias on the queries does change the output.
    shifted = {**p, "attn": {**p["attn"], "query": {**p["attn"]["query"], "bias": bias}}}
    assert np.abs(np_cross_attention(text_b, np.asarray(tokens), shifted) - without).max() > 1e-2


def test_class_permutation_permutes_text_and_leaves_video():
    mcb, params, apply = block_and_params()
    text, video, tokens = inputs()
    perm = np.array([3, 0, 4, 1, 2])
    text_out, video_out = apply({"params": params}, text, video, tokens)
    text_perm, video_perm = apply({"params": params}, text[perm], video, tokens)
    np.testing.assert_allclose(text_perm, np.asarray(text_out)[:, perm], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(video_perm, video_out, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("keys", ["tokens", "pooled"])
def test_sma_keys_are_tokens_or_pooled_video(keys):
    """With pooled keys the softmax has one entry: SMA adds the same vector to every class."""
    mcb, params, apply = block_and_params(keys)
    text, video, tokens = inputs()
    text_out, _ = apply({"params": params}, text, video, tokens)
    added = np.asarray(text_out) - np.asarray(text)[None]
    spread = np.abs(added - added[:, :1]).max()
    if keys == "pooled":
        assert spread < 1e-5
        ref = np_cross_attention(
            np.asarray(text)[None].repeat(B, 0),
            np.asarray(video)[:, None],
            jax.tree_util.tree_map(np.asarray, params["sma"]),
        )
        np.testing.assert_allclose(text_out, ref, rtol=1e-4, atol=1e-5)
        # The video tokens are not read at all.
        text_out2, _ = apply({"params": params}, text, video, tokens * 3.0)
        np.testing.assert_array_equal(text_out2, text_out)
    else:
        assert spread > 1e-3


def np_plain_cross_attention(queries, kv, heads):
    """queries + per head softmax(q k^T / sqrt(d)) k, q = queries, k = v = kv, d = D / heads."""
    split = lambda x: x.reshape(*x.shape[:-1], heads, x.shape[-1] // heads)
    q, k = split(queries), split(kv)
    scores = np.einsum("bqhe,bkhe->bhqk", q, k) / np.sqrt(q.shape[-1])
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    return queries + np.einsum("bhqk,bkhe->bqhe", weights, k).reshape(queries.shape)


@pytest.mark.parametrize("keys", ["tokens", "pooled"])
def test_projection_free_form_has_no_parameters_and_matches_numpy(keys):
    """The default form (Table 3's size): the features attend to each other directly."""
    mcb = MultimodalCommunicationBlock(HEADS, QKV, keys)  # projections=False is the default
    text, video, tokens = inputs()
    variables = mcb.init(jax.random.PRNGKey(0), text, video, tokens)
    assert jax.tree_util.tree_leaves(variables) == []
    text_out, video_out = mcb.apply(variables, text, video, tokens)
    text_b = np.broadcast_to(np.asarray(text), (B, K, D))
    sma_keys = np.asarray(video)[:, None] if keys == "pooled" else np.asarray(tokens)
    np.testing.assert_allclose(
        text_out, np_plain_cross_attention(text_b, sma_keys, HEADS), rtol=1e-5, atol=1e-5
    )
    ref_video = np_plain_cross_attention(np.asarray(video)[:, None], text_b, HEADS)[:, 0]
    np.testing.assert_allclose(video_out, ref_video, rtol=1e-5, atol=1e-5)
    if keys == "pooled":  # one key: every class gets V itself added
        np.testing.assert_allclose(
            text_out, text_b + np.asarray(video)[:, None], rtol=1e-5, atol=1e-5
        )
    # Heads matter (the check can fail): one head over all D channels gives another V'.
    one_head = plain_cross_attention(np.asarray(video)[:, None], text_b, 1)[:, 0]
    assert np.abs(np.asarray(one_head) - np.asarray(video_out)).max() > 1e-3


def np_form(queries, kv, heads, norm, p):
    """The reference of every projection-free form: inputs normalised (l2: the whole block on unit
    vectors; layernorm: pre-LN, residual on the raw queries), plain attention, optional gate."""
    if norm == "l2":
        queries = queries / np.linalg.norm(queries, axis=-1, keepdims=True)
        kv = kv / np.linalg.norm(kv, axis=-1, keepdims=True)
    q_in, kv_in = queries, kv
    if norm == "layernorm":
        q_in, kv_in = np_layer_norm(queries, p["ln_q"]), np_layer_norm(kv, p["ln_kv"])
    added = np_plain_cross_attention(q_in, kv_in, heads) - q_in
    return queries + added * p.get("residual_scale", 1.0)


@pytest.mark.parametrize("norm", ["none", "l2", "layernorm"])
@pytest.mark.parametrize("gate", [0.0, 1e-4])
def test_every_projection_free_form_matches_numpy(norm, gate):
    mcb = MultimodalCommunicationBlock(HEADS, QKV, "tokens", False, norm, gate)
    text, video, tokens = inputs()
    params = mcb.init(jax.random.PRNGKey(0), text, video, tokens).get("params", {})
    n_params = sum(x.size for x in jax.tree_util.tree_leaves(params))
    assert n_params == 2 * ((4 * D if norm == "layernorm" else 0) + (D if gate else 0))
    if gate:  # at its initial value the block is the identity to within the gate
        text_out, video_out = mcb.apply({"params": params}, text, video, tokens)
        start = (text, video) if norm != "l2" else (text / np.linalg.norm(text, axis=-1,
                 keepdims=True), video / np.linalg.norm(video, axis=-1, keepdims=True))  # fmt: skip
        np.testing.assert_allclose(text_out, np.broadcast_to(start[0], (B, K, D)), atol=1e-3)
        np.testing.assert_allclose(video_out, start[1], atol=1e-3)
    # Params away from their init (a gate of 1e-4 would hide the attention from the check).
    rng = np.random.default_rng(4)
    params = jax.tree_util.tree_map(lambda x: np.asarray(x) + rng.normal(0, 0.3, x.shape), params)
    text_out, video_out = mcb.apply({"params": params}, text, video, tokens)
    text_b = np.broadcast_to(np.asarray(text), (B, K, D))
    p = {"sma": {}, "saa": {}, **jax.tree_util.tree_map(np.asarray, params)}
    ref_text = np_form(text_b, np.asarray(tokens), HEADS, norm, p["sma"])
    ref_video = np_form(np.asarray(video)[:, None], text_b, HEADS, norm, p["saa"])[:, 0]
    np.testing.assert_allclose(text_out, ref_text, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(video_out, ref_video, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("norm", ["none", "l2", "layernorm"])
def test_which_forms_ignore_the_scale_of_v(norm):
    """The cosine logits ignore |V| without the MCB; the plain residual does not (T' = T + V: a
    large V makes every class alike). Unit vectors and pre-LN keep T' free of |V|'s scale."""
    mcb = MultimodalCommunicationBlock(HEADS, QKV, "pooled", False, norm)
    text, video, tokens = inputs()
    params = mcb.init(jax.random.PRNGKey(0), text, video, tokens)
    text_out, _ = mcb.apply(params, text, video, tokens)
    text_big, _ = mcb.apply(params, text, 100.0 * video, tokens)
    change = np.abs(np.asarray(text_big) - np.asarray(text_out)).max()
    if norm == "none":
        assert change > 10.0
    else:
        assert change < 1e-3
