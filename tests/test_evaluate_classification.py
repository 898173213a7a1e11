"""Classifier metrics and fold aggregation, checked against values computed by hand."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from gaitrun.evaluate.classification import aggregate_folds, classification_metrics

NAMES = ["a", "b", "c", "d"]  # "d" has no samples
Y_TRUE = np.array([0, 0, 1, 1, 1, 2])
# argmax per row: 0, 1, 1, 1, 0, 2   -> hits at rows 0, 2, 3, 5: accuracy 4/6
# top-2 per row:  {0,1} {1,0} {1,2} {1,2} {0,2} {2,1} -> row 4 (true 1) misses: top-2 = 5/6
PROBS = np.array([[0.6, 0.3, 0.1, 0.0],
                  [0.3, 0.5, 0.1, 0.1],
                  [0.1, 0.7, 0.2, 0.0],
                  [0.2, 0.5, 0.3, 0.0],
                  [0.5, 0.1, 0.4, 0.0],
                  [0.1, 0.2, 0.6, 0.1]])
ALL = ["accuracy", "top_k", "precision", "recall", "f1_macro", "f1_per_class", "confusion_matrix"]


def test_metrics_match_hand_computed_values():
    out = classification_metrics(Y_TRUE, PROBS, metrics=ALL, top_k=2, class_names=NAMES)
    assert out["accuracy"] == pytest.approx(4 / 6)
    assert out["top2_accuracy"] == pytest.approx(5 / 6)
    # a: TP 1 (row 0), FP 1 (row 4), FN 1 (row 1) -> P = R = F1 = 1/2
    # b: TP 2 (rows 2, 3), FP 1 (row 1), FN 1 (row 4) -> 2/3
    # c: TP 1, no FP, no FN -> 1
    # d: no samples, never predicted -> 0/0 scored 0, and left out of the macro average
    assert out["per_class"]["a"] == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2})
    assert out["per_class"]["b"] == pytest.approx({"precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3, "support": 3})
    assert out["per_class"]["c"] == pytest.approx({"precision": 1, "recall": 1, "f1": 1, "support": 1})
    assert out["per_class"]["d"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    for key in ("precision_macro", "recall_macro", "f1_macro"):
        assert out[key] == pytest.approx((1 / 2 + 2 / 3 + 1) / 3)  # 13/18, not 13/24 with "d"
    assert out["confusion_matrix"] == [[1, 1, 0, 0], [1, 2, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]]
    assert out["class_names"] == NAMES
    assert out["classes_without_samples"] == ["d"]
    assert out["samples"] == 6
    json.dumps(out, allow_nan=False)  # JSON-ready: plain floats and ints only


def test_only_the_requested_metrics_are_computed():
    out = classification_metrics(Y_TRUE, PROBS, metrics=["accuracy"], top_k=5, class_names=NAMES)
    assert set(out) == {"accuracy", "samples", "classes_without_samples"}


def test_top_k_beyond_the_class_count_counts_every_sample():
    out = classification_metrics(Y_TRUE, PROBS, metrics=["top_k"], top_k=10, class_names=NAMES)
    assert out["top10_accuracy"] == 1.0


def test_a_fold_with_a_single_class_does_not_divide_by_zero():
    probs = np.eye(3)[[0, 0, 1]]  # every sample is class 0; one is predicted as class 1
    with np.errstate(all="raise"):
        out = classification_metrics([0, 0, 0], probs, metrics=ALL, top_k=1, class_names=["x", "y", "z"])
    assert out["classes_without_samples"] == ["y", "z"]
    assert out["accuracy"] == pytest.approx(2 / 3)
    assert out["precision_macro"] == 1.0 and out["recall_macro"] == pytest.approx(2 / 3)  # class x only
    assert out["per_class"]["y"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}


@pytest.mark.parametrize("y, probs, message", [
    ([0, 1], np.ones((2, 3)), r"probs must be \(samples, classes\)"),
    ([0, 4], np.ones((2, 4)), "class indices"),
    ([], np.ones((0, 4)), "no samples"),
])
def test_inputs_that_do_not_fit_are_refused(y, probs, message):
    with pytest.raises(ValueError, match=message):
        classification_metrics(y, probs, metrics=["accuracy"], top_k=1, class_names=NAMES)


def test_unknown_metric_is_refused():
    with pytest.raises(ValueError, match="unknown metrics"):
        classification_metrics(Y_TRUE, PROBS, metrics=["auc"], top_k=1, class_names=NAMES)


def test_aggregate_folds_mean_and_sample_std():
    folds = [{"accuracy": 0.5, "knn": {"rank1": {"nm": 0.8}}, "samples": 10},
             {"accuracy": 0.7, "knn": {"rank1": {"nm": 0.6, "bg": 0.4}}, "samples": 12},
             {"accuracy": 0.9, "knn": {"rank1": {"nm": None}}, "confusion_matrix": [[1]]}]
    out = aggregate_folds(folds)
    assert out["folds"] == 3
    # accuracy 0.5, 0.7, 0.9: mean 0.7; sample variance (0.04 + 0 + 0.04) / 2 = 0.04 -> std 0.2
    assert out["mean"]["accuracy"] == pytest.approx(0.7)
    assert out["std"]["accuracy"] == pytest.approx(0.2)
    # nm: 0.8 and 0.6 (the third fold has none): mean 0.7, std sqrt(0.02 / 1)
    assert out["mean"]["knn"]["rank1"]["nm"] == pytest.approx(0.7)
    assert out["std"]["knn"]["rank1"]["nm"] == pytest.approx(math.sqrt(0.02))
    assert out["mean"]["knn"]["rank1"]["bg"] == pytest.approx(0.4)
    assert out["std"]["knn"]["rank1"]["bg"] == 0.0  # one value: no spread
    assert sorted(out["partial"]) == ["knn/rank1/bg", "knn/rank1/nm"]
    assert "samples" not in out["mean"] and "confusion_matrix" not in out["mean"]  # counts, lists


def test_aggregate_of_one_fold_has_zero_std():
    out = aggregate_folds([{"accuracy": np.float32(0.25)}])
    assert out == {"mean": {"accuracy": 0.25}, "std": {"accuracy": 0.0}, "folds": 1, "partial": []}


def test_importing_the_evaluation_package_stays_light():
    code = ("import sys, gaitrun.evaluate; "
            "print(sorted(m for m in ('sklearn', 'matplotlib', 'tensorflow', 'keras') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
