"""Predict the action in a video file with a trained run (JAX).

  python -m motion_clip_jax.inference.predict --workdir DIR --video FILE \\
      [--labels hmdb51|ucf101|kinetics400|FILE] [--top 5] [--json] [--multiview] [--step N]

Prints the top classes with their probabilities: softmax over the K classes, and for
`--multiview` the mean of the 12 views' softmax. `--labels` defaults to the run's own class list;
any list works (zero-shot use). Frames are read by `inference/video.py` (PyAV), exactly as
`python -m motion_clip_jax.pytorch.predict` reads them for an exported model, so the two can be
compared on the same video.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from motion_clip_jax.data.video_file import VideoError
from motion_clip_jax.inference import cli
from motion_clip_jax.inference.run import read_run


def _model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workdir", required=True, help="training workdir (run_info.json)")
    parser.add_argument("--step", type=int, default=None, help="checkpoint step (latest)")


def _predict(args: argparse.Namespace) -> cli.Prediction:
    if not os.path.isfile(args.video):
        raise VideoError(args.video, "file not found")
    # Every input is checked, and the video decoded, before the (slow) model load.
    info = read_run(args.workdir, args.step)

    def logits(views, labels):
        # Imported here: a bad input is answered in a second, before JAX and Flax load.
        from motion_clip_jax.inference.restore import jax_logits, load_trained_run

        return jax_logits(load_trained_run(info), views, labels)

    return cli.predict(
        args,
        class_names=info.class_names,
        num_frames=info.num_frames,
        crop_size=info.crop_size,
        model=f"{info.workdir} step {info.step}",
        backend="jax",
        logits_fn=logits,
    )


def main(argv: Sequence[str] | None = None) -> int:
    prog = "python -m motion_clip_jax.inference.predict"
    return cli.run_cli(argv, prog, _model_args, _predict, __doc__)


if __name__ == "__main__":
    sys.exit(main())
