"""The synthetic motion world (configs/demo.py) in the paper's protocols, for the paper driver:

  python -m motion_clip_jax.experiments.paper table5 --dataset synthetic

The argument is PROTOCOL,VARIANT[,K,DRAW]:
  closed,VARIANT          train on the world's train split, test on its test split (as the demo);
  few_shot,VARIANT,K,DRAW the few-shot recipe of configs/few_shot.py (`apply_recipe`: K videos
                          per class drawn from the train split with seed DRAW, which also seeds
                          the run; batch 32; its step budget, every variant the same); 25 other
                          training videos per class are evaluated as the set 'validation'
                          (held out of every draw of the seed), for choosing the learning rate
                          (experiments/paper.py --choose_lr);
  zero_shot,VARIANT       closed, plus the test split evaluated again as three "target" sets. The
                          world has one class set, so this exercises the zero-shot plumbing of
                          Tables 6-7 (eval.extra, mean +- std over target splits); it is not a
                          zero-shot result.
"""

import ml_collections

from configs import demo, few_shot
from configs._closed_set import check_variant
from motion_clip_jax.synthetic import world

PROTOCOLS = ("closed", "few_shot", "zero_shot")


def get_config(arg: str = "closed,full"):
    parts = arg.split(",")
    protocol = parts[0]
    if protocol not in PROTOCOLS or len(parts) != (4 if protocol == "few_shot" else 2):
        raise ValueError(
            "synthetic: argument must be closed,VARIANT | few_shot,VARIANT,K,DRAW | "
            f"zero_shot,VARIANT, got {arg!r}"
        )
    c = demo.get_config(check_variant(parts[1], "synthetic"))
    if protocol == "few_shot":
        try:
            k, draw = int(parts[2]), int(parts[3])
        except ValueError:
            raise ValueError(f"synthetic: K and DRAW must be integers, got {arg!r}") from None
        few_shot.apply_recipe(c, k, draw, len(world.CLASS_NAMES))
        c.eval.validation_per_class = 25  # the world has 100 training videos per class
        c.eval.multiview = False  # clips hold T frames of the crop size: 12 views = the single one
        c.eval.confusion_png = False
    if protocol == "zero_shot":
        for split in (1, 2, 3):
            c.eval.extra[f"synthetic_split{split}"] = ml_collections.ConfigDict(
                # A reference: an override of data.dataset_dir moves the targets with it.
                dict(dataset_dir=c.data.get_ref("dataset_dir"), split="test", class_names="")
            )
    return c
