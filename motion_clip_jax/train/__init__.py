"""Training engine: mesh, optimizer, sharded steps, checkpoints, the train/eval loop, and the
registry through which a config names data / CLIP providers (providers)."""
