"""Choosing a row's learning rate on its validation set: the grid parser, the choice rule (best mean
over the columns, ties to the first rate), and the refusals."""

from __future__ import annotations

import json
import os

import pytest

from motion_clip_jax.experiments import choose_lr, paper
from motion_clip_jax.experiments.plan import Run


def _run(tmp_path, row: str, column: str, lr: float, validation: float | None, test: float):
    workdir = tmp_path / f"{row}-{column}-{lr}"
    os.makedirs(workdir)
    results = {"main/single_view": {"top1": test}}
    if validation is not None:
        results["validation/single_view"] = {"top1": validation}
    (workdir / "eval_results.json").write_text(json.dumps(results))
    return Run("table5", row, column, "synthetic", "c", (), str(workdir), validation=True)


def test_parse_grid():
    assert choose_lr.parse_grid("1e-3, 3e-3,0.01") == [0.001, 0.003, 0.01]
    for text, message in [("1e-3", "at least two"), ("1e-3,x", "'x' is not a number"),
                          ("1e-3,0", "must be > 0"), ("1e-3,0.001", "given twice")]:  # fmt: skip
        with pytest.raises(ValueError, match=message):
            choose_lr.parse_grid(text)


def test_the_best_mean_validation_accuracy_wins_and_the_test_set_is_not_read(tmp_path):
    # row a: lr 0.01 is better on average over the columns (0.6 + 0.5 > 0.7 + 0.3) although
    # it loses k=2; its test numbers say the opposite and must not matter.
    selection = {
        0.001: [_run(tmp_path, "a", "k=2", 0.001, 0.7, test=0.99),
                _run(tmp_path, "a", "k=4", 0.001, 0.3, test=0.99),
                _run(tmp_path, "b", "k=2", 0.001, 0.5, test=0.0),
                _run(tmp_path, "b", "k=4", 0.001, 0.5, test=0.0)],
        0.01: [_run(tmp_path, "a", "k=2", 0.01, 0.6, test=0.0),
               _run(tmp_path, "a", "k=4", 0.01, 0.5, test=0.0),
               _run(tmp_path, "b", "k=2", 0.01, 0.5, test=0.99),
               _run(tmp_path, "b", "k=4", 0.01, 0.5, test=0.99)],
    }  # fmt: skip
    chosen, records = choose_lr.choose(selection, {"a": "Row A"})
    assert chosen == {("synthetic", "a"): 0.01, ("synthetic", "b"): 0.001}  # b: a tie -> first
    a = records[0]
    assert a["row_label"] == "Row A" and a["chosen"] == 0.01
    assert a["validation"]["0.001"] == {"k=2": 70.0, "k=4": 30.0}
    assert a["mean"] == {"0.001": pytest.approx(50.0), "0.01": pytest.approx(55.0)}
    text = choose_lr.markdown(records, [0.001, 0.01], "25")
    assert "| Row A | 50.0 | 55.0* | 0.01 |" in text and "| b | 50.0* | 50.0 | 0.001 |" in text


def test_a_run_without_a_validation_set_is_named(tmp_path):
    selection = {0.001: [_run(tmp_path, "a", "k=2", 0.001, None, test=0.5)],
                 0.01: [_run(tmp_path, "a", "k=2", 0.01, 0.5, test=0.5)]}  # fmt: skip
    with pytest.raises(ValueError, match=r"a-k=2-0.001/eval_results.json has no validation"):
        choose_lr.choose(selection, {})


@pytest.mark.parametrize(
    "argv,message",
    [
        (["table8", "--choose_lr", "1e-3,1e-2"], "applies to the few-shot tables"),
        (["table5", "--choose_lr", "1e-3,1e-2", "--", "--config.optim.learning_rate=0.1"],
         "leave it out of the overrides"),
        (["table5", "--dataset", "hmdb51", "--choose_lr", "1e-3,1e-2", "--dry_run"],
         "evaluates no validation set"),
        (["table5", "--dataset", "synthetic", "--choose_lr", "1e-3", "--dry_run"],
         "at least two"),
    ],
)  # fmt: skip
def test_driver_refusals_are_one_line(capsys, argv, message):
    try:
        code = paper.main(argv)
    except SystemExit as e:  # argparse's usage errors
        code = e.code
    assert code in (1, 2)
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_a_rate_that_diverged_on_any_column_is_not_chosen(tmp_path):
    selection = {
        0.001: [_run(tmp_path, "a", "k=2", 0.001, 0.4, test=0.5),
                _run(tmp_path, "a", "k=4", 0.001, 0.4, test=0.5)],
        0.1: [_run(tmp_path, "a", "k=2", 0.1, 0.9, test=0.5),
              _run(tmp_path, "a", "k=4", 0.1, 0.9, test=0.5)],
    }  # fmt: skip
    choose_lr.mark_diverged(selection[0.1][1], "loss is nan at step 7")
    chosen, records = choose_lr.choose(selection, {})
    assert chosen == {("synthetic", "a"): 0.001}
    assert records[0]["mean"]["0.1"] is None and records[0]["validation"]["0.1"]["k=4"] is None
    assert "| a | 40.0* | diverged | 0.001 |" in choose_lr.markdown(records, [0.001, 0.1], "1")
    choose_lr.mark_diverged(selection[0.001][0], "loss is inf at step 3")
    with pytest.raises(ValueError, match=r"every rate diverged for a \(synthetic\)"):
        choose_lr.choose(selection, {})
