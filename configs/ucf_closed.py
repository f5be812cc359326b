"""UCF-101 closed-set (paper §4.2, Fig. 3, Tab. 1): one official split, ViT-B/16, T = 8.

  python -m motion_clip_jax.main --config=configs/ucf_closed.py:1 --workdir=workdirs/ucf_s1
  python -m motion_clip_jax.main --config=configs/ucf_closed.py:1,baseline ...   # ablation variant (Fig. 3a)

The argument is SPLIT[,VARIANT], VARIANT one of clip, baseline, baseline_mcb, mmb, mmb_map, full.

Needs data/tfds/ucf101_split{1,2,3} (python -m data_prep.build_tfrecords ucf101 ..., docs/data.md)
and data/clip/vit_b16.msgpack (python -m motion_clip_jax.convert to-flax ..., README).
"""

from motion_clip_jax.models.config import model_config
from motion_clip_jax.train.config import base_config


def get_config(arg: str = "1"):
    split, _, variant = arg.partition(",")
    if split not in ("1", "2", "3"):
        raise ValueError(f"ucf_closed: split must be 1, 2 or 3, got {split!r}")
    c = base_config()
    c.model = model_config(variant or "full")
    c.clip_checkpoint = "data/clip/vit_b16.msgpack"
    c.data.dataset_dir = f"data/tfds/ucf101_split{split}"
    # Paper: 8 x V100, batch 128, SGD lr 0.0025, cosine. Epochs and warm-up are not given: we use
    # X-CLIP's 30 epochs and ~2 epochs of warm-up (9,537 videos = 75 steps per epoch).
    c.train.batch_size = 128
    c.train.num_epochs = 30
    c.optim.learning_rate = 0.0025
    c.optim.warmup_steps = 150
    c.train.checkpoint_every_steps = 200
    return c
