"""What the benchmarks time: builders for benchmarks/harness.py, each run in a process of its own.

Every builder makes its own inputs from fixed seeds, so candidates in different processes see the
same video, frames and prompts. The towers share weights the same way: every tower candidate
builds Hugging Face's `CLIPModel` at ViT-B/16 sizes under `torch.manual_seed(0)` (deterministic on
the CPU) and converts it to its own layout (ours: the strict HF -> OpenAI -> Flax conversion;
OpenAI's `clip/model.py`: the HF -> OpenAI renames), so their outputs must agree (parity).
JAX and PyTorch are imported inside the builders only (benchmarks/harness.py says why).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

SIDE = 224


def video_input(batch: int, frames: int) -> np.ndarray:
    """(B, T, 224, 224, 3) float32, CLIP-normalised scale: the same in every process."""
    return np.random.default_rng(0).standard_normal((batch, frames, SIDE, SIDE, 3), np.float32)


def class_prompts(config, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Token rows (K, L) and EOT positions (K,) of the first K HMDB-51 class prompts."""
    from motion_clip_jax.core.class_prompts import class_prompt_tokens
    from motion_clip_jax.core.classnames import load_classnames

    names = load_classnames("hmdb51")
    if not 1 <= classes <= len(names):
        raise ValueError(f"classes {classes}: must be in 1..{len(names)}")
    return class_prompt_tokens(config, names[:classes])


def _flops(lowered) -> float:
    from benchmarks.timing import lowered_flops

    return lowered_flops(lowered)


# --- End to end: our full model and X-CLIP -------------------------------------------------------


def ours_config(frames: int, image_chunk_frames: int = -1, text_suffix_groups: int | None = None):
    """Our full model's config at T = `frames` (motion gap s = 4 where T allows it); None: the
    default `text_suffix_groups`."""
    from motion_clip_jax.models import model_config as config_lib

    groups = {} if text_suffix_groups is None else {"text_suffix_groups": text_suffix_groups}
    return config_lib.model_config(
        "full", num_frames=frames, motion_step=min(4, frames - 1),
        image_chunk_frames=image_chunk_frames, **groups,
    )  # fmt: skip


def _ours_model(
    frames: int, classes: int, image_chunk_frames: int = -1, text_suffix_groups: int | None = None
):
    """(config, the module for the first K HMDB-51 classes as predict builds it, params, ids,
    eos)."""
    from motion_clip_jax.models import params as params_lib
    from motion_clip_jax.models import video_clip as video_lib

    config = ours_config(frames, image_chunk_frames, text_suffix_groups)
    model, trainable, frozen = video_lib.init_video_clip(config, 0)
    ids, eos = class_prompts(config, classes)
    model = video_lib.for_classes(model, eos)
    return config, model, params_lib.merge_params(trainable, frozen), ids, eos


def _unchunked(model):
    """The same module with the image tower in one call: XLA's cost analysis counts a loop's body
    once, so FLOPs are taken from this program."""
    import ml_collections

    return model.clone(
        config=ml_collections.FrozenConfigDict({**model.config.to_dict(), "image_chunk_frames": 0})
    )


def ours_full(
    batch: int,
    frames: int,
    classes: int,
    image_chunk_frames: int = -1,
    text_suffix_groups: int | None = None,
):
    """Our full model (frozen ViT-B/16, MMB, motion-aware prompts, MCB), jitted: video -> (B, K)."""
    import jax
    import jax.numpy as jnp

    from motion_clip_jax.models import params as params_lib
    from motion_clip_jax.models import video_clip as video_lib

    config, model, params, ids, eos = _ours_model(
        frames, classes, image_chunk_frames, text_suffix_groups
    )
    args = (params, jnp.asarray(video_input(batch, frames)), jnp.asarray(ids), jnp.asarray(eos))
    forward = jax.jit(lambda p, v, i, e: model.apply({"params": p}, v, i, e))
    start = time.perf_counter()
    compiled = forward.lower(*args).compile()
    compile_s = time.perf_counter() - start
    flat = _unchunked(model)
    flat_forward = jax.jit(lambda p, v, i, e: flat.apply({"params": p}, v, i, e))
    info = {
        "params_M": round(params_lib.count_params(params) / 1e6, 1),
        "gflops_per_video": round(_flops(flat_forward.lower(*args)) / batch / 1e9, 1),
        "compile_s": round(compile_s, 1),
        "image_chunk_frames": video_lib.image_chunk_size(image_chunk_frames),
        "text_context": int(ids.shape[1]),
        "suffix_groups": len(model.suffix_layout or [None]),
        "jax": jax.__version__,
    }
    return lambda: np.asarray(compiled(*args)), info


def xclip_base_patch16_config(num_frames: int):
    """XCLIPConfig of microsoft/xclip-base-patch16 (vision patch 16 at 224 px, 12 layers, width
    768, 1 MIT layer, 2 prompt-generator layers; text 12 layers, width 512). transformers'
    XCLIPConfig defaults are the base-patch32 ones, so every size is set here."""
    from transformers import XCLIPConfig

    vision = dict(
        image_size=SIDE, patch_size=16, num_frames=num_frames, hidden_size=768,
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


def xclip(batch: int, frames: int, classes: int):
    """transformers' XCLIPModel at base-patch16 sizes, inference mode: the same video and token
    rows as ours (X-CLIP gets the matching attention mask) -> (B, K) logits."""
    import torch
    import transformers
    from torch.utils.flop_counter import FlopCounterMode

    ids, eos = class_prompts(ours_config(frames), classes)
    torch.manual_seed(0)
    model = transformers.XCLIPModel(xclip_base_patch16_config(frames)).eval()
    pixels = torch.from_numpy(video_input(batch, frames)).permute(0, 1, 4, 2, 3).contiguous()
    input_ids = torch.from_numpy(np.asarray(ids, np.int64))
    mask = (torch.arange(ids.shape[1])[None, :] <= torch.from_numpy(eos)[:, None]).long()

    @torch.inference_mode()
    def call():
        out = model(input_ids=input_ids, attention_mask=mask, pixel_values=pixels)
        return out.logits_per_video.numpy()

    with FlopCounterMode(display=False) as counter:
        call()
    info = {
        "params_M": round(sum(p.numel() for p in model.parameters()) / 1e6, 1),
        "gflops_per_video": round(counter.get_total_flops() / batch / 1e9, 1),  # matmuls/convs
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
    }
    return call, info


# --- The towers, on shared weights ---------------------------------------------------------------


def hf_clip_b16(attention: str = "sdpa"):
    """Hugging Face CLIPModel at OpenAI's ViT-B/16 sizes, random weights under seed 0, eval."""
    import torch
    from transformers import CLIPConfig, CLIPModel

    text = dict(
        vocab_size=49408, hidden_size=512, intermediate_size=2048, num_hidden_layers=12,
        num_attention_heads=8, max_position_embeddings=77, hidden_act="quick_gelu",
    )  # fmt: skip
    vision = dict(
        image_size=SIDE, patch_size=16, hidden_size=768, intermediate_size=3072,
        num_hidden_layers=12, num_attention_heads=12, hidden_act="quick_gelu",
    )  # fmt: skip
    config = CLIPConfig(text_config=text, vision_config=vision, projection_dim=512)
    torch.manual_seed(0)
    return CLIPModel._from_config(config, attn_implementation=attention).eval()


def _shared_state_dict() -> dict[str, np.ndarray]:
    return {k: v.numpy() for k, v in hf_clip_b16("eager").state_dict().items()}


def frames_input(frames: int) -> np.ndarray:
    """(N, 224, 224, 3) float32 frames: the same in every process."""
    return video_input(1, frames)[0]


def ours_tower(frames: int, image_chunk_frames: int = -1):
    """Our frozen image tower, `VideoCLIP.encode_frames` jitted, on the shared weights: (N, D)."""
    import jax
    import jax.numpy as jnp

    from motion_clip_jax.convert import clip_from_torch
    from motion_clip_jax.models import model_config as config_lib
    from motion_clip_jax.models import video_clip as video_lib

    _, variables = clip_from_torch(_shared_state_dict())
    params = {"clip": variables["params"]}
    video = jnp.asarray(frames_input(frames))[None]

    def encoder(chunk: int):
        model = video_lib.build_model(config_lib.model_config("full", image_chunk_frames=chunk))
        method = video_lib.VideoCLIP.encode_frames
        return jax.jit(lambda p, v: model.apply({"params": p}, v, method=method)[0])

    run = encoder(image_chunk_frames)
    info = {
        "gflops_per_frame": round(_flops(encoder(0).lower(params, video)) / frames / 1e9, 2),
        "image_chunk_frames": video_lib.image_chunk_size(image_chunk_frames),
    }
    return lambda: np.asarray(run(params, video)), info


def _torch_frames(frames: int):
    import torch

    return torch.from_numpy(frames_input(frames)).permute(0, 3, 1, 2).contiguous()


def _torch_tower_info(call) -> dict[str, Any]:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        out = call()
    return {"gflops": counter.get_total_flops() / 1e9, "frames": len(out)}


def _threads() -> dict[str, int]:
    import torch

    return {"torch_threads": torch.get_num_threads()}


def _openai_clip():
    """OpenAI's `clip/model.py` CLIP at ViT-B/16 sizes on the shared weights, eval."""
    import torch

    from motion_clip_jax.convert import hf_to_openai_state_dict
    from tests.conftest import load_openai_clip_file

    model = load_openai_clip_file("model").CLIP(512, 224, 12, 768, 16, 77, 49408, 512, 8, 12)
    state = hf_to_openai_state_dict(_shared_state_dict())
    model.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in state.items()})
    return model.eval()


def openai_tower(frames: int):
    """OpenAI's `clip/model.py` ViT-B/16 `encode_image` on the shared weights: (N, D)."""
    import torch

    model = _openai_clip()
    x = _torch_frames(frames)

    @torch.inference_mode()
    def call():
        return model.encode_image(x).numpy()

    info = _torch_tower_info(call)
    return call, {"gflops_per_frame": round(info["gflops"] / frames, 2), **_threads()}


def hf_tower(frames: int, attention: str = "sdpa"):
    """Hugging Face's CLIP vision tower with its projection (`get_image_features`), attention
    `attention` (sdpa: torch's fused scaled_dot_product_attention): (N, D)."""
    import torch

    model = hf_clip_b16(attention)
    x = _torch_frames(frames)

    @torch.inference_mode()
    def call():
        return model.get_image_features(pixel_values=x).pooler_output.numpy()

    info = _torch_tower_info(call)
    return call, {
        "gflops_per_frame": round(info["gflops"] / frames, 2),
        "attention": model.config._attn_implementation,
        **_threads(),
    }


def text_tokens(prompts: int) -> np.ndarray:
    """(P, 77) int64 token rows: SOT, 14 random tokens, EOT, padding; the same in every process."""
    ids = np.zeros((prompts, 77), np.int64)
    ids[:, 0] = 49406
    ids[:, 1:15] = np.random.default_rng(0).integers(1, 49000, (prompts, 14))
    ids[:, 15] = 49407
    return ids


def ours_text(prompts: int):
    """Our frozen text tower (`CLIP.encode_text`) jitted, on the shared weights: (P, D)."""
    import jax
    import jax.numpy as jnp

    from motion_clip_jax.convert import clip_from_torch

    module, variables = clip_from_torch(_shared_state_dict())
    ids = jnp.asarray(text_tokens(prompts), jnp.int32)
    encode = jax.jit(lambda v, x: module.apply(v, x, method="encode_text"))
    info = {"gflops_per_prompt": round(_flops(encode.lower(variables, ids)) / prompts / 1e9, 2)}
    return lambda: np.asarray(encode(variables, ids)), info


def openai_text(prompts: int):
    """OpenAI's `encode_text` on the shared weights: (P, D)."""
    import torch

    model = _openai_clip()
    ids = torch.from_numpy(text_tokens(prompts))

    @torch.inference_mode()
    def call():
        return model.encode_text(ids).numpy()

    return call, _threads()


# --- Our model's parts, for the profile of the non-tower time ------------------------------------

PARTS = ("image tower", "MMB", "text (MAP prompts + text tower)", "MCB + logits")


def ours_part(
    part: str, batch: int, frames: int, classes: int, text_suffix_groups: int | None = None
):
    """One stage of our full model, jitted on its own, its inputs the stages before it computed
    once: 'image tower' (B, T, H, W, 3) -> (B, T, D); 'MMB' -> V, S, M; 'text ...' -> (B, K, D);
    'MCB + logits' -> (B, K). The parts' times add up to about the whole (fusion across them
    aside)."""
    import jax
    import jax.numpy as jnp

    from motion_clip_jax.models import video_clip as video_lib

    config, model, params, ids, eos = _ours_model(
        frames, classes, text_suffix_groups=text_suffix_groups
    )
    ids, eos = jnp.asarray(ids), jnp.asarray(eos)
    video = jnp.asarray(video_input(batch, frames))

    def stage(method, module=model):
        return jax.jit(lambda p, *a: module.apply({"params": p}, *a, method=method))

    tower = stage(video_lib.VideoCLIP.encode_frames)
    mmb = stage(video_lib.VideoCLIP.video_features)
    text = stage(video_lib.VideoCLIP.text_features)
    match = stage(video_lib.VideoCLIP.match)
    frame_features = tower(params, video)
    video_out = mmb(params, frame_features)
    motion = None if video_out["M"] is None else video_out["M"].mean(axis=1)
    fn, args = {
        PARTS[0]: (tower, (video,)),
        PARTS[1]: (mmb, (frame_features,)),
        PARTS[2]: (text, (ids, eos, motion)),
        PARTS[3]: (match, (video_out, text(params, ids, eos, motion))),
    }[part]
    counted = stage(video_lib.VideoCLIP.encode_frames, _unchunked(model)) if fn is tower else fn
    info = {"gflops": round(_flops(counted.lower(params, *args)) / 1e9, 2)}

    def call():
        return jax.tree_util.tree_map(np.asarray, fn(params, *args))

    return call, info
