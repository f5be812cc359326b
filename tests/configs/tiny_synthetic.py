"""A seconds-scale config for engine tests: tiny random CLIP, 4-frame 32 px synthetic clips.

--config=tests/configs/tiny_synthetic.py:<dataset_dir>
"""

import ml_collections

from motion_clip_jax.models.model_config import model_config
from motion_clip_jax.synthetic.world import WORLD_VERSION
from motion_clip_jax.train.config import base_config


def tiny_model_config(variant: str = "full", **fields):
    """The full model on the tiny CLIP: 4 frames, s = 2, D = 64 (`fields` override)."""
    return model_config(
        variant,
        clip_model="tiny",
        num_frames=4,
        motion_step=2,
        mmb_heads=4,
        mmb_mlp_ratio=1.0,
        ctx_init="a video of a shape",
        n_ctx=5,
        adapter_reduction=4,
        mcb_heads=4,
        mcb_qkv_dim=32,
        **fields,
    )


# The default folder is shared by runs on one machine: it names the world it holds, so a dataset
# drawn by another version of the world is never met (it would be refused, by design).
DEFAULT_DATASET_DIR = f"/tmp/motion_clip_tests/synthetic_motion_world{WORLD_VERSION}"


def get_config(dataset_dir: str = DEFAULT_DATASET_DIR):
    c = base_config()
    c.allow_random_clip = True
    c.model = tiny_model_config()
    c.data.dataset_dir = dataset_dir
    c.data.source = "synthetic_motion"
    c.data.source_settings = ml_collections.ConfigDict(dict(num_train=48, num_test=16, seed=0))
    c.data.crop_size = 32
    c.data.flip = False
    c.train.batch_size = 8
    c.train.num_steps = 12
    c.train.log_every_steps = 3
    c.train.checkpoint_every_steps = 3
    c.train.keep_checkpoints = 2
    c.optim.name = "sgd"
    c.optim.learning_rate = 0.05
    c.optim.warmup_steps = 2
    c.eval.batch_size = 8
    c.eval.multiview = False
    c.eval.confusion_png = False
    return c
