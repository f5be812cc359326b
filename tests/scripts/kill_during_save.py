"""`python -m motion_clip_jax.main`, but SIGKILLed while the checkpoint of one step is written.

  python tests/scripts/kill_during_save.py STEP --config=... --workdir=...

`Checkpointer.save` returns once the asynchronous write is under way; the process kills itself
right then, so the checkpoint of STEP is half written (the resume test checks it does not count).
"""

import os
import signal
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))

from absl import app  # noqa: E402

from motion_clip_jax import main as main_lib  # noqa: E402
from motion_clip_jax.train import checkpoint  # noqa: E402


def kill_after_saving(step_to_kill: int) -> None:
    save = checkpoint.Checkpointer.save

    def save_then_die(self, step, state, data_position):
        save(self, step, state, data_position)
        if step == step_to_kill:
            os.kill(os.getpid(), signal.SIGKILL)

    checkpoint.Checkpointer.save = save_then_die


if __name__ == "__main__":
    kill_after_saving(int(sys.argv.pop(1)))
    app.run(main_lib.main, flags_parser=main_lib.parse_flags)
