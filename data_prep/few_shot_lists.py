"""Write few-shot video lists (k per class, one file per k and seed) for a dataset's train split.

  python -m data_prep.few_shot_lists --data_dir data/hmdb51_split1/1.0.0 --out_dir fewshot/ \\
      [--shots 2,4,8,16] [--seeds 0-9] [--split train]

Files: <out_dir>/<dataset>_<k>shot_seed<s>.txt, lines `video_id<TAB>label`. Train on one with
make_train_iterator(..., video_ids=[v for v, _ in few_shot_draw.read_video_list(path)]).
"""

from __future__ import annotations

import argparse
import os
import sys


def _ints(text: str) -> list[int]:
    values = []
    for part in text.split(","):
        if "-" in part.strip("-"):
            start, end = part.split("-")
            values += range(int(start), int(end) + 1)
        elif part.strip():
            values.append(int(part))
    return values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m data_prep.few_shot_lists",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data_dir", required=True, help="dataset folder <root>/<name>/1.0.0")
    parser.add_argument("--out_dir", required=True, help="where the list files go")
    parser.add_argument("--shots", type=_ints, default=[2, 4, 8, 16], help="k values [2,4,8,16]")
    parser.add_argument("--seeds", type=_ints, default=list(range(10)), help="seeds [0-9]")
    parser.add_argument("--split", default="train", help="split to draw from [train]")
    args = parser.parse_args(argv)

    from motion_clip_jax.data import few_shot_draw, source

    dataset_dir = source.resolve_dataset_dir(args.data_dir)
    dataset = os.path.basename(os.path.dirname(dataset_dir))
    rows = source.read_split_index(dataset_dir, args.split)
    paths = few_shot_draw.write_draws(
        args.out_dir,
        rows,
        dataset=dataset,
        shots=args.shots,
        seeds=args.seeds,
        class_names=source.class_names(dataset_dir),
    )
    print(f"wrote {len(paths)} lists to {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
