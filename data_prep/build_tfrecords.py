"""Turn a folder of videos into a tensorflow-datasets dataset of JPEG-frame TFRecord shards.

  python -m data_prep.build_tfrecords hmdb51 --videos_dir hmdb51/ --splits_dir testTrainMulti_7030_splits/ --out_dir data/
  python -m data_prep.build_tfrecords ucf101 --videos_dir UCF-101/ --splits_dir ucfTrainTestlist/ --out_dir data/
  python -m data_prep.build_tfrecords kinetics400 --videos_dir k400/ --annotations train.csv validate.csv --out_dir data/
  python -m data_prep.build_tfrecords folder --videos_dir my_videos/ --name my_actions --out_dir data/
  python -m data_prep.build_tfrecords synthetic --out_dir data/

Each dataset lands in <out_dir>/<name>/1.0.0/ (shards, tfds metadata, <split>.index.tsv,
manifest.json). Rerunning the same command skips the shards that are already finished.
See docs/data.md.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import os
import sys
from collections.abc import Iterable
from typing import Any

from data_prep import decode, layouts
from motion_clip_jax import cli_errors

_LAYOUT_HELP = {
    "hmdb51": "HMDB-51: <videos_dir>/<class>/<video>.avi and <splits_dir>/<class>_test_split{1,2,3}.txt",
    "ucf101": "UCF-101: <videos_dir>/<Class>/v_*.avi and <splits_dir>/{classInd,trainlist0N,testlist0N}.txt",
    "kinetics400": "Kinetics-400: CSV annotations and clips <youtube_id>_<start:06d>_<end:06d>.mp4",
    "folder": "your own videos: <videos_dir>/<class>/<video> or <videos_dir>/<split>/<class>/<video>",
    "synthetic": "the synthetic motion dataset (motion_clip_jax.synthetic.world)",
}


def _split_ids(text: str) -> list[int]:
    ids = [int(part) for part in text.split(",") if part.strip()]
    if not ids or any(i not in (1, 2, 3) for i in ids):
        raise argparse.ArgumentTypeError(f"splits must be a list of 1, 2, 3; got {text!r}")
    return ids


# The frame flags: decode.DecodeOptions' fields, each with its help (the default is the field's).
_DECODE_HELP = {
    "short_side": "resize so the short side is this many pixels (0: keep)",
    "jpeg_quality": "JPEG quality 1-100",
    "fps_cap": "keep at most this many frames per second (0: all frames)",
    "max_frames": "keep at most this many evenly spaced frames per video (0: all)",
}
# The synthetic layout's flags: write_synthetic_dataset's keywords, each (default, help).
_SYNTHETIC_FLAGS = {
    "num_train": (800, "training clips"),
    "num_test": (400, "test clips"),
    "seed": (0, "generator seed"),
    "size": (32, "frame side in pixels"),
    "num_frames": (8, "frames per clip"),
    "num_shards": (4, "shards per split"),
}


def _add_flags(parser: Any, flags: dict[str, tuple[Any, str]]) -> None:
    """Adds --NAME, of its default's type, for each NAME: (default, help) (parser or group)."""
    for name, (default, help_text) in flags.items():
        parser.add_argument(
            f"--{name}", type=type(default), default=default, help=f"{help_text} [{default}]"
        )


def _values(args: argparse.Namespace, names: Iterable[str]) -> dict[str, Any]:
    """The parsed values of the flags `names`, by name (the keywords they are passed as)."""
    return {name: getattr(args, name) for name in names}


def _add_video_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--videos_dir", required=True, help="root folder of the video files")
    group = parser.add_argument_group("frames and shards")
    defaults = {f.name: f.default for f in dataclasses.fields(decode.DecodeOptions)}
    _add_flags(group, {name: (defaults[name], text) for name, text in _DECODE_HELP.items()})
    group.add_argument("--shard_size", type=int, default=64, help="videos per shard [64]")
    group.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="decoding processes [number of CPUs]",
    )
    group.add_argument("--no_progress", action="store_true", help="no progress bar")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m data_prep.build_tfrecords",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n\n".join(__doc__.split("\n\n")[1:]),
    )
    layouts_parsers = parser.add_subparsers(dest="layout", required=True, metavar="LAYOUT")
    for name, help_text in _LAYOUT_HELP.items():
        sub = layouts_parsers.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--out_dir", required=True, help="datasets go to <out_dir>/<name>/1.0.0/")
        if name in ("hmdb51", "ucf101"):
            _add_video_options(sub)
            sub.add_argument(
                "--splits_dir", required=True, help="folder of the official split files"
            )
            sub.add_argument(
                "--splits",
                type=_split_ids,
                default=[1, 2, 3],
                help="official splits to write, e.g. 1 or 1,2,3 [1,2,3]; one dataset "
                f"{name}_split<N> each",
            )
        elif name == "kinetics400":
            _add_video_options(sub)
            sub.add_argument(
                "--annotations",
                nargs="+",
                required=True,
                help="CSV files with columns label,youtube_id,time_start,time_end,split",
            )
        elif name == "folder":
            _add_video_options(sub)
            sub.add_argument("--name", required=True, help="dataset name (lower_snake_case)")
        else:
            _add_flags(sub, _SYNTHETIC_FLAGS)
            sub.add_argument("--overwrite", action="store_true", help="replace an existing one")
    return parser


def _plans(args: argparse.Namespace) -> list[layouts.DatasetPlan]:
    if args.layout == "hmdb51":
        return layouts.hmdb51_plans(args.videos_dir, args.splits_dir, args.splits)
    if args.layout == "ucf101":
        return layouts.ucf101_plans(args.videos_dir, args.splits_dir, args.splits)
    if args.layout == "kinetics400":
        return [layouts.kinetics400_plan(args.videos_dir, args.annotations)]
    return [layouts.folder_plan(args.videos_dir, args.name)]


def _report(manifest: dict, dataset_dir: str) -> str:
    lines = [f"{manifest['name']}: {dataset_dir}"]
    for split, info in sorted(manifest["splits"].items()):
        lines.append(
            f"  {split}: {info['num_examples']} videos in {info['num_shards']} shards, "
            f"{info['frames']['total']} frames, {info['num_bytes'] / 2**20:.1f} MiB"
        )
    reasons = collections.Counter(s["reason"].split(":")[0] for s in manifest["skipped"])
    if reasons:
        lines.append(
            f"  skipped {len(manifest['skipped'])} videos: {dict(reasons)} "
            "(each one is listed in manifest.json)"
        )
    if manifest["partial"]:
        lines.append(f"  {len(manifest['partial'])} videos stored partially (see manifest.json)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Raises ValueError / OSError naming the path at fault on a bad input (missing or empty
    folders, garbage split files); the command line prints it as `error: ...`, exit status 1."""
    args = _parser().parse_args(argv)
    # Imported here, not at the top: decoding workers are spawned and re-import this module, and
    # must not pay for TensorFlow (which `job` needs for writing).
    from data_prep import job

    if args.layout == "synthetic":
        from motion_clip_jax.data import manifest as manifest_lib
        from motion_clip_jax.synthetic import world

        dataset_dir = world.write_synthetic_dataset(
            args.out_dir, overwrite=args.overwrite, **_values(args, _SYNTHETIC_FLAGS)
        )
        print(_report(manifest_lib.read_manifest(dataset_dir), dataset_dir))
        return 0
    if not 1 <= args.jpeg_quality <= 100:
        raise ValueError(f"--jpeg_quality must be in 1..100, got {args.jpeg_quality}")
    options = job.JobOptions(
        decode=decode.DecodeOptions(**_values(args, _DECODE_HELP)),
        shard_size=args.shard_size,
        workers=args.workers,
        progress=not args.no_progress,
    )
    for plan in _plans(args):
        manifest = job.build_dataset(plan, args.out_dir, options)
        print(_report(manifest, os.path.join(args.out_dir, plan.name, "1.0.0")))
    return 0


if __name__ == "__main__":
    sys.exit(cli_errors.run_main(main))
