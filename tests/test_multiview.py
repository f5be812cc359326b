"""Multi-view evaluation: both aggregations (paper §4.1 and X-CLIP's), against a hand computation."""

import numpy as np
import pytest

from motion_clip_jax.train import evaluate


def test_both_multiview_aggregations_match_a_hand_computation():
    # 2 videos, 2 views, 3 classes; labels 0 and 1.
    #   video 0: view 0 says 0 (right), view 1 says 2 (wrong);  summed: 0 (0.9 vs 0.8) right
    #   video 1: view 0 says 2 (wrong), view 1 says 2 (wrong);  summed: 2 wrong
    probs = np.array(
        [
            [[0.6, 0.1, 0.3], [0.3, 0.2, 0.5]],
            [[0.2, 0.3, 0.5], [0.1, 0.4, 0.5]],
        ]
    )
    labels = np.array([0, 1])
    m = evaluate.multiview_metrics(probs, labels, ["a", "b", "c"])
    # Paper: per-view top-1 = view 0: 1/2, view 1: 0/2; averaged: 0.25.
    assert m["mean_over_views"]["per_view_top1"] == [0.5, 0.0]
    assert m["mean_over_views"]["top1"] == pytest.approx(0.25)
    assert m["top1"] == pytest.approx(0.25)  # the tables' number is the paper's
    # X-CLIP: summed scores video 0 -> [0.9, 0.3, 0.8] (0, right), video 1 -> [0.3, 0.7, 1.0]
    # (2, wrong): 0.5.
    assert m["summed_scores"]["top1"] == pytest.approx(0.5)
    # Top-5 with 3 classes holds every class: 1 either way.
    assert m["top5"] == m["summed_scores"]["top5"] == 1.0
    assert m["num_views"] == 2
    # Per-video metrics come from the summed scores: video 0 predicted 0, video 1 predicted 2.
    assert m["confusion_matrix"] == [[1, 0, 0], [0, 0, 1], [0, 0, 0]]
    with pytest.raises(ValueError, match=r"\(N, V, K\)"):
        evaluate.multiview_metrics(probs[:, 0], labels, ["a", "b", "c"])


def test_top5_of_each_view_is_averaged():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(8), size=(6, 3))
    labels = rng.integers(0, 8, 6)
    m = evaluate.multiview_metrics(probs, labels, [str(i) for i in range(8)])
    ranks = np.argsort(-probs, axis=-1)[..., :5]  # (N, V, 5)
    hits = (ranks == labels[:, None, None]).any(-1)  # (N, V)
    assert m["mean_over_views"]["per_view_top5"] == pytest.approx(hits.mean(0).tolist())
    assert m["top5"] == pytest.approx(hits.mean())


def test_paper_tables_read_the_papers_aggregation_and_name_older_records():
    from motion_clip_jax.experiments import report
    from motion_clip_jax.experiments.plan import Run

    run = Run(
        "fig3a", "full", "synthetic", "synthetic", "configs/synthetic.py:closed,full", (), "w"
    )
    probs = np.array([[[0.6, 0.1, 0.3], [0.3, 0.2, 0.5]], [[0.2, 0.3, 0.5], [0.1, 0.4, 0.5]]])
    metrics = evaluate.multiview_metrics(probs, np.array([0, 1]), ["a", "b", "c"])
    got = report.run_values(run, {"main/multiview": metrics}, "top1")
    assert got == {"values": [25.0], "view": "multiview"}  # not the summed 50.0
    older = {"main/multiview": {"top1": 0.5}}  # written before both aggregations were kept
    assert report.run_values(run, older, "top1") == {"values": [50.0], "view": "multiview-summed"}
