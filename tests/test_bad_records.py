"""Bad records met by a training run with data.skip_bad_records=True: a training record whose
frame is broken and a test record whose frames are not JPEGs are skipped, the run goes on, and the
log and run_info.json count and name each (the default, stopping with one line, is in
tests/test_cli_errors.py)."""

from __future__ import annotations

import json

from motion_clip_jax.train import trainer

from .conftest import tiny_config
from .damaged_data import write_damaged_dataset


def test_skipped_bad_records_are_counted_and_named(tmp_path, capsys):
    damaged = write_damaged_dataset(str(tmp_path / "data"))
    config = tiny_config(damaged["root"])
    config.data.source = ""
    config.data.skip_bad_records = True
    config.train.num_steps = 4  # 2 epochs of 16 videos: the bad training record is met twice
    workdir = tmp_path / "run"
    results = trainer.train_and_evaluate(config, str(workdir))
    assert results["step"] == 4
    assert results["main/single_view"]["num_videos"] == 7  # 8 test videos, one skipped
    train_record = f"{damaged['dataset_dir']}/{damaged['train_shard']} record 1"
    test_record = f"{damaged['dataset_dir']}/{damaged['test_shard']} record 0"
    skipped = json.loads((workdir / "run_info.json").read_text())["skipped_bad_records"]
    assert skipped["count"] == 3
    (train_entry,) = [k for k in skipped["records"] if k.startswith(train_record)]
    (test_entry,) = [k for k in skipped["records"] if k.startswith(test_record)]
    assert f"video_id '{damaged['train_video_id']}'" in train_entry
    assert f"video_id '{damaged['test_video_id']}'" in test_entry
    assert skipped["records"] == {train_entry: 2, test_entry: 1}
    lines = [line for line in capsys.readouterr().out.splitlines() if "bad record reads" in line]
    assert lines[-1].startswith("skipped 3 bad record reads, 2 distinct records"), lines
    assert "data.skip_bad_records=True" in lines[-1]
