"""Zero-shot (paper §4.4, Tab. 6-7). The argument is SOURCE[,VARIANT]; SOURCE is one of:

k400: train on Kinetics-400 (as configs/k400_closed.py), then evaluate with NO tuning on the
      test sets of HMDB-51 and UCF-101, 3 splits each, with the TARGET's class names.
hmdb: train on HMDB-51 split 1, evaluate on UCF-101's 3 test splits (Tab. 7).
ucf:  train on UCF-101 split 1, evaluate on HMDB-51's 3 test splits (Tab. 7).

Table 7 trains on split 1 of the source only (the paper does not say which source split(s) it
used) and reports the mean +- sample std over the target's 3 test splits.

python -m motion_clip_jax.main --config=configs/zero_shot.py:k400 --workdir=workdirs/zs_k400
python -m motion_clip_jax.main --config=configs/zero_shot.py:hmdb,baseline ...  # Tab. 7 Baseline
python -m motion_clip_jax.experiments.summarize workdirs/zs_k400   # mean +- std over splits
python -m motion_clip_jax.experiments.paper table6   # or table7: every run, and the table
"""

import ml_collections

from configs import hmdb_closed, k400_closed, ucf_closed
from configs._closed_set import check_variant


def _targets(dataset: str) -> ml_collections.ConfigDict:
    extra = ml_collections.ConfigDict()
    for split in (1, 2, 3):
        extra[f"{dataset}_split{split}"] = ml_collections.ConfigDict(
            dict(dataset_dir=f"data/tfds/{dataset}_split{split}", split="test", class_names="")
        )
    return extra


def get_config(arg: str = "k400"):
    source, _, variant = arg.partition(",")
    variant = check_variant(variant or "full", "zero_shot")
    if source == "k400":
        c = k400_closed.get_config(f"validation,{variant}")
        targets = [_targets("hmdb51"), _targets("ucf101")]
    elif source == "hmdb":
        c = hmdb_closed.get_config(f"1,{variant}")
        targets = [_targets("ucf101")]
    elif source == "ucf":
        c = ucf_closed.get_config(f"1,{variant}")
        targets = [_targets("hmdb51")]
    else:
        raise ValueError(f"zero_shot: source must be k400, hmdb or ucf, got {source!r}")
    for t in targets:
        for name, value in t.items():
            c.eval.extra[name] = value
    return c
