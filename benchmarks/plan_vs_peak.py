"""The dry run's memory figure against the process's measured peak when the step really runs (CPU).

    python benchmarks/plan_vs_peak.py [--batch 256] [--grad_accum 1]

Tiny config (tests/configs/tiny_synthetic.py), one CPU device: compiles the train step as
`--dry_run` does, places zero-filled arguments, reads the resident set (VmRSS), runs the step once
and reads the high-water mark (VmHWM, reset before the step). The step's own growth (peak - resident before) is compared
with what the plan adds on top of the arguments: temporaries + outputs - donated.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from motion_clip_jax.train import memory_plan  # noqa: E402
from motion_clip_jax.train import mesh as mesh_lib  # noqa: E402
from tests.configs.tiny_synthetic import get_config  # noqa: E402

MIB = 2**20


def status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


def zeros(tree):
    return jax.tree_util.tree_map(
        lambda x: jax.device_put(jnp.zeros(x.shape, x.dtype), x.sharding), tree
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--grad_accum", type=int, default=1)
    args = parser.parse_args()
    config = get_config("/nonexistent/plan_vs_peak")
    config.train.batch_size, config.train.grad_accum_steps = args.batch, args.grad_accum
    mesh = mesh_lib.make_mesh(1, 1)
    plan = memory_plan.train_step_plan(config, mesh)
    parts, m = plan["parts"], plan["memory"]
    step, batch = memory_plan.abstract_train_step(config, mesh, parts)
    b = args.batch
    inputs = zeros((parts["state"], parts["frozen"], batch, *parts["tokens"]))
    compiled = step.lower(*inputs).compile()
    jax.block_until_ready(inputs)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM to the current resident set (the compile's peak is gone)
    before = status_kib("VmRSS")
    hwm_before = status_kib("VmHWM")
    out = compiled(*inputs)
    jax.block_until_ready(out)
    growth = (status_kib("VmHWM") - before) * 1024
    planned = m["temporaries"] + m["outputs"] - m["aliased"]
    print(
        f"batch {b}, {args.grad_accum} micro-batch(es): plan temporaries {m['temporaries'] / MIB:.1f} "
        f"MiB + outputs {m['outputs'] / MIB:.1f} - donated {m['aliased'] / MIB:.1f} = "
        f"{planned / MIB:.1f} MiB; measured peak growth {growth / MIB:.1f} MiB "
        f"(resident before {before / 1024:.0f} MiB, high-water before {hwm_before / 1024:.0f} MiB); "
        f"measured / planned {growth / max(planned, 1):.2f}"
    )


if __name__ == "__main__":
    main()
