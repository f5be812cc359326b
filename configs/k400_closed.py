"""Kinetics-400 closed-set (paper §4.4, first stage of zero-shot): train split, validation split.

  python -m motion_clip_jax.main --config=configs/k400_closed.py --workdir=workdirs/k400

Paper: 32 x V100, batch 256, SGD lr 0.0012, 10 epochs. Needs data/tfds/kinetics400 (data_prep
kinetics400 ...) and data/clip/vit_b16.msgpack. The argument is EVAL_SPLIT[,VARIANT]: the
evaluation split (validation by default; test if your copy has one) and the model variant.
"""

from configs._closed_set import paper_config


def get_config(arg: str = "validation"):
    eval_split, _, variant = arg.partition(",")
    c = paper_config(variant, "k400_closed")
    c.data.dataset_dir = "data/tfds/kinetics400"
    c.data.train_split = "train"
    c.data.eval_split = eval_split or "validation"
    c.train.batch_size = 256
    c.train.num_epochs = 10
    c.optim.learning_rate = 0.0012
    # Paper §4.4: an *initial* learning rate of 0.0012: no warm-up unless a run asks for one
    # (--config.optim.warmup_steps=900 is ~1 epoch of ~230k videos at batch 256).
    c.optim.warmup_steps = 0
    c.train.checkpoint_every_steps = 1000
    c.eval.batch_size = 64
    return c
