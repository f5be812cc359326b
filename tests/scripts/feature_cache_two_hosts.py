"""One of two processes (jax.distributed on localhost): the tiny engine model, untrained, evaluated
plain, then with the eval feature cache twice (written, then read); process 0 saves the scores.

  XLA_FLAGS=--xla_force_host_platform_device_count=2 python tests/scripts/feature_cache_two_hosts.py \
      PROCESS_ID PORT DATASET_DIR CACHE_DIR OUT_NPZ
"""

import dataclasses
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))

import numpy as np  # noqa: E402

from motion_clip_jax.train import trainer  # noqa: E402
from motion_clip_jax.train.optim import make_optimizer  # noqa: E402
from tests.configs.tiny_synthetic import get_config  # noqa: E402


def main(process_id: str, port: str, dataset_dir: str, cache_dir: str, out: str) -> None:
    config = get_config(dataset_dir)
    config.eval.multiview = True
    config.mesh.model = 2  # 2 processes x 2 devices: data 2 x model 2, frozen CLIP split
    config.distributed.num_processes = 2
    config.distributed.process_id = int(process_id)
    config.distributed.coordinator_address = f"127.0.0.1:{port}"
    trainer.initialize_distributed(config)
    workdir = os.path.join(os.path.dirname(out), f"workdir{process_id}")
    os.makedirs(workdir, exist_ok=True)
    mesh = trainer.build_mesh(config)
    dataset = trainer.prepare_data(config, workdir)
    parts = trainer.build_model(config, workdir, dataset)
    placed = trainer.place_on_mesh(parts, make_optimizer(config.optim, 10)[0], mesh)
    main_set = trainer.make_eval_set("main", dataset, parts.model_config, mesh)
    plain = trainer.make_eval_context(config, parts, placed, mesh)
    config.eval.feature_cache_dir = cache_dir
    cached = trainer.make_eval_context(config, parts, placed, mesh)
    calls = [0]
    encode = cached.feature_cache.encode_step

    def counted(*args):
        calls[0] += 1
        return encode(*args)

    cached = dataclasses.replace(
        cached, feature_cache=dataclasses.replace(cached.feature_cache, encode_step=counted)
    )
    results = {}
    for view, multiview in (("single_view", False), ("multiview", True)):
        for name, ctx in (("plain", plain), ("written", cached), ("read", cached)):
            before = calls[0]
            scores, labels = trainer.eval_scores(ctx, placed.state.trainable, main_set, multiview)
            results[f"{view}/{name}/scores"] = scores
            results[f"{view}/{name}/labels"] = labels
            results[f"{view}/{name}/tower_calls"] = np.asarray(calls[0] - before)
    if int(process_id) == 0:
        np.savez(out, **results)


if __name__ == "__main__":
    main(*sys.argv[1:])
