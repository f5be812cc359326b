"""Shared by the configs of the real datasets: the paper's CLIP and a checked variant
(`paper_config`), and the closed-set recipe on one official split (hmdb_closed.py, ucf_closed.py)."""

from motion_clip_jax.core.model_spec import VARIANTS
from motion_clip_jax.models.model_config import model_config
from motion_clip_jax.train.config import base_config


def check_variant(variant: str, what: str) -> str:
    """`variant` if it names one of model_spec.VARIANTS; else a ValueError naming the known ones."""
    if variant not in VARIANTS:
        raise ValueError(f"{what}: unknown variant {variant!r}; known: {', '.join(VARIANTS)}")
    return variant


# The paper's frozen CLIP, ViT-B/16 (python -m motion_clip_jax.convert to-flax ..., README).
CLIP_CHECKPOINT = "data/clip/vit_b16.msgpack"


def paper_config(variant: str, what: str):
    """base_config() with the paper's CLIP and the model of `variant` ('' for the full model),
    checked; `what` names the config in an error."""
    c = base_config()
    c.model = model_config(check_variant(variant or "full", what))
    c.clip_checkpoint = CLIP_CHECKPOINT
    return c


def closed_set_config(dataset: str, arg: str):
    """dataset: hmdb51 | ucf101; arg: SPLIT[,VARIANT]."""
    split, _, variant = arg.partition(",")
    if split not in ("1", "2", "3"):
        raise ValueError(f"{dataset} closed-set: split must be 1, 2 or 3, got {split!r}")
    c = paper_config(variant, f"{dataset} closed-set")
    c.data.dataset_dir = f"data/tfds/{dataset}_split{split}"
    # Paper §4.2: 8 x V100, batch 128, SGD, an *initial* learning rate of 0.0025, cosine schedule:
    # the run starts at that rate (no warm-up; a run asks for one with
    # --config.optim.warmup_steps=N, e.g. 56 / 150 = 2 epochs of HMDB-51 / UCF-101, our earlier
    # default). Epochs are not given: we use X-CLIP's 30.
    c.train.batch_size = 128
    c.train.num_epochs = 30
    c.optim.learning_rate = 0.0025
    c.optim.warmup_steps = 0
    c.train.checkpoint_every_steps = 200
    return c
