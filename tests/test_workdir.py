"""A workdir belongs to one experiment: a rerun with other training fields is refused (or, when
allowed, recorded), evaluation-only changes pass, and a damaged newest checkpoint is moved aside
so training resumes from the newest one that restores, bitwise as if nothing had happened."""

from __future__ import annotations

import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from motion_clip_jax.pytorch import export
from motion_clip_jax.train import checkpoint as checkpoint_lib
from motion_clip_jax.train import trainer
from motion_clip_jax.train import workdir as workdir_lib
from tests.configs.tiny_synthetic import DEFAULT_DATASET_DIR

from .conftest import REPO_ROOT, restore_train_state, tiny_config

CONFIG = "tests/configs/tiny_synthetic.py"


def test_training_changes_name_each_field_old_and_new():
    recorded = {"seed": 0, "optim": {"learning_rate": 0.05}, "eval": {"batch_size": 8}}
    current = {"seed": 0, "optim": {"learning_rate": 0.5}, "eval": {"batch_size": 4}, "model": 1}
    assert workdir_lib.training_changes(recorded, current) == [
        "model: (absent) -> 1",
        "optim.learning_rate: 0.05 -> 0.5",
    ]
    assert workdir_lib.training_changes(recorded, recorded) == []
    assert workdir_lib.is_training_field("train.num_steps")
    assert not workdir_lib.is_training_field("train.log_every_steps")
    assert not workdir_lib.is_training_field("seedling")
    # Where the clips are resized, not what they are: a record from before the field resumes.
    assert workdir_lib.is_training_field("data.crop_size")
    assert not workdir_lib.is_training_field("data.resize_on_device")
    current = {**recorded, "data": {"resize_on_device": True}}
    assert workdir_lib.training_changes(recorded, current) == []


def _history(workdir):
    with open(os.path.join(workdir, workdir_lib.HISTORY_FILE)) as f:
        return [json.loads(line) for line in f]


def _recorded(workdir):
    with open(os.path.join(workdir, workdir_lib.CONFIG_FILE)) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny run of 6 steps (checkpoints 3 and 6) and a copy of its final state."""
    root = tmp_path_factory.mktemp("workdir")
    config = tiny_config(DEFAULT_DATASET_DIR)  # the session's shared tiny dataset
    config.train.num_steps = 6
    config.eval.single_view = False
    workdir = root / "run"
    trainer.train_and_evaluate(config, str(workdir))
    return {"root": root, "workdir": workdir, "config": config}


def _changed(trained, fields: dict):
    """A copy of the trained run's config with `fields` ({"section.field": value}) set."""
    config = trained["config"].copy_and_resolve_references()
    config.update_from_flattened_dict(fields)
    return config


def _copy(trained, name):
    target = trained["root"] / name
    shutil.copytree(trained["workdir"], target)
    return target


def test_a_rerun_with_other_training_fields_is_refused(trained):
    workdir = _copy(trained, "refused")
    before = _recorded(workdir)
    config = _changed(trained, {"optim.learning_rate": 0.5, "train.num_steps": 20})
    with pytest.raises(workdir_lib.WorkdirConfigError) as info:
        trainer.train_and_evaluate(config, str(workdir))
    message = str(info.value)
    assert "optim.learning_rate: 0.05 -> 0.5" in message
    assert "train.num_steps: 6 -> 20" in message
    assert "--workdir" in message and "allow_config_change=True" in message
    assert _recorded(workdir) == before  # the record is never overwritten by a refused start

    baseline = _changed(
        trained,
        {
            "model.variant": "baseline",
            "model.motion_stream": False,
            "model.prompts": "handcrafted",
            "model.mcb": False,
        },
    )
    with pytest.raises(workdir_lib.WorkdirConfigError, match=r"model.motion_stream: true -> false"):
        trainer.train_and_evaluate(baseline, str(workdir))


def test_a_workdir_of_the_earlier_model_sizes_is_refused_by_name(trained):
    """A record written before `mcb_projections` existed (every MCB was projected) with MLP
    ratio 1: today's defaults are another model, named; a config of those sizes resumes it."""
    workdir = _copy(trained, "old_sizes")
    recorded = _recorded(workdir)
    for name in ("mcb_projections", "mcb_norm", "mcb_scale_init"):  # none existed then
        del recorded["model"][name]
    recorded["model"]["mmb_mlp_ratio"] = 1.0
    with open(os.path.join(workdir, workdir_lib.CONFIG_FILE), "w") as f:
        json.dump(recorded, f)
    today = _changed(trained, {"model.mmb_mlp_ratio": 2.0, "model.mcb_projections": False})
    with pytest.raises(workdir_lib.WorkdirConfigError) as info:
        workdir_lib.check_config(today, str(workdir))
    assert "model.mcb_projections: true -> false" in str(info.value)
    assert "model.mmb_mlp_ratio: 1.0 -> 2.0" in str(info.value)
    earlier = _changed(
        trained,
        {
            "model.mmb_mlp_ratio": 1.0,
            "model.mcb_projections": True,
            "model.mcb_norm": "layernorm",  # the earlier projected MCB was pre-LN, ungated
            "model.mcb_scale_init": 0.0,
        },
    )
    assert workdir_lib.check_config(earlier, str(workdir)) == []


def test_a_workdir_of_the_ungated_projection_free_mcb_is_refused_by_name(trained):
    """A record of the projection-free MCB written before `mcb_norm` / `mcb_scale_init` existed
    (no normalisation, no gate): today's default MCB (gated) is another model, refused with the
    field named; a config of that form resumes it."""
    workdir = _copy(trained, "ungated_mcb")
    recorded = _recorded(workdir)
    recorded["model"]["mcb_projections"] = False
    del recorded["model"]["mcb_norm"], recorded["model"]["mcb_scale_init"]
    with open(os.path.join(workdir, workdir_lib.CONFIG_FILE), "w") as f:
        json.dump(recorded, f)
    default_form = {"model.mcb_projections": False, "model.mcb_norm": "none",
                    "model.mcb_scale_init": 1e-4}  # fmt: skip
    today = _changed(trained, default_form)
    with pytest.raises(workdir_lib.WorkdirConfigError) as info:
        workdir_lib.check_config(today, str(workdir))
    assert "model.mcb_scale_init: 0.0 -> 0.0001" in str(info.value)
    ungated = _changed(trained, {**default_form, "model.mcb_scale_init": 0.0})
    assert workdir_lib.check_config(ungated, str(workdir)) == []


def test_evaluation_fields_may_change_and_each_start_is_recorded(trained):
    workdir = _copy(trained, "eval_change")
    before = _recorded(workdir)
    config = _changed(trained, {"eval.batch_size": 4, "train.log_every_steps": 2})
    results = trainer.train_and_evaluate(config, str(workdir))
    assert results["step"] == 6
    assert _recorded(workdir) == before  # still the experiment's config
    history = _history(workdir)
    assert len(history) == 2 and history[1]["changed_training_fields"] == []
    assert history[1]["config"]["eval"]["batch_size"] == 4


def test_an_allowed_change_trains_on_and_is_recorded(trained):
    workdir = _copy(trained, "allowed")
    config = _changed(trained, {"train.num_steps": 9, "allow_config_change": True})
    results = trainer.train_and_evaluate(config, str(workdir))
    assert results["step"] == 9
    assert _recorded(workdir)["train"]["num_steps"] == 9
    assert _history(workdir)[-1]["changed_training_fields"] == ["train.num_steps: 6 -> 9"]


def _damage(workdir, step):
    """Flips bytes all through the largest data file of a checkpoint's state."""
    files = glob.glob(os.path.join(workdir, "checkpoints", str(step), "state", "**", "d", "*"))
    path = max(files, key=os.path.getsize)
    data = bytearray(open(path, "rb").read())
    for i in range(100, len(data), 97):
        data[i] ^= 0xFF
    open(path, "wb").write(bytes(data))


def _main_args(workdir, dataset_dir, *overrides):
    return [
        f"--config={CONFIG}:{dataset_dir}",
        f"--workdir={workdir}",
        "--config.train.num_steps=6",
        "--config.eval.single_view=False",
        *overrides,
    ]


def _main(workdir, dataset_dir, *overrides):
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "motion_clip_jax.main",
            *_main_args(workdir, dataset_dir, *overrides),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_a_second_trainer_on_the_workdir_is_refused_and_the_first_goes_on(trained):
    """Two trainers at once on one workdir: the first holds the lock (paused right after taking
    it), the second stops with one line naming the holder; the first then trains as if alone."""
    expected = restore_train_state(trained["workdir"], 6)
    dataset_dir = trained["config"].data.dataset_dir
    workdir, go = trained["root"] / "two_trainers", trained["root"] / "two_trainers.go"
    first = subprocess.Popen(
        [sys.executable, "tests/scripts/pause_after_lock.py", str(go),
         *_main_args(workdir, dataset_dir)],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.time() + 300
        while not (workdir / "trainer.lock").exists() and first.poll() is None:
            assert time.time() < deadline, "the first trainer never took the lock"
            time.sleep(0.1)
        second = _main(workdir, dataset_dir)
    finally:
        go.touch()
    out, err = first.communicate(timeout=600)
    assert first.returncode == 0, err[-3000:]
    errors = [line for line in second.stderr.splitlines() if line.startswith("error: ")]
    assert second.returncode == 1 and len(errors) == 1, second.stderr[-3000:]
    assert "Traceback" not in second.stderr
    for part in ("in use by another trainer", f"host {socket.gethostname()}", f"pid {first.pid}"):
        assert part in errors[0], (part, errors[0])
    assert "started 20" in errors[0]
    assert len(_history(workdir)) == 1  # the refused start recorded nothing
    assert not (workdir / "trainer.lock").exists()  # released at the end
    got = restore_train_state(workdir, 6)
    assert set(got) == set(expected)
    for key in expected:
        assert np.array_equal(got[key], expected[key]), key


def test_a_damaged_newest_checkpoint_is_moved_aside_and_training_resumes_exactly(trained, capsys):
    expected = restore_train_state(trained["workdir"], 6)
    workdir = _copy(trained, "damaged")
    _damage(workdir, 6)
    # Left behind by a trainer that was killed: its process is gone, so the lock is taken over.
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    stale = {"host": socket.gethostname(), "pid": gone.pid, "started": "2026-12-06T10:00:00+00:00",
             "heartbeat": time.time(), "token": "killed", "process_start": ""}  # fmt: skip
    (workdir / "trainer.lock").write_text(json.dumps(stale))
    dataset_dir = trained["config"].data.dataset_dir
    out = _main(workdir, dataset_dir)
    assert out.returncode == 0, out.stderr[-3000:]
    took_over = [line for line in out.stdout.splitlines() if "took over" in line]
    assert len(took_over) == 1 and f"pid {gone.pid}" in took_over[0], out.stdout[-3000:]
    assert "is gone" in took_over[0]
    warnings = [line for line in out.stdout.splitlines() if "does not restore" in line]
    assert len(warnings) == 1 and "checkpoint 6" in warnings[0], out.stdout[-3000:]
    assert "Resumed from step 3" in out.stdout
    assert "Traceback" not in out.stderr and "Event loop is closed" not in out.stderr
    assert os.path.isdir(workdir / "checkpoints_damaged" / "6")  # moved, not deleted
    got = restore_train_state(workdir, 6)
    assert set(got) == set(expected)
    for key in expected:
        assert np.array_equal(got[key], expected[key]), key

    # Every checkpoint damaged. Export (and predict, through the same restore) name the damaged
    # checkpoint in one line.
    _damage(workdir, 3)
    _damage(workdir, 6)
    capsys.readouterr()
    code = export.main(["--workdir", str(workdir), "--output", str(workdir / "model.pt")])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("error: checkpoint ") and "does not restore" in err, err
    assert len(err.strip().splitlines()) == 1 and "--step" in err

    # A changed config is still refused, nothing moved.
    out = _main(workdir, dataset_dir, "--config.optim.learning_rate=0.5")
    assert out.returncode == 1 and "optim.learning_rate: 0.05 -> 0.5" in out.stderr, out.stderr
    assert sorted(os.listdir(workdir / "checkpoints_damaged")) == ["6"]

    # The same config: all moved aside, training starts again from step 0, in one line, and ends
    # bitwise equal to the uninterrupted run.
    out = _main(workdir, dataset_dir)
    assert out.returncode == 0, out.stderr[-3000:]
    again = [line for line in out.stdout.splitlines() if "starts again from step 0" in line]
    assert len(again) == 1 and "steps [3, 6]" in again[0], out.stdout[-3000:]
    assert "Resumed" not in out.stdout and "Traceback" not in out.stderr
    assert sorted(os.listdir(workdir / "checkpoints_damaged")) == ["3", "6", "6.1"]
    got = restore_train_state(workdir, 6)
    for key in expected:
        assert np.array_equal(got[key], expected[key]), key


def test_a_checkpoint_of_another_model_is_refused_before_reading(trained):
    """Another adapter width with allow_config_change: the stored tree (orbax metadata) differs
    from the one this config builds; the start stops naming a leaf, and nothing is moved."""
    workdir = _copy(trained, "other_model")
    config = _changed(trained, {"model.adapter_reduction": 2, "allow_config_change": True})
    with pytest.raises(checkpoint_lib.OtherModelError) as refused:
        trainer.train_and_evaluate(config, str(workdir))
    message = str(refused.value)
    assert "checkpoint 6" in message and "another train state" in message, message
    assert "other shape/dtype" in message and "--workdir" in message
    assert not (workdir / "checkpoints_damaged").exists()
    assert workdir_lib.checkpoint_steps(str(workdir)) == [3, 6]


def _small_file_system(path) -> bool:
    """Mounts a 64 MiB tmpfs at `path` (root only); False where mounting is not allowed."""
    path.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(path)],
                             capture_output=True)  # fmt: skip
    return mounted.returncode == 0


def test_a_failed_checkpoint_write_stops_in_one_line_and_the_rerun_resumes(trained):
    """The disk fills right before the last checkpoint (6) is written: a small tmpfs filled to
    the last byte (as root), else every write that grows a file fails (RLIMIT_FSIZE). The run
    stops with one line; checkpoint 3 and metrics.jsonl stay readable; the rerun resumes from 3
    and ends bitwise equal to the uninterrupted run."""
    expected = restore_train_state(trained["workdir"], 6)
    dataset_dir = trained["config"].data.dataset_dir
    disk = trained["root"] / "small_disk"
    how = "fill" if _small_file_system(disk) else "fsize"
    try:
        workdir = disk / "run"
        failed = subprocess.run(
            [sys.executable, "tests/scripts/fail_writes.py", "checkpoint", "6", how,
             *_main_args(workdir, dataset_dir)],
            cwd=REPO_ROOT, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        errors = [line for line in failed.stderr.splitlines() if line.startswith("error: ")]
        assert failed.returncode == 1 and len(errors) == 1, failed.stderr[-3000:]
        assert "Traceback" not in failed.stderr, failed.stderr[-3000:]
        assert errors[0].startswith(f"error: writing checkpoint 6 in {workdir}/checkpoints failed")
        assert "checkpoint (step 3) is intact" in errors[0] and "rerun" in errors[0], errors[0]
        assert workdir_lib.checkpoint_steps(str(workdir)) == [3]
        restore_train_state(workdir, 3)  # readable
        rows = [json.loads(line) for line in open(workdir / "metrics.jsonl")]
        assert [r["step"] for r in rows if r["kind"] == "train"] == [3, 6]
        if how == "fill":
            os.remove(disk / "filler")
        out = _main(workdir, dataset_dir)
        assert out.returncode == 0, out.stderr[-3000:]
        assert "Resumed from step 3" in out.stdout
        got = restore_train_state(workdir, 6)
        for key in expected:
            assert np.array_equal(got[key], expected[key]), key
    finally:
        if how == "fill":
            subprocess.run(["umount", str(disk)], check=False)


def test_failed_metrics_and_results_writes_keep_the_files_whole(tmp_path, monkeypatch):
    from motion_clip_jax.train import metrics

    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 3}\n')
    real_open = open

    def half_writing_open(name, mode="r", *args, **kwargs):
        f = real_open(name, mode, *args, **kwargs)
        if "a" in mode or "w" in mode:
            write = f.write

            def fail_half_way(text):
                write(text[: len(text) // 2])
                f.flush()
                raise OSError(28, "No space left on device")

            f.write = fail_half_way
        return f

    monkeypatch.setattr("builtins.open", half_writing_open)
    with pytest.raises(workdir_lib.WriteFailedError, match="writing .*metrics.jsonl failed"):
        metrics.append_line(str(path), '{"step": 6}')
    results = tmp_path / "eval_results.json"
    results.write_text('{"step": 3}')
    with pytest.raises(workdir_lib.WriteFailedError, match="No space left on device"):
        trainer.write_json_atomically(str(results), {"step": 6})
    monkeypatch.undo()
    assert path.read_text() == '{"step": 3}\n'  # the half line was cut off again
    assert results.read_text() == '{"step": 3}'  # the previous results, whole
    assert sorted(os.listdir(tmp_path)) == ["eval_results.json", "metrics.jsonl"]  # no temp left


def _raised(call) -> BaseException:
    try:
        call()
    except Exception as error:  # the exception as the hooks receive it, traceback included
        return error
    raise AssertionError("expected an exception")


def test_checkpoint_noise_is_told_by_where_it_was_raised_not_by_its_text(monkeypatch):
    """The log and excepthook filters decide by the raising frame and the error's type: a closed
    asyncio loop's own error is noise, the same words raised by our code are not; an error record
    of orbax's writer counts only at ERROR and when raised in orbax code or caused by an OSError."""
    import asyncio
    import logging

    monkeypatch.setattr(checkpoint_lib, "_WRITE_FAILED", False)  # no write failed in this process
    loop = asyncio.new_event_loop()
    loop.close()
    closed = _raised(lambda: loop.call_soon(print))

    def ours():
        raise RuntimeError("Event loop is closed")

    assert checkpoint_lib._is_closed_loop_noise(closed)
    assert not checkpoint_lib._is_closed_loop_noise(_raised(ours))

    def record(level, error):
        info = (type(error), error, error.__traceback__) if error else None
        return logging.LogRecord("absl", level, "/x/orbax/checkpoint/a.py", 1, "m", (), info)

    def os_caused():
        try:
            raise OSError(27, "File too large")
        except OSError as error:
            raise ValueError("wrapped") from error

    assert checkpoint_lib._is_write_failure_noise(record(logging.ERROR, _raised(os_caused)))
    assert not checkpoint_lib._is_write_failure_noise(record(logging.ERROR, _raised(ours)))
    assert not checkpoint_lib._is_write_failure_noise(record(logging.WARNING, _raised(os_caused)))
