"""The prompt-prefix shortcut with the frozen CLIP split over a `model` mesh axis, against the plain
path on one device: text features and their gradient w.r.t. per-video context. Exits non-zero on a
mismatch.

  XLA_FLAGS=--xla_force_host_platform_device_count=4 python tests/scripts/prefix_sharing_sharded.py
"""

import functools
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from motion_clip_jax.core.class_prompts import class_prompt_tokens, prompt_features  # noqa: E402
from motion_clip_jax.models import clip as clip_lib  # noqa: E402
from motion_clip_jax.train import mesh as mesh_lib  # noqa: E402

CLASSES = ["moving left", "moving right", "growing", "rotating clockwise"]
FIELDS = dict(ctx_init="a video of a shape", n_ctx=5, text_context="shortest")


def main() -> None:
    if jax.device_count() < 4:
        sys.exit(f"needs 4 devices, found {jax.device_count()}: set XLA_FLAGS (module docstring)")
    mesh = mesh_lib.make_mesh(2, 2, jax.devices()[:4])
    module = clip_lib.CLIP(clip_lib.clip_config("tiny"))
    ids, eos = class_prompt_tokens(FIELDS, CLASSES)
    # The text tower's parameters only (the image tower is not called, so not initialised).
    params = jax.jit(functools.partial(module.init, method=clip_lib.CLIP.encode_text))(
        jax.random.PRNGKey(0), ids
    )
    ctx = jax.random.normal(jax.random.PRNGKey(1), (4, 5, 64)) * 0.1

    def features(params, ctx, share):
        call = lambda method: functools.partial(module.apply, params, method=method)
        embeddings = call(clip_lib.CLIP.embed_tokens)(ids)
        shortcut = call(clip_lib.CLIP.encode_text_with_prefix) if share else None
        encode = call(clip_lib.CLIP.encode_text_embeddings)
        return prompt_features(embeddings, eos, ctx, encode, jnp, shortcut)

    def value_and_grad(params, ctx, share):
        loss = lambda ctx: jnp.sum(jnp.sin(features(params, ctx, share)))
        return features(params, ctx, share), jax.grad(loss)(ctx)

    shardings = mesh_lib.param_shardings(params, mesh, min_size=1024)
    split = [s for s in jax.tree_util.tree_leaves(shardings) if mesh_lib.MODEL in s.spec]
    print(f"sharded leaves: {len(split)}")
    assert split, "no frozen leaf was split over the model axis"
    sharded = jax.jit(functools.partial(value_and_grad, share=True))(
        jax.device_put(params, shardings),
        jax.device_put(ctx, mesh_lib.batch_sharding(mesh)),
    )
    plain = jax.jit(functools.partial(value_and_grad, share=False))(params, ctx)
    for got, want in zip(sharded, plain, strict=True):
        got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
        err = np.abs(got - want).max() / np.abs(want).max()
        assert err < 2e-5, err
    print("match: features and d(loss)/d(ctx)")


if __name__ == "__main__":
    main()
