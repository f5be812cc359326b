"""ViT-B/16 tower speed on this machine: Flax (ours) vs OpenAI's PyTorch code, same weights, one run.

    python benchmarks/clip_towers.py [--frames 8] [--prompts 16] [--repeats 5]

Needs the test requirements (torch + openai-clip). Prints ms/frame (image tower) and ms/prompt (text
tower) for both, their ratio, and the parity error of the outputs.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from motion_clip_jax.convert import clip_from_torch  # noqa: E402
from tests.conftest import load_openai_clip_file  # noqa: E402


def best_time(fn, repeats: int) -> float:
    fn()  # warm-up (and compile)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    torch.manual_seed(0)
    oa = load_openai_clip_file("model")
    model = oa.CLIP(512, 224, 12, 768, 16, 77, 49408, 512, 8, 12).eval()
    module, variables = clip_from_torch(model.state_dict())

    rng = np.random.default_rng(0)
    images = rng.standard_normal((args.frames, 224, 224, 3), dtype=np.float32)
    ids = np.zeros((args.prompts, 77), np.int64)
    ids[:, 0] = 49406
    ids[:, 1:15] = rng.integers(1, 49000, (args.prompts, 14))
    ids[:, 15] = 49407

    t_images = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
    t_ids = torch.from_numpy(ids)
    encode_image = jax.jit(lambda v, x: module.apply(v, x, method="encode_image"))
    encode_text = jax.jit(lambda v, x: module.apply(v, x, method="encode_text"))
    j_images, j_ids = jnp.asarray(images), jnp.asarray(ids, jnp.int32)

    with torch.inference_mode():
        torch_img = best_time(lambda: model.encode_image(t_images), args.repeats)
        torch_txt = best_time(lambda: model.encode_text(t_ids), args.repeats)
        ref_img = model.encode_image(t_images).numpy()
        ref_txt = model.encode_text(t_ids).numpy()
    flax_img = best_time(
        lambda: encode_image(variables, j_images).block_until_ready(), args.repeats
    )
    flax_txt = best_time(lambda: encode_text(variables, j_ids).block_until_ready(), args.repeats)
    out_img = np.asarray(encode_image(variables, j_images))
    out_txt = np.asarray(encode_text(variables, j_ids))

    def rel(a, b):
        return float(np.abs(a - b).max() / np.abs(b).max())

    print(
        f"machine: {os.cpu_count()} CPU cores, jax {jax.__version__}, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads)"
    )
    print(
        f"image tower, batch {args.frames}: PyTorch {1e3 * torch_img / args.frames:.1f} ms/frame, "
        f"Flax {1e3 * flax_img / args.frames:.1f} ms/frame, Flax/PyTorch time ratio "
        f"{flax_img / torch_img:.2f}"
    )
    print(
        f"text tower, {args.prompts} prompts x 77 tokens: PyTorch "
        f"{1e3 * torch_txt / args.prompts:.1f} ms/prompt, Flax {1e3 * flax_txt / args.prompts:.1f} "
        f"ms/prompt, Flax/PyTorch time ratio {flax_txt / torch_txt:.2f}"
    )
    print(
        f"parity (max abs err / max abs ref): image {rel(out_img, ref_img):.2e}, "
        f"text {rel(out_txt, ref_txt):.2e}"
    )


if __name__ == "__main__":
    main()
