"""File reads per record: how many pread64 calls the input pipeline makes on the shards.

  python benchmarks/record_reads.py [--data_dir DIR] [--num_videos 64] [--shard_size 64]

Reads every record of the split once (the evaluation iterator, T=1: the decode does not matter
here) under `strace -f -y`, and counts the pread64 calls and opens on the dataset's shard files.
On a local disk a read is a system call; on a remote file system (GCS, S3) it is a request. Linux
with strace only. Without --data_dir it builds the input-pipeline benchmark's dataset of real
footage with data_prep's default of 64 videos per shard (benchmarks/input_pipeline.py).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_CHILD = "_MCJ_RECORD_READS_CHILD"


def read_every_record(data_dir: str, split: str) -> int:
    """Reads each record of `split` once through the pipeline; returns the number read."""
    from motion_clip_jax.data import pipeline

    options = pipeline.PipelineOptions(num_frames=1, crop_size=8, batch_size=8, uint8=True)
    iterator = pipeline.make_eval_iterator(
        data_dir, split, options, process_index=0, process_count=1
    )
    return int(sum(batch["mask"].sum() for batch in iterator))


def count_calls(log: str, shard_dir: str) -> tuple[int, int]:
    """(pread64 calls, opens) on files of `shard_dir` in an `strace -f -y` log."""
    reads = opens = 0
    pattern = re.escape(os.path.realpath(shard_dir)) + r"/[^>\"]*\.tfrecord-"
    with open(log) as f:
        for line in f:
            if not re.search(pattern, line):
                continue
            reads += "pread64(" in line
            opens += "openat(" in line
    return reads, opens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data_dir", help="an existing dataset folder (default: build one)")
    parser.add_argument("--split", default="train")
    parser.add_argument("--work_dir", default=os.path.join(tempfile.gettempdir(), "mcj_bench"))
    parser.add_argument("--num_videos", type=int, default=64)
    parser.add_argument("--shard_size", type=int, default=64)
    args = parser.parse_args()
    if os.environ.get(_CHILD):
        print(f"records read: {read_every_record(args.data_dir, args.split)}", flush=True)
        return
    if shutil.which("strace") is None:
        raise SystemExit("record_reads.py needs strace (apt install strace) on Linux")
    from benchmarks.calibration import machine_line
    from benchmarks.input_pipeline import build_dataset
    from motion_clip_jax.data import source

    print(machine_line(), flush=True)
    print("command: python " + " ".join(shlex.quote(a) for a in sys.argv), flush=True)
    data_dir = source.resolve_dataset_dir(
        args.data_dir or build_dataset(args.work_dir, args.num_videos, args.shard_size)
    )
    shards = len(source.open_builder(data_dir).info.splits[args.split].file_instructions)
    scan_line = "no header scan in this version"
    if importlib.util.find_spec("motion_clip_jax.data.record_offsets") is not None:
        from motion_clip_jax.data import record_offsets

        records = source.split_records(data_dir, args.split, process_index=0, process_count=1)
        start = time.perf_counter()
        record_offsets.byte_offsets(records.files, records.file_index, records.offset)
        scan_line = f"header scan {1e3 * (time.perf_counter() - start):.1f} ms (once per process)"
    with tempfile.TemporaryDirectory() as tmp:
        log = os.path.join(tmp, "strace.log")
        command = ["strace", "-f", "-y", "-e", "trace=pread64,openat", "-o", log]
        command += [sys.executable, os.path.abspath(__file__), "--data_dir", data_dir]
        command += ["--split", args.split]
        child = subprocess.run(
            command, env={**os.environ, _CHILD: "1"}, capture_output=True, text=True, check=True
        )
        (records_line,) = [x for x in child.stdout.splitlines() if x.startswith("records read")]
        count = int(records_line.split(":")[1])
        reads, opens = count_calls(log, data_dir)
    print(
        f"dataset: {data_dir}, split {args.split!r}: {count} records in {shards} shard(s); "
        f"{reads} pread64 calls on the shards = {reads / count:.1f} per record, {opens} opens "
        f"= {opens / count:.1f} per record; {scan_line}",
        flush=True,
    )


if __name__ == "__main__":
    main()
