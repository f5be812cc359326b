"""The synthetic motion world: a dataset only an order-aware model can solve, its tiny CLIP.

world: the renderer, the 8 order-paired classes and the dataset writer. pretrain_clip: contrastive
pretraining of the tiny frozen CLIP (and its cache). probe: what a frozen tower's frame feature
knows.

The engine (motion_clip_jax.train) never imports this package: importing it registers its
providers (`data.source = "synthetic_motion"`, `clip_source = "synthetic_tiny_clip"`) with
motion_clip_jax/train/providers.py, which imports their modules when a config names them. Config
files that name them import this package.
"""

from motion_clip_jax.train import providers

providers.register("data.source", "synthetic_motion", f"{__name__}.world:provide_dataset")
providers.register("clip_source", "synthetic_tiny_clip", f"{__name__}.pretrain_clip:provide_clip")
