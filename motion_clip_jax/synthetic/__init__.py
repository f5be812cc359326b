"""The synthetic motion world: a dataset only an order-aware model can solve, its tiny CLIP.

world: the renderer, the 8 order-paired classes and the dataset writer. pretrain_clip: contrastive
pretraining of the tiny frozen CLIP (and its cache). probe: what a frozen tower's frame feature
knows. ablation: the paper's ablation at small scale on this world.

The engine (motion_clip_jax.train) never imports this package: a config names its providers
(`data.source = "synthetic_motion"`, `clip_source = "synthetic_tiny_clip"`) and
motion_clip_jax/train/providers.py resolves them by dotted path when they are configured.
"""
