"""The paper's figures as PNGs (experiments/figures.py), from tiny hand-made table cells."""

import numpy as np
import pytest

from motion_clip_jax.experiments import figures, paper_tables


def cell(row, column, mean, std=None, n=3):
    return {"row": row, "row_label": row.replace("_", " "), "column": column, "metric": "top1",
            "mean": mean, "std": std, "n": n}  # fmt: skip


def check_png(path):
    import matplotlib.image

    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert np.ptp(image[..., :3]) > 0.5  # something is drawn


@pytest.mark.parametrize(
    "name,cells",
    [
        ("fig3a", [cell("clip", "synthetic", 6.8, None, 1), cell("baseline", "synthetic", 40.0, 1.2),
                   cell("full", "synthetic", 97.0, 0.5)]),
        ("fig3d", [cell(f"s{s}", "hmdb51", 60 + s, 1.0) for s in (1, 2, 3)]),
        ("table5", [cell(r, f"synthetic/k={k}", m + k, 2.0) for r, m in (("baseline", 20),
                    ("full", 45)) for k in (2, 4, 8, 16)] + [cell("mmb", "synthetic/k=2", None)]),
        ("table5", [cell("full", f"hmdb51/k={k}", 50 + k, 1.5) for k in (2, 4, 8, 16)]),
    ],
)  # fmt: skip
def test_each_figure_is_a_valid_png(tmp_path, name, cells):
    path = figures.write_figure(paper_tables.TABLES[name], cells, str(tmp_path / f"{name}.png"))
    assert path == str(tmp_path / f"{name}.png")
    check_png(path)
    assert [p.name for p in tmp_path.iterdir()] == [f"{name}.png"]  # no temporary file left


def test_paper_bars_sit_beside_ours():
    """Fig. 3a on the synthetic world: the paper's HMDB-51 and UCF-101 bars where it has
    numbers (Baseline + MCB has none in the text)."""
    table = paper_tables.TABLES["fig3a"]
    rows = [("baseline", "Baseline"), ("baseline_mcb", "Baseline + MCB")]
    bars = figures._paper_bars(table, rows, "synthetic")
    assert bars["paper, HMDB-51"][0] == 52.8 and np.isnan(bars["paper, HMDB-51"][1])
    assert bars["paper, UCF-101"][0] == 74.7


def test_no_figure_without_numbers_or_for_tables_without_one(tmp_path):
    assert figures.write_figure(paper_tables.TABLES["fig3a"], [cell("full", "hmdb51", None)],
                                str(tmp_path / "x.png")) is None  # fmt: skip
    assert figures.write_figure(paper_tables.TABLES["table8"], [cell("full", "hmdb51", 70.0)],
                                str(tmp_path / "y.png")) is None  # fmt: skip
    assert list(tmp_path.iterdir()) == []
