"""Optimizer and learning-rate schedule from config (optax). State exists for trainable params only."""

from __future__ import annotations

import ml_collections
import optax


def learning_rate_schedule(config: ml_collections.ConfigDict, total_steps: int) -> optax.Schedule:
    """Linear warm-up to `lr`, then cosine decay to `lr * final_lr_fraction` at `total_steps`.

    `config`: config.optim, or any object with learning_rate, warmup_steps, final_lr_fraction
    (the tiny CLIP's pretraining settings)."""
    warmup = min(int(config.warmup_steps), max(total_steps - 1, 0))
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0 if warmup else config.learning_rate,
        peak_value=config.learning_rate,
        warmup_steps=warmup,
        decay_steps=max(total_steps, warmup + 1),
        end_value=config.learning_rate * config.final_lr_fraction,
    )


def make_optimizer(
    config: ml_collections.ConfigDict, total_steps: int
) -> tuple[optax.GradientTransformation, optax.Schedule]:
    """`config` is `config.optim`: sgd (momentum, the paper's) or adamw, optional global-norm clip."""
    schedule = learning_rate_schedule(config, total_steps)
    parts = []
    if config.grad_clip_norm:
        parts.append(optax.clip_by_global_norm(config.grad_clip_norm))
    if config.name == "sgd":
        if config.weight_decay:
            parts.append(optax.add_decayed_weights(config.weight_decay))
        parts.append(
            optax.sgd(schedule, momentum=config.momentum or None, nesterov=config.nesterov)
        )
    elif config.name == "adamw":
        parts.append(
            optax.adamw(schedule, b1=config.b1, b2=config.b2, weight_decay=config.weight_decay)
        )
    else:
        raise ValueError(f"config.optim.name={config.name!r}: must be 'sgd' or 'adamw'")
    return optax.chain(*parts), schedule
