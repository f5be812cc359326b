"""Device mesh (axes `data`, `model`) and the shardings of batch, frozen and trainable params."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

DATA, MODEL = "data", "model"


def make_mesh(data: int = -1, model: int = 1, devices: list | None = None) -> Mesh:
    """A (data, model) mesh over `devices` (default: all); -1 on one axis takes what the other leaves.

    Axis types are Auto (not this JAX's Explicit default) so XLA propagates shardings through the
    model without per-op annotations.
    """
    devices = jax.devices() if devices is None else list(devices)
    n = len(devices)
    if data == -1 and model == -1:
        raise ValueError("config.mesh: at most one of data / model may be -1")
    if data == -1:
        data = n // model
    if model == -1:
        model = n // data
    if data < 1 or model < 1 or data * model != n:
        raise ValueError(f"config.mesh: data={data} x model={model} != {n} devices")
    return Mesh(
        np.asarray(devices).reshape(data, model),
        (DATA, MODEL),
        axis_types=(jax.sharding.AxisType.Auto,) * 2,
    )


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Leading (batch) axis split over `data`, replicated over `model`."""
    return NamedSharding(mesh, P(DATA))


def global_batch(local: Any, sharding: NamedSharding) -> Any:
    """This process's rows (a numpy array or a dict of them) -> global jax.Arrays, the batch axis
    split as `sharding` says (every process passes its own rows)."""
    return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, x), local)


def put_on_mesh(tree: Any, shardings: Any) -> Any:
    """Host values every process holds alike (same seed, same files) -> global jax.Arrays laid out
    as `shardings` says; each process places its own devices' slices.

    Not jax.device_put: across processes it first all-gathers every leaf from every process to
    check that they agree, i.e. at each start every host receives the ~600 MB of a ViT-B/16 once
    per process (in the two-process CPU tests: seconds of a busy-waiting peer).
    """

    def put(x, sharding):
        host = np.asarray(x)
        return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

    return jax.tree_util.tree_map(put, tree, shardings)


def param_shardings(params: Any, mesh: Mesh, min_size: int = 2**16) -> Any:
    """Frozen weights split over `model` along their last axis where it divides; else replicated.

    With model=1 everything is replicated. Large matrices (CLIP's qkv / MLP kernels, the token
    table) are what a model axis is for; small leaves are not worth the communication.
    """
    size = mesh.shape[MODEL]

    def spec(x):
        shape = np.shape(x)
        if size > 1 and len(shape) >= 2 and np.prod(shape) >= min_size and shape[-1] % size == 0:
            return NamedSharding(mesh, P(*([None] * (len(shape) - 1)), MODEL))
        return NamedSharding(mesh, P())

    return jax.tree_util.tree_map(spec, params)
