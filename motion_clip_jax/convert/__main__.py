"""Command line: convert CLIP checkpoints between PyTorch and the Flax file the trainer reads.

  python -m motion_clip_jax.convert to-flax --input ViT-B-16.pt --output clip_vit_b16.msgpack
  python -m motion_clip_jax.convert to-torch --input clip_vit_b16.msgpack --output clip_vit_b16.pt

`to-flax` reads OpenAI's released TorchScript archives, plain or wrapped state_dicts (fp16/fp32) and
Hugging Face CLIPModel files or directories. `to-torch` writes an OpenAI-layout state_dict that
`clip.model.build_model(torch.load(path))` accepts.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from motion_clip_jax import cli_errors
from motion_clip_jax.convert import (
    CheckpointError,
    clip_from_torch,
    clip_to_torch,
    load_clip,
    save_clip,
)
from motion_clip_jax.models.clip import count_params


def check_output(path: str) -> None:
    """--output must name a file in an existing folder (checked before any work is done)."""
    if os.path.isdir(path):
        raise IsADirectoryError(f"--output {path} is a folder, not a file name")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise FileNotFoundError(f"--output {path}: folder {parent} does not exist")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m motion_clip_jax.convert",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    to_flax = sub.add_parser("to-flax", help="PyTorch checkpoint -> Flax msgpack file")
    to_torch = sub.add_parser("to-torch", help="Flax msgpack file -> OpenAI-layout state_dict")
    for p in (to_flax, to_torch):
        p.add_argument("--input", required=True, help="source file (or HF model directory)")
        p.add_argument("--output", required=True, help="destination file")
    to_torch.add_argument(
        "--half", action="store_true", help="store fp16 tensors, as OpenAI releases do"
    )
    args = parser.parse_args(argv)

    start = time.time()
    try:
        if not os.path.exists(args.input):
            raise FileNotFoundError(f"--input {args.input} does not exist")
        check_output(args.output)
        if args.command == "to-flax":
            module, variables = clip_from_torch(args.input)
            save_clip(args.output, module.config, variables["params"])
        else:
            import torch

            module, variables = load_clip(args.input)
            state_dict = clip_to_torch(variables)
            if args.half:
                state_dict = {k: v.half() for k, v in state_dict.items()}
            try:
                torch.save(state_dict, args.output)
            except RuntimeError as e:  # torch reports an unwritable path as a RuntimeError
                raise OSError(f"--output {args.output}: cannot write ({e})") from e
    except (CheckpointError, *cli_errors.USER_ERRORS) as e:
        return cli_errors.report(e)
    print(
        f"wrote {args.output}: CLIP {module.config} with "
        f"{count_params(variables['params']):,} parameters ({time.time() - start:.1f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
