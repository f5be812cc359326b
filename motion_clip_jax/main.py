"""Train and evaluate: python -m motion_clip_jax.main --config=configs/<name>.py --workdir=DIR.

Overrides: --config.train.batch_size=64 --config.model.motion_step=2 ... Rerunning the same command
on the same workdir resumes from its latest checkpoint.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Experiment config file.", lock_config=True)
flags.DEFINE_string("workdir", None, "Checkpoints, metrics.jsonl, eval_results.json go here.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    if not FLAGS["verbosity"].present:  # progress goes to stdout; library INFO chatter is muted
        logging.set_verbosity(logging.WARNING)
    # Keep TensorFlow (tf.data only) off accelerators: JAX owns them.
    import tensorflow as tf

    tf.config.set_visible_devices([], "GPU")

    from motion_clip_jax.train import trainer

    trainer.initialize_distributed(FLAGS.config)
    trainer.train_and_evaluate(FLAGS.config, FLAGS.workdir)


if __name__ == "__main__":
    app.run(main)
