"""The machine's calibration line: what every benchmark prints first, so runs on different
machines (or on one machine under different load) can be compared as fractions of it.

    python benchmarks/calibration.py [--json]

`calibration()` measures, once per process (cached; 10-17 s on the 2-core box at load 5-10, most of
it the TensorFlow import when TF is installed, less when quiet):
  cpu: model name (/proc/cpuinfo, else `platform`); cores: os.cpu_count() and the affinity count;
  matmul_gflops_numpy / matmul_gflops_jax: fp32 2048^3 matmul, best of 3 (2 n^3 FLOPs / s);
  jpeg_decodes_per_cpu_s: decodes of one 224x224 JPEG per CPU-second of this process (all threads
    counted), with `jpeg_decoder` naming the library (tensorflow, else PIL, else PyAV);
  jax_device: the platform and device_kind JAX computes on (its matmul is measured there);
  load_average: os.getloadavg() at the end of the measurement (other users share the cores).
`machine_line()` formats it as one line. Benchmarks state speeds as fractions of these numbers,
e.g. achieved GFLOP/s / matmul_gflops_jax.
"""

from __future__ import annotations

import functools
import importlib.util
import io
import json
import os
import platform
import sys
import time
from typing import Any

import numpy as np

MATMUL_N = 2048
JPEG_SIDE = 224


def cpu_model() -> str:
    """The CPU's model name as the kernel reports it, else what `platform` knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def _best_seconds(fn, repeats: int) -> float:
    fn()  # warm-up (and compile, for JAX)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def matmul_gflops_numpy(repeats: int = 3) -> float:
    a = np.random.default_rng(0).standard_normal((MATMUL_N, MATMUL_N), dtype=np.float32)
    return 2 * MATMUL_N**3 / _best_seconds(lambda: a @ a, repeats) / 1e9


def matmul_gflops_jax(repeats: int = 3) -> float:
    """On the default JAX device, at JAX's default matmul precision for fp32."""
    import jax
    import jax.numpy as jnp

    a = jax.random.normal(jax.random.PRNGKey(0), (MATMUL_N, MATMUL_N), jnp.float32)
    matmul = jax.jit(lambda a: a @ a)
    return 2 * MATMUL_N**3 / _best_seconds(lambda: matmul(a).block_until_ready(), repeats) / 1e9


def _test_frame() -> np.ndarray:
    """A (224, 224, 3) uint8 frame with smooth structure and mild noise, like a video frame (pure
    noise would decode slower than footage; a flat frame faster)."""
    y, x = np.mgrid[0:JPEG_SIDE, 0:JPEG_SIDE].astype(np.float32) / JPEG_SIDE
    base = np.stack([np.sin(6 * x + 2 * y), np.cos(5 * y - 3 * x), np.sin(9 * x * y)], -1)
    noise = np.random.default_rng(0).normal(0, 0.08, base.shape)
    return np.clip(127.5 * (1 + 0.8 * base + noise), 0, 255).astype(np.uint8)


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _decoder() -> tuple[str, Any]:
    """(name, decode(bytes) -> array) of the first JPEG decoder importable here."""
    if _importable("tensorflow"):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import tensorflow as tf

        return "tensorflow", lambda data: tf.io.decode_jpeg(data, channels=3).numpy()
    if _importable("PIL"):
        from PIL import Image

        return "PIL", lambda data: np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    if _importable("av"):
        import av

        def decode_av(data: bytes) -> np.ndarray:
            with av.open(io.BytesIO(data), format="mjpeg") as container:
                return next(container.decode(video=0)).to_ndarray(format="rgb24")

        return "PyAV", decode_av
    return "none", None


def _encode_jpeg(frame: np.ndarray, decoder: str) -> bytes:
    if decoder == "tensorflow":
        import tensorflow as tf

        return tf.io.encode_jpeg(frame, quality=90).numpy()
    if decoder == "PIL":
        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(frame).save(buf, format="JPEG", quality=90)
        return buf.getvalue()
    import av  # PyAV: one mjpeg frame

    buf = io.BytesIO()
    with av.open(buf, "w", format="mjpeg") as container:
        stream = container.add_stream("mjpeg", rate=1)
        stream.width, stream.height, stream.pix_fmt = JPEG_SIDE, JPEG_SIDE, "yuvj420p"
        for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buf.getvalue()


def jpeg_decodes_per_cpu_s(min_cpu_s: float = 0.5) -> tuple[str, float]:
    """(decoder name, decodes of one 224x224 JPEG per CPU-second of this process)."""
    name, decode = _decoder()
    if decode is None:
        return name, float("nan")
    data = _encode_jpeg(_test_frame(), name)
    for _ in range(10):  # warm-up
        decode(data)
    count, start = 0, time.process_time()
    while (spent := time.process_time() - start) < min_cpu_s:
        for _ in range(20):
            decode(data)
        count += 20
    return name, count / spent


def jax_device() -> str:
    import jax

    device = jax.devices()[0]
    return f"{device.platform} ({device.device_kind}) x{jax.device_count()}"


@functools.cache
def calibration() -> dict:
    """The machine's numbers (see the module docstring); measured once per process."""
    start = time.perf_counter()
    decoder, decodes = jpeg_decodes_per_cpu_s()
    result = {
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "affinity_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "matmul_gflops_numpy": matmul_gflops_numpy(),
        "matmul_gflops_jax": matmul_gflops_jax(),
        "jpeg_decoder": decoder,
        "jpeg_decodes_per_cpu_s": decodes,
        "jax_device": jax_device(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "date_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    result["calibration_s"] = time.perf_counter() - start
    return result


def machine_line() -> str:
    """One line: CPU, cores, fp32 matmul GFLOP/s (NumPy / JAX), JPEG decodes/CPU-s, JAX device."""
    c = calibration()
    load = "n/a" if c["load_average"] is None else ", ".join(f"{x:.1f}" for x in c["load_average"])
    return (
        f"machine: {c['cpu']}, {c['cpu_count']} cores ({c['affinity_cpus']} usable), fp32 matmul "
        f"{MATMUL_N}^3 {c['matmul_gflops_numpy']:.0f} GFLOP/s NumPy / {c['matmul_gflops_jax']:.0f} "
        f"JAX, {c['jpeg_decodes_per_cpu_s']:,.0f} JPEG decodes/CPU-s of a {JPEG_SIDE}x{JPEG_SIDE} "
        f"frame ({c['jpeg_decoder']}), JAX on {c['jax_device']}, load average {load}, "
        f"{c['date_utc']}"
    )


def main() -> None:
    if "--json" in sys.argv[1:]:
        print(json.dumps(calibration(), indent=1))
    else:
        print(machine_line())


if __name__ == "__main__":
    main()
