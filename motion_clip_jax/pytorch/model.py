"""The whole video model in pure PyTorch, for models exported by `motion_clip_jax.pytorch.export`.

  model, info = load_exported("model.pt")
  logits = model(video, info["class_names"])        # video (B, T, 3, H, W), CLIP-normalised

Imports torch, NumPy and the project's tokenizer only (no JAX, Flax or TensorFlow), so a trained
model runs wherever PyTorch does. It computes what `models/video_clip.py` computes (docs/model.md): frozen CLIP image tower per frame -> MMB (spatial + motion streams) -> prompts
(hand-crafted, learned or motion-aware) through the frozen CLIP text tower -> MCB -> cosine / tau.

Layout: video is (B, T, 3, H, W) (PyTorch's channels-first frames; `inference.video.load_views` gives
channels-last (V, T, H, W, 3): permute(0, 1, 4, 2, 3)). Computation is float32.

The spec it reads (fields, variants, motion pairs, prompt rows and how context enters them) is
`motion_clip_jax.core`, the same code the Flax model runs.

Parameter names: `clip.*` is OpenAI's CLIP layout (the dict `clip.model.build_model` accepts);
the added modules mirror the Flax tree: `mmb.temporal_embedding`, `mmb.spatial.block_0.attn.query
.weight`, `prompt.ctx`, `prompt.adapter_down.weight`, `mcb.sma.ln_q.weight`, ...
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from motion_clip_jax.core import model_spec
from motion_clip_jax.core.class_prompts import class_prompt_tokens, prompt_features
from motion_clip_jax.core.clip_spec import CLIPConfig
from motion_clip_jax.core.error_text import first_line

FORMAT = "motion_clip_jax.torch.v1"


class ExportError(ValueError):
    """An exported file that is not a (valid) motion_clip_jax PyTorch export; names the file."""


def quick_gelu(x: torch.Tensor) -> torch.Tensor:
    return x * torch.sigmoid(1.702 * x)


_IMPLEMENTATIONS = {"relu": F.relu, "gelu": F.gelu, "quick_gelu": quick_gelu}
# Keyed by the spec's names: a name the spec adds without an implementation fails at import.
ACTIVATIONS = {name: _IMPLEMENTATIONS[name] for name in model_spec.ADAPTER_ACTIVATIONS}


# ----------------------------------------------------------------------------- CLIP (OpenAI layout)


class CLIPAttention(nn.Module):
    """Self-attention with OpenAI's (nn.MultiheadAttention's) parameter names. (N, L, W)."""

    def __init__(self, width: int, heads: int, causal: bool):
        super().__init__()
        self.heads, self.causal = heads, causal
        self.in_proj_weight = nn.Parameter(torch.empty(3 * width, width))
        self.in_proj_bias = nn.Parameter(torch.empty(3 * width))
        self.out_proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, length, width = x.shape
        qkv = F.linear(x, self.in_proj_weight, self.in_proj_bias)
        q, k, v = qkv.view(n, length, 3, self.heads, width // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal)
        return self.out_proj(out.transpose(1, 2).reshape(n, length, width))


class CLIPMlp(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.c_fc = nn.Linear(width, 4 * width)
        self.c_proj = nn.Linear(4 * width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(quick_gelu(self.c_fc(x)))


class CLIPBlock(nn.Module):
    """x + attn(ln_1(x)); x + mlp(ln_2(x))."""

    def __init__(self, width: int, heads: int, causal: bool):
        super().__init__()
        self.attn = CLIPAttention(width, heads, causal)
        self.ln_1 = nn.LayerNorm(width, eps=1e-5)
        self.mlp = CLIPMlp(width)
        self.ln_2 = nn.LayerNorm(width, eps=1e-5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class CLIPTransformer(nn.Module):
    def __init__(self, width: int, layers: int, heads: int, causal: bool):
        super().__init__()
        self.resblocks = nn.Sequential(*[CLIPBlock(width, heads, causal) for _ in range(layers)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.resblocks(x)


class CLIPVision(nn.Module):
    """(N, 3, H, W) CLIP-normalised images -> (N, D) projected class tokens."""

    def __init__(self, c: Mapping[str, Any]):
        super().__init__()
        width, patch = c["vision_width"], c["vision_patch_size"]
        grid = c["image_resolution"] // patch
        self.resolution = c["image_resolution"]
        self.conv1 = nn.Conv2d(3, width, patch, stride=patch, bias=False)
        self.class_embedding = nn.Parameter(torch.empty(width))
        self.positional_embedding = nn.Parameter(torch.empty(grid * grid + 1, width))
        self.ln_pre = nn.LayerNorm(width, eps=1e-5)
        self.transformer = CLIPTransformer(width, c["vision_layers"], c["vision_heads"], False)
        self.ln_post = nn.LayerNorm(width, eps=1e-5)
        self.proj = nn.Parameter(torch.empty(width, c["embed_dim"]))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        n = images.shape[0]
        if tuple(images.shape[1:]) != (3, self.resolution, self.resolution):
            raise ValueError(
                f"CLIP image tower expects (N, 3, {self.resolution}, {self.resolution}) images, "
                f"got {tuple(images.shape)}"
            )
        x = self.conv1(images).flatten(2).transpose(1, 2)  # (N, grid^2, W)
        cls = self.class_embedding.expand(n, 1, -1)
        x = self.ln_pre(torch.cat([cls, x], dim=1) + self.positional_embedding)
        x = self.transformer(x)
        return self.ln_post(x[:, 0]) @ self.proj


class CLIP(nn.Module):
    """OpenAI's ViT CLIP: its state_dict keys are exactly `clip.model.build_model`'s."""

    def __init__(self, c: Mapping[str, Any]):
        super().__init__()
        width = c["transformer_width"]
        self.visual = CLIPVision(c)
        self.transformer = CLIPTransformer(
            width, c["transformer_layers"], c["transformer_heads"], causal=True
        )
        self.token_embedding = nn.Embedding(c["vocab_size"], width)
        self.positional_embedding = nn.Parameter(torch.empty(c["context_length"], width))
        self.ln_final = nn.LayerNorm(width, eps=1e-5)
        self.text_projection = nn.Parameter(torch.empty(width, c["embed_dim"]))
        self.logit_scale = nn.Parameter(torch.empty(()))

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) -> (N, D), not L2-normalised."""
        return self.visual(images)

    def encode_text_embeddings(self, x: torch.Tensor, eos: torch.Tensor) -> torch.Tensor:
        """Token embeddings (N, L, Wt), L <= context, EOT positions (N,) -> (N, D)."""
        length = x.shape[1]
        if length > self.positional_embedding.shape[0]:
            raise ValueError(f"text length {length} > context {self.positional_embedding.shape[0]}")
        x = self.transformer(x + self.positional_embedding[:length])
        x = x[torch.arange(x.shape[0]), eos.long()]
        return self.ln_final(x) @ self.text_projection

    def encode_text(self, ids: torch.Tensor) -> torch.Tensor:
        """(N, L) token ids -> (N, D); EOT is the highest id of each row (as OpenAI)."""
        return self.encode_text_embeddings(self.token_embedding(ids.long()), ids.argmax(dim=-1))


# ----------------------------------------------------------------------------- the added modules


class Attention(nn.Module):
    """Multi-head attention with q/k/v projections to `qkv_dim` and `out` back to `width`, the key
    projection without bias (models/blocks.py says why). q (N, Q, W), kv (N, S, W) -> (N, Q, W)."""

    def __init__(self, width: int, heads: int, qkv_dim: int):
        super().__init__()
        self.heads = heads
        self.query = nn.Linear(width, qkv_dim)
        self.key = nn.Linear(width, qkv_dim, bias=False)
        self.value = nn.Linear(width, qkv_dim)
        self.out = nn.Linear(qkv_dim, width)

    def forward(self, q: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
        def split(x):  # (N, S, qkv) -> (N, heads, S, qkv / heads)
            return x.view(x.shape[0], x.shape[1], self.heads, -1).transpose(1, 2)

        out = F.scaled_dot_product_attention(
            split(self.query(q)), split(self.key(kv)), split(self.value(kv))
        )
        return self.out(out.transpose(1, 2).reshape(q.shape[0], q.shape[1], -1))


class TransformerBlock(nn.Module):
    """x + MHSA(LN(x)); x + MLP(LN(x)), exact-GELU MLP of width round(mlp_ratio * D)."""

    def __init__(self, width: int, heads: int, mlp_ratio: float):
        super().__init__()
        hidden = int(round(mlp_ratio * width))
        self.ln_1 = nn.LayerNorm(width, eps=1e-5)
        self.attn = Attention(width, heads, width)
        self.ln_2 = nn.LayerNorm(width, eps=1e-5)
        self.fc1 = nn.Linear(width, hidden)
        self.fc2 = nn.Linear(hidden, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.ln_1(x)
        x = x + self.attn(h, h)
        return x + self.fc2(F.gelu(self.fc1(self.ln_2(x))))


class TransformerStack(nn.Module):
    """`depth` blocks named block_0, block_1, ... (no final LayerNorm)."""

    def __init__(self, depth: int, width: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.depth = depth
        for i in range(depth):
            self.add_module(f"block_{i}", TransformerBlock(width, heads, mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i in range(self.depth):
            x = getattr(self, f"block_{i}")(x)
        return x


class MotionModelingBlock(nn.Module):
    """(B, T, D) frame features -> {'V': (B, D), 'S': (B, T, D) | None, 'M': (B, L, D) | None}."""

    def __init__(self, c: Mapping[str, Any], width: int):
        super().__init__()
        self.spatial_stream, self.motion_stream = c["spatial_stream"], c["motion_stream"]
        t = c["num_frames"]
        stack = lambda: TransformerStack(c["mmb_depth"], width, c["mmb_heads"], c["mmb_mlp_ratio"])
        if self.spatial_stream:
            self.temporal_embedding = nn.Parameter(torch.empty(t, width))
            self.spatial = stack()
        if self.motion_stream:
            self.pairs = tuple(p.tolist() for p in model_spec.motion_pairs(t, c["motion_step"]))
            self.pair_embedding = nn.Parameter(torch.empty(len(self.pairs[0]), width))
            self.motion = stack()

    def forward(self, frames: torch.Tensor) -> dict[str, torch.Tensor | None]:
        pooled, spatial, motion = [], None, None
        if self.spatial_stream:
            spatial = self.spatial(frames + self.temporal_embedding)
            pooled.append(spatial.mean(dim=1))
        if self.motion_stream:
            i_idx, j_idx = self.pairs
            motion = self.motion(frames[:, j_idx] - frames[:, i_idx] + self.pair_embedding)
            pooled.append(motion.mean(dim=1))
        video = sum(pooled) if pooled else frames.mean(dim=1)
        return {"V": video, "S": spatial, "M": motion}


class PromptLearner(nn.Module):
    """ctx (H, Dt), plus adapter(mean_L(M)) (B, Dt) for motion-aware prompts -> (B, H, Dt)."""

    def __init__(self, c: Mapping[str, Any], width: int, text_width: int):
        super().__init__()
        self.motion_aware = c["prompts"] == "motion_aware"
        self.ctx = nn.Parameter(torch.empty(c["n_ctx"], text_width))
        if self.motion_aware:
            hidden = max(1, width // c["adapter_reduction"])
            self.adapter_down = nn.Linear(width, hidden)
            self.adapter_up = nn.Linear(hidden, text_width)
            self.activation = ACTIVATIONS[c["adapter_activation"]]

    def forward(self, motion: torch.Tensor | None) -> torch.Tensor:
        if not self.motion_aware:
            return self.ctx
        shift = self.adapter_up(self.activation(self.adapter_down(motion)))
        return self.ctx[None] + shift[:, None, :]


class ResidualCrossAttention(nn.Module):
    """q + [g *] CA(norm(q), norm(kv)), CA projected (Attention) or plain (per head
    softmax(q k^T / sqrt(d)) v, k = v = kv, no parameters); norm none | l2 (residual on the unit
    vectors too) | layernorm (pre-LN); g a per-channel gate when scale_init > 0 (models/mcb.py)."""

    def __init__(self, width: int, c: Mapping[str, Any]):
        super().__init__()
        self.heads, self.norm = c["mcb_heads"], c["mcb_norm"]
        if self.norm == "layernorm":
            self.ln_q = nn.LayerNorm(width, eps=1e-5)
            self.ln_kv = nn.LayerNorm(width, eps=1e-5)
        self.attn = Attention(width, self.heads, c["mcb_qkv_dim"]) if c["mcb_projections"] else None
        if c["mcb_scale_init"]:
            self.residual_scale = nn.Parameter(torch.full((width,), float(c["mcb_scale_init"])))
        else:
            self.residual_scale = None

    def plain_attention(self, q: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
        def split(x):  # (N, S, W) -> (N, heads, S, W / heads)
            return x.reshape(x.shape[0], x.shape[1], self.heads, -1).transpose(1, 2)

        kv = split(kv)
        out = F.scaled_dot_product_attention(split(q), kv, kv)
        return out.transpose(1, 2).reshape(q.shape)

    def forward(self, queries: torch.Tensor, keys_values: torch.Tensor) -> torch.Tensor:
        if self.norm == "l2":
            queries = F.normalize(queries, dim=-1, eps=1e-12)
            keys_values = F.normalize(keys_values, dim=-1, eps=1e-12)
        q, kv = queries, keys_values
        if self.norm == "layernorm":
            q, kv = self.ln_q(queries), self.ln_kv(keys_values)
        out = self.attn(q, kv) if self.attn is not None else self.plain_attention(q, kv)
        if self.residual_scale is not None:
            out = out * self.residual_scale
        return queries + out


class MultimodalCommunicationBlock(nn.Module):
    """T' = T + SMA(T, [S; M] or V);  V' = V + SAA(V, T), both on the un-updated T and V; each
    attention a ResidualCrossAttention of the config's form (models/mcb.py)."""

    def __init__(self, c: Mapping[str, Any], width: int):
        super().__init__()
        self.keys = c["mcb_keys"]
        self.sma = ResidualCrossAttention(width, c)
        self.saa = ResidualCrossAttention(width, c)

    def forward(self, text, video, video_tokens):
        if text.ndim == 2:  # prompts shared by all videos
            text = text.expand(video.shape[0], *text.shape)
        keys = video[:, None] if self.keys == "pooled" else video_tokens
        return self.sma(text, keys), self.saa(video[:, None], text)[:, 0]


def cosine_logits(video: torch.Tensor, text: torch.Tensor, temperature: float) -> torch.Tensor:
    """cos(T_k, V) / tau: video (B, D), text (K, D) or (B, K, D) -> (B, K)."""
    v = F.normalize(video, dim=-1, eps=1e-12)
    t = F.normalize(text, dim=-1, eps=1e-12)
    if t.ndim == 2:
        return v @ t.T / temperature
    return torch.einsum("bd,bkd->bk", v, t) / temperature


# ----------------------------------------------------------------------------- the model


class VideoCLIP(nn.Module):
    """The paper's model, every variant (config switches as in `models/model_config.py`).

    forward(video (B, T, 3, H, W), classes) -> logits (B, K); classes is a list of K class names,
    or (ids (K, L), eos (K,)) from `class_tokens` / `self.class_tokens`.
    """

    def __init__(self, model_config: Mapping[str, Any], clip_config: Mapping[str, Any]):
        super().__init__()
        self.config = dict(model_config)
        c = self.config
        width, text_width = clip_config["embed_dim"], clip_config["transformer_width"]
        self.clip = CLIP(clip_config)
        self.mmb = MotionModelingBlock(c, width)
        if c["prompts"] != "handcrafted":
            self.prompt = PromptLearner(c, width, text_width)
        if c["mcb"]:
            self.mcb = MultimodalCommunicationBlock(c, width)

    def class_tokens(self, class_names: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """K class names -> (ids (K, L), eos (K,)) int64 tensors with the config's phrase."""
        context_length = self.clip.positional_embedding.shape[0]
        ids, eos = class_prompt_tokens(self.config, class_names, context_length)
        return torch.from_numpy(ids).long(), torch.from_numpy(eos).long()

    def encode_frames(self, video: torch.Tensor) -> torch.Tensor:
        """(B, T, 3, H, W) -> (B, T, D) frozen CLIP image features."""
        if video.ndim != 5 or video.shape[2] != 3:
            raise ValueError(f"video must be (B, T, 3, H, W), got {tuple(video.shape)}")
        if video.shape[1] != self.config["num_frames"]:
            raise ValueError(
                f"model built for num_frames={self.config['num_frames']}, got video "
                f"{tuple(video.shape)}"
            )
        b, t = video.shape[:2]
        return self.clip.encode_image(video.reshape(b * t, *video.shape[2:])).reshape(b, t, -1)

    def text_features(
        self, ids: torch.Tensor, eos: torch.Tensor, motion: torch.Tensor | None
    ) -> torch.Tensor:
        """(K, L) ids, (K,) eos, motion (B, D) -> (K, D), or (B, K, D) for motion-aware prompts."""
        embeddings = self.clip.token_embedding(ids)  # (K, L, Wt)
        ctx = None if self.config["prompts"] == "handcrafted" else self.prompt(motion)
        return prompt_features(embeddings, eos, ctx, self.clip.encode_text_embeddings, torch)

    def logits_from_features(
        self, frames: torch.Tensor, ids: torch.Tensor, eos: torch.Tensor
    ) -> torch.Tensor:
        """(B, T, D) frame features -> (B, K) logits."""
        video = self.mmb(frames)
        motion = None if video["M"] is None else video["M"].mean(dim=1)
        text = self.text_features(ids, eos, motion)
        v, t = video["V"], text
        if self.config["mcb"]:
            t, v = self.mcb(text, v, model_spec.video_tokens(video, torch))
        return cosine_logits(v, t, self.config["temperature"])

    def forward(self, video: torch.Tensor, classes) -> torch.Tensor:
        if isinstance(classes, tuple) and len(classes) == 2 and torch.is_tensor(classes[0]):
            ids, eos = classes
        else:
            ids, eos = self.class_tokens(classes)
        return self.logits_from_features(self.encode_frames(video), ids.long(), eos.long())


# ----------------------------------------------------------------------------- loading


def build_model(info: Mapping[str, Any], path: str = "<export>") -> VideoCLIP:
    """An uninitialised VideoCLIP for an export's 'model_config' and 'clip_config', both checked
    by the spec the JAX side uses (`core.model_spec.validate`, `CLIPConfig`)."""
    model_config, clip_config = info.get("model_config"), info.get("clip_config")
    for what, value in (("model_config", model_config), ("clip_config", clip_config)):
        if not isinstance(value, Mapping):
            raise ExportError(f"{path}: {what} is {type(value).__name__}, not a dict")
    try:
        model_config = model_spec.upgrade_record(model_config)  # exports of older versions
        model_spec.validate(model_config)
        clip = CLIPConfig.from_dict(dict(clip_config)).to_dict()
    except (TypeError, ValueError) as e:
        raise ExportError(f"{path}: {e}") from None
    return VideoCLIP(model_config, clip)


def load_exported(
    path: str | os.PathLike, map_location: str | torch.device = "cpu"
) -> tuple[VideoCLIP, dict[str, Any]]:
    """Reads a file written by `motion_clip_jax.export_torch` -> (model in eval mode, info).

    info: everything in the file but the weights: 'model_config', 'clip_config', 'class_names',
    'crop_size', 'num_frames', 'normalization', 'source'. Raises FileNotFoundError, or
    ExportError naming the file and what is wrong (not a torch file, wrong format, missing or
    mis-shaped weights).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No exported model at {path}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:
        raise ExportError(
            f"{path}: not a PyTorch file written by motion_clip_jax.export_torch ({first_line(e)})"
        ) from None
    found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
    if found != FORMAT:
        raise ExportError(f"{path}: not a {FORMAT} file (format={found!r})")
    for key in ("clip", "head"):
        if not isinstance(payload.get(key), Mapping):
            raise ExportError(f"{path}: the {key!r} state_dict is missing")
    model = build_model(payload, path)
    state = {f"clip.{k}": v for k, v in payload["clip"].items()}
    state.update(payload["head"])
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [
        f"{k}: {tuple(state[k].shape)} != {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    if missing or unexpected or wrong:
        raise ExportError(
            f"{path}: weights do not fit the stored config: missing {missing[:5]}, unexpected "
            f"{unexpected[:5]}, wrong shapes {wrong[:5]}"
        )
    model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    model.eval()
    info = {k: v for k, v in payload.items() if k not in ("clip", "head")}
    return model, info
