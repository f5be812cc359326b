"""Train and evaluate: python -m motion_clip_jax.main --config=configs/<name>.py --workdir=DIR.

Overrides: --config.train.batch_size=64 --config.model.motion_step=2 ... Rerunning the same command
on the same workdir resumes from its latest checkpoint.

A bad input (config file, override, dataset, checkpoint) prints one `error: ...` line and exits 1;
pass --verbosity=N explicitly to get the traceback instead.
"""

from __future__ import annotations

import os
import re
import sys
from typing import NoReturn

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import ml_collections  # noqa: E402
from absl import app, flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from motion_clip_jax import cli_errors  # noqa: E402

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Experiment config file.", lock_config=True)
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


_HINT = "(rerun with --verbosity=1 for the traceback)"


def _verbose(argv: list[str]) -> bool:
    """--verbosity / -v given explicitly: user errors keep their traceback (for debugging)."""
    return any(a.split("=")[0] in ("--verbosity", "--v", "-v") for a in argv[1:])


def _fail(text: str) -> NoReturn:
    cli_errors.report(text, _HINT)
    sys.exit(1)


def _config_path(argv: list[str]) -> str:
    """The file part of the --config argument in `argv` (before the flags are parsed)."""
    for i, arg in enumerate(argv):
        if arg.startswith("--config="):
            return arg[len("--config=") :].split(":")[0]
        if arg == "--config" and i + 1 < len(argv):
            return argv[i + 1].split(":")[0]
    return ""


def _unknown_override(argv: list[str], error: BaseException) -> str | None:
    """The --config.<path>=... of `argv` that names the field config_flags did not find."""
    match = re.search(r"'([^'\"]+)'", str(error))
    if not match:
        return None
    for arg in argv[1:]:
        if arg.startswith("--config.") and match[1] in arg.split("=")[0].split(".")[1:]:
            return f"{arg.split('=')[0]}: the config has no field {match[1]!r}"
    return None


def parse_flags(argv: list[str]) -> list[str]:
    """FLAGS(argv), with a bad flag (config file missing or broken, get_config refusing its
    argument, an unknown or wrong-typed override, a missing required flag) as one error line."""
    try:
        return FLAGS(argv)
    except Exception as e:
        if _verbose(argv) or not isinstance(
            e, (flags.Error, ValueError, OSError, KeyError, AttributeError, SyntaxError, TypeError)
        ):
            raise
        if isinstance(e, SyntaxError):
            _fail(f"--config: {e.filename} line {e.lineno}: {e.msg}")
        unknown = _unknown_override(argv, e) if isinstance(e, (AttributeError, KeyError)) else None
        if unknown:
            _fail(unknown)
        # config_flags folds a traceback of get_config into the message: keep its last line.
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        text = lines[0] if lines else type(e).__name__
        if "Traceback (most recent call last)" in str(e):
            text = f"{text.split(': Error whilst parsing')[0]}: {lines[-1]}"
        elif text.startswith("flag --config=None:") and _config_path(argv):
            text = f"--config: get_config() of {_config_path(argv)} returned None"
        elif isinstance(e, AttributeError) and "get_config" in text:
            text = f"--config: {_config_path(argv)} defines no get_config()"
        _fail(text)


def load_config() -> ml_collections.ConfigDict:
    """FLAGS.config, checked: the file exists and get_config() returned a ConfigDict."""
    path = config_flags.get_config_filename(FLAGS["config"]).split(":")[0]
    if not os.path.isfile(path):
        raise FileNotFoundError(f"--config: config file {path} not found")
    config = FLAGS.config
    if not isinstance(config, ml_collections.ConfigDict):
        raise ValueError(
            f"--config: get_config() of {path} returned a {type(config).__name__}, not a ConfigDict"
        )
    return config


def run(config: ml_collections.ConfigDict, workdir: str) -> None:
    from motion_clip_jax.train.config import validate_config

    validate_config(config)  # again in the trainer; here a bad field fails before TF is loaded
    if os.path.exists(workdir) and not os.path.isdir(workdir):
        raise NotADirectoryError(f"--workdir {workdir} is a file, not a folder")
    # Keep TensorFlow (tf.data only) off accelerators: JAX owns them.
    import tensorflow as tf

    tf.config.set_visible_devices([], "GPU")

    from motion_clip_jax.train import trainer

    trainer.initialize_distributed(config)
    trainer.train_and_evaluate(config, workdir)


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
        if FLAGS.dry_run:
            plan(load_config(), FLAGS.workdir)
            return
        run(load_config(), FLAGS.workdir)
    except cli_errors.USER_ERRORS as e:
        if FLAGS["verbosity"].present:
            raise
        _fail(cli_errors.message(e))


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
