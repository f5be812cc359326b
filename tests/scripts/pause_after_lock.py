"""`python -m motion_clip_jax.main`, paused right after it took the workdir lock until a file
exists, so a test can start a second trainer on the same workdir while the first holds it.

  python tests/scripts/pause_after_lock.py GO_FILE --config=... --workdir=...
"""

import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))

from absl import app  # noqa: E402

from motion_clip_jax import main as main_lib  # noqa: E402
from motion_clip_jax.train import workdir_lock  # noqa: E402


def pause_after_lock(go_file: str) -> None:
    acquire = workdir_lock.WorkdirLock.acquire

    def acquire_then_wait(self):
        acquire(self)
        while not os.path.exists(go_file):
            time.sleep(0.05)

    workdir_lock.WorkdirLock.acquire = acquire_then_wait


if __name__ == "__main__":
    pause_after_lock(sys.argv.pop(1))
    app.run(main_lib.main, flags_parser=main_lib.parse_flags)
