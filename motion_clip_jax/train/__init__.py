"""Training engine: mesh, optimizer, sharded steps, checkpoints, the train/eval loop."""
