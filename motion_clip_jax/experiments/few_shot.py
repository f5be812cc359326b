"""All draws of a few-shot setting (paper: 10 runs), then mean +- std.

  python -m motion_clip_jax.experiments.few_shot --dataset hmdb51 --k 2 --draws 10 \
      --root workdirs/hmdb51_2shot [-- --config.train.num_steps=50 ...]

Each draw d trains in <root>/draw<d> with configs/few_shot.py:<dataset>,<k>,<d> (a rerun resumes
an unfinished draw and skips finished ones); its drawn video list is written there. The summary goes
to <root>/summary.json and is printed as a table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from motion_clip_jax import cli_errors
from motion_clip_jax.experiments.summarize import format_table, summarize


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    overrides = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", required=True, choices=["hmdb51", "ucf101", "kinetics400"])
    parser.add_argument("--k", type=int, required=True)
    parser.add_argument("--draws", type=int, default=10)
    parser.add_argument("--root", required=True)
    parser.add_argument("--config", default="configs/few_shot.py")
    args = parser.parse_args(argv)
    if args.k < 1:
        parser.error(f"--k must be >= 1, got {args.k}")
    if args.draws < 1:
        parser.error(f"--draws must be >= 1, got {args.draws}")
    if os.path.exists(args.root) and not os.path.isdir(args.root):
        parser.error(f"--root {args.root} is a file, not a folder")
    if not os.path.isfile(args.config.split(":")[0]):
        parser.error(f"--config {args.config}: no such config file")
    return cli_errors.run_main(_run, args, overrides)


def _run(args: argparse.Namespace, overrides: list[str]) -> int:
    workdirs = []
    for draw in range(args.draws):
        workdir = os.path.join(args.root, f"draw{draw}")
        workdirs.append(workdir)
        if os.path.exists(os.path.join(workdir, "eval_results.json")):
            print(f"draw {draw}: done ({workdir})", flush=True)
            continue
        print(f"draw {draw}/{args.draws}: training in {workdir}", flush=True)
        command = [
            sys.executable, "-m", "motion_clip_jax.main",
            f"--config={args.config}:{args.dataset},{args.k},{draw}", f"--workdir={workdir}",
            *overrides,
        ]  # fmt: skip
        result = subprocess.run(command)
        if result.returncode != 0:
            cli_errors.report(
                f"draw {draw} failed in {workdir} (exit {result.returncode}); rerun to resume"
            )
            return result.returncode
    summary = summarize(workdirs)
    os.makedirs(args.root, exist_ok=True)
    with open(os.path.join(args.root, "summary.json"), "w") as f:
        json.dump(
            {"dataset": args.dataset, "k": args.k, "draws": args.draws, **summary}, f, indent=1
        )
    print(format_table(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
