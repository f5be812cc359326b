"""Export to PyTorch: round trip, and PyTorch logits = JAX logits for every variant.

The JAX side builds each model (tiny CLIP, random params), exports it with the function the CLI
uses and computes its logits; ONE subprocess that never imports JAX (asserted)
loads every export with `pytorch.model.load_exported` and computes its logits, and also checks the
exported CLIP against OpenAI's own `clip/model.py`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest
import torch

from motion_clip_jax.core import model_spec
from motion_clip_jax.core.class_prompts import class_prompt_tokens
from motion_clip_jax.models import model_config as config_lib
from motion_clip_jax.models.clip import init_clip
from motion_clip_jax.models.video_clip import (
    build_model,
    init_trainable,
)
from motion_clip_jax.pytorch import export as export_torch
from motion_clip_jax.pytorch import model as torch_model

from .conftest import REPO_ROOT

TINY = dict(clip_model="tiny", num_frames=4, motion_step=2, mmb_heads=4, mcb_qkv_dim=32,
            mcb_heads=4, adapter_reduction=4)  # fmt: skip
# Names of different token lengths, so the shortest context is shorter than some rows.
CLASS_NAMES = ["brush hair", "ride a bike down a very steep hill", "x", "pour", "sword exercise"]
# The issue asks for < 1e-4; float32 gives ~1e-6 here, and 2e-5 still catches subtle slips
# (tanh-approximated GELU in the MMB blocks: up to 1.6e-4, 4.6e-5 in the MCB variants).
MAX_RELATIVE_ERROR = 2e-5


def _models() -> dict[str, config_lib.ml_collections.ConfigDict]:
    """Parameter configs: every variant (the default MCB form, pooled keys), the earlier projected
    MCB with each kind of keys, every MCB input norm with and without the gate, and switches no named variant uses (CoOp prompts + token SMA keys; motion
    stream alone, two blocks of MLP ratio 0.5, a quick-GELU adapter,
    T = 5 with s = 4, a 3-token phrase)."""
    models = {variant: config_lib.model_config(variant, **TINY) for variant in model_spec.VARIANTS}
    models["learned+token_keys"] = config_lib.model_config(
        "custom", prompts="learned", mcb_keys="tokens", **TINY
    )
    earlier_mcb = dict(mcb_projections=True, mcb_norm="layernorm", mcb_scale_init=0.0)
    models["full+projected_mcb"] = config_lib.model_config(
        "full", **TINY, **earlier_mcb, mmb_mlp_ratio=1.0
    )
    models["baseline_mcb+projected_token_keys"] = config_lib.model_config(
        "baseline_mcb", **TINY, **earlier_mcb, mcb_keys="tokens"
    )
    # Every other MCB input norm and the residual gate, plain and projected (models/mcb.py).
    for name, form in {
        "plain_none": dict(mcb_norm="none", mcb_scale_init=0.0),
        "plain_l2_gate": dict(mcb_norm="l2", mcb_scale_init=1e-4),
        "plain_layernorm_gate": dict(mcb_norm="layernorm", mcb_scale_init=1e-4),
        "projected_l2_gate": dict(mcb_projections=True, mcb_norm="l2", mcb_scale_init=0.5),
    }.items():
        models[f"baseline_mcb+{name}"] = config_lib.model_config("baseline_mcb", **TINY, **form)
    models["motion_only+deep"] = config_lib.model_config(
        "custom",
        **{**TINY, "num_frames": 5, "motion_step": 4},
        spatial_stream=False,
        mmb_depth=2,
        mmb_mlp_ratio=0.5,
        adapter_activation="quick_gelu",
        ctx_init="human action of",
        n_ctx=3,
    )
    return models


def _cases() -> dict[str, tuple[str, str]]:
    """Case name -> (model, text_context): every variant in both text contexts (the same params
    give the same logits either way; each context is exported and checked on its own)."""
    cases = {f"{v}/{c}": (v, c) for v in model_spec.VARIANTS for c in model_spec.TEXT_CONTEXTS}
    cases.update({m: (m, "shortest") for m in _models() if m not in model_spec.VARIANTS})
    return cases


def _with_context(config, text_context: str):
    config = config_lib.ml_collections.ConfigDict(config.to_dict())
    config.text_context = text_context
    return config


def _random_tree(shapes, seed: int):
    """Random float32 params for a tree of shapes: N(0, 0.05^2), LayerNorm scales 1 + that.

    Not an init: values away from any init (no zero biases, no unit scales, no zero-start
    layers), so every module moves the logits."""
    rng = np.random.default_rng(seed)

    def leaf(path, shape):
        x = rng.normal(0, 0.05, shape.shape).astype(np.float32)
        return 1 + x if jax.tree_util.keystr(path).endswith("['scale']") else x

    return jax.tree_util.tree_map_with_path(leaf, shapes)


def _random_model(config, clip_params, seed: int):
    """(module, trainable, frozen) with random trainable params, traced only (no init run)."""
    model = build_model(config)
    shapes = jax.eval_shape(lambda: init_trainable(model, jax.random.PRNGKey(0)))
    return model, _random_tree(shapes, seed), {"clip": clip_params}


TORCH_SIDE = r"""
import importlib.util, json, os, pathlib, sys
import numpy as np
import torch
from motion_clip_jax.pytorch import model as torch_model

manifest = json.load(open(sys.argv[1]))
results = {"errors": {}, "ids_equal": {}, "logit_range": {}}
for name, case in manifest["cases"].items():
    data = np.load(case["inputs"])
    model, info = torch_model.load_exported(case["export"])
    ids, eos = model.class_tokens(info["class_names"])
    results["ids_equal"][name] = bool(
        np.array_equal(ids.numpy(), data["ids"]) and np.array_equal(eos.numpy(), data["eos"]))
    video = torch.from_numpy(data["video"]).permute(0, 1, 4, 2, 3)  # (B, T, 3, H, W)
    with torch.no_grad():
        logits = model(video, info["class_names"]).numpy()
    ref = data["logits"]
    results["errors"][name] = float(np.abs(logits - ref).max() / np.abs(ref).max())

# The exported CLIP against OpenAI's reference code (clip/model.py, loaded by path).
spec = importlib.util.find_spec("clip")
path = pathlib.Path(list(spec.submodule_search_locations)[0]) / "model.py"
module_spec = importlib.util.spec_from_file_location("openai_clip_model", path)
openai = importlib.util.module_from_spec(module_spec)
module_spec.loader.exec_module(openai)
payload = torch.load(manifest["reference_export"], weights_only=True)
c = payload["clip_config"]
openai.build_model({k: v.clone() for k, v in payload["clip"].items()})  # accepts the dict (fp16)
reference = openai.CLIP(c["embed_dim"], c["image_resolution"], c["vision_layers"],
                        c["vision_width"], c["vision_patch_size"], c["context_length"],
                        c["vocab_size"], c["transformer_width"], c["transformer_heads"],
                        c["transformer_layers"]).float().eval()
reference.load_state_dict(payload["clip"], strict=True)
ours = torch_model.load_exported(manifest["reference_export"])[0].clip
torch.manual_seed(0)
images = torch.randn(3, 3, c["image_resolution"], c["image_resolution"])
from motion_clip_jax.core.tokenizer import tokenize
text = torch.from_numpy(tokenize(["a photo of a cat", "brush hair", "x"])).long()
with torch.no_grad():
    for what, a, b in (("image", ours.encode_image(images), reference.encode_image(images)),
                       ("text", ours.encode_text(text), reference.encode_text(text))):
        results[f"openai_{what}_error"] = float((a - b).abs().max() / b.abs().max())

results["modules"] = sorted(m for m in ("jax", "jaxlib", "flax", "tensorflow") if m in sys.modules)
json.dump(results, open(manifest["results"], "w"))
"""


@pytest.fixture(scope="module")
def clip_params():
    """One random tiny frozen CLIP for every model here."""
    config = _models()["full"]
    shapes = jax.eval_shape(lambda: init_clip(config_lib.clip_config_of(config), 0)[1]["params"])
    return _random_tree(shapes, seed=1000)


@pytest.fixture(scope="module")
def parity(tmp_path_factory, clip_params):
    """Exports every case, runs the PyTorch side once; -> (results, JAX logits per case)."""
    root = tmp_path_factory.mktemp("parity")
    manifest = {"cases": {}, "results": str(root / "results.json")}
    rng = np.random.default_rng(0)
    models = _models()
    built = {name: _random_model(c, clip_params, i) for i, (name, c) in enumerate(models.items())}
    jax_logits = {}
    for name, (model_name, text_context) in _cases().items():
        model, trainable, frozen = built[model_name]
        config = _with_context(models[model_name], text_context)
        res = config_lib.clip_config_of(config).image_resolution
        video = rng.normal(size=(2, config.num_frames, res, res, 3)).astype(np.float32)
        ids, eos = class_prompt_tokens(config, CLASS_NAMES)
        logits = np.asarray(
            model.apply({"params": {**frozen, **trainable}}, video, ids, eos), np.float32
        )
        jax_logits[name] = logits
        stem = name.replace("/", "_").replace("+", "_")
        payload = export_torch.export_payload(config, trainable, frozen, CLASS_NAMES, res)
        export_torch.save_export(root / f"{stem}.pt", payload)
        np.savez(root / f"{stem}.npz", video=video, ids=ids, eos=eos, logits=logits)
        manifest["cases"][name] = {"export": str(root / f"{stem}.pt"),
                                   "inputs": str(root / f"{stem}.npz")}  # fmt: skip
    manifest["reference_export"] = manifest["cases"]["full/shortest"]["export"]
    (root / "manifest.json").write_text(json.dumps(manifest))
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", TORCH_SIDE, str(root / "manifest.json")],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads((root / "results.json").read_text()), jax_logits, root


@pytest.mark.slow
def test_export_runs_without_jax_and_gives_the_jax_logits(parity):
    """One test over the one parity run (the fixture is the costly part: a single test keeps
    xdist from building it on both workers): the torch side imports no jax, every variant and
    text context gives the JAX logits, and the exported CLIP is OpenAI's layout."""
    results, jax_logits, _ = parity
    assert results["modules"] == []  # the torch side never imports jax
    assert set(results["errors"]) == set(_cases())
    print("\nmax |torch - jax| / max |jax| per case:")
    for name, error in results["errors"].items():
        print(f"  {name:<28} {error:.2e}")
    for name, logits in jax_logits.items():
        # The check means something only if the logits differ between classes and videos by far
        # more than the error allowed. (The projection-free MCB with pooled keys adds V to every
        # class, which pulls the cosines together: a spread of 0.19-0.33 here against errors of
        # ~4e-6, and 2.8e-4 allowed.)
        assert np.ptp(logits) > 300 * MAX_RELATIVE_ERROR * np.abs(logits).max(), (name, logits)
        assert results["errors"][name] < MAX_RELATIVE_ERROR, (name, results["errors"][name])
        assert results["ids_equal"][name], name
    assert results["openai_image_error"] < 1e-5  # the exported CLIP loads as OpenAI's
    assert results["openai_text_error"] < 1e-5


def test_round_trip_keeps_every_weight_and_field(tmp_path, clip_params):
    root = tmp_path
    config = _models()["full"]
    _, trainable, frozen = _random_model(config, clip_params, seed=5)
    payload = export_torch.export_payload(
        config, trainable, frozen, CLASS_NAMES, 32, source={"step": 7}
    )
    path = root / "round_trip.pt"
    export_torch.save_export(path, payload)
    model, info = torch_model.load_exported(path)
    state = model.state_dict()
    for key, value in payload["clip"].items():
        assert torch.equal(state[f"clip.{key}"], value), key
    for key, value in payload["head"].items():
        assert torch.equal(state[key], value), key
    # Every trainable number is in the head, once; layouts as torch_model reads them.
    count = sum(int(np.prod(np.shape(x))) for x in jax.tree_util.tree_leaves(trainable))
    assert sum(v.numel() for v in payload["head"].values()) == count
    block = trainable["mmb"]["motion"]["block_0"]["attn"]
    query = block["query"]["kernel"]  # (D, heads, head_dim)
    np.testing.assert_array_equal(
        state["mmb.motion.block_0.attn.query.weight"].numpy(),
        np.asarray(query).reshape(query.shape[0], -1).T,
    )
    out = block["out"]["kernel"]  # (heads, head_dim, D)
    np.testing.assert_array_equal(
        state["mmb.motion.block_0.attn.out.weight"].numpy(),
        np.asarray(out).reshape(-1, out.shape[-1]).T,
    )
    assert info["class_names"] == CLASS_NAMES and info["crop_size"] == 32
    assert info["model_config"] == config.to_dict() and info["num_frames"] == 4
    assert info["source"] == {"step": 7}
    assert info["clip_config"]["vision_heads"] == 1  # resolved from width // 64


def test_load_exported_errors_name_the_file(tmp_path, clip_params):
    with pytest.raises(FileNotFoundError, match="nowhere.pt"):
        torch_model.load_exported(tmp_path / "nowhere.pt")
    text = tmp_path / "notes.pt"
    text.write_text("not a model")
    with pytest.raises(torch_model.ExportError, match=r"notes.pt: not a PyTorch file"):
        torch_model.load_exported(text)
    other = tmp_path / "clip_only.pt"
    torch.save({"visual.proj": torch.zeros(2, 2)}, other)
    with pytest.raises(torch_model.ExportError, match=r"clip_only.pt: not a .*format=None"):
        torch_model.load_exported(other)
    wrong = tmp_path / "wrong_version.pt"
    torch.save({"format": "motion_clip_jax.torch.v0"}, wrong)
    with pytest.raises(torch_model.ExportError, match=r"format='motion_clip_jax.torch.v0'"):
        torch_model.load_exported(wrong)

    config = config_lib.model_config("baseline", **TINY)
    _, trainable, frozen = _random_model(config, clip_params, seed=0)
    payload = export_torch.export_payload(config, trainable, frozen, CLASS_NAMES, 32)
    broken = {**payload, "head": dict(payload["head"])}
    broken["head"]["mmb.temporal_embedding"] = torch.zeros(3, 64)
    del broken["head"]["mmb.spatial.block_0.fc1.bias"]
    path = tmp_path / "broken.pt"
    torch.save(broken, path)
    with pytest.raises(torch_model.ExportError, match=r"broken.pt.*fc1.bias.*temporal_embedding"):
        torch_model.load_exported(path)
    no_config = {k: v for k, v in payload.items() if k != "clip_config"}
    torch.save(no_config, path)
    with pytest.raises(torch_model.ExportError, match=r"clip_config"):
        torch_model.load_exported(path)
