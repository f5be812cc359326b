"""Shared fixtures: the external OpenAI reference code, loaded by file path; folders that the
xdist workers of one machine build once and share."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import json
import os
import pathlib
import shutil
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


# --- fixtures built once per machine ----------------------------------------------------------

SHARED_ROOT = pathlib.Path("/tmp/motion_clip_tests")

# One persistent XLA compilation cache for the run: the xdist workers and every process a test
# starts (they inherit the environment). The suite compiles the same tiny programs dozens of times
# (each training subprocess its train and eval steps); a program read from the cache is the one
# compiled, so results are unchanged. A max size turns on the cache's file lock (workers and
# subprocesses write it at once); programs faster to compile than the minimum stay out of it.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(SHARED_ROOT / "xla_cache"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")
os.environ.setdefault("JAX_COMPILATION_CACHE_MAX_SIZE", str(4 << 30))

# The suite's programs are tiny and most run a few steps: LLVM's optimisation passes cost more
# CPU than they save (measured: the demo test 62 -> 40 s, prefix-sharing checks 44 -> 27 s).
# Bitwise checks compare runs compiled alike; the run-heavy short CLIP pretraining asks for
# optimised code (`xla_env(optimized=True)`, in a process of its own).
UNOPTIMIZED = "--xla_backend_optimization_level=0"
_XLA_FLAGS = os.environ.get("XLA_FLAGS", "")
os.environ["XLA_FLAGS"] = f"{_XLA_FLAGS} {UNOPTIMIZED}".strip()


def xla_env(fake_devices: int = 0, optimized: bool = False) -> dict[str, str]:
    """The environment for a test's subprocess: `fake_devices` CPU devices, the suite's XLA
    optimisation level unless `optimized`."""
    flags = [_XLA_FLAGS] + ([] if optimized else [UNOPTIMIZED])
    if fake_devices:
        flags.append(f"--xla_force_host_platform_device_count={fake_devices}")
    return dict(os.environ, XLA_FLAGS=" ".join(f for f in flags if f))


_SOURCE_DIRS = ("motion_clip_jax", "configs", "data_prep")


def source_digest() -> str:
    """A hash of the package, its configs and data_prep: what a trained fixture depends on."""
    digest = hashlib.sha256()
    for top in _SOURCE_DIRS:
        for path in sorted((REPO_ROOT / top).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(REPO_ROOT)).encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()


def built_once(name: str, key, build) -> pathlib.Path:
    """The folder `SHARED_ROOT/<name>-<hash>`, filled by `build(folder)` once per machine.

    The hash covers the source (`source_digest`) and `key` (the flags that shape the folder), so
    a folder is only reused for the code and settings that made it. xdist workers (and later
    sessions) take a file lock: the first builds while the others wait, then all read the same
    folder. It is built in place (runs record absolute paths) and trusted only once its `DONE`
    marker exists; a build that died half way is removed and done again."""
    digest = hashlib.sha256(json.dumps([source_digest(), key]).encode()).hexdigest()[:16]
    folder = SHARED_ROOT / f"{name}-{digest}"
    with locked(folder):
        if not (folder / "DONE").exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            build(folder)
            marker = folder / "DONE.tmp"
            marker.write_text(os.environ.get("PYTEST_XDIST_WORKER", "main") + "\n")
            os.replace(marker, folder / "DONE")
    return folder


@contextlib.contextmanager
def locked(folder: pathlib.Path):
    """Holds the machine-wide lock of a `built_once` folder: taken by tests that run a driver on
    the shared folder, so two workers never run one there at once."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f".{folder.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def tiny_video_config(tiny_clip: dict, variant: str = "full", **fields):
    """The video model config of `variant` on the tiny CLIP preset (with `tiny_clip` overrides),
    4 heads in the MMB and MCB and a 32-wide projected MCB when `mcb_projections` is on."""
    from motion_clip_jax.models.model_config import model_config

    base = dict(
        clip_model="tiny", clip_overrides=tiny_clip, mmb_heads=4, mcb_heads=4, mcb_qkv_dim=32
    )
    return model_config(variant, **{**base, **fields})


_TINY_CLIP_PARAMS: dict = {}


def tiny_clip_params(**tiny_clip):
    """Random tiny-preset CLIP params (seed 7) with these overrides, built once per process."""
    from motion_clip_jax.models import clip as clip_lib

    key = tuple(sorted(tiny_clip.items()))
    if key not in _TINY_CLIP_PARAMS:
        config = clip_lib.clip_config("tiny", **tiny_clip)
        _TINY_CLIP_PARAMS[key] = clip_lib.init_clip(config, 7)[1]["params"]
    return _TINY_CLIP_PARAMS[key]


def pytest_collection_modifyitems(config, items):
    """The slow checks first, in file order otherwise: xdist hands tests out in this order
    (`--dist loadgroup`, no test grouped: one at a time as a worker frees up), so the long ones
    start early and short ones fill the other worker beside them instead of one long test ending
    the run alone."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
