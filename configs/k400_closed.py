"""Kinetics-400 closed-set (paper §4.4, first stage of zero-shot): train split, validation split.

  python -m motion_clip_jax.main --config=configs/k400_closed.py --workdir=workdirs/k400

Paper: 32 x V100, batch 256, SGD lr 0.0012, 10 epochs. Needs data/tfds/kinetics400 (data_prep
kinetics400 ...) and data/clip/vit_b16.msgpack. The argument picks the evaluation split
(validation by default; test if your copy has one).
"""

from motion_clip_jax.train.config import base_config


def get_config(eval_split: str = "validation"):
    c = base_config()
    c.clip_checkpoint = "data/clip/vit_b16.msgpack"
    c.data.dataset_dir = "data/tfds/kinetics400"
    c.data.train_split = "train"
    c.data.eval_split = eval_split
    c.train.batch_size = 256
    c.train.num_epochs = 10
    c.optim.learning_rate = 0.0012
    c.optim.warmup_steps = 900  # ~1 epoch of ~230k videos at batch 256
    c.train.checkpoint_every_steps = 1000
    c.eval.batch_size = 64
    return c
