"""Flax CLIP + conversion against the external references: OpenAI's clip/model.py and HF CLIPModel."""

from __future__ import annotations

import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import pytest
import torch

from motion_clip_jax.convert import (
    CheckpointError,
    clip_from_torch,
    clip_to_torch,
    config_of,
    load_clip,
    save_clip,
)
from motion_clip_jax.convert.layout import expected_param_shapes, flax_path_to_torch_key
from motion_clip_jax.models.clip import clip_config, count_params, init_clip

from .conftest import REPO_ROOT

SOT, EOT = 49406, 49407

# Several shapes: widths (heads = width // 64 in OpenAI's code), depths, patch and image sizes.
SHAPE_FIELDS = (
    "embed_dim",
    "image_resolution",
    "vision_layers",
    "vision_width",
    "vision_patch_size",
    "transformer_width",
    "transformer_layers",
)
TINY_SHAPES = {
    name: dict(zip(SHAPE_FIELDS, values))
    for name, values in {
        "w64_p8_r32": (32, 32, 2, 64, 8, 64, 1),
        "w128_p16_r48": (48, 48, 1, 128, 16, 128, 2),
        "w192_p14_r28": (16, 28, 3, 192, 14, 64, 2),
    }.items()
}


def rel_err(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / np.abs(b).max())


def openai_clip(openai_model, shape: dict, seed: int = 0, context_length: int = 77):
    torch.manual_seed(seed)
    return openai_model.CLIP(
        context_length=context_length,
        vocab_size=49408,
        transformer_heads=shape["transformer_width"] // 64,
        **shape,
    ).eval()


def random_inputs(resolution: int, n_images: int = 3, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    images = torch.randn(n_images, 3, resolution, resolution, generator=g)
    ids = torch.zeros(4, 77, dtype=torch.long)
    for row, eos in enumerate([1, 6, 30, 76]):  # empty prompt, short, long, full-length
        ids[row, 0] = SOT
        ids[row, 1:eos] = torch.randint(1, 49000, (eos - 1,), generator=g)
        ids[row, eos] = EOT
    return images, ids


def torch_features(model, images, ids):
    with torch.no_grad():
        return model.encode_image(images).float().numpy(), model.encode_text(ids).float().numpy()


def flax_features(module, variables, images, ids):
    img = module.apply(
        variables, jnp.asarray(images.permute(0, 2, 3, 1).numpy()), method="encode_image"
    )
    txt = module.apply(variables, jnp.asarray(ids.numpy(), jnp.int32), method="encode_text")
    return np.asarray(img), np.asarray(txt)


def assert_parity(module, variables, model, resolution, tol=1e-5):
    images, ids = random_inputs(resolution)
    ti, tt = torch_features(model, images, ids)
    ji, jt = flax_features(module, variables, images, ids)
    assert ji.shape == ti.shape and jt.shape == tt.shape
    assert rel_err(ji, ti) < tol, rel_err(ji, ti)
    assert rel_err(jt, tt) < tol, rel_err(jt, tt)


@pytest.mark.parametrize("shape_name", sorted(TINY_SHAPES))
def test_state_dict_parity_and_exact_round_trip(openai_model, shape_name):
    shape = TINY_SHAPES[shape_name]
    model = openai_clip(openai_model, shape)
    state_dict = model.state_dict()
    module, variables = clip_from_torch(state_dict)
    assert module.config.vision_width == shape["vision_width"]
    assert module.config.vision_layers == shape["vision_layers"]
    assert module.config.image_resolution == shape["image_resolution"]
    assert_parity(module, variables, model, shape["image_resolution"])

    back = clip_to_torch(variables)
    assert set(back) == set(state_dict)
    for key, value in state_dict.items():
        assert back[key].shape == value.shape and back[key].dtype == value.dtype, key
        assert torch.equal(back[key], value), key
    # build_model loads strictly, then casts to fp16 as OpenAI's released models are.
    rebuilt = openai_model.build_model({k: v.clone() for k, v in back.items()})
    assert torch.equal(rebuilt.visual.proj, model.visual.proj.half())


def test_torchscript_archive_and_saved_files(openai_model, tmp_path):
    """OpenAI releases traced TorchScript archives (fp16 weights); users also keep plain .pt files."""
    shape = TINY_SHAPES["w64_p8_r32"]
    model = openai_clip(openai_model, shape, seed=1)
    res = shape["image_resolution"]
    images, ids = random_inputs(res)

    traced = torch.jit.trace(model, (images[:1], ids[:2]))
    archive = tmp_path / "ViT-tiny.pt"
    traced.save(str(archive))
    with pytest.raises(Exception):  # noqa: B017 - why the loader must not use weights_only=True
        torch.load(str(archive), weights_only=True)
    module, variables = clip_from_torch(archive)
    assert_parity(module, variables, model, res)

    fp32_path = tmp_path / "fp32.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}}, fp32_path)
    module, variables = clip_from_torch(fp32_path)
    assert_parity(module, variables, model, res)

    # fp16 state_dict: compare with the reference model holding the same fp16-rounded weights.
    half = {k: v.half() for k, v in model.state_dict().items()}
    fp16_path = tmp_path / "fp16.pt"
    torch.save(half, fp16_path)
    rounded = openai_clip(openai_model, shape)
    rounded.load_state_dict({k: v.float() for k, v in half.items()})
    module, variables = clip_from_torch(fp16_path)
    assert_parity(module, variables, rounded, res)


def hf_tower(width: int, layers: int, heads: int, mlp_ratio: int = 4, **fields) -> dict:
    """One tower (`text_config` / `vision_config`) of a Hugging Face CLIPConfig."""
    return dict(
        hidden_size=width,
        intermediate_size=mlp_ratio * width,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        **fields,
    )


@pytest.mark.parametrize("fmt", ["safetensors", "bin"])
def test_hugging_face_layout(tmp_path, fmt):
    """HF transformers CLIPModel, independent code: its own features are the reference."""
    transformers = pytest.importorskip("transformers")
    config = transformers.CLIPConfig(
        text_config=hf_tower(
            64, 2, 2, vocab_size=49408, max_position_embeddings=77, hidden_act="quick_gelu"
        ),
        vision_config=hf_tower(128, 2, 4, image_size=32, patch_size=8, hidden_act="quick_gelu"),
        projection_dim=24,
    )
    torch.manual_seed(0)
    hf = transformers.CLIPModel(config).eval()
    hf.save_pretrained(tmp_path / "hf", safe_serialization=(fmt == "safetensors"))
    module, variables = clip_from_torch(tmp_path / "hf")
    assert module.config.num_vision_heads == 4 and module.config.num_text_heads == 2

    images, ids = random_inputs(32)
    with torch.no_grad():
        ti = hf.get_image_features(pixel_values=images)
        tt = hf.get_text_features(input_ids=ids)
    ti = getattr(ti, "pooler_output", ti).numpy()
    tt = getattr(tt, "pooler_output", tt).numpy()
    ji, jt = flax_features(module, variables, images, ids)
    assert rel_err(ji, ti) < 1e-5 and rel_err(jt, tt) < 1e-5, (rel_err(ji, ti), rel_err(jt, tt))


def test_vit_b16_parameter_count_and_shapes(openai_model):
    """All shapes against OpenAI's own ViT-B/16 definition (built on the meta device: no memory)."""
    config = clip_config("vit_b16")
    shapes = expected_param_shapes(config)
    assert sum(int(np.prod(s)) for s in shapes.values()) == 149_620_737
    with torch.device("meta"):
        reference = openai_model.CLIP(512, 224, 12, 768, 16, 77, 49408, 512, 8, 12)
    ref_shapes = {k: tuple(v.shape) for k, v in reference.state_dict().items()}
    ours = {}
    for path, shape in shapes.items():
        key = flax_path_to_torch_key(path)
        if path[-1] == "conv1":
            shape = (shape[3], shape[2], shape[0], shape[1])
        elif path[-1] == "kernel":
            shape = shape[::-1]
        ours[key] = shape
    assert ours == ref_shapes


def test_vit_b16_one_real_frame(openai_model):
    """One real ViT-B/16 forward (image: 1 frame, text: 2 prompts) against OpenAI's code."""
    torch.manual_seed(0)
    model = openai_model.CLIP(512, 224, 12, 768, 16, 77, 49408, 512, 8, 12).eval()
    module, variables = clip_from_torch(model.state_dict())
    assert count_params(variables) == 149_620_737
    images, ids = random_inputs(224, n_images=1)
    ids = ids[1:3]
    ti, tt = torch_features(model, images, ids)
    ji, jt = flax_features(module, variables, images, ids)
    assert rel_err(ji, ti) < 1e-5 and rel_err(jt, tt) < 1e-5, (rel_err(ji, ti), rel_err(jt, tt))


def test_short_context_gives_the_same_text_features():
    """The exact shortcut (docs/model.md, "Exact shortcuts"): a causal tower read at EOS ignores every later token."""
    module, variables = init_clip(clip_config("tiny"), rng=0)
    _, ids = random_inputs(32)
    ids = jnp.asarray(ids.numpy()[:3], jnp.int32)  # EOS at 1, 6, 30
    full = module.apply(variables, ids, method="encode_text")
    short = module.apply(variables, ids[:, :31], method="encode_text")
    assert rel_err(short, full) < 1e-6
    wrong = module.apply(variables, ids[:, :20], method="encode_text")  # cuts one EOS off
    assert rel_err(wrong, full) > 1e-2


def test_flax_file_round_trip_and_cli(openai_model, tmp_path):
    shape = TINY_SHAPES["w128_p16_r48"]
    model = openai_clip(openai_model, shape, seed=3)
    torch.save(model.state_dict(), tmp_path / "in.pt")
    run = lambda *args: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "motion_clip_jax.convert", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = run(
        "to-flax", "--input", str(tmp_path / "in.pt"), "--output", str(tmp_path / "c.msgpack")
    )
    assert out.returncode == 0, out.stderr
    module, variables = load_clip(tmp_path / "c.msgpack")
    assert_parity(module, variables, model, shape["image_resolution"])
    assert config_of(variables) == module.config

    out = run(
        "to-torch", "--input", str(tmp_path / "c.msgpack"), "--output", str(tmp_path / "o.pt")
    )
    assert out.returncode == 0, out.stderr
    back = torch.load(tmp_path / "o.pt", weights_only=True)
    for key, value in model.state_dict().items():
        assert torch.equal(back[key], value), key

    out = run("to-flax", "--input", str(tmp_path / "missing.pt"), "--output", str(tmp_path / "x"))
    assert out.returncode == 1 and "missing.pt" in out.stderr

    save_clip(tmp_path / "again.msgpack", module.config, variables["params"])
    _, again = load_clip(tmp_path / "again.msgpack")
    np.testing.assert_array_equal(
        again["params"]["visual"]["proj"], variables["params"]["visual"]["proj"]
    )


# ---------------------------------------------------------------------------------------------
# Bad input: each error names what is wrong.


@pytest.fixture(scope="module")
def tiny_state_dict(openai_model):
    return openai_clip(openai_model, TINY_SHAPES["w64_p8_r32"]).state_dict()


def test_error_not_a_clip_checkpoint():
    with pytest.raises(CheckpointError, match="Not a CLIP ViT checkpoint.*missing"):
        clip_from_torch({"fc.weight": torch.zeros(3, 3), "fc.bias": torch.zeros(3)})


def test_error_resnet_clip(tiny_state_dict):
    sd = dict(tiny_state_dict, **{"visual.layer1.0.conv1.weight": torch.zeros(1)})
    with pytest.raises(CheckpointError, match="ResNet CLIP"):
        clip_from_torch(sd)


def test_error_missing_and_unexpected_keys_are_listed(tiny_state_dict):
    sd = dict(tiny_state_dict)
    del sd["visual.transformer.resblocks.1.mlp.c_fc.bias"]
    sd["visual.extra_head.weight"] = torch.zeros(2)
    with pytest.raises(CheckpointError) as e:
        clip_from_torch(sd)
    assert "visual.transformer.resblocks.1.mlp.c_fc.bias" in str(e.value)
    assert "visual.extra_head.weight" in str(e.value)


def test_error_shape_mismatch_names_both_shapes(tiny_state_dict):
    sd = dict(tiny_state_dict)
    sd["transformer.resblocks.0.mlp.c_proj.weight"] = torch.zeros(64, 100)
    with pytest.raises(
        CheckpointError,
        match=r"c_proj.weight has shape \(64, 100\), expected "
        r"\(64, 256\)",
    ):
        clip_from_torch(sd)


# A file name: what is written there (nothing: absent), the loader, its error, what that names.
BAD_FILES = {
    "nope.pt": (None, clip_from_torch, FileNotFoundError, "nope.pt"),
    "garbage.pt": (
        lambda path: path.write_bytes(b"this is not a checkpoint"),
        clip_from_torch,
        CheckpointError,
        "garbage.pt",
    ),
    "list.pt": (
        lambda path: torch.save([1, 2, 3], path),
        clip_from_torch,
        CheckpointError,
        "list.pt.*not a state_dict",
    ),
    "empty_dir": (lambda path: path.mkdir(), clip_from_torch, CheckpointError, "empty_dir"),
    "x.msgpack": (
        lambda path: path.write_bytes(b"\x00\x01garbage"),
        load_clip,
        CheckpointError,
        "x.msgpack",
    ),
    "absent.msgpack": (None, load_clip, FileNotFoundError, "convert"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_error_files(tmp_path, name):
    write, load, error, match = BAD_FILES[name]
    path = tmp_path / name
    if write:
        write(path)
    with pytest.raises(error, match=match):
        load(path)


def test_error_hf_missing_projection_part(tmp_path):
    transformers = pytest.importorskip("transformers")
    config = transformers.CLIPConfig(
        text_config=hf_tower(64, 1, 1, mlp_ratio=2),
        vision_config=hf_tower(64, 1, 1, mlp_ratio=2, image_size=16, patch_size=8),
        projection_dim=8,
    )
    sd = transformers.CLIPModel(config).state_dict()
    del sd["text_model.encoder.layers.0.self_attn.k_proj.weight"]
    with pytest.raises(CheckpointError, match="k_proj.weight"):
        clip_from_torch(sd)
