"""The eval feature cache (train/feature_cache.py): the same scores as the plain eval step, read
back without the image tower, keyed (other weights / frames -> another entry, a recorded key that
differs is refused), and a damaged file refused in one line; two processes on a sharded mesh."""

from __future__ import annotations

import dataclasses
import io
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from motion_clip_jax.data import pipeline
from motion_clip_jax.train import data_input, trainer
from motion_clip_jax.train import feature_cache as cache_lib
from motion_clip_jax.train.optim import make_optimizer
from tests.configs.tiny_synthetic import DEFAULT_DATASET_DIR

from .conftest import REPO_ROOT, tiny_config, xla_env
from .test_multiprocess import free_port


@dataclasses.dataclass
class Setup:
    """The tiny engine config's model on its mesh, before any training (evaluation only)."""

    config: object
    parts: trainer.ModelParts
    placed: trainer.Placed
    mesh: object
    main: trainer.EvalSet


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> Setup:
    root = tmp_path_factory.mktemp("feature_cache")
    config = tiny_config(DEFAULT_DATASET_DIR)  # the session's shared tiny dataset
    config.eval.multiview = True
    workdir = str(root / "workdir")
    os.makedirs(workdir)
    mesh = trainer.build_mesh(config)
    dataset = trainer.prepare_data(config, workdir)
    parts = trainer.build_model(config, workdir, dataset)
    tx, _ = make_optimizer(config.optim, 10)
    placed = trainer.place_on_mesh(parts, tx, mesh)
    main = trainer.make_eval_set("main", dataset, parts.model_config, mesh)
    return Setup(config, parts, placed, mesh, main)


def context(setup: Setup, cache_dir: str = "", parts=None, placed=None) -> trainer.EvalContext:
    config = setup.config.copy_and_resolve_references()
    config.eval.feature_cache_dir = cache_dir
    return trainer.make_eval_context(
        config, parts or setup.parts, placed or setup.placed, setup.mesh
    )


def counting(ctx: trainer.EvalContext) -> tuple[trainer.EvalContext, list[int]]:
    """ctx whose cache's image-tower step counts its calls."""
    calls = [0]
    encode = ctx.feature_cache.encode_step

    def encode_step(*args):
        calls[0] += 1
        return encode(*args)

    cache = dataclasses.replace(ctx.feature_cache, encode_step=encode_step)
    return dataclasses.replace(ctx, feature_cache=cache), calls


@pytest.mark.parametrize("multiview", [False, True], ids=["single_view", "multiview"])
def test_cached_evaluation_equals_the_plain_step(setup, tmp_path, monkeypatch, multiview):
    trainable = setup.placed.state.trainable
    plain = context(setup)
    expected_scores, expected_labels = trainer.eval_scores(plain, trainable, setup.main, multiview)
    expected_metrics = trainer.run_evaluation(plain, trainable, setup.main, multiview)
    assert len(expected_labels) == 16  # every test video once

    cache_dir = str(tmp_path / "cache")
    first, calls = counting(context(setup, cache_dir))
    scores, labels = trainer.eval_scores(first, trainable, setup.main, multiview)
    assert calls[0] == 2  # 16 videos, eval batch 8: the image tower ran once per batch
    assert len(os.listdir(cache_dir)) == 1  # one entry, no temp file left
    np.testing.assert_array_equal(labels, expected_labels)
    np.testing.assert_allclose(scores, expected_scores, rtol=1e-5, atol=1e-6)
    assert np.array_equal(scores.argmax(1), expected_scores.argmax(1))

    # A second run reads the entry: no frame is decoded, the image tower never runs.
    second, calls = counting(context(setup, cache_dir))

    def no_eval_data(*args, **kwargs):
        raise AssertionError("the eval pipeline ran although the features are cached")

    monkeypatch.setattr(data_input, "eval_iterator", no_eval_data)
    again, again_labels = trainer.eval_scores(second, trainable, setup.main, multiview)
    assert calls[0] == 0
    np.testing.assert_array_equal(again, scores)  # the same features through the same step
    np.testing.assert_array_equal(again_labels, labels)
    assert trainer.run_evaluation(second, trainable, setup.main, multiview) == expected_metrics


def test_other_clip_weights_use_another_entry(setup, tmp_path):
    cache_dir = str(tmp_path / "cache")
    trainable = setup.placed.state.trainable
    ctx = context(setup, cache_dir)
    scores, _ = trainer.eval_scores(ctx, trainable, setup.main, multiview=False)
    # The same architecture, one frozen image-tower leaf changed.
    frozen = {"clip": dict(setup.parts.frozen["clip"])}
    visual = dict(frozen["clip"]["visual"])
    visual["proj"] = np.asarray(visual["proj"]) * 2.0
    frozen["clip"]["visual"] = visual
    parts = dataclasses.replace(setup.parts, frozen=frozen)
    placed = trainer.place_on_mesh(parts, make_optimizer(setup.config.optim, 10)[0], setup.mesh)
    other, calls = counting(context(setup, cache_dir, parts, placed))
    assert other.feature_cache.clip_weights != ctx.feature_cache.clip_weights
    other_scores, _ = trainer.eval_scores(other, placed.state.trainable, setup.main, False)
    assert calls[0] == 2  # not served the first entry's features
    assert len(os.listdir(cache_dir)) == 2
    assert not np.allclose(other_scores, scores)
    plain, _ = trainer.eval_scores(context(setup, "", parts, placed), trainable, setup.main, False)
    np.testing.assert_allclose(other_scores, plain, rtol=1e-5, atol=1e-6)


def _key(setup: Setup, **changes) -> dict:
    fields = dict(
        clip_weights="a" * 64,
        clip_config={"embed_dim": 64},
        dtype="float32",
        dataset=cache_lib.dataset_fingerprint(setup.main.dataset.dataset_dir, "test", 0, 1),
        options=pipeline.PipelineOptions(num_frames=4, crop_size=32, batch_size=8, uint8=True),
        multiview=False,
        process_index=0,
        process_count=1,
    )
    fields.update(changes)
    return cache_lib.entry_key(**fields)


def _views(rows: int = 8) -> cache_lib.CachedViews:
    rng = np.random.default_rng(0)
    return cache_lib.CachedViews(
        features=rng.standard_normal((rows, 4, 16)).astype(np.float32),
        label=np.arange(rows, dtype=np.int32),
        mask=np.ones(rows, bool),
        index=np.arange(rows, dtype=np.int32),
    )


def test_every_key_field_names_another_entry_and_a_recorded_mismatch_is_refused(setup, tmp_path):
    base = _key(setup)
    frames8 = pipeline.PipelineOptions(num_frames=8, crop_size=32, batch_size=8, uint8=True)
    others = {
        "other CLIP weights": _key(setup, clip_weights="b" * 64),
        "other num_frames": _key(setup, options=frames8),
        "multiview": _key(setup, multiview=True),
        "bfloat16": _key(setup, dtype="bfloat16"),
        "process 1 of 2": _key(setup, process_index=1, process_count=2),
        "other split": _key(
            setup,
            dataset=cache_lib.dataset_fingerprint(setup.main.dataset.dataset_dir, "train", 0, 1),
        ),
    }
    paths = {cache_lib.entry_path(str(tmp_path), k) for k in [base, *others.values()]}
    assert len(paths) == len(others) + 1

    path = cache_lib.entry_path(str(tmp_path), base)
    cache_lib.save(path, base, _views())
    loaded = cache_lib.load(path, base)
    np.testing.assert_array_equal(loaded.features, _views().features)
    for what, field in (("other CLIP weights", "clip_weights"), ("other num_frames", "num_frames")):
        # The file of one key where another is asked (copied, or a stale entry): refused.
        stale = cache_lib.entry_path(str(tmp_path), others[what])
        shutil.copy(path, stale)
        with pytest.raises(cache_lib.FeatureCacheError, match=rf"another key.*{field}") as info:
            cache_lib.load(stale, others[what])
        assert "\n" not in str(info.value)


def test_bfloat16_features_round_trip(setup, tmp_path):
    import jax.numpy as jnp

    views = _views()
    views = dataclasses.replace(views, features=views.features.astype(jnp.bfloat16))
    path = str(tmp_path / "bf16.npz")
    cache_lib.save(path, _key(setup, dtype="bfloat16"), views)
    loaded = cache_lib.load(path, _key(setup, dtype="bfloat16"))
    assert loaded.features.dtype == jnp.bfloat16
    np.testing.assert_array_equal(loaded.features.view(np.uint16), views.features.view(np.uint16))


def test_damaged_or_partial_files_are_refused_in_one_line(setup, tmp_path, monkeypatch):
    key = _key(setup)
    path = cache_lib.entry_path(str(tmp_path), key)
    cache_lib.save(path, key, _views(64))
    data = open(path, "rb").read()

    def refused(blob: bytes, match: str) -> None:
        with open(path, "wb") as f:
            f.write(blob)
        with pytest.raises(cache_lib.FeatureCacheError, match=match) as info:
            cache_lib.load(path, key)
        message = str(info.value)
        assert "\n" not in message and path in message and "refused" in message

    refused(data[: len(data) // 2], "unreadable or truncated")
    refused(b"", "unreadable or truncated")
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0xFF  # inside the features array
    refused(bytes(flipped), "unreadable|checksum")
    # Edited consistently at the archive level (valid zip, CRCs fine): only the checksum tells.
    with np.load(io.BytesIO(data)) as npz:
        members = {name: npz[name] for name in npz.files}
    members["features"] = members["features"] + 1
    edited = tmp_path / "edited.npz"
    np.savez(edited, **members)
    refused(edited.read_bytes(), "checksum mismatch")

    # A write that dies half-way leaves neither a partial entry nor a temp file behind.
    os.remove(path)

    def dies(f, **arrays):
        f.write(b"PK\x03\x04 partial")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", dies)
    with pytest.raises(OSError, match="disk full"):
        cache_lib.save(path, key, _views())
    assert sorted(os.listdir(tmp_path)) == ["edited.npz"]


def test_the_trainer_refuses_a_truncated_entry(setup, tmp_path):
    cache_dir = str(tmp_path / "cache")
    ctx = context(setup, cache_dir)
    trainable = setup.placed.state.trainable
    trainer.eval_scores(ctx, trainable, setup.main, multiview=False)
    (name,) = os.listdir(cache_dir)
    path = os.path.join(cache_dir, name)
    data = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(data[:-100])
    with pytest.raises(cache_lib.FeatureCacheError, match=r"truncated.*refused") as info:
        trainer.eval_scores(ctx, trainable, setup.main, multiview=False)
    assert "\n" not in str(info.value)


@pytest.mark.slow
def test_two_processes_on_a_sharded_mesh(tmp_path):
    """Two processes x 2 CPU devices, mesh data 2 x model 2 (frozen CLIP split over `model`): the
    plain path, then the cache written (each process its own entry), then read."""
    dataset_dir, cache_dir = DEFAULT_DATASET_DIR, tmp_path / "cache"  # the shared tiny dataset
    out, port = tmp_path / "scores.npz", free_port()
    env = xla_env(fake_devices=2)
    script = "tests/scripts/feature_cache_two_hosts.py"
    procs = [
        subprocess.Popen(
            [sys.executable, script, str(i), str(port), dataset_dir, str(cache_dir), str(out)],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for i in range(2)
    ]
    outputs = [p.communicate(timeout=900) for p in procs]
    for p, (_, stderr) in zip(procs, outputs):
        assert p.returncode == 0, stderr[-3000:]
    assert "mesh {'data': 2, 'model': 2}" in outputs[0][0]
    assert len(os.listdir(cache_dir)) == 4  # 2 views x 2 processes
    got = np.load(out)
    # Every test video once, across the two processes; multi-view keeps each of the 12 views.
    for view, shape in (("single_view", (16, 8)), ("multiview", (16, 12, 8))):
        plain = got[f"{view}/plain/scores"]
        assert plain.shape == shape
        assert got[f"{view}/written/tower_calls"] == 2  # 8 videos per process, batches of 4
        assert got[f"{view}/read/tower_calls"] == 0
        for name in ("written", "read"):
            np.testing.assert_array_equal(got[f"{view}/{name}/labels"], got[f"{view}/plain/labels"])
            np.testing.assert_allclose(got[f"{view}/{name}/scores"], plain, rtol=1e-5, atol=1e-6)
            assert np.array_equal(got[f"{view}/{name}/scores"].argmax(-1), plain.argmax(-1))
        np.testing.assert_array_equal(got[f"{view}/read/scores"], got[f"{view}/written/scores"])
