"""Single-process reference for the two-process test: the real trainer, fed the global batches that
two processes would assemble (each process's own shard of the files, concatenated in process order).

  python tests/scripts/emulated_two_hosts.py CONFIG_FILE DATASET_DIR WORKDIR [NUM_STEPS [CACHE_DIR]]

CACHE_DIR: config.train.feature_cache_dir (the training feature cache).
"""

import importlib.util
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))

import numpy as np  # noqa: E402

from motion_clip_jax.train import data_input, trainer  # noqa: E402

NUM_HOSTS = 2


def main(
    config_file: str, dataset_dir: str, workdir: str, num_steps: str = "", cache_dir: str = ""
) -> None:
    spec = importlib.util.spec_from_file_location("config_module", config_file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config(dataset_dir)
    if num_steps:
        config.train.num_steps = int(num_steps)
    config.train.feature_cache_dir = cache_dir

    single = data_input.train_iterator

    def two_hosts(config, dataset, start_step, undecoded=()):
        shards = [
            single(
                config,
                dataset,
                start_step,
                process_index=p,
                process_count=NUM_HOSTS,
                undecoded=undecoded,
            )
            for p in range(NUM_HOSTS)
        ]
        for parts in zip(*shards):
            yield {k: np.concatenate([part[k] for part in parts]) for k in parts[0]}

    data_input.train_iterator = two_hosts
    trainer.train_and_evaluate(config, workdir)


if __name__ == "__main__":
    main(*sys.argv[1:])
