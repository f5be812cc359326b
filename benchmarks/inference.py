"""End-to-end inference throughput: our full model vs Hugging Face's XCLIPModel, same run and batch.

    python benchmarks/inference.py [--batch 8] [--frames 8] [--classes 51] [--repeats 3]
        [--torch_threads 0,1] [--image_chunk_frames -1]

Both models have random weights at ViT-B/16 size: ours is `init_video_clip(model_config('full'))`
(frozen CLIP ViT-B/16, MMB, motion-aware prompts, MCB) in JAX, jitted; the peer is transformers'
`XCLIPModel` at the published microsoft/xclip-base-patch16 configuration (transformers' XCLIPConfig
defaults are the base-patch32 ones, so every size is set here) in PyTorch. float32 on CPU. Inputs:
the same CLIP-normalised random video (B, T, 224, 224, 3) and the same token rows for the first K
HMDB-51 class names ("a common human action of <name>.", cut to the shortest context that holds
every EOT; X-CLIP gets the matching attention mask). Ours runs at the model's defaults
(`image_chunk_frames` -1 = the backend's chunking, `share_prompt_prefix`), X-CLIP at each thread
count of --torch_threads (0 = torch's default; on a loaded box its OpenMP pool can lose more to a
busy core than one thread does, so the ratio is taken to the fastest X-CLIP setting). Timing:
warm-up calls (compile for JAX), then the best of --repeats rounds, each round timing one call of
each candidate in turn. Prints the calibration line first, videos/s, the throughput ratio, FLOPs
per video (ours: XLA cost analysis of the unchunked program, since a loop's body counts once) and
achieved GFLOP/s as a fraction of the calibration's matmul GFLOP/s, and the load average.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from benchmarks.calibration import calibration, machine_line  # noqa: E402
from benchmarks.timing import best_times, lowered_flops  # noqa: E402
from motion_clip_jax.core.class_prompts import class_prompt_tokens  # noqa: E402
from motion_clip_jax.core.classnames import load_classnames  # noqa: E402
from motion_clip_jax.models import model_config as config_lib  # noqa: E402
from motion_clip_jax.models import params as params_lib  # noqa: E402
from motion_clip_jax.models import video_clip as video_lib  # noqa: E402


def xclip_base_patch16_config(num_frames: int):
    """XCLIPConfig of microsoft/xclip-base-patch16 (vision patch 16 at 224 px, 12 layers, width
    768, 1 MIT layer, 2 prompt-generator layers; text 12 layers, width 512)."""
    from transformers import XCLIPConfig

    vision = dict(
        image_size=224, patch_size=16, num_frames=num_frames, hidden_size=768,
        intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
        mit_hidden_size=512, mit_intermediate_size=2048, mit_num_hidden_layers=1,
        mit_num_attention_heads=8, hidden_act="quick_gelu",
    )  # fmt: skip
    text = dict(
        vocab_size=49408, hidden_size=512, intermediate_size=2048, num_hidden_layers=12,
        num_attention_heads=8, max_position_embeddings=77, hidden_act="quick_gelu",
    )  # fmt: skip
    return XCLIPConfig(
        text_config=text, vision_config=vision, projection_dim=512, prompt_layers=2,
        prompt_alpha=0.1, prompt_num_attention_heads=8, prompt_hidden_act="quick_gelu",
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--frames", type=int, default=8, help="T (X-CLIP's num_frames too)")
    parser.add_argument("--classes", type=int, default=51, help="first K HMDB-51 class names")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--torch_threads", default="0,1", help="0: torch's default")
    parser.add_argument("--image_chunk_frames", type=int, default=-1, help="ours; -1: default")
    args = parser.parse_args()
    # On a loaded machine torch's OpenMP pool waits at every op for a busy core (measured here:
    # 26x slower text tower with 2 threads under load 3 on 2 cores than with 1).
    default_threads = torch.get_num_threads()
    threads = list(dict.fromkeys(int(n) or default_threads for n in args.torch_threads.split(",")))
    print(machine_line(), flush=True)
    names = load_classnames("hmdb51")
    if not 1 <= args.classes <= len(names):
        parser.error(f"--classes {args.classes}: must be in 1..{len(names)}")
    names = names[: args.classes]
    b, t, k = args.batch, args.frames, len(names)

    config = config_lib.model_config(
        "full", num_frames=t, motion_step=min(4, t - 1), image_chunk_frames=args.image_chunk_frames
    )
    model, trainable, frozen = video_lib.init_video_clip(config, 0)
    params = params_lib.merge_params(trainable, frozen)
    ids, eos = class_prompt_tokens(config, names)
    video = np.random.default_rng(0).standard_normal((b, t, 224, 224, 3), dtype=np.float32)

    # --- Ours: JAX, jitted ---
    forward = jax.jit(lambda p, v, i, e: model.apply({"params": p}, v, i, e))
    j_args = (params, jnp.asarray(video), jnp.asarray(ids), jnp.asarray(eos))
    start = time.perf_counter()
    compiled = forward.lower(*j_args).compile()
    compile_s = time.perf_counter() - start
    flat_config = config.copy_and_resolve_references()
    flat_config.image_chunk_frames = 0
    flat = video_lib.build_model(flat_config)
    flat_forward = jax.jit(lambda p, v, i, e: flat.apply({"params": p}, v, i, e))
    ours_flops = lowered_flops(flat_forward.lower(*j_args)) / b
    ours_logits = np.asarray(compiled(*j_args))  # warm-up

    # --- X-CLIP: PyTorch ---
    from torch.utils.flop_counter import FlopCounterMode
    from transformers import XCLIPModel

    torch.manual_seed(0)
    peer = XCLIPModel(xclip_base_patch16_config(t)).eval()
    pixel_values = torch.from_numpy(video).permute(0, 1, 4, 2, 3).contiguous()  # (B, T, 3, H, W)
    input_ids = torch.from_numpy(np.asarray(ids, np.int64))
    attention_mask = (torch.arange(ids.shape[1])[None, :] <= torch.from_numpy(eos)[:, None]).long()

    def peer_forward():
        return peer(
            input_ids=input_ids, attention_mask=attention_mask, pixel_values=pixel_values
        ).logits_per_video

    with torch.inference_mode():
        with FlopCounterMode(display=False) as counter:  # the warm-up call, counted
            peer_logits = peer_forward().numpy()
        peer_flops = counter.get_total_flops() / b
        fns = {"ours": lambda: compiled(*j_args).block_until_ready()}
        for n in threads:
            fns[f"X-CLIP {n}T"] = functools.partial(torch_call, n, peer_forward)
            fns[f"X-CLIP {n}T"]()  # warm-up outside the counter
        load_before = os.getloadavg()[0]
        best = best_times(fns, args.repeats)
    ours_s = best.pop("ours")
    peer_name, peer_s = min(best.items(), key=lambda kv: kv[1])

    for name, logits in (("ours", ours_logits), ("X-CLIP", peer_logits)):
        if logits.shape != (b, k) or not np.all(np.isfinite(logits)):
            raise RuntimeError(f"{name}: logits {logits.shape}, finite={np.isfinite(logits).all()}")
    count = lambda module: sum(p.numel() for p in module.parameters())
    matmul = calibration()["matmul_gflops_jax"]
    share = lambda flops, seconds: f"{flops * b / seconds / 1e9 / matmul:.2f} x calibration matmul"
    print(
        f"jax {jax.__version__} ({jax.devices()[0].platform}; image_chunk_frames "
        f"{args.image_chunk_frames} -> {video_lib.image_chunk_size(args.image_chunk_frames)}, "
        f"share_prompt_prefix {config.share_prompt_prefix}), torch {torch.__version__} "
        f"(default {default_threads} threads); load average {load_before:.2f} before the timed "
        f"rounds, {os.getloadavg()[0]:.2f} after"
    )
    print(
        f"inputs: batch {b} videos x T={t} frames x 224 px, K={k} HMDB-51 classes, text context "
        f"{ids.shape[1]} tokens, float32, best of {args.repeats} after a warm-up"
    )
    print(
        f"ours (JAX, full model, {params_lib.count_params(params) / 1e6:.1f}M params): "
        f"{b / ours_s:.3f} videos/s ({ours_s:.2f} s/batch; compile {compile_s:.1f} s; "
        f"{ours_flops / 1e9:.1f} GFLOPs/video by XLA cost analysis; "
        f"{share(ours_flops, ours_s)})"
    )
    for name, seconds in best.items():
        print(
            f"{name} (PyTorch, transformers XCLIPModel base-patch16, {count(peer) / 1e6:.1f}M "
            f"params): {b / seconds:.3f} videos/s ({seconds:.2f} s/batch; {peer_flops / 1e9:.1f} "
            f"GFLOPs/video by torch FlopCounterMode, matmuls/convs only; "
            f"{share(peer_flops, seconds)})"
        )
    print(f"throughput ratio ours / X-CLIP (fastest: {peer_name}): {peer_s / ours_s:.2f}x")
    print(f"load average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")


def torch_call(threads: int, fn):
    """fn() with torch's intra-op pool at `threads` threads."""
    torch.set_num_threads(threads)
    return fn()


if __name__ == "__main__":
    main()
