"""The README's main job: the paper's full model on the synthetic motion world, on a 2-core CPU.

With nothing downloaded it writes the synthetic motion dataset (8 classes in 4 order-pairs: the two
classes of a pair hold the same frames in opposite order; the rotating pair turns a clock hand) if
missing, pretrains (or reuses) the tiny frozen CLIP of that world (contrastive + attribute loss,
cached by recipe and world version, docs/pretrain_clip.md), trains the full model, evaluates, and
prints a results table.

  python -m motion_clip_jax.main --config=configs/demo.py --workdir=workdirs/demo
  python -m motion_clip_jax.main --config=configs/demo.py:baseline --workdir=workdirs/demo_baseline
"""

import ml_collections

import motion_clip_jax.synthetic  # noqa: F401 (registers the providers this config names)
from motion_clip_jax.models.model_config import model_config
from motion_clip_jax.train.config import base_config


def get_config(variant: str = "full"):
    c = base_config()
    c.seed = 0
    # The frozen CLIP: the synthetic world's tiny CLIP, pretrained once (2500 steps), then reused.
    c.clip_source = "synthetic_tiny_clip"
    c.clip_source_settings = ml_collections.ConfigDict(
        dict(cache_dir="data/tiny_clip", pretrain_steps=-1)  # pretrain_steps > 0: fewer (tests)
    )
    c.model = model_config(
        variant,
        clip_model="tiny",  # 32 px, patch 8, width 64, embed D = 64
        num_frames=8,
        motion_step=4,
        mmb_heads=4,
        mmb_mlp_ratio=2.0,
        ctx_init="a video of a shape",  # H = 5 tokens; prompts read "... a shape moving left."
        n_ctx=5,
        adapter_reduction=4,
        mcb_heads=4,
        mcb_qkv_dim=32,
        label_smoothing=0.1,
    )
    c.data.dataset_dir = "data/synthetic_motion"
    c.data.source = "synthetic_motion"  # written into dataset_dir when missing
    c.data.source_settings = ml_collections.ConfigDict(dict(num_train=800, num_test=400, seed=0))
    c.data.crop_size = 32
    c.data.flip = False  # a flip turns "moving left" into "moving right"

    c.train.batch_size = 64
    c.train.num_epochs = 40
    c.train.log_every_steps = 50
    c.train.checkpoint_every_steps = 200
    c.optim.name = "adamw"
    c.optim.learning_rate = 1e-3
    c.optim.weight_decay = 1e-4
    c.optim.warmup_steps = 25

    c.eval.batch_size = 100
    return c
