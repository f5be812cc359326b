"""The tiny CLIP's short pretraining of tests/test_pretrain_clip.py, in a process of its own so that
it runs optimised code (the suite compiles unoptimised: tests/conftest.py).

  python tests/scripts/short_pretraining.py SETTINGS_JSON OUT_MSGPACK OUT_HISTORY_JSON
"""

import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))

from motion_clip_jax.convert import flax_file  # noqa: E402
from motion_clip_jax.synthetic import pretrain_clip  # noqa: E402


def main(settings: str, out: str, history_out: str) -> None:
    history = []
    config, params = pretrain_clip.pretrain_tiny_clip(
        seed=0, log_fn=None, log_every=100, history=history, **json.loads(settings)
    )
    flax_file.save_clip(out, config, params)
    with open(history_out, "w") as f:
        json.dump(history, f)


if __name__ == "__main__":
    main(*sys.argv[1:])
