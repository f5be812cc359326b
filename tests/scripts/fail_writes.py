"""`python -m motion_clip_jax.main`, whose writes start failing at one point of the run.

  python tests/scripts/fail_writes.py WHAT STEP HOW --config=... --workdir=...

WHAT: `checkpoint` (right before the checkpoint of STEP is written; the ones before are complete)
or `metrics` (right before the train metrics of STEP are logged). HOW: `fill` writes a file
beside the workdir until its file system is full (a small tmpfs the test mounted); `fsize` sets
RLIMIT_FSIZE to 0, so from then on every write that grows a file fails (EFBIG), no root needed.
"""

import os
import resource
import signal
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))

from absl import app  # noqa: E402

from motion_clip_jax import main as main_lib  # noqa: E402
from motion_clip_jax.train import checkpoint, metrics  # noqa: E402


def make_writes_fail(how: str, workdir: str) -> None:
    if how == "fsize":
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write returns EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (0, resource.RLIM_INFINITY))
        return
    fd = os.open(os.path.join(os.path.dirname(os.path.abspath(workdir)), "filler"),
                 os.O_WRONLY | os.O_CREAT | os.O_TRUNC)  # fmt: skip
    for size in (1 << 16, 1):  # blocks, then the last few bytes
        try:
            while True:
                os.write(fd, b"\0" * size)
        except OSError:
            pass
    os.close(fd)


def install(what: str, step: int, how: str, workdir: str) -> None:
    if what == "checkpoint":
        save = checkpoint.Checkpointer.save

        def failing_save(self, at, state, data_position):
            if at == step:
                self.wait()
                make_writes_fail(how, workdir)
            save(self, at, state, data_position)

        checkpoint.Checkpointer.save = failing_save
    else:
        write = metrics.MetricWriter.write

        def failing_write(self, at, scalars, kind="train"):
            if at == step and kind == "train":
                make_writes_fail(how, workdir)
            write(self, at, scalars, kind)

        metrics.MetricWriter.write = failing_write


if __name__ == "__main__":
    what, step, how = sys.argv.pop(1), int(sys.argv.pop(1)), sys.argv.pop(1)
    workdir = next(a.split("=", 1)[1] for a in sys.argv if a.startswith("--workdir="))
    install(what, step, how, workdir)
    app.run(main_lib.main, flags_parser=main_lib.parse_flags)
