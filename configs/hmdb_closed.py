"""HMDB-51 closed-set (paper §4.2, Fig. 3, Tab. 1): one official split, ViT-B/16, T = 8.

  python -m motion_clip_jax.main --config=configs/hmdb_closed.py:1 --workdir=workdirs/hmdb_s1
  python -m motion_clip_jax.main --config=configs/hmdb_closed.py:1,baseline ...  # Fig. 3a variant

The argument is SPLIT[,VARIANT], VARIANT one of clip, baseline, baseline_mcb, mmb, mmb_map, full.
Needs data/tfds/hmdb51_split{1,2,3} (python -m data_prep.build_tfrecords hmdb51 ..., docs/data.md)
and data/clip/vit_b16.msgpack (python -m motion_clip_jax.convert to-flax ..., README).
"""

from configs._closed_set import closed_set_config


def get_config(arg: str = "1"):
    return closed_set_config("hmdb51", arg)
