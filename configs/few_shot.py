"""Few-shot (paper §4.3, Tab. 4-5): k videos per class drawn from split-1 train, tested on split-1
test; batch 32, SGD lr 0.0015. The argument is "DATASET,K,DRAW[,VARIANT]":

  python -m motion_clip_jax.main --config=configs/few_shot.py:hmdb51,2,0 --workdir=workdirs/hmdb_2shot_d0
  python -m motion_clip_jax.main --config=configs/few_shot.py:hmdb51,2,0,baseline ...  # Tab. 5 rows
  python -m motion_clip_jax.experiments.paper table5 --dataset hmdb51   # every row, k and draw

DATASET: hmdb51 | ucf101 (k in 2, 4, 8, 16) or kinetics400 (k = 5). The drawn video list is written
to the workdir (few_shot_<k>shot_seed<draw>.txt); the draw is a pure function of (list, k, draw).
"""

from configs._closed_set import paper_config
from motion_clip_jax.core.classnames import load_classnames

DATASETS = {
    "hmdb51": ("data/tfds/hmdb51_split1", "train", "test"),
    "ucf101": ("data/tfds/ucf101_split1", "train", "test"),
    "kinetics400": ("data/tfds/kinetics400", "train", "validation"),
}


def few_shot_steps(k: int, num_classes: int, batch_size: int) -> int:
    """The step budget of a k-shot run, the same for every variant (not given in the paper):
    ~50 epochs of the k-shot set, at least 100 steps."""
    return max(100, 50 * k * num_classes // batch_size)


def apply_recipe(c, k: int, draw: int, num_classes: int) -> None:
    """The few-shot protocol on config `c`, in place: k videos per class drawn with seed `draw`
    (which also seeds the run), batch 32, the step budget, a checkpoint every 100 steps."""
    c.data.few_shot_k = k
    c.data.few_shot_seed = draw
    c.seed = draw
    c.train.batch_size = 32
    c.train.num_steps = few_shot_steps(k, num_classes, c.train.batch_size)
    c.train.checkpoint_every_steps = 100


def get_config(arg: str = "hmdb51,2,0"):
    parts = arg.split(",")
    try:
        dataset, k, draw = parts[:3]
        k, draw = int(k), int(draw)
        if len(parts) > 4:
            raise ValueError
    except ValueError:
        raise ValueError(
            f"few_shot: argument must be DATASET,K,DRAW[,VARIANT] (e.g. hmdb51,2,0), got {arg!r}"
        ) from None
    if dataset not in DATASETS:
        raise ValueError(f"few_shot: dataset must be one of {sorted(DATASETS)}, got {dataset!r}")
    c = paper_config(parts[3] if len(parts) == 4 else "full", "few_shot")
    c.data.dataset_dir, c.data.train_split, c.data.eval_split = DATASETS[dataset]
    apply_recipe(c, k, draw, len(load_classnames(dataset)))
    c.optim.learning_rate = 0.0015  # paper §4.3: the *initial* rate, so no warm-up (ask for one
    c.optim.warmup_steps = 0  # with --config.optim.warmup_steps=N; 10 was our earlier default)
    return c
