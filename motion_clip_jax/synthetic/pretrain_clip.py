"""Contrastive (CLIP-style) pretraining of the synthetic world's tiny CLIP, and its cache.

A random-weight tower's frame feature carries no object position (linear-probe R^2 about 0, see
docs/pretrain_clip.md), so the demo freezes a tiny CLIP pretrained here: symmetric InfoNCE between
static synthetic frames (`world.render_static_frames`) and captions naming shape, colour,
position, size and tilt, plus an attribute loss: a linear head on the image feature regresses
x, y, size and the visible angle (cos, sin of k * angle) and classifies the shape. Captions alone
never taught the angle (probe R^2 0): in a batch of 64, two captions almost never differ by tilt
alone, so matching them never needs it. The head is dropped after pretraining.

Equal captions in one batch are not negatives of each other: the targets are soft, uniform over
every column whose caption equals the row's (plain CLIP would push equal pairs apart).

    python -m motion_clip_jax.synthetic.pretrain_clip --cache_dir /tmp/tiny_clip

`provide_clip` is the engine's CLIP source "synthetic_tiny_clip" (motion_clip_jax/train/providers.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from motion_clip_jax.convert import flax_file
from motion_clip_jax.core.tokenizer import tokenize
from motion_clip_jax.core.video_spec import CLIP_MEAN, CLIP_STD
from motion_clip_jax.models.clip import CLIP, CLIPConfig, clip_config, init_clip
from motion_clip_jax.synthetic import world
from motion_clip_jax.train import metrics as metrics_lib
from motion_clip_jax.train import optim
from motion_clip_jax.train.providers import provider

# Bump when the recipe changes in a way the settings do not show: old cache files become stale.
# 1: contrastive only. 2: + the attribute head (and the cache key also holds world.WORLD_VERSION).
RECIPE_VERSION = 2
MAX_LOGIT_SCALE = math.log(100.0)  # CLIP clamps exp(logit_scale) to 100

# Defaults: about 2 minutes on the shared 2-core CPU box (see docs/pretrain_clip.md).
DEFAULT_STEPS = 2500
DEFAULT_BATCH_SIZE = 64
DEFAULT_LEARNING_RATE = 1e-3
DEFAULT_POOL_SIZE = 30_000
DEFAULT_WARMUP_STEPS = 100
DEFAULT_WEIGHT_DECAY = 0.1
DEFAULT_ATTRIBUTE_WEIGHT = 1.0
CAPTION_STYLES = ("rich", "plain")
# Regression columns of the attribute head, then one logit per world.SHAPES entry.
ATTRIBUTES = ("x", "y", "size", "angle_cos", "angle_sin")


@dataclasses.dataclass(frozen=True)
class PretrainSettings:
    """The settings that change the pretrained weights (the seed aside; logging does not)."""

    steps: int = DEFAULT_STEPS
    batch_size: int = DEFAULT_BATCH_SIZE
    learning_rate: float = DEFAULT_LEARNING_RATE
    size: int = 32
    clip_preset: str = "tiny"
    pool_size: int = DEFAULT_POOL_SIZE
    caption_style: str = "rich"
    warmup_steps: int = DEFAULT_WARMUP_STEPS  # linear warm-up, then cosine decay to 0
    weight_decay: float = DEFAULT_WEIGHT_DECAY
    attribute_weight: float = DEFAULT_ATTRIBUTE_WEIGHT

    @property
    def final_lr_fraction(self) -> float:
        """train/optim's schedule decays to learning_rate * this: to 0."""
        return 0.0

    def __post_init__(self):
        problems = []
        if not isinstance(self.steps, int) or self.steps < 1:
            problems.append(f"steps={self.steps!r} must be an int >= 1")
        if not isinstance(self.batch_size, int) or self.batch_size < 2:
            problems.append(f"batch_size={self.batch_size!r} must be an int >= 2")
        if not self.learning_rate > 0:
            problems.append(f"learning_rate={self.learning_rate!r} must be > 0")
        if not isinstance(self.pool_size, int) or self.pool_size < self.batch_size:
            problems.append(
                f"pool_size={self.pool_size!r} must be an int >= batch_size={self.batch_size}"
            )
        if not isinstance(self.warmup_steps, int) or self.warmup_steps < 0:
            problems.append(f"warmup_steps={self.warmup_steps!r} must be an int >= 0")
        if self.caption_style not in CAPTION_STYLES:
            problems.append(f"caption_style={self.caption_style!r} must be one of {CAPTION_STYLES}")
        if not self.weight_decay >= 0:
            problems.append(f"weight_decay={self.weight_decay!r} must be >= 0")
        if not self.attribute_weight >= 0:
            problems.append(f"attribute_weight={self.attribute_weight!r} must be >= 0")
        if problems:
            raise ValueError("pretrain_tiny_clip: " + "; ".join(problems))


def settings_of(**settings: Any) -> PretrainSettings:
    """PretrainSettings from keyword settings; an unknown name is a TypeError naming it."""
    known = [f.name for f in dataclasses.fields(PretrainSettings)]
    unknown = sorted(set(settings) - set(known))
    if unknown:
        raise TypeError(f"unknown pretraining settings {unknown}; known: {sorted(known)}")
    return PretrainSettings(**settings)


def _key_settings(settings: PretrainSettings) -> dict[str, Any]:
    """The settings as the cache key holds them (1 and 1.0: one setting)."""
    full = dataclasses.asdict(settings)
    for name in ("learning_rate", "weight_decay", "attribute_weight"):
        full[name] = float(full[name])
    return full


def normalize_frames(frames: jax.Array | np.ndarray) -> jax.Array:
    """uint8 (..., H, W, 3) frames -> float32 CLIP-normalised pixels."""
    x = jnp.asarray(frames, jnp.float32) / 255.0
    return (x - jnp.asarray(CLIP_MEAN)) / jnp.asarray(CLIP_STD)


GRID = 8  # rich captions name the centre's cell in a GRID x GRID grid: rows 1-8, columns a-h
_COLUMN_NAMES = "abcdefgh"
# Tilt in quarters of the shape's symmetry period (90 degrees for a square, 120 for a triangle,
# 360 for an arrow): upright, a quarter clockwise, half way, three quarters. One token each, and no
# word (or digit) serves two attributes, so the tiny text tower need not bind a shared token to
# its attribute.
_TILT_NAMES = ("straight", "tipped", "angled", "twisted")


def _cell(value: float, bins: int) -> int:
    """0-based equal-width bin of [0.1, 0.9] holding `value` (shape centres stay in about it)."""
    return min(max(int((value - 0.1) / 0.8 * bins), 0), bins - 1)


def rich_caption(shape: str, colour: str, x: float, y: float, extent: float, angle: float) -> str:
    """A finer caption than `world.caption`: 8x8 grid cell, 3 sizes, tilt in 4 steps.

    x, y: centre relative to the side; extent relative to the side; angle in degrees clockwise.
    E.g. "small red square tipped row 1 column h" (row 1 is the top, column a the left).
    Words are few and one token each: the text tower's cost grows with the caption length.
    Circles have no tilt word.
    """
    size_word = "small" if extent < 0.25 else "large" if extent > 0.38 else "medium"
    text = f"{size_word} {colour} {shape}"
    if world.SYMMETRY_ORDER[shape]:
        period = 360.0 / world.SYMMETRY_ORDER[shape]
        # Bins centred on 0, 1/4, 1/2, 3/4 of the period.
        phase = ((angle % period) / period + 0.5 / len(_TILT_NAMES)) % 1.0
        text += " " + _TILT_NAMES[min(int(phase * len(_TILT_NAMES)), len(_TILT_NAMES) - 1)]
    return f"{text} row {_cell(y, GRID) + 1} column {_COLUMN_NAMES[_cell(x, GRID)]}"


def captions_for(attributes: dict[str, np.ndarray], style: str) -> list[str]:
    """Captions (N,) of frames from `render_static_frames`' attributes, in `style` (CAPTION_STYLES)."""
    colours = list(world.COLOURS)
    rows = zip(
        attributes["shape"],
        attributes["colour"],
        attributes["x"],
        attributes["y"],
        attributes["size"],
        attributes["angle"],
    )
    if style == "plain":
        return [world.caption(world.SHAPES[s], colours[c], x, y, e) for s, c, x, y, e, _ in rows]
    if style == "rich":
        return [rich_caption(world.SHAPES[s], colours[c], x, y, e, a) for s, c, x, y, e, a in rows]
    raise ValueError(f"caption_style={style!r}: must be one of {CAPTION_STYLES}")


def attribute_targets(attributes: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The attribute head's targets from `render_static_frames`' attributes.

    Returns values (N, 5) float32 in ATTRIBUTES order, scaled to unit spread (x, y: about
    [0.1, 0.9] -> [-2, 2]; size [0.15, 0.5] -> [-1.75, 1.75]; the angle's cos, sin as they are),
    and weights (N, 5): 0 for a circle's angle columns (it shows no angle), else 1.
    """
    angle = world.visible_angle(attributes["shape"], attributes["angle"])
    values = np.stack(
        [
            (attributes["x"] - 0.5) / 0.2,
            (attributes["y"] - 0.5) / 0.2,
            (attributes["size"] - 0.325) / 0.1,
            angle[:, 0],
            angle[:, 1],
        ],
        axis=1,
    ).astype(np.float32)
    shows_angle = np.array([world.SYMMETRY_ORDER[n] > 0 for n in world.SHAPES])[attributes["shape"]]
    weights = np.ones_like(values)
    weights[:, 3:] = shows_angle[:, None]
    return values, weights


def attribute_loss(
    image_features: jax.Array,
    head: dict[str, jax.Array],
    values: jax.Array,
    weights: jax.Array,
    shape: jax.Array,
) -> jax.Array:
    """Weighted mean squared error of the regression columns + shape cross-entropy.

    image_features (B, D) as encode_image returns them; head {"kernel": (D, 5 + S), "bias":
    (5 + S,)}; values, weights (B, 5) from `attribute_targets`; shape (B,) int.
    """
    out = image_features @ head["kernel"] + head["bias"]
    k = len(ATTRIBUTES)
    mse = (weights * (out[:, :k] - values) ** 2).sum() / weights.sum()
    log_probs = jax.nn.log_softmax(out[:, k:], axis=1)
    cross_entropy = -jnp.take_along_axis(log_probs, shape[:, None], axis=1).mean()
    return mse + cross_entropy


def init_attribute_head(embed_dim: int, seed: int) -> dict[str, np.ndarray]:
    """Head {"kernel": (D, 5 + S), "bias": (5 + S,)}: kernel N(0, 1/D), bias 0."""
    rng = np.random.default_rng([int(seed), 0xA77])
    outputs = len(ATTRIBUTES) + len(world.SHAPES)
    kernel = rng.normal(0, embed_dim**-0.5, (embed_dim, outputs)).astype(np.float32)
    return {"kernel": kernel, "bias": np.zeros(outputs, np.float32)}


def caption_tokens(captions: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Caption ids (N,) (equal captions share an id) and tokens (N, L) int32.

    L is the shortest context holding every caption's EOT: the text tower is causal and reads the
    EOT feature, so the tokens after it never matter.
    """
    unique, caption_ids = np.unique(np.asarray(captions, dtype=object), return_inverse=True)
    unique_tokens = tokenize(list(unique))
    length = int((unique_tokens > 0).sum(axis=1).max())
    return caption_ids.astype(np.int32), unique_tokens[caption_ids, :length]


def epoch_batches(pool_size: int, batch_size: int, rng: np.random.Generator) -> np.ndarray:
    """One epoch's batches (pool_size // batch_size, batch_size) of pool indices, shuffled."""
    order = rng.permutation(pool_size)
    num_batches = pool_size // batch_size  # drop the ragged tail
    return np.sort(order[: num_batches * batch_size].reshape(num_batches, batch_size), axis=1)


def contrastive_loss(
    image_features: jax.Array,
    text_features: jax.Array,
    logit_scale: jax.Array,
    caption_ids: jax.Array,
) -> tuple[jax.Array, jax.Array]:
    """Symmetric InfoNCE with soft targets over equal captions.

    image_features, text_features: (B, D), not normalised; caption_ids: (B,) int.
    Returns (loss, accuracy): accuracy is the fraction of image rows whose best text has the
    row's caption.
    """
    img = image_features / jnp.linalg.norm(image_features, axis=-1, keepdims=True)
    txt = text_features / jnp.linalg.norm(text_features, axis=-1, keepdims=True)
    logits = jnp.exp(jnp.minimum(logit_scale, MAX_LOGIT_SCALE)) * img @ txt.T
    same = (caption_ids[:, None] == caption_ids[None, :]).astype(jnp.float32)
    targets = same / same.sum(axis=1, keepdims=True)  # symmetric: same for the text side
    loss_image = -(targets * jax.nn.log_softmax(logits, axis=1)).sum(axis=1).mean()
    loss_text = -(targets * jax.nn.log_softmax(logits.T, axis=1)).sum(axis=1).mean()
    hit = jnp.take_along_axis(same, jnp.argmax(logits, axis=1)[:, None], axis=1)
    return (loss_image + loss_text) / 2, hit.mean()


def _decay_mask(params: Any) -> Any:
    """Weight decay on matrices only (not gains, biases, class token or logit_scale), as CLIP."""
    return jax.tree_util.tree_map(lambda x: x.ndim >= 2, params)


def make_optimizer(weight_decay: float) -> optax.GradientTransformation:
    """AdamW as CLIP (b2 0.98, eps 1e-6, decay on matrices only); the learning rate is a state
    hyperparameter the train step sets, so one compiled step serves every schedule."""
    return optax.inject_hyperparams(optax.adamw, static_args=("mask",))(
        learning_rate=0.0, b1=0.9, b2=0.98, eps=1e-6, weight_decay=weight_decay, mask=_decay_mask
    )


@functools.lru_cache(maxsize=4)
def make_train_step(config: CLIPConfig) -> Callable[..., tuple[Any, Any, jax.Array]]:
    """Jitted (state, opt_state, learning_rate, attribute_weight, batch) -> (state, opt_state,
    metrics {loss, contrastive, attribute, accuracy}), for `make_optimizer`'s state.

    state: {"clip": CLIP params, "head": attribute head}; batch: {frames uint8 (B, H, W, 3),
    tokens (B, L), caption_ids (B,), values, weights (B, 5), shape (B,)}. The loss is
    contrastive + attribute_weight * attribute. Cached per config: repeated pretraining runs in
    one process compile once.
    """
    module = CLIP(config)
    optimizer = make_optimizer(0.0)  # weight decay and learning rate come with opt_state

    def loss_fn(state, attribute_weight, batch):
        variables = {"params": state["clip"]}
        img = module.apply(variables, normalize_frames(batch["frames"]), method=CLIP.encode_image)
        txt = module.apply(variables, batch["tokens"], method=CLIP.encode_text)
        scale = state["clip"]["logit_scale"]
        contrastive, accuracy = contrastive_loss(img, txt, scale, batch["caption_ids"])
        attribute = attribute_loss(
            img, state["head"], batch["values"], batch["weights"], batch["shape"]
        )
        loss = contrastive + attribute_weight * attribute
        return loss, {
            "loss": loss,
            "contrastive": contrastive,
            "attribute": attribute,
            "accuracy": accuracy,
        }

    def step(state, opt_state, learning_rate, attribute_weight, batch):
        grads, metrics = jax.grad(loss_fn, has_aux=True)(state, attribute_weight, batch)
        opt_state.hyperparams["learning_rate"] = learning_rate
        updates, opt_state = optimizer.update(grads, opt_state, state)
        state = optax.apply_updates(state, updates)
        # CLIP clamps the temperature parameter itself, not only its use in the loss.
        state["clip"]["logit_scale"] = jnp.clip(state["clip"]["logit_scale"], 0.0, MAX_LOGIT_SCALE)
        return state, opt_state, metrics

    return jax.jit(step, donate_argnums=(0, 1))


def pretrain_tiny_clip(
    *,
    seed: int = 0,
    log_every: int = 250,
    log_fn: Callable[[str], Any] | None = print,
    history: list[dict[str, float]] | None = None,
    **settings: Any,
) -> tuple[CLIPConfig, dict[str, Any]]:
    """Pretrains a CLIP on static synthetic frames, their captions and their attributes.
    Deterministic given seed; `settings` are PretrainSettings' fields.

    A pool of `pool_size` frames is rendered once (seed `seed`) and shuffled every epoch. Loss:
    contrastive + attribute_weight * attribute (`attribute_loss`; 0: plain CLIP). AdamW (b2 0.98,
    eps 1e-6, decay on matrices only) on train/optim's schedule (linear warm-up, cosine decay to
    0). If `history` is given, one dict {step, loss, contrastive, attribute, accuracy,
    steps_per_s} per log is appended to it (means since the last log). Returns (config, params)
    with params a numpy tree; the attribute head is dropped.
    """
    s = settings_of(**settings)
    log = log_fn or (lambda _: None)
    config = clip_config(s.clip_preset, image_resolution=s.size)
    start = time.time()
    pool = _render_pool(s, seed, log)
    _, variables = init_clip(config, jax.random.PRNGKey(seed))
    state = {"clip": variables["params"], "head": init_attribute_head(config.embed_dim, seed)}
    schedule = optim.learning_rate_schedule(s, s.steps)
    learning_rates = np.asarray(jax.vmap(schedule)(jnp.arange(s.steps)), np.float32)
    opt_state = make_optimizer(s.weight_decay).init(state)
    train_step = make_train_step(config)
    weight = np.float32(s.attribute_weight)

    order_rng = np.random.default_rng([int(seed), 0xC11B])
    batches, cursor = np.zeros((0, s.batch_size), np.int64), 0
    pending: list[tuple[int, dict[str, jax.Array]]] = []
    loop_start = time.time()
    for step in range(s.steps):
        if cursor == len(batches):  # a new epoch: reshuffle
            batches, cursor = epoch_batches(s.pool_size, s.batch_size, order_rng), 0
        batch = {name: column[batches[cursor]] for name, column in pool.items()}
        cursor += 1
        state, opt_state, metrics = train_step(
            state, opt_state, learning_rates[step], weight, batch
        )
        pending.append((step + 1, metrics))
        if (step + 1) % log_every == 0 or step + 1 == s.steps:
            window = metrics_lib.finite_metrics(pending, _non_finite)  # also waits for the steps
            means = metrics_lib.window_means(window)
            pending = []
            rate = (step + 1) / (time.time() - loop_start)
            log(
                f"pretrain_clip: step {step + 1}/{s.steps} loss {means['loss']:.4f} "
                f"(contrastive {means['contrastive']:.4f}, attribute {means['attribute']:.4f}) "
                f"batch-acc {means['accuracy']:.3f} lr {learning_rates[step]:.2e} "
                f"{rate:.1f} steps/s ETA {(s.steps - step - 1) / rate:.0f}s"
            )
            if history is not None:
                history.append({"step": step + 1, **means, "steps_per_s": rate})
    log(f"pretrain_clip: done in {time.time() - start:.1f}s")
    return config, jax.tree_util.tree_map(np.asarray, state["clip"])


def _non_finite(step: int, loss: float) -> FloatingPointError:
    return FloatingPointError(f"pretrain_clip: loss is {loss} at step {step}")


def _render_pool(
    s: PretrainSettings, seed: int, log: Callable[[str], Any]
) -> dict[str, np.ndarray]:
    """The frames of the pretraining pool with their tokens and attribute targets (N, ...)."""
    start = time.time()
    frames, _, attributes = world.render_static_frames(s.pool_size, seed=seed, size=s.size)
    caption_ids, tokens = caption_tokens(captions_for(attributes, s.caption_style))
    values, weights = attribute_targets(attributes)
    log(
        f"pretrain_clip: {s.pool_size} frames ({caption_ids.max() + 1} distinct "
        f"{s.caption_style} captions, {tokens.shape[1]} tokens) rendered in "
        f"{time.time() - start:.1f}s"
    )
    return {"frames": frames, "tokens": tokens, "caption_ids": caption_ids, "values": values,
            "weights": weights, "shape": attributes["shape"]}  # fmt: skip


def cache_filename(*, seed: int = 0, **settings: Any) -> str:
    """The cache file name for these settings: readable key settings + a hash of all of them.

    `settings` are `pretrain_tiny_clip`'s keyword arguments (defaults filled in here).
    """
    full = {**_key_settings(settings_of(**settings)), **_versions(seed)}
    digest = hashlib.sha256(json.dumps(full, sort_keys=True).encode()).hexdigest()[:10]
    return (
        f"tiny_clip-r{RECIPE_VERSION}w{world.WORLD_VERSION}-{full['clip_preset']}-"
        f"{full['size']}px-seed{seed}-{full['steps']}x{full['batch_size']}-{digest}.msgpack"
    )


def _versions(seed: int) -> dict[str, int]:
    """What the cache key holds beyond the settings: the seed, the recipe and the world."""
    return {"seed": seed, "recipe_version": RECIPE_VERSION, "world_version": world.WORLD_VERSION}


def get_or_pretrain_tiny_clip(
    cache_dir: str | os.PathLike,
    *,
    seed: int = 0,
    log_fn: Callable[[str], Any] | None = print,
    log_every: int = 250,
    **settings: Any,
) -> str:
    """Path of the cached pretrained CLIP for these settings; pretrains and writes it if missing.

    The file (`save_clip` format, written atomically) is named by `cache_filename`, so other
    settings never reuse it. An existing file that does not load, or holds another config, is an
    error naming it (delete it to rebuild). A `<file>.json` beside it records the run (settings,
    seconds, loss history).
    """
    path = os.path.join(os.fspath(cache_dir), cache_filename(seed=seed, **settings))
    chosen = settings_of(**settings)
    expected = clip_config(chosen.clip_preset, image_resolution=chosen.size)
    if os.path.exists(path):
        try:
            module, _ = flax_file.load_clip(path)
        except Exception as e:
            raise ValueError(
                f"cached tiny CLIP {path} is unreadable ({e}); delete it to pretrain again"
            ) from e
        if module.config != expected:
            raise ValueError(
                f"cached tiny CLIP {path} holds config {module.config}, expected {expected}; "
                "delete it to pretrain again"
            )
        if log_fn:
            log_fn(f"pretrain_clip: reusing {path}")
        return path
    history: list[dict[str, float]] = []
    start = time.time()
    config, params = pretrain_tiny_clip(
        seed=seed, log_fn=log_fn, log_every=log_every, history=history, **settings
    )
    seconds = time.time() - start
    flax_file.save_clip(path, config, params)
    record = {
        "settings": {**dataclasses.asdict(chosen), **_versions(seed)},
        "seconds": round(seconds, 1),
        "final_loss": history[-1]["loss"],
        "history": history,
    }
    tmp = path + ".json.tmp"
    with open(tmp, "w") as f:
        json.dump(record, f, indent=1)
    os.replace(tmp, path + ".json")
    if log_fn:
        log_fn(f"pretrain_clip: wrote {path} ({seconds:.0f}s)")
    return path


@provider(cache_dir="", pretrain_steps=-1, seed=0)
def provide_clip(settings: dict, *, image_size: int, log: Callable[[str], Any]) -> str:
    """CLIP source "synthetic_tiny_clip": the cached tiny CLIP of `image_size` px (pretrained now
    if missing). Settings: cache_dir (required), pretrain_steps (> 0: fewer steps and a pool of
    at most steps x batch frames, for tests; -1: the default run), seed (of the pretraining). The frozen CLIP stands for OpenAI's one released
    model, so its seed is its own: every training seed and few-shot draw freezes the same CLIP."""
    if not settings["cache_dir"]:
        raise ValueError("config.clip_source_settings.cache_dir: set it to the tiny CLIP's cache")
    options = {"size": image_size}
    if settings["pretrain_steps"] > 0:
        options["steps"] = settings["pretrain_steps"]
        # A short pretraining renders only the frames its batches can reach (rendering the
        # default pool costs more than 20 steps of training).
        reach = options["steps"] * DEFAULT_BATCH_SIZE
        options["pool_size"] = min(DEFAULT_POOL_SIZE, reach)
    return get_or_pretrain_tiny_clip(
        settings["cache_dir"], seed=settings["seed"], log_fn=log, **options
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache_dir", required=True, help="folder of the cached msgpack")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    parser.add_argument("--batch_size", type=int, default=DEFAULT_BATCH_SIZE)
    parser.add_argument("--learning_rate", type=float, default=DEFAULT_LEARNING_RATE)
    parser.add_argument("--pool_size", type=int, default=DEFAULT_POOL_SIZE)
    parser.add_argument("--caption_style", choices=CAPTION_STYLES, default="rich")
    parser.add_argument("--attribute_weight", type=float, default=DEFAULT_ATTRIBUTE_WEIGHT)
    # Each flag is a keyword of get_or_pretrain_tiny_clip, by the same name.
    path = get_or_pretrain_tiny_clip(**vars(parser.parse_args(argv)))
    print(path)


if __name__ == "__main__":
    main()
