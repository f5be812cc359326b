"""Train and evaluate: python -m motion_clip_jax.main --config=configs/<name>.py --workdir=DIR.

Overrides: --config.train.batch_size=64 --config.model.motion_step=2 ... Rerunning the same command
on the same workdir resumes from its latest checkpoint.

A bad input (config file, override, dataset, checkpoint) prints one `error: ...` line and exits 1;
pass --verbosity=N explicitly to get the traceback instead.
"""

from __future__ import annotations

import os
import sys
from typing import NoReturn

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import ml_collections  # noqa: E402
from absl import app, flags, logging  # noqa: E402

from motion_clip_jax import cli_errors  # noqa: E402
from motion_clip_jax.train import config_file  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("config", None, "Experiment config file, FILE[:ARG] (configs/<name>.py).")
flags.DEFINE_string("workdir", None, "Checkpoints, metrics.jsonl, eval_results.json go here.")
flags.DEFINE_bool(
    "dry_run", False, "Print the memory plan (motion_clip_jax/train/memory_plan.py); train nothing."
)
flags.DEFINE_float("device_memory_gb", 0.0, "With --dry_run: the micro-batches that fit this.")
flags.DEFINE_integer(
    "dry_run_devices", 0, "With --dry_run: plan for this many (fake) CPU devices, e.g. 8."
)
flags.DEFINE_enum(
    "dry_run_target",
    "",
    ["", "cpu", "gpu", "tpu"],
    "With --dry_run: plan with this backend's "
    "defaults (image-tower chunk); '' = the backend at hand.",
)
flags.mark_flags_as_required(["config", "workdir"])
_OVERRIDES: list[str] = []  # the --config.a.b=v arguments, applied by config_file.load


_HINT = "(rerun with --verbosity=1 for the traceback)"


def _verbose(argv: list[str]) -> bool:
    """--verbosity / -v given explicitly: user errors keep their traceback (for debugging)."""
    return any(a.split("=")[0] in ("--verbosity", "--v", "-v") for a in argv[1:])


def _fail(text: str) -> NoReturn:
    cli_errors.report(text, _HINT)
    sys.exit(1)


def parse_flags(argv: list[str]) -> list[str]:
    """The --config.a.b=v overrides are set aside for config_file.load; absl parses the rest. A
    bad flag (unknown, missing, malformed) is one error line."""
    try:
        overrides, rest = config_file.split_overrides(argv)
        _OVERRIDES[:] = overrides
        return FLAGS(rest)
    except (flags.Error, ValueError) as e:
        if _verbose(argv):
            raise
        _fail(cli_errors.message(e))


def plan(config: ml_collections.ConfigDict, workdir: str) -> None:
    """--dry_run: the memory plan, no training (nothing but the plan file is written)."""
    if FLAGS.dry_run_devices:  # before JAX starts its backend
        os.environ["JAX_PLATFORMS"] = "cpu"
        count = f"--xla_force_host_platform_device_count={FLAGS.dry_run_devices}"
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {count}".strip()
    import tensorflow as tf

    tf.config.set_visible_devices([], "GPU")
    from motion_clip_jax.train import memory_plan

    memory_plan.run_plan(config, workdir, FLAGS.device_memory_gb, FLAGS.dry_run_target)


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        _fail(f"unexpected arguments {argv[1:]} (flags are --name=value)")
    if not FLAGS["verbosity"].present:  # progress goes to stdout; library INFO chatter is muted
        logging.set_verbosity(logging.WARNING)
    try:
        config = config_file.load(FLAGS.config, _OVERRIDES)
        if FLAGS.dry_run:
            plan(config, FLAGS.workdir)
            return
        from motion_clip_jax.train import launch

        launch.start(config, FLAGS.workdir)
    except cli_errors.USER_ERRORS as e:
        if FLAGS["verbosity"].present:
            raise
        _fail(cli_errors.message(e))


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
