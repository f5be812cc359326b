"""The paper's video model: frozen CLIP + MMB + (motion-aware) prompts + MCB, one config for all.

Parameters: {'clip': frozen OpenAI CLIP (same tree as `init_clip`), 'mmb': ..., 'prompt': ...,
'mcb': ...}; `params.split_params` separates the frozen CLIP from the trainable rest.

Entry points (`model.apply({'params': params}, ..., method=...)`):
  encode_frames(video (B, T, H, W, 3)) -> (B, T, D)       frozen image tower, no gradient
  video_features(frames (B, T, D)) -> {'V', 'S', 'M'}       MMB
  text_features(ids (K, L), eos (K,), motion (B, D)|None) -> (K, D) or (B, K, D)
  match(video, text) -> (B, K) logits                       MCB + cosine / tau
  logits_from_features(frames (B, T, D), ids, eos) -> (B, K)
  intermediates(frames, ids, eos) -> dict of every stage (for tests and analysis)
  __call__(video (B, T, H, W, 3), ids, eos) -> (B, K)
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from motion_clip_jax.core import model_spec
from motion_clip_jax.core.class_prompts import (
    SuffixLayout,
    class_prompt_tokens,
    prompt_features,
    suffix_layout,
)
from motion_clip_jax.models import clip as clip_lib
from motion_clip_jax.models import model_config as config_lib
from motion_clip_jax.models.losses import cosine_logits, softmax_cross_entropy
from motion_clip_jax.models.mcb import MultimodalCommunicationBlock
from motion_clip_jax.models.motion import MotionModelingBlock
from motion_clip_jax.models.params import FROZEN_KEYS, merge_params
from motion_clip_jax.models.prompts import PromptLearner

Array = jax.Array


class VideoCLIP(nn.Module):
    """See the module docstring. `config` is a validated `model_config(...)`, frozen.

    `suffix_layout`: None, or the static `class_prompts.suffix_layout` of the one class list this
    module will be given (set by `for_classes`): the prefix-shared text path then pads each group
    of class suffixes to its own longest. The parameters are the same either way.
    """

    config: ml_collections.FrozenConfigDict
    suffix_layout: SuffixLayout | None = None

    def setup(self):
        c = self.config
        dtype = config_lib.DTYPES[c.dtype]
        self.clip = clip_lib.CLIP(
            config_lib.clip_config_of(c), dtype=dtype, remat_text=c.remat_text
        )
        self.mmb = MotionModelingBlock(
            num_frames=c.num_frames,
            spatial_stream=c.spatial_stream,
            motion_stream=c.motion_stream,
            motion_step=c.motion_step,
            depth=c.mmb_depth,
            num_heads=c.mmb_heads,
            mlp_ratio=c.mmb_mlp_ratio,
            dtype=dtype,
        )
        if c.prompts != "handcrafted":
            self.prompt = PromptLearner(
                motion_aware=c.prompts == "motion_aware",
                adapter_reduction=c.adapter_reduction,
                adapter_activation=c.adapter_activation,
                dtype=dtype,
            )
        if c.mcb:
            self.mcb = MultimodalCommunicationBlock(
                c.mcb_heads, c.mcb_qkv_dim, c.mcb_keys, c.mcb_projections, c.mcb_norm,
                c.mcb_scale_init, dtype=dtype,
            )  # fmt: skip

    def encode_frames(self, video: Array) -> Array:
        """(B, T, H, W, 3) CLIP-normalised frames -> (B, T, D) frozen image features.

        The B*T frames go through the tower `image_chunk_frames` at a time (resolved by
        `image_chunk_size`), one chunk after another; the last chunk is zero-padded and the padded
        rows dropped. Frames are independent, so the features equal one call's (tested).
        """
        if video.ndim != 5:
            raise ValueError(f"encode_frames expects (B, T, H, W, 3) video, got {video.shape}")
        b, t = video.shape[:2]
        n = b * t
        # The image tower is frozen and never part of the backward pass: cut both ends, so not
        # even a tangent is traced through it when the input depends on something trainable.
        frames = jax.lax.stop_gradient(video.reshape(n, *video.shape[2:]))
        chunk = image_chunk_size(self.config.image_chunk_frames)
        if chunk == 0 or chunk >= n or self.is_initializing():
            return jax.lax.stop_gradient(self.clip.encode_image(frames).reshape(b, t, -1))
        steps = -(-n // chunk)
        frames = jnp.pad(frames, [(0, steps * chunk - n)] + [(0, 0)] * (frames.ndim - 1))
        # A lifted scan (not jax.lax.map) so the bound CLIP params enter the loop as constants.
        scan = nn.scan(
            lambda clip, carry, x: (carry, clip.encode_image(x)),
            variable_broadcast="params",
            split_rngs={"params": False},
        )
        _, features = scan(self.clip, None, frames.reshape(steps, chunk, *frames.shape[1:]))
        features = features.reshape(steps * chunk, -1)[:n]
        return jax.lax.stop_gradient(features.reshape(b, t, -1))

    def video_features(self, frames: Array) -> dict[str, Array | None]:
        """(B, T, D) frame features -> {'V': (B, D), 'S': (B, T, D)|None, 'M': (B, L, D)|None}."""
        return self.mmb(frames)

    def text_features(self, class_tokens: Array, eos: Array, motion: Array | None = None) -> Array:
        """Class prompt features through the frozen text tower.

        Args:
          class_tokens: (K, L) int32 from `class_prompt_tokens` (L <= 77).
          eos: (K,) int32 EOT positions.
          motion: (B, D) = mean_L(M); used only by motion-aware prompts.
        Returns:
          (K, D) when prompts do not depend on the video (computed once, not B * K times), else
          (B, K, D). With `share_prompt_prefix`, learned context runs [SOT, ctx] through the tower
          once per video (once for shared ctx) and only the class suffixes K times.
        """
        c = self.config
        if class_tokens.ndim != 2 or eos.shape != class_tokens.shape[:1]:
            raise ValueError(
                f"class_tokens (K, L) and eos (K,) expected, got "
                f"{class_tokens.shape} and {eos.shape}"
            )
        embeddings = self.clip.embed_tokens(class_tokens)  # (K, L, Wt), frozen
        ctx = None
        if c.prompts != "handcrafted":  # (H, Wt) or (B, H, Wt); the phrase's slots initialise it
            ctx = self.prompt(embeddings[0, 1 : 1 + c.n_ctx], motion)
        # The exact prefix-sharing shortcut (docs/model.md); the plain path is its reference.
        with_prefix = self.clip.encode_text_with_prefix if c.share_prompt_prefix else None
        return prompt_features(
            embeddings, eos, ctx, self.clip.encode_text_embeddings, jnp, with_prefix,
            self.suffix_layout,
        )  # fmt: skip

    def match(self, video: dict[str, Array | None], text: Array) -> Array:
        """MCB (if on) then cosine / tau: video dict from `video_features`, text -> (B, K)."""
        return self._match(video, text)["logits"]

    def _match(self, video: dict[str, Array | None], text: Array) -> dict[str, Array]:
        v = video["V"]
        out = {"T": text, "V_prime": v, "T_prime": text}
        if self.config.mcb:
            tokens = model_spec.video_tokens(video, jnp)
            out["T_prime"], out["V_prime"] = self.mcb(text, v, tokens)
        out["logits"] = cosine_logits(out["V_prime"], out["T_prime"], self.config.temperature)
        return out

    def intermediates(self, frames: Array, class_tokens: Array, eos: Array) -> dict[str, Any]:
        """Every stage: V, S, M, T (text), V_prime, T_prime, logits."""
        video = self.video_features(frames)
        motion = None if video["M"] is None else video["M"].mean(axis=1)
        text = self.text_features(class_tokens, eos, motion)
        return {**video, **self._match(video, text)}

    def logits_from_features(self, frames: Array, class_tokens: Array, eos: Array) -> Array:
        """(B, T, D) frame features, (K, L) class tokens, (K,) eos -> (B, K) logits."""
        return self.intermediates(frames, class_tokens, eos)["logits"]

    def __call__(self, video: Array, class_tokens: Array, eos: Array) -> Array:
        """(B, T, H, W, 3) video -> (B, K) logits."""
        return self.logits_from_features(self.encode_frames(video), class_tokens, eos)


# Frames per image-tower call when `image_chunk_frames` is -1, by `jax.default_backend()`;
# measured in docs/benchmarks.md ("Image-tower chunking"). Backends not listed run one call.
DEFAULT_IMAGE_CHUNK_FRAMES = {"cpu": 4, "gpu": 0, "tpu": 0}


def image_chunk_size(image_chunk_frames: int, backend: str | None = None) -> int:
    """Frames per image-tower call: the field itself, or for -1 the backend's default (0 = all)."""
    if image_chunk_frames != -1:
        return image_chunk_frames
    return DEFAULT_IMAGE_CHUNK_FRAMES.get(backend or jax.default_backend(), 0)


def build_model(config: ml_collections.ConfigDict) -> VideoCLIP:
    """Validates `config` and returns the (stateless) Flax module."""
    config_lib.validate_model_config(config)
    return VideoCLIP(ml_collections.FrozenConfigDict(config))


def for_classes(model: VideoCLIP, eos: Any) -> VideoCLIP:
    """The module for steps that are always given one class list, of EOT positions `eos` (K,)
    (host values from `class_prompt_tokens`): with its `suffix_layout` where the config's
    `text_suffix_groups` > 1 and the prefix-shared path runs (learned context), else `model`.
    Given other class prompts, its text features come out NaN, or a different K raises."""
    c = model.config
    if c.prompts == "handcrafted" or not c.share_prompt_prefix or c.text_suffix_groups == 1:
        return model
    layout = suffix_layout(np.asarray(eos), c.n_ctx, c.text_suffix_groups)
    return model.clone(suffix_layout=layout) if len(layout) > 1 else model


def loss_from_features(
    model: VideoCLIP,
    trainable: dict,
    frozen: dict,
    frames: Array,
    class_tokens: Array,
    eos: Array,
    labels: Array,
) -> tuple[Array, Array]:
    """Training objective on precomputed frame features -> (loss, logits (B, K)).

    Differentiate w.r.t. `trainable` only (argnums=1): the optimizer never sees CLIP.
    """
    logits = model.apply(
        {"params": merge_params(trainable, frozen)},
        frames,
        class_tokens,
        eos,
        method=VideoCLIP.logits_from_features,
    )
    return softmax_cross_entropy(logits, labels, model.config.label_smoothing), logits


def init_video_clip(
    config: ml_collections.ConfigDict, rng: Array | int = 0, clip_params: dict | None = None
) -> tuple[VideoCLIP, dict, dict]:
    """Builds and initialises the model -> (module, trainable params, frozen params).

    Args:
      config: a `model_config(...)`.
      rng: PRNG key or seed.
      clip_params: the frozen CLIP (converted OpenAI weights, or any tree `init_clip` makes for
        this config); None draws a random CLIP. The learned context is initialised from these
        params' token embeddings of `config.ctx_init`.
    Returns:
      (module, trainable = {'mmb', 'prompt', 'mcb' as configured}, frozen = {'clip': ...}).
    """
    model = build_model(config)
    if isinstance(rng, int):
        rng = jax.random.PRNGKey(rng)
    clip_rng, rng = jax.random.split(rng)
    clip_cfg = config_lib.clip_config_of(config)
    if clip_params is None:
        clip_params = clip_lib.init_clip(clip_cfg, clip_rng)[1]["params"]
    else:
        expected = jax.eval_shape(lambda: clip_lib.init_clip(clip_cfg, clip_rng)[1]["params"])
        check_tree_shapes(clip_params, expected, "clip_params")
    trainable = jax.jit(lambda r: init_trainable(model, r))(rng)
    frozen = {"clip": clip_params}
    if "prompt" in trainable:
        trainable = reset_ctx(trainable, frozen, config)
    return model, trainable, frozen


def init_trainable(model: VideoCLIP, rng: Array) -> dict:
    """The trainable params only (works under `jax.eval_shape`).

    Neither CLIP tower runs: the added modules are initialised on zero text features, which keeps
    initialisation cheap at ViT-B/16 and in tests.
    """
    c = model.config
    dim = config_lib.clip_config_of(c).embed_dim
    frames = jnp.zeros((1, c.num_frames, dim), jnp.float32)
    ids, _ = class_prompt_tokens(c, ["x"])

    def init_graph(module: VideoCLIP, frames: Array, ids: Array) -> Array:
        video = module.video_features(frames)
        if c.prompts != "handcrafted":
            motion = None if video["M"] is None else video["M"].mean(axis=1)
            module.prompt(module.clip.embed_tokens(ids)[0, 1 : 1 + c.n_ctx], motion)
        return module.match(video, jnp.zeros((ids.shape[0], dim), jnp.float32))

    params = model.init(rng, frames, ids, method=init_graph).get("params", {})
    # Whatever of CLIP the graph touched is a stand-in: the frozen tree comes from elsewhere.
    return {k: v for k, v in params.items() if k not in FROZEN_KEYS}


def reset_ctx(trainable: dict, frozen: dict, config: ml_collections.ConfigDict) -> dict:
    """Returns `trainable` with prompt ctx (H, Dt) = frozen token embeddings of the phrase."""
    phrase = jnp.asarray(config_lib.ctx_phrase_tokens(config.ctx_init))
    table = frozen["clip"]["token_embedding"]["embedding"]
    prompt = {**trainable["prompt"], "ctx": jnp.asarray(table[phrase], jnp.float32)}
    return {**trainable, "prompt": prompt}


def check_tree_shapes(given: Any, expected: Any, what: str) -> None:
    """Raises ValueError naming the paths where `given` lacks, adds or reshapes a leaf."""
    shapes = lambda tree: {
        jax.tree_util.keystr(p): tuple(jnp.shape(x))
        for p, x in jax.tree_util.tree_leaves_with_path(tree)
    }
    got, want = shapes(given), shapes(expected)
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    wrong = [
        f"{k}: {got[k]} != {want[k]}" for k in sorted(set(got) & set(want)) if got[k] != want[k]
    ]
    if missing or extra or wrong:
        raise ValueError(
            f"{what} do not fit the model config: missing {missing[:5]}, "
            f"unexpected {extra[:5]}, wrong shapes {wrong[:5]}"
        )
