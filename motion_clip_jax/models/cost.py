"""FLOPs of the model's parts by XLA cost analysis (abstract shapes: nothing is run or allocated).

`extra_flops` answers the paper's Table 3 question, "how much does the method add to CLIP", split
the way the cost really falls:
  head: MMB + motion adapter + MCB + cosine logits per video, minus plain CLIP's mean pooling +
    cosine. This is what the paper's +0.03 GFLOPs can be compared with.
  text_per_video: the frozen text tower on K prompts. Plain CLIP, Baseline and learned (video-
    independent) prompts pay it once per class list; motion-aware prompts pay it for every video.
  image_per_frame: the frozen image tower, paid by every variant alike.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections

from motion_clip_jax.core import model_spec
from motion_clip_jax.models import clip as clip_lib
from motion_clip_jax.models import model_config as config_lib
from motion_clip_jax.models import video_clip as video_lib
from motion_clip_jax.models.params import merge_params


def xla_flops(fn: Callable, *args: Any) -> float:
    """FLOPs XLA's cost analysis reports for `jax.jit(fn)(*args)`; args may be ShapeDtypeStructs."""
    cost = jax.jit(fn).lower(*args).compile().cost_analysis()
    if isinstance(cost, list | tuple):  # older JAX: one dict per computation
        cost = cost[0]
    if not cost or "flops" not in cost:
        raise RuntimeError(f"XLA cost analysis reported no flops: {cost}")
    return float(cost["flops"])


def abstract_params(config: ml_collections.ConfigDict) -> tuple[video_lib.VideoCLIP, Any, Any]:
    """(module, trainable, frozen) as ShapeDtypeStructs, e.g. for ViT-B/16 without allocating it."""
    model = video_lib.build_model(config)
    rng = jax.random.PRNGKey(0)
    trainable = jax.eval_shape(lambda r: video_lib.init_trainable(model, r), rng)
    clip_cfg = config_lib.clip_config_of(config)
    clip_params = jax.eval_shape(lambda r: clip_lib.init_clip(clip_cfg, r)[1]["params"], rng)
    return model, trainable, {"clip": clip_params}


def head_flops(config: ml_collections.ConfigDict, num_classes: int) -> float:
    """Forward FLOPs per video of everything outside the CLIP towers (MMB, adapter, MCB, logits)."""
    model, trainable, frozen = abstract_params(config)
    d = config_lib.clip_config_of(config).embed_dim
    f32 = jnp.float32
    frames = jax.ShapeDtypeStruct((1, config.num_frames, d), f32)
    text_shape = (1, num_classes, d) if config.prompts == "motion_aware" else (num_classes, d)
    text = jax.ShapeDtypeStruct(text_shape, f32)

    def head(module, frames, text):
        video = module.video_features(frames)
        outputs = [module.match(video, text)]
        if config.prompts != "handcrafted":
            motion = None if video["M"] is None else video["M"].mean(axis=1)
            phrase = jnp.zeros((config.n_ctx, module.clip.config.transformer_width), f32)
            outputs.append(module.prompt(phrase, motion))
        return outputs

    def fn(trainable, frozen, frames, text):
        params = {"params": merge_params(trainable, frozen)}
        return model.apply(params, frames, text, method=head)

    return xla_flops(fn, trainable, frozen, frames, text)


def text_flops(config: ml_collections.ConfigDict, num_prompts: int, length: int) -> float:
    """Forward FLOPs of the frozen text tower on `num_prompts` rows of `length` tokens."""
    clip_cfg = config_lib.clip_config_of(config)
    module = clip_lib.CLIP(clip_cfg, dtype=config_lib.DTYPES[config.dtype])
    _, _, frozen = abstract_params(config)
    x = jax.ShapeDtypeStruct((num_prompts, length, clip_cfg.transformer_width), jnp.float32)
    eos = jax.ShapeDtypeStruct((num_prompts,), jnp.int32)

    def fn(params, x, eos):
        return module.apply({"params": params}, x, eos, method=clip_lib.CLIP.encode_text_embeddings)

    return xla_flops(fn, frozen["clip"], x, eos)


def image_flops(config: ml_collections.ConfigDict) -> float:
    """Forward FLOPs of the frozen image tower on one frame."""
    clip_cfg = config_lib.clip_config_of(config)
    module = clip_lib.CLIP(clip_cfg, dtype=config_lib.DTYPES[config.dtype])
    _, _, frozen = abstract_params(config)
    res = clip_cfg.image_resolution
    image = jax.ShapeDtypeStruct((1, res, res, 3), jnp.float32)

    def fn(params, image):
        return module.apply({"params": params}, image, method=clip_lib.CLIP.encode_image)

    return xla_flops(fn, frozen["clip"], image)


def extra_flops(
    config: ml_collections.ConfigDict, num_classes: int, text_length: int
) -> dict[str, float]:
    """Forward FLOPs per video of `config` and how they exceed plain CLIP's (see module doc).

    Returns a dict: head, head_clip, extra_head (= head - head_clip), text_per_video (K prompts of
    `text_length` tokens), text_passes_per_video (1 for motion-aware prompts, else 0: the text
    tower then runs once per class list, not per video), image_per_frame.
    """
    clip_variant = ml_collections.ConfigDict(config.to_dict())
    clip_variant.update(model_spec.VARIANTS["clip"])
    clip_variant.variant = "clip"
    head = head_flops(config, num_classes)
    head_clip = head_flops(clip_variant, num_classes)
    return {
        "head": head,
        "head_clip": head_clip,
        "extra_head": head - head_clip,
        "text_per_video": text_flops(config, num_classes, text_length),
        "text_passes_per_video": float(config.prompts == "motion_aware"),
        "image_per_frame": image_flops(config),
    }
