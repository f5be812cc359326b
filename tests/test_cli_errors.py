"""Every command on a missing, empty or garbage input or a wrong flag: a non-zero exit status and
one `error: ...` line (argparse: `usage` then `<prog>: error: ...`) naming the path or field, and
no traceback.

`motion_clip_jax.main` (absl, global flags) runs in subprocesses, two at a time. The argparse
commands run their real `python -m` entry point in this process (`runpy`, `__name__ ==
"__main__"`): an exception escaping one fails the test, as a traceback on the command line would.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import re
import runpy
import subprocess
import sys
import time
import types
import warnings

import pytest

from .conftest import REPO_ROOT
from .damaged_data import write_damaged_dataset

TINY = "tests/configs/tiny_synthetic.py"
GARBAGE = bytes(range(256)) * 4  # not UTF-8, not JSON, not msgpack, not a zip, not a pickle


def _error_line(stderr: str) -> str | None:
    """The first `error: ...` line (ours) or `<prog>: error: ...` line (argparse's)."""
    for line in stderr.splitlines():
        if line.startswith("error: ") or re.match(r"\S+( \S+)*: error: ", line):
            return line
    return None


def _assert_user_error(code, stderr: str, *names: str) -> None:
    assert code not in (0, None), stderr
    assert "Traceback" not in stderr, stderr
    line = _error_line(stderr)
    assert line, stderr
    for name in names:
        assert name in line, (name, line)


def _run_module(capsys, module: str, *argv: str) -> tuple[int | str | None, str]:
    """`python -m module argv...` in this process -> (exit status, stderr)."""
    capsys.readouterr()
    saved = sys.argv
    sys.argv = [module, *argv]
    try:
        with warnings.catch_warnings():  # runpy: "found in sys.modules" for imported modules
            warnings.simplefilter("ignore", RuntimeWarning)
            runpy.run_module(module, run_name="__main__", alter_sys=False)
        code = 0
    except SystemExit as e:
        code = e.code
        if isinstance(code, str):  # sys.exit("message") prints the message, status 1
            print(code, file=sys.stderr)
            code = 1
    finally:
        sys.argv = saved
    return code, capsys.readouterr().err


def _write(path, data: bytes | str = GARBAGE):
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        path.write_text(data)
    else:
        path.write_bytes(data)
    return str(path)


def _check_cases(capsys, module: str, cases) -> None:
    for argv, names in cases:
        code, err = _run_module(capsys, module, *argv)
        try:
            _assert_user_error(code, err, *names)
        except AssertionError as e:
            raise AssertionError(f"{module} {argv}: {e}") from None


# --- motion_clip_jax.main -------------------------------------------------------------------------


def _main_cases(tmp_path) -> list[tuple[list[str], list[str]]]:
    missing = str(tmp_path / "missing.py")
    syntax = _write(tmp_path / "syntax.py", "def get_config(:\n    garbage\n")
    no_get = _write(tmp_path / "no_get.py", "X = 1\n")
    returns_none = _write(tmp_path / "returns_none.py", "def get_config():\n    pass\n")
    empty_dataset = tmp_path / "empty_dataset"
    empty_dataset.mkdir()
    garbage_clip = _write(tmp_path / "garbage.msgpack")
    a_file = _write(tmp_path / "a_file", "x")
    workdir = f"--workdir={tmp_path / 'workdir'}"
    locked = tmp_path / "locked"  # held by a live trainer on another host (heartbeat ahead)
    _write(
        locked / "trainer.lock",
        json.dumps({"host": "gpu-host-7", "pid": 4242, "started": "2026-12-06T10:00:00+00:00",
                    "heartbeat": time.time() + 3600, "token": "t", "process_start": ""}),
    )  # fmt: skip
    tiny = f"--config={TINY}"
    no_random = "--config.allow_random_clip=False"
    damaged = write_damaged_dataset(str(tmp_path / "damaged"))
    on_damaged = [f"--config={TINY}:{damaged['root']}", "--config.data.source="]
    return [
        (
            [*on_damaged, f"--workdir={tmp_path / 'w_bad_train'}"],
            [
                f"bad training record {damaged['dataset_dir']}/{damaged['train_shard']} record 1",
                f"video_id '{damaged['train_video_id']}'",
                "DataLossError",
                "--config.data.skip_bad_records=True",
            ],
        ),  # fmt: skip
        (
            [
                *on_damaged,
                "--config.data.train_split=train[:50%]",
                "--config.train.num_steps=1",
                f"--workdir={tmp_path / 'w_bad_eval'}",
            ],
            [
                f"bad evaluation record {damaged['dataset_dir']}/{damaged['test_shard']} record 0",
                f"video_id '{damaged['test_video_id']}'",
                "--config.data.skip_bad_records=True",
            ],
        ),  # fmt: skip
        ([f"--config={missing}", workdir], ["missing.py"]),
        ([f"--config={syntax}", workdir], ["syntax.py", "line 1"]),
        ([f"--config={no_get}", workdir], ["no_get.py", "get_config"]),
        (["--config=configs/hmdb_closed.py:9", workdir], ["split must be 1, 2 or 3", "'9'"]),
        ([tiny, "--config.model.nope=1", workdir], ["--config.model.nope", "'nope'"]),
        ([tiny, "--config.train.batch_size=abc", workdir], ["--config.train.batch_size", "abc"]),
        ([tiny, "--config.model.motion_step=99", workdir], ["motion_step=99"]),
        # The reported bug: a variant name on a full-model config trained the full model.
        (
            [tiny, "--config.model.variant=baseline", workdir],
            ["variant='baseline'", "motion_stream=True (baseline: False)", "custom"],
        ),
        (["--config=configs/few_shot.py:hmdb51,2,0,fancy", workdir], ["unknown variant", "fancy"]),
        ([f"--config={returns_none}", workdir], ["returns_none.py", "None"]),
        ([tiny, "--nope", workdir], ["nope"]),
        ([tiny, workdir, "extra"], ["unexpected", "extra"]),
        ([tiny], ["--workdir"]),
        ([tiny, f"--workdir={a_file}"], ["a_file"]),
        (
            [tiny, f"--workdir={locked}"],
            ["in use by another trainer", "host gpu-host-7, pid 4242, started 2026-12-06"],
        ),
        (
            [tiny, "--config.data.source=", "--config.data.dataset_dir=/nonexistent", workdir],
            ["/nonexistent"],
        ),
        ([f"--config={TINY}:{empty_dataset}", "--config.data.source=", workdir], ["empty_dataset"]),
        (
            [tiny, "--config.clip_checkpoint=/nonexistent.msgpack", no_random, workdir],
            ["clip_checkpoint", "/nonexistent.msgpack"],
        ),
        (
            [tiny, f"--config.clip_checkpoint={garbage_clip}", no_random, workdir],
            ["garbage.msgpack"],
        ),
    ]


def _python_m(module: str, argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", module, *argv],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,  # a safety net: a busy 2-core box runs a train + eval case in minutes
        env={**os.environ, "JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "2"},
    )


def test_main(tmp_path):
    cases = _main_cases(tmp_path)
    # With --verbosity given explicitly a user error keeps its traceback (for debugging).
    verbose = [f"--config={TINY}", "--config.model.nope=1", "--verbosity=0", "--workdir=w"]
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(lambda argv: _python_m("motion_clip_jax.main", argv),
                             [argv for argv, _ in cases] + [verbose]))  # fmt: skip
    for (argv, names), run in zip(cases, runs):
        try:
            _assert_user_error(run.returncode, run.stderr, *names)
        except AssertionError as e:
            raise AssertionError(f"main {argv}: {e}") from None
        assert "--verbosity=1" in _error_line(run.stderr), run.stderr  # the hint
    assert runs[-1].returncode != 0 and "Traceback" in runs[-1].stderr
    # A start that failed in a workdir it created, before any checkpoint or metric, left none
    # behind; a refused one touched nothing.
    for name in ("workdir", "w_bad_train"):
        assert not (tmp_path / name).exists(), name
    assert os.listdir(tmp_path / "locked") == ["trainer.lock"]


# --- predict, predict_torch, export -------------------------------------------------------------


def _fake_workdir(root, run_info: bytes | str) -> str:
    """A workdir with a checkpoint directory and the given run_info.json."""
    (root / "checkpoints" / "3" / "state").mkdir(parents=True)
    _write(root / "run_info.json", run_info)
    return str(root)


def test_predict_and_export(tmp_path, capsys, monkeypatch):
    video = _write(tmp_path / "clip.mp4")
    a_file = _write(tmp_path / "a_file", "x")
    garbage = _fake_workdir(tmp_path / "garbage_run", GARBAGE)
    not_json = _fake_workdir(tmp_path / "not_json_run", "{model_config: 1")
    a_list = _fake_workdir(tmp_path / "list_run", "[1, 2]")
    fields = {"model_config": {}, "clip_checkpoint": "x", "class_names": ["a"], "seed": 0}
    wrong_type = _fake_workdir(tmp_path / "typed_run", json.dumps({**fields, "crop_size": "big"}))
    bad_workdirs = [
        (a_file, ["a_file", "is a file"]),
        (garbage, ["garbage_run/run_info.json", "UTF-8"]),
        (not_json, ["not_json_run/run_info.json", "not valid JSON"]),
        (a_list, ["list_run/run_info.json", "JSON object"]),
        (wrong_type, ["typed_run/run_info.json", "wrong type", "big"]),
    ]
    predict = "motion_clip_jax.inference.predict"
    export = "motion_clip_jax.pytorch.export"
    out = str(tmp_path / "out.pt")
    _check_cases(
        capsys, predict, [(["--workdir", w, "--video", video], n) for w, n in bad_workdirs]
    )
    _check_cases(capsys, export, [(["--workdir", w, "--output", out], n) for w, n in bad_workdirs])
    _check_cases(
        capsys,
        predict,
        [
            (["--video", video], ["--workdir"]),  # argparse: a required flag
            (["--workdir", garbage], ["--video"]),
            (["--workdir", garbage, "--video", video, "--top", "x"], ["--top"]),
        ],
    )
    _check_cases(capsys, export, [(["--workdir", garbage], ["--output"])])
    torch_cases = [
        (["--model", _write(tmp_path / "garbage.pt"), "--video", video], ["garbage.pt"]),
        (["--model", str(tmp_path), "--video", video], [str(tmp_path)]),
        (["--video", video], ["--model"]),
    ]
    _check_cases(capsys, "motion_clip_jax.pytorch.predict", torch_cases)

    # --output in a folder that cannot be created (under a regular file); the run itself stubbed.
    from motion_clip_jax.pytorch import export as export_lib

    info = types.SimpleNamespace(workdir="w", step=3, class_names=["a"], crop_size=32)
    run = types.SimpleNamespace(model_config={}, trainable={}, frozen={}, info=info, clip_source="")
    monkeypatch.setattr(export_lib, "load_trained_run", lambda workdir, step: run)
    monkeypatch.setattr(export_lib, "export_payload", lambda *args, **kwargs: {})
    capsys.readouterr()
    code = export_lib.main(["--workdir", "w", "--output", f"{a_file}/sub/model.pt"])
    _assert_user_error(code, capsys.readouterr().err, "a_file")


# --- convert ------------------------------------------------------------------------------------


def test_convert(tmp_path, capsys):
    garbage = _write(tmp_path / "garbage.pt")
    empty = _write(tmp_path / "empty.msgpack", b"")
    a_file = _write(tmp_path / "a_file", "x")
    folder = tmp_path / "folder"
    folder.mkdir()
    out = str(tmp_path / "out.msgpack")
    cases = [
        (["to-flax", "--input", str(tmp_path / "missing.pt"), "--output", out], ["missing.pt"]),
        (["to-flax", "--input", garbage, "--output", out], ["garbage.pt"]),
        (["to-flax", "--input", _write(tmp_path / "g.safetensors"), "--output", out], ["g.saf"]),
        (["to-flax", "--input", str(folder), "--output", out], ["folder"]),
        (["to-flax", "--input", garbage, "--output", f"{a_file}/out.msgpack"], ["a_file"]),
        (["to-flax", "--input", garbage, "--output", str(folder)], ["folder"]),
        (["to-torch", "--input", garbage, "--output", out], ["garbage.pt"]),
        (["to-torch", "--input", empty, "--output", out], ["empty.msgpack"]),
        (["to-torch", "--input", str(folder), "--output", out], ["folder"]),
        (["to-torch", "--input", garbage], ["--output"]),
        (["to-jax", "--input", garbage, "--output", out], ["to-jax"]),
    ]
    _check_cases(capsys, "motion_clip_jax.convert", cases)
    assert not os.path.exists(out)


# --- data_prep.build_tfrecords ------------------------------------------------------------------


def test_build_tfrecords(tmp_path, capsys):
    out = ["--out_dir", str(tmp_path / "out"), "--workers", "1", "--no_progress"]
    empty = tmp_path / "empty"
    empty.mkdir()
    missing = str(tmp_path / "missing")
    hmdb_garbage = tmp_path / "hmdb_garbage"
    _write(hmdb_garbage / "brush_hair_test_split1.txt")
    hmdb_bad_line = tmp_path / "hmdb_bad_line"
    _write(hmdb_bad_line / "brush_hair_test_split1.txt", "a.avi 7\n")
    hmdb_listed = tmp_path / "hmdb_listed"  # lists a video the (empty) videos folder lacks
    _write(hmdb_listed / "brush_hair_test_split1.txt", "a.avi 1\nb.avi 2\n")
    ucf_garbage = tmp_path / "ucf_garbage"
    _write(ucf_garbage / "classInd.txt")
    ucf_label = tmp_path / "ucf_label"
    _write(ucf_label / "trainlist01.txt", "ApplyEyeMakeup/v_a.avi x\n")
    _write(ucf_label / "testlist01.txt", "")
    k400_columns = _write(tmp_path / "columns.csv", "a,b\n1,2\n")
    k400_garbage = _write(tmp_path / "garbage.csv")
    one_video = tmp_path / "one_video"
    _write(one_video / "wave" / "a.avi")
    a_file = _write(tmp_path / "a_file", "x")

    def hmdb(videos, splits, *extra):
        return ["hmdb51", "--videos_dir", str(videos), "--splits_dir", str(splits), *out, *extra]

    def ucf(splits):
        return ["ucf101", "--videos_dir", str(empty), "--splits_dir", str(splits), *out]

    def k400(*annotations):
        return ["kinetics400", "--videos_dir", str(empty), "--annotations", *annotations, *out]

    cases = [
        (hmdb(missing, empty), ["missing"]),
        (hmdb(empty, missing), ["missing", "split-file folder"]),
        (hmdb(empty, empty), ["no HMDB-51 split files", "empty"]),
        (hmdb(empty, hmdb_garbage, "--splits", "1"), ["brush_hair_test_split1.txt", "UTF-8"]),
        (hmdb(empty, hmdb_bad_line, "--splits", "1"), ["brush_hair_test_split1.txt", "line 1"]),
        (hmdb(empty, hmdb_listed, "--splits", "1"), ["hmdb51_split1", "no videos"]),
        (hmdb(empty, empty, "--splits", "9"), ["--splits", "'9'"]),
        (hmdb(empty, empty, "--jpeg_quality", "0"), ["--jpeg_quality"]),
        (hmdb(empty, empty, "--nope"), ["--nope"]),
        (ucf(ucf_garbage), ["classInd.txt", "UTF-8"]),
        (ucf(empty), ["trainlist01.txt"]),
        (ucf(ucf_label), ["trainlist01.txt", "line 1"]),
        (k400(str(tmp_path / "missing.csv")), ["missing.csv"]),
        (k400(k400_garbage), ["garbage.csv", "UTF-8"]),
        (k400(k400_columns), ["columns.csv", "columns"]),
        (["folder", "--videos_dir", str(empty), "--name", "mine", *out], ["empty", "no class"]),
        (["folder", "--videos_dir", str(one_video), "--name", "Mine!", *out], ["'Mine!'"]),
        (["folder", "--videos_dir", str(one_video), "--name", "mine"], ["--out_dir"]),
        (
            ["folder", "--videos_dir", str(one_video), "--name", "mine", "--out_dir", a_file],
            ["a_file"],
        ),
        (["synthetic", "--out_dir", f"{a_file}/data"], ["a_file"]),
        (["hmdb"], ["hmdb"]),
    ]
    _check_cases(capsys, "data_prep.build_tfrecords", cases)


# --- experiment drivers -------------------------------------------------------------------------


def test_summarize(tmp_path, capsys):
    garbage = tmp_path / "garbage"
    _write(garbage / "eval_results.json")
    a_list = tmp_path / "a_list"
    _write(a_list / "eval_results.json", "[]")
    not_number = tmp_path / "not_number"
    _write(not_number / "eval_results.json", json.dumps({"main/single_view": {"top1": "high"}}))
    no_top1 = tmp_path / "no_top1"
    _write(no_top1 / "eval_results.json", json.dumps({"main/single_view": {"loss": 1.0}}))
    no_results = tmp_path / "no_results"
    no_results.mkdir()
    missing = str(tmp_path / "missing")
    cases = [
        ([], ["WORKDIR"]),
        (["--metric", "top5"], ["--metric"]),
        ([missing], ["missing"]),
        ([str(no_results)], ["no_results/eval_results.json"]),
        ([str(garbage)], ["garbage/eval_results.json", "UTF-8"]),
        ([str(a_list)], ["a_list/eval_results.json", "JSON object"]),
        ([str(not_number)], ["not_number/eval_results.json", "top1", "'high'"]),
        ([str(no_top1)], ["no_top1", "no top1"]),
    ]
    _check_cases(capsys, "motion_clip_jax.experiments.summarize", cases)


def test_paper_driver(tmp_path, capsys):
    root = str(tmp_path / "paper")
    cases = [
        ([], ["NAME"]),
        (["table9"], ["table9"]),
        (["table5", "--dataset", "hmdb52"], ["--dataset"]),
        (
            ["table5", "--dataset", "kinetics400", "--root", root],
            ["--dataset kinetics400", "table5"],
        ),
        (["table5", "--only", "fulll", "--root", root], ["--only fulll", "baseline_mcb"]),
        (["table5", "--draws", "0"], ["--draws"]),
        (["table5", "--json"], ["--json", "--dry_run"]),
        (["table5", "--root", _write(tmp_path / "a_file", "x")], ["--root", "a_file"]),
        (["fig3b", "--mcb_forms", "--root", root], ["fig3b", "no MCB rows"]),
        (["fig3a", "--root", root, "--", "--config.model.n_ctx=5"], ["model.n_ctx", "itself"]),
        (["fig3a", "--root", root, "--", "--config.model.nope=1"], ["config.model.nope"]),
        (["fig3a", "--root", root, "--", "train.num_steps=1"], ["--config.x=y"]),
    ]
    _check_cases(capsys, "motion_clip_jax.experiments.paper", cases)
    assert not os.path.exists(root)  # nothing was run or written


def test_probe(tmp_path, capsys):
    a_file = _write(tmp_path / "a_file", "x")
    cases = [
        (["--cache_dir", a_file], ["--cache_dir", "a_file"]),
        (["--cache_dir", str(tmp_path), "--steps", "0"], ["--steps"]),
        (["--cache_dir", str(tmp_path), "--seed", "x"], ["--seed"]),
        ([], ["--cache_dir"]),
    ]
    _check_cases(capsys, "motion_clip_jax.synthetic.probe", cases)


@pytest.mark.parametrize(
    "error,expected",
    [
        (KeyError("hmdb52"), "unknown name 'hmdb52'"),
        (ValueError("two\n  lines"), "two lines"),
        (OSError(), "OSError"),
    ],
)
def test_one_line_messages(error, expected):
    from motion_clip_jax import cli_errors

    assert cli_errors.message(error) == expected


def test_workdir_safety_messages_are_one_line_user_errors(tmp_path):
    """The workdir-safety errors met outside the subprocess cases above (a checkpoint of another
    model, a failed write; their end-to-end runs are in tests/test_workdir.py), raised by the real
    code paths: each is a user error (`main` prints it as one `error:` line) naming what failed."""
    import jax
    import numpy as np

    from motion_clip_jax import cli_errors
    from motion_clip_jax.train import checkpoint, metrics

    saved = checkpoint.Checkpointer(str(tmp_path / "run"), async_save=False)
    saved.save(1, {"w": np.zeros((2, 3), np.float32)}, {"step": 1})
    saved.close()
    other = {"w": jax.numpy.zeros((2, 4), jax.numpy.float32)}
    with pytest.raises(checkpoint.OtherModelError) as another_model:
        checkpoint.Checkpointer(str(tmp_path / "run")).restore_latest(other, log=lambda _: None)
    with pytest.raises(OSError) as disk_full:
        metrics.append_line("/dev/full", '{"step": 1}')  # every write fails: no space left
    for error, names in [
        (another_model.value, ["checkpoint 1", "another train state", "w (2, 3) float32",
                               "(expected (2, 4) float32)", "--workdir"]),
        (disk_full.value, ["writing /dev/full failed", "No space left on device", "rerun"]),
    ]:  # fmt: skip
        assert isinstance(error, cli_errors.USER_ERRORS)
        line = cli_errors.message(error)
        assert "\n" not in line
        for name in names:
            assert name in line, (name, line)
    assert os.listdir(tmp_path / "run" / "checkpoints") == ["1"]  # nothing moved aside
