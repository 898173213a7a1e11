"""Plots (non-empty PNGs, written atomically) and the report's markdown tables."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from gaitrun.errors import DataError
from gaitrun.evaluate.plots import plot_confusion_matrix, plot_learning_curves, plot_rank1_heatmap
from gaitrun.evaluate.summary import markdown_tables


def _image(path: Path) -> np.ndarray:
    from matplotlib.image import imread

    assert path.is_file() and path.stat().st_size > 1000
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temporary file left
    image = imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert image.std() > 0  # something was drawn
    return image


def _history(path: Path, epochs: int, offset: float) -> Path:
    path.parent.mkdir(parents=True)
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr"])
        writer.writeheader()
        for e in range(1, epochs + 1):
            writer.writerow({"epoch": e, "loss": 2 / e + offset, "accuracy": 1 - 1 / (e + 1), "val_loss": 2.2 / e,
                             "val_accuracy": "" if e == 2 else 0.9 - 1 / (e + 1), "lr": 1e-3 / e})
    return path


def test_learning_curves_from_history_files(tmp_path):
    paths = [_history(tmp_path / "folds" / str(k) / "history.csv", 5, 0.1 * k) for k in range(2)]
    out = tmp_path / "plots" / "learning_curves.png"
    plot_learning_curves(paths, out)
    image = _image(out)
    assert image.shape[1] > image.shape[0]  # three panels side by side: loss, accuracy, lr


def test_learning_curves_from_rows_and_a_missing_file(tmp_path):
    rows = [{"epoch": 1, "loss": 1.0, "val_loss": 1.2}, {"epoch": 2, "loss": 0.5, "val_loss": 0.9}]
    plot_learning_curves({"a": rows, "b": rows[:1]}, tmp_path / "out" / "curves.png")
    _image(tmp_path / "out" / "curves.png")
    with pytest.raises(DataError, match="cannot read the training history") as info:
        plot_learning_curves({"0": tmp_path / "nowhere.csv"}, tmp_path / "x.png")
    assert info.value.path.endswith("nowhere.csv") and not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("n", [4, 30])
def test_confusion_matrix(tmp_path, n):
    rng = np.random.default_rng(n)
    matrix = rng.integers(0, 5, size=(n, n)) + np.diag(rng.integers(5, 30, size=n))
    matrix[1] = 0  # a class without samples: no division by zero
    names = [f"class_{i:02d}" for i in range(n)]
    out = tmp_path / f"cm{n}.png"
    with np.errstate(all="raise"):
        plot_confusion_matrix(matrix.tolist(), names, out)
    image = _image(out)
    assert image.shape[0] > (800 if n == 30 else 300)  # the figure grows with the classes


def test_rank1_heatmap_with_excluded_diagonal(tmp_path):
    # protocol_eval's rank1_matrix: probe view x gallery view, None where excluded (JSON null)
    views = ["000", "090", "180"]
    matrix = {"nm": [[None, 0.9, 0.5], [0.8, None, 0.7], [0.4, 1.0, None]],
              "bg": [[None, 0.6, 0.2], [0.5, None, 0.3], [None, 0.1, None]]}
    out = tmp_path / "rank1.png"
    plot_rank1_heatmap(matrix, views, out)
    image = _image(out)
    assert image.shape[1] > 1.5 * image.shape[0]  # two panels side by side: nm and bg


# --- report tables ------------------------------------------------------------------------
def _fold(name: str, accuracy: float, nm: float, bg: float | None) -> dict:
    return {"fold": name, "train_samples": 10,
            "classification": {"accuracy": accuracy, "f1_macro": accuracy / 2, "samples": 6},
            "knn": {"views": ["000", "090"], "rank1": {"nm": nm, "bg": bg},
                    "rank1_per_view": {"nm": {"000": nm, "090": nm}, "bg": {"000": bg, "090": None}}}}


def test_markdown_tables():
    metrics = {"folds": [_fold("0", 0.5, 0.9, 0.3), _fold("1", 0.7, 0.7, None)],
               "test": {"classification": {"accuracy": 0.8}, "knn": {"rank1": {"nm": 0.75, "bg": 0.5}}}}
    text = markdown_tables(metrics)
    lines = text.splitlines()
    assert "| fold | accuracy | f1_macro |" in lines  # "samples" is a count, not a metric
    assert "| 0 | 50.0 | 25.0 |" in lines
    assert "| mean ± std (2 folds) | 60.0 ± 14.1 | 30.0 ± 7.1 |" in lines  # sample std
    assert "| test | 80.0 | — |" in lines
    assert "| fold | NM | BG |" in lines
    assert "| 1 | 70.0 | — |" in lines
    assert "| mean ± std (2 folds) | 80.0 ± 14.1 | 30.0 ± 0.0 |" in lines  # bg: one fold has it
    assert "| condition | 000 | 090 | mean |" in lines
    assert "| NM | 80.0 | 80.0 | 80.0 |" in lines and "| BG | 30.0 | — | 30.0 |" in lines
    assert "### Rank-1 per sequence (%)" in lines  # rank1: the headline, per sequence
    assert "per window" not in text  # no rank1_window in these metrics: no table


def test_markdown_tables_of_a_classifier_run_with_one_fold():
    text = markdown_tables({"folds": [{"fold": "0", "classification": {"accuracy": 0.25}}]})
    assert text.splitlines()[-2:] == ["|---|---|", "| 0 | 25.0 |"]
    assert "mean ± std" not in text and "Rank-1" not in text
