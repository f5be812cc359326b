"""Shared fixtures: the external OpenAI reference code, loaded by file path."""

from __future__ import annotations

import importlib.util
import os
import pathlib
import sys

import pytest

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


def load_openai_clip_file(name: str):
    """Imports `clip/<name>.py` from the installed openai-clip package without `import clip`
    (its __init__ imports torchvision, which the pinned torch cannot sit beside)."""
    spec = importlib.util.find_spec("clip")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "openai-clip is not installed: pip install --no-deps -r requirements-test-nodeps.txt"
        )
    path = pathlib.Path(list(spec.submodule_search_locations)[0]) / f"{name}.py"
    module_spec = importlib.util.spec_from_file_location(f"openai_clip_{name}", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def openai_model():
    """OpenAI's `clip/model.py` module (CLIP, build_model, ...)."""
    return load_openai_clip_file("model")


def restore_train_state(workdir, step: int):
    """The saved train state at `step` as numpy leaves {keystr: array}, on this process's first
    device whatever topology wrote it (checkpoints of multi-process runs included)."""
    import jax
    import numpy as np
    import orbax.checkpoint as ocp

    path = os.path.join(os.fspath(workdir), "checkpoints", str(step), "state")
    checkpointer = ocp.StandardCheckpointer()
    metadata = checkpointer.metadata(path)
    tree = getattr(metadata, "item_metadata", metadata)
    device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    target = jax.tree_util.tree_map(
        lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device), tree
    )
    state = checkpointer.restore(path, target)
    flat = jax.tree_util.tree_flatten_with_path(state)[0]
    return {jax.tree_util.keystr(p): np.asarray(x) for p, x in flat}


def load_config_file(path, *args):
    """`get_config(*args)` of a config file (a path relative to the repo root, or absolute)."""
    path = REPO_ROOT / path
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(*args)


def tiny_config(dataset_dir: str):
    """The seconds-scale engine config (tests/configs/tiny_synthetic.py) on `dataset_dir`: tiny
    random CLIP, 4-frame 32 px synthetic clips, written there by its data source when missing."""
    return load_config_file("tests/configs/tiny_synthetic.py", dataset_dir)


def random_tiny_clip(image_resolution: int = 32, seed: int = 0):
    """(CLIP module, variables) of the tiny preset with random weights."""
    from motion_clip_jax.models.clip import clip_config, init_clip

    return init_clip(clip_config("tiny", image_resolution=image_resolution), seed)
